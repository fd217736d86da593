package smoke

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// landlockABI612 is the Landlock ABI version of Linux 6.12.
const landlockABI612 = 6

// LSM ids of lsm_list_modules(2) (include/uapi/linux/lsm.h).
const (
	lsmIDCapability = 100
	lsmIDLandlock   = 110
)

// lsmFile lists the active LSMs when securityfs is mounted.
const (
	securityfsDir = "/sys/kernel/security"
	lsmFile       = securityfsDir + "/lsm"
)

// majorMinor returns the "6.12" of a release such as "6.12.117-foo".
func majorMinor(release string) string {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return release
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return parts[0] + "." + minor
}

func TestMajorMinor(t *testing.T) {
	for release, want := range map[string]string{
		"6.12.117": "6.12", "6.12": "6.12", "6.120.1": "6.120", "6.12-rc1": "6.12", "7": "7",
	} {
		assert.Equal(t, want, majorMinor(release), release)
	}
}

func TestLandlockABI(t *testing.T) {
	inGuest(t)
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	require.Zero(t, errno, "landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): %v", errno)
	release := runningRelease(t)
	t.Logf("Landlock ABI version %d on %s", abi, release)
	assert.GreaterOrEqual(t, int(abi), 1)
	if majorMinor(release) == "6.12" {
		assert.Equal(t, landlockABI612, int(abi), "Landlock ABI of Linux 6.12")
	}

	t.Run("lsm_list_modules", func(t *testing.T) {
		ids := make([]uint64, 32)
		size := uint32(len(ids) * 8)
		n, _, errno := unix.Syscall(unix.SYS_LSM_LIST_MODULES, uintptr(unsafe.Pointer(&ids[0])), uintptr(unsafe.Pointer(&size)), 0)
		require.Zero(t, errno, "lsm_list_modules: %v", errno)
		ids = ids[:n]
		t.Logf("active LSM ids: %v", ids)
		assert.Contains(t, ids, uint64(lsmIDLandlock), "Landlock is not an active LSM")
		assert.Contains(t, ids, uint64(lsmIDCapability))
	})

	t.Run("securityfs", func(t *testing.T) {
		if _, err := os.Stat(lsmFile); errors.Is(err, os.ErrNotExist) {
			mountSecurityfs(t)
		}
		b, err := os.ReadFile(lsmFile)
		require.NoError(t, err)
		lsms := strings.Split(strings.TrimSpace(string(b)), ",")
		t.Logf("%s: %v", lsmFile, lsms)
		assert.True(t, slices.Contains(lsms, "landlock"), "%s does not list landlock: %v", lsmFile, lsms)
	})
}

// mountSecurityfs mounts securityfs until the end of t, or skips t if the
// kernel has none.
func mountSecurityfs(t *testing.T) {
	t.Helper()
	fss, err := os.ReadFile("/proc/filesystems")
	require.NoError(t, err)
	if !slices.Contains(strings.Fields(string(fss)), "securityfs") {
		t.Skip("the kernel has no securityfs (CONFIG_SECURITYFS is not set), so no " + lsmFile + "; lsm_list_modules(2) is checked instead")
	}
	require.NoError(t, unix.Mount("securityfs", securityfsDir, "securityfs", 0, ""), "mounting securityfs on %s", securityfsDir)
	t.Cleanup(func() {
		if err := unix.Unmount(securityfsDir, 0); err != nil {
			t.Errorf("unmounting %s: %v", securityfsDir, err)
		}
	})
}
