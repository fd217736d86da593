package bpfsandbox

import (
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestCheckVersion(t *testing.T) {
	require.NoError(t, CheckVersion(3, nil))
	require.NoError(t, CheckVersion(4, nil))
	for _, c := range []struct {
		version int
		err     error
		want    string
	}{
		{2, nil, "the running kernel reports Landlock eBPF ABI version 2; this needs version 3 (BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath)"},
		{1, nil, "the running kernel reports Landlock eBPF ABI version 1; this needs version 3"},
		{0, fmt.Errorf("seccomp: %w", errnoText(unix.EINVAL)), "the running kernel has no Landlock eBPF rules (CONFIG_SECURITY_LANDLOCK_BPF): seccomp(2) does not know SECCOMP_APPEND_LANDLOCK_RULE (seccomp: EINVAL (invalid argument))"},
		{0, unix.EOPNOTSUPP, "Landlock is not enabled at boot"},
		{0, unix.ENOSYS, "the running kernel has no seccomp(2)"},
		{0, unix.EFAULT, "asking the running kernel for its Landlock eBPF ABI version failed"},
	} {
		err := CheckVersion(c.version, c.err)
		var ue *UnsupportedError
		require.ErrorAs(t, err, &ue)
		assert.Contains(t, err.Error(), c.want)
		assert.Contains(t, err.Error(), "version 3")
		if c.err != nil {
			assert.ErrorIs(t, err, c.err)
		}
	}
}

func TestErrnoText(t *testing.T) {
	err := fmt.Errorf("bpf: %w", errnoText(unix.EPERM))
	assert.Equal(t, "bpf: EPERM (operation not permitted)", err.Error())
	assert.ErrorIs(t, err, unix.EPERM)
	other := errors.New("not an errno")
	assert.Equal(t, other, errnoText(other))
	assert.Equal(t, " (EBADF)", errnoName(fmt.Errorf("x: %w", unix.EBADF)))
	assert.Equal(t, "", errnoName(other))
}

func TestNewFSMapSize(t *testing.T) {
	for _, n := range []int{0, -1, MaxFSMapEntries + 1} {
		_, err := NewFSMap(n)
		assert.EqualError(t, err, fmt.Sprintf("BPF_MAP_TYPE_LANDLOCK_FS map: %d entries: want 1 to 65536", n))
	}
}

// TestFSMapFull: Add refuses a full map before it opens anything.
func TestFSMapFull(t *testing.T) {
	m := &FSMap{fd: -1, maxEntries: 1, next: 1}
	assert.EqualError(t, m.Add("/nonexistent"), "BPF_MAP_TYPE_LANDLOCK_FS map: adding /nonexistent: the map is full (1 entries)")
}

// TestFSMapAddMissing: a path that does not exist is named with its
// errno, and takes no key.
func TestFSMapAddMissing(t *testing.T) {
	m := &FSMap{fd: -1, maxEntries: 2}
	err := m.Add("/nonexistent/landlock-bpf-sandbox")
	assert.EqualError(t, err, "BPF_MAP_TYPE_LANDLOCK_FS map: opening /nonexistent/landlock-bpf-sandbox: ENOENT (no such file or directory)")
	assert.ErrorIs(t, err, unix.ENOENT)
	assert.Zero(t, m.next)
}

// TestAttrLayout: the bpf_attr structs have the kernel's layout.
func TestAttrLayout(t *testing.T) {
	var c mapCreateAttr
	assert.Equal(t, uintptr(28), unsafe.Offsetof(c.mapName), "map_name")
	assert.Equal(t, uintptr(44), unsafe.Sizeof(c))
	var e mapElemAttr
	assert.Equal(t, uintptr(8), unsafe.Offsetof(e.key))
	assert.Equal(t, uintptr(16), unsafe.Offsetof(e.value))
	assert.Equal(t, uintptr(24), unsafe.Offsetof(e.flags))
	assert.Equal(t, uintptr(32), unsafe.Sizeof(e))
}

// TestCloseTwice: Close of a closed (or nil) map does nothing.
func TestCloseTwice(t *testing.T) {
	var m *FSMap
	assert.NoError(t, m.Close())
	assert.NoError(t, (&FSMap{fd: -1}).Close())
}
