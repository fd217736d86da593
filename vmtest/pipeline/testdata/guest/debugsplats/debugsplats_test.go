// Package debugsplats is a guest fixture for the debug kernel (DEBUG=1):
// each test makes the kernel print one kind of report through LKDTM and
// waits until the kernel log holds its headline, so that the harness's
// report can be checked against the kernel's own words. The order matters:
// lockdep stops after its first report, and a KASAN report or an oops
// turns it off (the taint they add makes it unreliable), so lockdep goes
// first; KASAN reports once per boot. The lockdep provocation leaves its
// task holding a spinlock, so it runs in a child process. (A BUG() in a
// child, tried here, stalled the debug guest for minutes: not yet
// understood, so the kinds that kill their task are not provoked here.)
package debugsplats

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	lkdtm = "/sys/kernel/debug/provoke-crash/DIRECT"
	// childEnv makes the binary a child that provokes what it names.
	childEnv = "DEBUGSPLATS_PROVOKE"
)

// TestMain runs the child's provocation instead of the tests when
// childEnv is set.
func TestMain(m *testing.M) {
	if what := os.Getenv(childEnv); what != "" {
		if err := os.WriteFile(lkdtm, []byte(what+"\n"), 0); err != nil {
			os.Stderr.WriteString("LKDTM: " + err.Error() + "\n")
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// kernelLog is the kernel's log buffer (dmesg).
func kernelLog(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		t.Fatalf("reading the kernel log: %v", err)
	}
	return string(buf[:n])
}

// waitFor waits until the kernel log holds want (file names in the
// kernel's messages are relative to the build directory, so want holds
// none), which is new since before; it fails the test after limit.
func waitFor(t *testing.T, before, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if strings.Count(kernelLog(t), want) > strings.Count(before, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kernel log has no new %q after %s", want, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settle gives the host time to read this test's start from the result
// channel before the report reaches it on the console: the two are
// separate serial ports, and the host names the test of a report by the
// test running when its first line arrives.
func settle() { time.Sleep(500 * time.Millisecond) }

// provoke makes the kernel print a report through LKDTM from this
// process and waits for want in the kernel log.
func provoke(t *testing.T, what, want string) {
	t.Helper()
	settle()
	before := kernelLog(t)
	if err := os.WriteFile(lkdtm, []byte(what+"\n"), 0); err != nil {
		t.Fatalf("LKDTM %s: %v", what, err)
	}
	waitFor(t, before, want, 30*time.Second)
}

// child starts this binary as a child that provokes what, and returns it
// running.
func child(t *testing.T, what string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+what)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s child: %v", what, err)
	}
	return cmd
}

// provokeInChild has a child provoke what, waits for it to end (killed by
// the kernel's report or not) and for want in the kernel log.
func provokeInChild(t *testing.T, what, want string) {
	t.Helper()
	settle()
	before := kernelLog(t)
	err := child(t, what).Wait()
	t.Logf("the %s child ended: %v", what, err)
	waitFor(t, before, want, 30*time.Second)
}

// The child goes back to user space holding LKDTM's spinlock, which
// lockdep reports; it then exits.
func TestLockdep(t *testing.T) {
	provokeInChild(t, "SPINLOCKUP", "WARNING: lock held when returning to user space!")
}

func TestKASAN(t *testing.T) {
	provoke(t, "READ_AFTER_FREE", "BUG: KASAN: slab-use-after-free in lkdtm_READ_AFTER_FREE")
}

// The same WARNING in two tests is one bug.
func TestWarningA(t *testing.T) { provoke(t, "WARNING", "lkdtm_WARNING") }
func TestWarningB(t *testing.T) { provoke(t, "WARNING", "lkdtm_WARNING") }

func TestUBSAN(t *testing.T) {
	provoke(t, "ARRAY_BOUNDS", "UBSAN: array-index-out-of-bounds in ")
}

func TestListCorruption(t *testing.T) {
	provoke(t, "CORRUPT_LIST_ADD", "list_add corruption")
}
