package landlockbpf

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProgLoadAttrLayout: ProgLoadAttr has the offsets of union bpf_attr's
// BPF_PROG_LOAD member, counted by hand from include/uapi/linux/bpf.h of
// 6.12: prog_type 0, insn_cnt 4, insns (__aligned_u64) 8, license 16,
// log_level 24, log_size 28, log_buf 32, kern_version 40, prog_flags 44,
// prog_name[16] 48, prog_ifindex 64, expected_attach_type 68; 72 up to
// there.
func TestProgLoadAttrLayout(t *testing.T) {
	var a ProgLoadAttr
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"prog_type", unsafe.Offsetof(a.ProgType), 0},
		{"insn_cnt", unsafe.Offsetof(a.InsnCnt), 4},
		{"insns", unsafe.Offsetof(a.Insns), 8},
		{"license", unsafe.Offsetof(a.License), 16},
		{"log_level", unsafe.Offsetof(a.LogLevel), 24},
		{"log_size", unsafe.Offsetof(a.LogSize), 28},
		{"log_buf", unsafe.Offsetof(a.LogBuf), 32},
		{"kern_version", unsafe.Offsetof(a.KernVersion), 40},
		{"prog_flags", unsafe.Offsetof(a.ProgFlags), 44},
		{"prog_name", unsafe.Offsetof(a.ProgName), 48},
		{"prog_ifindex", unsafe.Offsetof(a.ProgIfindex), 64},
		{"expected_attach_type", unsafe.Offsetof(a.ExpectedAttachType), 68},
		{"sizeof", unsafe.Sizeof(a), 72},
	} {
		assert.Equal(t, f.want, f.got, f.name)
	}
}

// TestMarshalInsnsResolvesReferences: the raw loader resolves jumps and
// bpf-to-bpf calls to symbols, and leaves its argument as it was.
func TestMarshalInsnsResolvesReferences(t *testing.T) {
	insns := asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.Call.Label("sub"),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return().WithSymbol("out"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("sub"),
		asm.Return(),
	}
	before := insns[2].Offset
	code, err := marshalInsns(insns)
	require.NoError(t, err)
	require.Len(t, code, len(insns)*asm.InstructionSize)
	ins := func(i int) []byte { return code[i*asm.InstructionSize : (i+1)*asm.InstructionSize] }
	// The call (insn 1): BPF_JMP|BPF_CALL, src_reg BPF_PSEUDO_CALL (1),
	// imm = 5 - (1 + 1) = 3.
	assert.Equal(t, byte(0x85), ins(1)[0], "call opcode")
	assert.Equal(t, byte(0x10), ins(1)[1], "call: src_reg 1 (BPF_PSEUDO_CALL)")
	assert.Equal(t, int32(3), int32(binary.NativeEndian.Uint32(ins(1)[4:])), "call imm")
	// The jump (insn 2) to insn 4: off = 4 - (2 + 1) = 1.
	assert.Equal(t, int16(1), int16(binary.NativeEndian.Uint16(ins(2)[2:])), "jump offset")
	assert.Equal(t, before, insns[2].Offset, "the caller's instructions are unchanged")
}
