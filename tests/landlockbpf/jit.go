package landlockbpf

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// JITSysctl switches the BPF JIT compiler (net.core.bpf_jit_enable); the
// kernel reads it when it loads a program.
const JITSysctl = "/proc/sys/net/core/bpf_jit_enable"

// JITModes are the two ways a rule runs: JIT-compiled or interpreted, with
// the value of JITSysctl that chooses each.
var JITModes = []struct {
	Name, Value string
	JITed       bool
}{
	{"jit_on", "1", true},
	{"jit_off", "0", false},
}

func readJIT(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(JITSysctl)
	require.NoError(t, err, "reading the BPF JIT state")
	return strings.TrimSpace(string(b))
}

// SetJIT sets net.core.bpf_jit_enable to v, and restores its value when t
// ends. It skips t when the kernel refuses v (a kernel built with
// CONFIG_BPF_JIT_ALWAYS_ON refuses 0).
func SetJIT(t *testing.T, v string) {
	t.Helper()
	orig := readJIT(t)
	t.Cleanup(func() {
		if err := os.WriteFile(JITSysctl, []byte(orig+"\n"), 0); err != nil {
			t.Errorf("restoring net.core.bpf_jit_enable to %s: %v", orig, err)
		}
	})
	err := os.WriteFile(JITSysctl, []byte(v+"\n"), 0)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("the kernel refuses net.core.bpf_jit_enable=%s (JIT always on?): %v", v, err)
	}
	require.NoError(t, err, "setting net.core.bpf_jit_enable to %s", v)
	require.Equal(t, v, readJIT(t), "net.core.bpf_jit_enable did not take")
}

// RequireJITed fails t unless the Landlock program prog was JIT-compiled,
// or not, as jited says.
func RequireJITed(t *testing.T, prog *ebpf.Program, jited bool) {
	t.Helper()
	info, err := prog.Info()
	require.NoError(t, err, "BPF_OBJ_GET_INFO_BY_FD")
	require.Equal(t, ebpf.ProgramType(ProgTypeLandlock), info.Type, "program type in the program's info")
	size, err := info.JitedSize()
	if jited {
		require.NoError(t, err, "JIT on but the program was not JIT-compiled")
		require.NotZero(t, size)
	} else {
		require.ErrorIs(t, err, ebpf.ErrNotSupported, "JIT off but the program was JIT-compiled (%d bytes)", size)
	}
}
