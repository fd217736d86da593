// Package smoke checks, in the guest, that the harness boots the kernel it
// just built, that the kernel has what the Landlock tests need (seccomp,
// bpf(2), the Landlock LSM) and that guest tests run as root and can drop
// privileges with the privdrop helper.
//
// Every test skips on the host: they are meant for the guest kernel.
package smoke

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
)

// Set by the guest runner in every test binary's environment.
const (
	guestEnv   = "LANDLOCK_VMTEST_GUEST"
	releaseEnv = "LANDLOCK_VMTEST_KERNEL_RELEASE"
)

// inGuest skips t unless it runs in the guest.
func inGuest(t *testing.T) {
	t.Helper()
	if os.Getenv(guestEnv) != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
}

// runningRelease returns the release of the running kernel.
func runningRelease(t *testing.T) string {
	t.Helper()
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u), "uname")
	return unix.ByteSliceToString(u.Release[:])
}

func TestKernelIsTheOneBuilt(t *testing.T) {
	inGuest(t)
	want := os.Getenv(releaseEnv)
	require.NotEmpty(t, want, "%s is not set: the runner passes the release of the kernel the host built", releaseEnv)
	got := runningRelease(t)
	t.Logf("running %s, built %s", got, want)
	assert.Equal(t, want, got, "the guest runs another kernel than the one built")

	version, err := os.ReadFile("/proc/version")
	require.NoError(t, err)
	t.Logf("/proc/version: %s", strings.TrimSpace(string(version)))
	assert.Contains(t, string(version), "landlock-vmtest@vmtest", "kernel not built by the harness (KBUILD_BUILD_USER@KBUILD_BUILD_HOST)")
}

func TestRunsAsRootWithCapSysAdmin(t *testing.T) {
	inGuest(t)
	assert.Equal(t, 0, unix.Geteuid(), "euid")
	st, err := privdrop.Current()
	require.NoError(t, err)
	t.Logf("uid %v, CapEff %016x, CapBnd %016x", st.UID, st.CapEff, st.CapBnd)
	assert.True(t, st.HasEffective(unix.CAP_SYS_ADMIN), "CAP_SYS_ADMIN not in CapEff %016x", st.CapEff)
}
