package landlockbpf

import (
	"errors"
	"fmt"
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
// CONFIG_BPF_JIT_ALWAYS_ON refuses 0). It holds the sysctl lock
// (HoldSysctls) for the time of t. When the value already is v it
// neither writes nor restores anything: so a privdrop child, which runs
// the code before privdrop.Run again after its parent set the value, has
// no cleanup that would have to write the sysctl with its privileges
// dropped.
func SetJIT(t *testing.T, v string) {
	t.Helper()
	HoldSysctls(t)
	orig := readJIT(t)
	if orig == v {
		return
	}
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
// or not, as jited says. It reads the program's /proc/self/fdinfo entry
// (prog_type, prog_jited), which bpf_prog_show_fdinfo fills for any
// caller: BPF_OBJ_GET_INFO_BY_FD gives a caller without CAP_BPF a
// jited_prog_len of 0 whether the program was compiled or not, so the
// program's info cannot tell an unprivileged test (version 4).
func RequireJITed(t *testing.T, prog *ebpf.Program, jited bool) {
	t.Helper()
	RequireJITedFD(t, prog.FD(), jited)
}

// RequireJITedFD is RequireJITed for the program whose fd is fd.
func RequireJITedFD(t *testing.T, fd int, jited bool) {
	t.Helper()
	info, err := progFDInfo(fd)
	require.NoError(t, err, "the program's fdinfo")
	require.Equal(t, fmt.Sprint(ProgTypeLandlock), info["prog_type"], "program type in the program's fdinfo")
	want := "0"
	if jited {
		want = "1"
	}
	require.Equal(t, want, info["prog_jited"], "prog_jited in the program's fdinfo (JIT on: %v)", jited)
}

// progFDInfo reads the fields of /proc/self/fdinfo/fd.
func progFDInfo(fd int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields, nil
}
