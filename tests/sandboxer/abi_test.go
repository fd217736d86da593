package sandboxer

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestABINumbersAgree: bpfsandbox keeps its own copy of the ABI's numbers
// (it imports nothing of the tests); they are those of landlockbpf, which
// a host test checks against the patched kernel's headers. Runs on the
// host.
func TestABINumbersAgree(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"BPF_PROG_TYPE_LANDLOCK", bpfsandbox.ProgTypeLandlock, landlockbpf.ProgTypeLandlock},
		{"BPF_LANDLOCK_FS", bpfsandbox.AttachLandlockFS, landlockbpf.AttachLandlockFS},
		{"BPF_MAP_TYPE_LANDLOCK_FS", bpfsandbox.MapTypeLandlockFS, landlockbpf.MapTypeLandlockFS},
		{"BPF_FUNC_landlock_get_fs_mode", bpfsandbox.FuncGetFSMode, landlockbpf.FuncGetFSMode},
		{"BPF_FUNC_landlock_fs_beneath", bpfsandbox.FuncFSBeneath, landlockbpf.FuncFSBeneath},
		{"max_entries limit", bpfsandbox.MaxFSMapEntries, landlockbpf.FSMapMaxEntries},
		{"SECCOMP_APPEND_LANDLOCK_RULE", bpfsandbox.SeccompAppendLandlockRule, landlockbpf.SeccompAppendLandlockRule},
		{"SECCOMP_LANDLOCK_ABI_VERSION", bpfsandbox.SeccompLandlockABIVersion, landlockbpf.SeccompLandlockABIVersion},
		{"offsetof(struct landlock_context, arch)", bpfsandbox.CtxOffArch, landlockbpf.CtxOffArch},
		{"offsetof(struct landlock_context, syscall_nr)", bpfsandbox.CtxOffSyscallNr, landlockbpf.CtxOffSyscallNr},
		{"offsetof(struct landlock_context, arg2)", bpfsandbox.CtxOffArg2, landlockbpf.CtxOffArg2},
		{"EXEC", bpfsandbox.ActionExec, landlockbpf.ActionExec},
		{"WRITE", bpfsandbox.ActionWrite, landlockbpf.ActionWrite},
		{"READ", bpfsandbox.ActionRead, landlockbpf.ActionRead},
		{"NEW", bpfsandbox.ActionNew, landlockbpf.ActionNew},
		{"GET", bpfsandbox.ActionGet, landlockbpf.ActionGet},
		{"REMOVE", bpfsandbox.ActionRemove, landlockbpf.ActionRemove},
		{"IOCTL", bpfsandbox.ActionIoctl, landlockbpf.ActionIoctl},
		{"LOCK", bpfsandbox.ActionLock, landlockbpf.ActionLock},
		{"FCNTL", bpfsandbox.ActionFcntl, landlockbpf.ActionFcntl},
	} {
		assert.Equal(t, c.want, c.got, c.name)
	}
	assert.LessOrEqual(t, bpfsandbox.NeedABI, landlockbpf.ABIVersion, "bpfsandbox needs a version the tests do not know")
	assert.LessOrEqual(t, bpfsandbox.UnprivilegedABI, landlockbpf.ABIVersion, "bpfsandbox's unprivileged mode is of a version the tests do not know")
	assert.Equal(t, landlockbpf.UnprivBPFSysctl, bpfsandbox.UnprivBPFSysctl)
}
