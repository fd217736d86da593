// Package warning is a guest fixture: every test passes, but one makes the
// kernel print a WARNING through LKDTM.
package warning

import (
	"os"
	"testing"
)

func TestBefore(t *testing.T) {}

func TestKernelWarning(t *testing.T) {
	if err := os.WriteFile("/sys/kernel/debug/provoke-crash/DIRECT", []byte("WARNING\n"), 0); err != nil {
		t.Fatalf("LKDTM: %v", err)
	}
}

func TestAfter(t *testing.T) {}
