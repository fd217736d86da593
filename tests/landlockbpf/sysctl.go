package landlockbpf

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// UnprivBPFSysctl is kernel.unprivileged_bpf_disabled: 0 lets a caller
// without CAP_BPF load programs and create maps (version 4 adds Landlock
// programs and file system maps to what it may load), 1 and 2 refuse them
// with EPERM. Writing 1 cannot be undone until the next boot.
const UnprivBPFSysctl = "/proc/sys/kernel/unprivileged_bpf_disabled"

// YamaPtraceScope is Yama's kernel.yama.ptrace_scope, present when the
// kernel has Yama.
const YamaPtraceScope = "/proc/sys/kernel/yama/ptrace_scope"

// ReadSysctl returns the value of the sysctl file path, trimmed.
func ReadSysctl(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SetSysctl writes v to the sysctl file path and restores the value it had
// when t ends, holding the sysctl lock (HoldSysctls) from before it reads
// the value to after it restored it. It must run as root, before any
// privilege is dropped.
func SetSysctl(t testing.TB, path, v string) {
	t.Helper()
	HoldSysctls(t)
	orig, err := ReadSysctl(path)
	require.NoError(t, err)
	if orig == v {
		return
	}
	require.NoError(t, os.WriteFile(path, []byte(v+"\n"), 0), "setting %s to %s", path, v)
	t.Cleanup(func() {
		if err := os.WriteFile(path, []byte(orig+"\n"), 0); err != nil {
			t.Errorf("restoring %s to %s: %v", path, orig, err)
		}
	})
}

// AllowUnprivilegedBPF sets kernel.unprivileged_bpf_disabled to 0 for the
// time of t, so that a task without CAP_BPF may load a Landlock program
// (version 4). It skips t when the value is 1, which only a reboot undoes.
func AllowUnprivilegedBPF(t testing.TB) {
	t.Helper()
	HoldSysctls(t)
	v, err := ReadSysctl(UnprivBPFSysctl)
	require.NoError(t, err)
	if v == "1" {
		t.Skip("kernel.unprivileged_bpf_disabled is 1, which only a reboot undoes: unprivileged loads cannot be tested in this boot")
	}
	SetSysctl(t, UnprivBPFSysctl, "0")
}

// DisableYamaPtrace sets Yama's ptrace_scope to 0 for the time of t, if the
// kernel has Yama, so that only the rule under test can refuse a ptrace.
func DisableYamaPtrace(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(YamaPtraceScope); os.IsNotExist(err) {
		return
	}
	SetSysctl(t, YamaPtraceScope, "0")
}

// DisableUnprivilegedBPF sets kernel.unprivileged_bpf_disabled to 2 for the
// time of t (Debian's default: bpf(2) refuses program loads and map
// creations to callers without CAP_BPF, EPERM, and root may set 0 again).
// It skips t when the value is 1, which cannot be changed to 2 either.
func DisableUnprivilegedBPF(t testing.TB) {
	t.Helper()
	HoldSysctls(t)
	v, err := ReadSysctl(UnprivBPFSysctl)
	require.NoError(t, err)
	if v == "1" {
		t.Skip("kernel.unprivileged_bpf_disabled is 1, which only a reboot undoes: the value 2 cannot be tested in this boot (TestUnprivBPFDisabledOne tests 1)")
	}
	SetSysctl(t, UnprivBPFSysctl, "2")
}
