// Package panic is a guest fixture: it makes the kernel panic with LKDTM.
package panic

import (
	"os"
	"testing"
)

func TestKernelPanic(t *testing.T) {
	t.Log("provoking a kernel panic through LKDTM")
	if err := os.WriteFile("/sys/kernel/debug/provoke-crash/DIRECT", []byte("PANIC\n"), 0); err != nil {
		t.Fatalf("LKDTM: %v", err)
	}
	t.Fatal("the kernel did not panic")
}
