package smoke

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The smoke tests switch the JIT without the sysctl lock of package
// landlockbpf (they import nothing of the suite) and mount securityfs on
// the shared /sys/kernel/security: they run beside no other binary.
//landlock-vmtest:alone JIT switch and securityfs mount, no sysctl lock

// jitSysctl switches the BPF JIT compiler (net.core.bpf_jit_enable).
const jitSysctl = "/proc/sys/net/core/bpf_jit_enable"

// trivialProgram is a socket filter that returns 0 (drop the packet).
func trivialProgram() *ebpf.ProgramSpec {
	return &ebpf.ProgramSpec{
		Name: "smoke_ret0",
		Type: ebpf.SocketFilter,
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
		License: "MIT",
	}
}

func readJIT(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(jitSysctl)
	require.NoError(t, err, "reading the BPF JIT state")
	return strings.TrimSpace(string(b))
}

func writeJIT(t *testing.T, v string) {
	t.Helper()
	require.NoError(t, os.WriteFile(jitSysctl, []byte(v+"\n"), 0), "setting %s to %s", jitSysctl, v)
}

func TestBPFAvailable(t *testing.T) {
	inGuest(t)
	orig := readJIT(t)
	t.Logf("net.core.bpf_jit_enable = %s", orig)
	t.Cleanup(func() {
		if err := os.WriteFile(jitSysctl, []byte(orig+"\n"), 0); err != nil {
			t.Errorf("restoring net.core.bpf_jit_enable to %s: %v", orig, err)
		}
	})

	for _, tc := range []struct {
		name, value string
		jited       bool
	}{
		{"jit_off", "0", false},
		{"jit_on", "1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeJIT(t, tc.value)
			require.Equal(t, tc.value, readJIT(t))

			prog, err := ebpf.NewProgram(trivialProgram())
			require.NoError(t, err, "loading a socket filter with net.core.bpf_jit_enable=%s", tc.value)
			defer prog.Close()

			info, err := prog.Info()
			require.NoError(t, err, "BPF_OBJ_GET_INFO_BY_FD")
			size, err := info.JitedSize()
			if tc.jited {
				require.NoError(t, err, "JIT on but the program was not JIT-compiled")
				assert.NotZero(t, size)
				t.Logf("JIT-compiled to %d bytes", size)
			} else {
				assert.True(t, errors.Is(err, ebpf.ErrNotSupported), "JIT off but the program was JIT-compiled (%d bytes, %v)", size, err)
				t.Log("not JIT-compiled: the interpreter runs it")
			}

			ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 14)})
			require.NoError(t, err, "BPF_PROG_TEST_RUN")
			assert.Zero(t, ret, "the program returns 0")
		})
	}
}
