package landlockbpf

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
)

// The guest runs test binaries side by side on SMP, and a sysctl is one
// per boot: a test of one binary that sets kernel.unprivileged_bpf_disabled
// would change what a test of another binary sees, and its cleanup would
// restore the value under the other's feet. So every test that sets a
// sysctl, or depends on its value, holds the sysctl lock for its whole
// time: flock(2) on SysctlLock, taken before it reads the value and let go
// after its cleanups restored it. One lock for every sysctl: with one per
// sysctl, two tests that each hold one and want the other's would wait for
// each other for ever. Binaries that write sysctls without
// this package (the kselftests) run alone instead (the runner's Alone).

// SysctlLock is the file the sysctl lock is taken on. Every binary of a
// boot sees the same /tmp.
var SysctlLock = filepath.Join(os.TempDir(), "landlock-vmtest-sysctl.lock")

// lockWaitWorthSaying is the wait for the lock that HoldSysctls logs.
const lockWaitWorthSaying = 100 * time.Millisecond

// sysctlLock is this process's hold on SysctlLock: the tests of one binary
// run one at a time (none calls t.Parallel), but a test and its subtests
// may each ask for it, so it is counted.
var sysctlLock struct {
	mu      sync.Mutex
	f       *os.File
	holders int
}

// HoldSysctls takes the sysctl lock for the time of t, waiting for a test
// of another binary that holds it, and saying every lockWaitReport which
// one that is. A privdrop child does not take it: its parent, which waits
// for it, holds it already. Call it from the test's goroutine.
func HoldSysctls(t testing.TB) {
	t.Helper()
	if privdrop.InChild() {
		return
	}
	sysctlLock.mu.Lock()
	defer sysctlLock.mu.Unlock()
	if sysctlLock.holders == 0 {
		start := time.Now()
		f, err := lockFile(SysctlLock, lockWaitReport, func(holder string) {
			t.Logf("still waiting for the sysctl lock after %.0fs: %s holds it", time.Since(start).Seconds(), holder)
		})
		require.NoError(t, err)
		sysctlLock.f = f
		// Whoever waits next can say who holds it.
		_ = f.Truncate(0)
		_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d (%s) in %s", os.Getpid(), filepath.Base(os.Args[0]), t.Name())), 0)
		if waited := time.Since(start); waited >= lockWaitWorthSaying {
			// Not an assertion: what a binary side by side cost this one.
			t.Logf("waited %.1fs for the sysctl lock (a test of another binary held it)", waited.Seconds())
		}
	}
	sysctlLock.holders++
	t.Cleanup(func() {
		sysctlLock.mu.Lock()
		defer sysctlLock.mu.Unlock()
		if sysctlLock.holders--; sysctlLock.holders == 0 {
			// Closing the last descriptor of the open file lets go of the lock.
			sysctlLock.f.Close()
			sysctlLock.f = nil
		}
	})
}

// lockWaitReport is how often a test waiting for the lock says who holds
// it.
const lockWaitReport = 30 * time.Second

// lockFile opens path (making it) and takes an exclusive flock(2) on it,
// waiting as long as another process holds one (the holder's binary ends
// at its timeout at the latest, and the lock with it), and calling
// waiting with what the holder wrote in the file every so often.
func lockFile(path string, every time.Duration, waiting func(holder string)) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the sysctl lock: %w", err)
	}
	next := time.Now().Add(every)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			break
		}
		if time.Now().After(next) {
			b, _ := os.ReadFile(path)
			waiting(string(b))
			next = time.Now().Add(every)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("flock(%s): %w", path, err)
	}
	return f, nil
}
