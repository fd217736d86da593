// Package bpftype checks, in the guest, the eBPF side of Landlock eBPF
// rules (../shared/spec/landlock-bpf-abi.md, "UAPI (version 1)"): which
// programs of type BPF_PROG_TYPE_LANDLOCK the verifier accepts and which
// it rejects, with which errno, with the JIT on and off, and the debug
// flag.
//
// Every test skips on the host and on kernels without the program type
// (probed by loading one), so they run from the series' first patch on;
// but TestDebugFlagWithoutTheOption, which is for a kernel built without
// CONFIG_SECURITY_LANDLOCK_BPF, runs only there. No test appends a rule:
// loading a program changes nothing.
package bpftype

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// skipUnlessSupported skips t unless the kernel has the Landlock
// program type.
func skipUnlessSupported(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessProgType(); why != "" {
		t.Skip(why)
	}
}

// load loads insns as a Landlock program with the given expected attach
// type and flags. Unlike landlockbpf.LoadWith it keeps the verifier log,
// which cilium/ebpf fetches on failure: the error says why the verifier
// refused the program.
func load(insns asm.Instructions, attach, flags uint32) (*ebpf.Program, error) {
	return ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "landlock_rule",
		Type:         ebpf.ProgramType(landlockbpf.ProgTypeLandlock),
		AttachType:   ebpf.AttachType(attach),
		Flags:        flags,
		Instructions: insns,
		License:      "GPL",
	}, ebpf.ProgramOptions{})
}

// jitSysctl switches the BPF JIT compiler (net.core.bpf_jit_enable).
const jitSysctl = "/proc/sys/net/core/bpf_jit_enable"

func readJIT(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(jitSysctl)
	require.NoError(t, err, "reading the BPF JIT state")
	return strings.TrimSpace(string(b))
}

// setJIT sets net.core.bpf_jit_enable to v, and restores its value when t
// ends. It skips t when the kernel refuses v (a kernel built with
// CONFIG_BPF_JIT_ALWAYS_ON refuses 0).
func setJIT(t *testing.T, v string) {
	t.Helper()
	orig := readJIT(t)
	t.Cleanup(func() {
		if err := os.WriteFile(jitSysctl, []byte(orig+"\n"), 0); err != nil {
			t.Errorf("restoring net.core.bpf_jit_enable to %s: %v", orig, err)
		}
	})
	err := os.WriteFile(jitSysctl, []byte(v+"\n"), 0)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("the kernel refuses net.core.bpf_jit_enable=%s (JIT always on?): %v", v, err)
	}
	require.NoError(t, err, "setting net.core.bpf_jit_enable to %s", v)
	require.Equal(t, v, readJIT(t), "net.core.bpf_jit_enable did not take")
}

// checkJIT checks that prog was JIT-compiled, or not, as jited says.
func checkJIT(t *testing.T, prog *ebpf.Program, jited bool) {
	t.Helper()
	info, err := prog.Info()
	require.NoError(t, err, "BPF_OBJ_GET_INFO_BY_FD")
	require.Equal(t, ebpf.ProgramType(landlockbpf.ProgTypeLandlock), info.Type, "program type in the program's info")
	size, err := info.JitedSize()
	if jited {
		require.NoError(t, err, "JIT on but the program was not JIT-compiled")
		require.NotZero(t, size)
	} else {
		require.ErrorIs(t, err, ebpf.ErrNotSupported, "JIT off but the program was JIT-compiled (%d bytes)", size)
	}
}
