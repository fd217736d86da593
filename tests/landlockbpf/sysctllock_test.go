package landlockbpf

import (
	"os"
	"path/filepath"
	"testing"

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
}
