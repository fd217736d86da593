// Package smoke checks, in the guest, that the harness boots the kernel it
// just built and that the features the Landlock eBPF tests need exist.
package smoke

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func inGuest(t *testing.T) {
	t.Helper()
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
}

func TestKernelRelease(t *testing.T) {
	inGuest(t)
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	t.Logf("release %s", unix.ByteSliceToString(u.Release[:]))
}
