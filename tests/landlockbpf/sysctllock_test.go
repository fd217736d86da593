package landlockbpf

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// locked reports whether another open file description could not take
// the lock on path now.
func locked(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if err == unix.EWOULDBLOCK {
		return true
	}
	require.NoError(t, err)
	return false
}

// The sysctl lock is held from the first HoldSysctls of a test (and its
// subtests') to the end of the last, and let go then: another binary's
// test, which takes it through a file of its own, waits meanwhile.
func TestHoldSysctls(t *testing.T) {
	saved := SysctlLock
	t.Cleanup(func() { SysctlLock = saved })
	SysctlLock = filepath.Join(t.TempDir(), "sysctl.lock")
	t.Run("outer", func(t *testing.T) {
		HoldSysctls(t)
		assert.True(t, locked(t, SysctlLock), "held by the test")
		t.Run("inner", func(t *testing.T) {
			HoldSysctls(t)
			assert.True(t, locked(t, SysctlLock))
		})
		assert.True(t, locked(t, SysctlLock), "still held after the subtest let go of its hold")
	})
	assert.False(t, locked(t, SysctlLock), "let go when the test ended")
	b, err := os.ReadFile(SysctlLock)
	require.NoError(t, err)
	assert.Contains(t, string(b), "in TestHoldSysctls/outer", "the holder names itself for the next who waits")
}

// A wait for the lock says, now and then, who holds it, and ends when the
// holder lets go.
func TestLockFileSaysWhoHoldsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sysctl.lock")
	require.NoError(t, os.WriteFile(path, []byte("pid 1 (x.test) in TestX"), 0o644))
	held, err := os.Open(path)
	require.NoError(t, err)
	require.NoError(t, unix.Flock(int(held.Fd()), unix.LOCK_EX))
	said := make(chan string, 1)
	go func() {
		f, err := lockFile(path, 50*time.Millisecond, func(holder string) {
			select {
			case said <- holder:
			default:
			}
			held.Close() // let go once the waiter said who holds it
		})
		if err == nil {
			f.Close()
		}
		said <- fmt.Sprint(err)
	}()
	assert.Equal(t, "pid 1 (x.test) in TestX", <-said)
	assert.Equal(t, "<nil>", <-said, "the wait ended when the holder let go")
}
