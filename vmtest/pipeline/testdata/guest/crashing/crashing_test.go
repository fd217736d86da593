// Package crashing is a guest fixture: its binary is killed by a signal in
// the middle of a test.
package crashing

import (
	"syscall"
	"testing"
)

func TestPasses(t *testing.T) {}

func TestKilled(t *testing.T) {
	t.Log("about to be killed")
	_ = syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
	select {}
}
