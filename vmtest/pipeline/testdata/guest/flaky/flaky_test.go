// Package flaky is a guest fixture for RETRY=: TestFlaky fails on its
// first run in a boot and passes on the next (its first run leaves a
// marker in the guest's temporary directory, which lives as long as the
// boot); TestPasses passes.
package flaky

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPasses(t *testing.T) {}

func TestFlaky(t *testing.T) {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Skip("a guest fixture: its marker must not outlive the boot")
	}
	marker := filepath.Join(os.TempDir(), "landlock-vmtest-flaky-fixture")
	if _, err := os.Stat(marker); err == nil {
		t.Log("this fixture test passes on its second run in a boot")
		return
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatalf("leaving the marker: %v", err)
	}
	t.Fatal("this fixture test fails on its first run in a boot")
}
