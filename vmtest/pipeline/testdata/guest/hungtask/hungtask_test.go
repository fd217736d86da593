// Package hungtask is a guest fixture: a child process sleeps in the
// kernel, uninterruptibly and for ever (LKDTM's HUNG_TASK), and the
// kernel's hung-task detector, its timeout lowered to 2 s, reports it.
// The test waits for the report in the kernel log and leaves the child
// where it is: nothing can end it, and it holds none of the binary's
// output, so the binary still ends.
package hungtask

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	lkdtm    = "/sys/kernel/debug/provoke-crash/DIRECT"
	childEnv = "HUNGTASK_CHILD"
	headline = "blocked for more than 2 seconds."
)

// TestMain is the child when childEnv is set: its write never returns.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := os.WriteFile(lkdtm, []byte("HUNG_TASK\n"), 0); err != nil {
			os.Exit(2)
		}
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func kernelLog(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		t.Fatalf("reading the kernel log: %v", err)
	}
	return string(buf[:n])
}

func TestHungTask(t *testing.T) {
	if err := os.WriteFile("/proc/sys/kernel/hung_task_timeout_secs", []byte("2\n"), 0); err != nil {
		t.Fatalf("lowering the hung-task timeout: %v", err)
	}
	before := strings.Count(kernelLog(t), headline)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1")
	// No pipe of ours in the child (its output goes to /dev/null), or the
	// binary's end would wait for a process that never ends.
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}
	// The whole report: the headline, then the task's stack, through
	// LKDTM's function.
	deadline := time.Now().Add(60 * time.Second)
	for {
		log := kernelLog(t)
		if strings.Count(log, headline) > before && strings.Contains(log[strings.LastIndex(log, headline):], "lkdtm_HUNG_TASK") {
			t.Logf("the kernel log from the report on:\n%s", log[strings.LastIndex(log, headline):])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no hung-task report (%q, then a stack through lkdtm_HUNG_TASK) in the kernel log after 60s", headline)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the kernel reported the child, pid %d, as hung", cmd.Process.Pid)
}
