package bpftype

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// kfuncRefusal is what the verifier logs when it refuses a Landlock program
// that calls a kernel function.
const kfuncRefusal = "Landlock programs may not call kernel functions"

// kfuncCall is BPF_JMP | BPF_CALL with src_reg BPF_PSEUDO_KFUNC_CALL: a call
// of the kernel function whose BTF id is btfID, in the BTF object that off
// picks from the program's fd_array (0: vmlinux). cilium/ebpf passes such an
// instruction through as it is when it carries no kfunc metadata.
func kfuncCall(btfID int32, off int16) asm.Instruction {
	return asm.Instruction{
		OpCode:   asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call),
		Src:      asm.PseudoKfuncCall,
		Offset:   off,
		Constant: int64(btfID),
	}
}

// kfuncCases are Landlock programs that call a kernel function. The spec
// allows no kfunc at all, so the verifier refuses each one before it looks
// the function up (no BTF is needed for that) and before it prunes dead
// code.
var kfuncCases = []struct {
	name  string
	insns asm.Instructions
}{
	// The one of the brief: any BTF id, vmlinux.
	{"btf_id_1", prog(asm.Instructions{kfuncCall(1, 0)}, ret0)},
	// Id 0 with off 0 is the call that 6.12's add_kfunc_call leaves to
	// dead code elimination instead of refusing it.
	{"btf_id_0", prog(asm.Instructions{kfuncCall(0, 0)}, ret0)},
	// A kernel function of a module's BTF (fd_array index 1).
	{"module_btf_off_1", prog(asm.Instructions{kfuncCall(1, 1)}, ret0)},
	// A call on a branch that is never taken (the verifier would prune
	// it) still makes it a program that calls a kernel function.
	{"dead_branch", asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.JEq.Imm(asm.R0, 0, "out"),
		kfuncCall(1, 0),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}},
}

// TestKfuncCallsRejected: the verifier refuses every Landlock program that
// calls a kernel function (kfunc), with EACCES and kfuncRefusal in its log,
// with the JIT on and off.
func TestKfuncCallsRejected(t *testing.T) {
	// On any host: the instruction is what the kernel calls a kfunc call,
	// opcode 0x85 (BPF_JMP | BPF_CALL), src_reg 2, dst_reg 0, off 0, imm 1.
	var buf bytes.Buffer
	_, err := kfuncCall(1, 0).Marshal(&buf, binary.LittleEndian)
	require.NoError(t, err, "encoding the kfunc call")
	require.Equal(t, []byte{0x85, 0x20, 0, 0, 1, 0, 0, 0}, buf.Bytes(), "encoding of the kfunc call")

	skipUnlessSupported(t)
	for _, jit := range landlockbpf.JITModes {
		t.Run(jit.Name, func(t *testing.T) {
			landlockbpf.SetJIT(t, jit.Value)
			for _, tc := range kfuncCases {
				t.Run(tc.name, func(t *testing.T) {
					// load keeps the verifier log of a refused program.
					p, err := load(tc.insns, landlockbpf.AttachLandlockFS, 0)
					if err == nil {
						p.Close()
						t.Fatalf("a Landlock program calling a kernel function loaded:\n%v", tc.insns)
					}
					assert.ErrorIs(t, err, unix.EACCES, "errno of the refusal:\n%v", tc.insns)
					var ve *ebpf.VerifierError
					if !errors.As(err, &ve) {
						t.Fatalf("the refusal carries no verifier log (%T): %v", err, err)
					}
					log := strings.Join(ve.Log, "\n")
					assert.Contains(t, log, kfuncRefusal, "the verifier log says why:\n%s", log)
				})
			}
		})
	}
}
