// Package softlockup is a guest fixture: it locks the only CPU up in the
// kernel through LKDTM, so the guest hangs.
package softlockup

import (
	"os"
	"testing"
)

func TestSoftLockup(t *testing.T) {
	if err := os.WriteFile("/sys/kernel/debug/provoke-crash/DIRECT", []byte("SOFTLOCKUP\n"), 0); err != nil {
		t.Fatalf("LKDTM: %v", err)
	}
	t.Fatal("the CPU came back")
}
