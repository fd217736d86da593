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
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

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
