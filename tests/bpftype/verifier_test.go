package bpftype

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// The fields of struct landlock_context, each with its offset and size.
var ctxFields = []struct {
	name string
	off  int16
	size asm.Size
}{
	{"status", landlockbpf.CtxOffStatus, asm.DWord},
	{"arch", landlockbpf.CtxOffArch, asm.Word},
	{"syscall_nr", landlockbpf.CtxOffSyscallNr, asm.Word},
	{"syscall_cmd", landlockbpf.CtxOffSyscallCmd, asm.Word},
	{"event", landlockbpf.CtxOffEvent, asm.Word},
	{"arg1", landlockbpf.CtxOffArg1, asm.DWord},
	{"arg2", landlockbpf.CtxOffArg2, asm.DWord},
}

// ret0 ends a program: return 0 (allow).
var ret0 = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}

// prog concatenates instruction sequences.
func prog(parts ...asm.Instructions) asm.Instructions {
	var out asm.Instructions
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// readCtx reads size bytes of the context at off, then returns 0.
func readCtx(off int16, size asm.Size) asm.Instructions {
	return prog(asm.Instructions{asm.LoadMem(asm.R2, asm.R1, off, size)}, ret0)
}

// storeCtx writes a register (BPF_STX) of size bytes to the context at off.
func storeCtx(off int16, size asm.Size) asm.Instructions {
	return prog(asm.Instructions{
		asm.Mov.Imm(asm.R2, 0),
		asm.StoreMem(asm.R1, off, asm.R2, size),
	}, ret0)
}

// storeImm is BPF_ST | BPF_MEM | size: *(size *)(dst + off) = value.
// asm.StoreImm refuses the 8-byte form, which the kernel has (the
// immediate, 32 bits, is sign-extended).
func storeImm(dst asm.Register, off int16, value int32, size asm.Size) asm.Instruction {
	return asm.Instruction{OpCode: asm.StoreImmOp(size), Dst: dst, Offset: off, Constant: int64(value)}
}

// storeImmCtx writes an immediate (BPF_ST) of size bytes to the context
// at off.
func storeImmCtx(off int16, size asm.Size) asm.Instructions {
	return prog(asm.Instructions{storeImm(asm.R1, off, 0, size)}, ret0)
}

// call calls fn after setup (which loads its arguments), then returns 0.
func call(fn asm.BuiltinFunc, setup ...asm.Instruction) asm.Instructions {
	return prog(setup, asm.Instructions{fn.Call()}, ret0)
}

// The helpers' argument set-ups, valid ones, so that a refusal can only
// be about the helper itself.
var (
	// commArgs: bpf_get_current_comm(fp-16, 16).
	commArgs = []asm.Instruction{
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -16),
		asm.Mov.Imm(asm.R2, 16),
	}
	// printkArgs: bpf_trace_printk("hi\n", 4), the format on the stack.
	printkArgs = []asm.Instruction{
		storeImm(asm.RFP, -8, 0x000a6968, asm.Word), // "hi\n\0", little endian
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 4),
	}
)

// mapArgs loads R1 = m, R2 = &key (0, at fp-4), R3 = &value (0, at fp-16)
// and R4 = 0 (BPF_ANY), the arguments of the map helpers.
func mapArgs(m *ebpf.Map) []asm.Instruction {
	return []asm.Instruction{
		storeImm(asm.RFP, -4, 0, asm.Word),
		storeImm(asm.RFP, -16, 0, asm.DWord),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0),
	}
}

// mapLookupRule looks key 0 up in the array map m and returns the value
// found (0 allows), or 0 when there is none.
func mapLookupRule(m *ebpf.Map) asm.Instructions {
	return prog(mapArgs(m), asm.Instructions{
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "none"),
		asm.LoadMem(asm.R0, asm.R0, 0, asm.DWord),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("none"),
		asm.Return(),
	})
}

// fsModeRule calls bpf_landlock_get_fs_mode(ctx), then reads arg2 through
// the context saved in R6, and denies writes to directories.
func fsModeRule() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.BuiltinFunc(landlockbpf.FuncGetFSMode).Call(),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.Mov.Imm(asm.R0, 0),
		asm.JSLT.Imm(asm.R7, 0, "allow"), // -ENOENT: no object
		asm.And.Imm(asm.R7, unix.S_IFMT),
		asm.JNE.Imm(asm.R7, unix.S_IFDIR, "allow"),
		asm.LoadMem(asm.R2, asm.R6, landlockbpf.CtxOffArg2, asm.DWord),
		asm.And.Imm(asm.R2, landlockbpf.ActionWrite),
		asm.JEq.Imm(asm.R2, 0, "allow"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return().WithSymbol("allow"),
	}
}

// allFieldsRule reads every field of the context, whole, and returns 0.
func allFieldsRule() asm.Instructions {
	var insns asm.Instructions
	for _, f := range ctxFields {
		insns = append(insns, asm.LoadMem(asm.R2, asm.R1, f.off, f.size))
	}
	return prog(insns, ret0)
}

// verifierCase is a program to load and what the load must give: nil
// (it loads) or the errno.
type verifierCase struct {
	name   string
	insns  asm.Instructions
	attach uint32
	flags  uint32
	want   error
}

// verifierCases is the table of the spec's "UAPI (version 1)": m is an
// array map (int key, 8-byte value, one entry); abi is the Landlock eBPF
// ABI version the kernel reports (0 when it has no seccomp entry yet),
// which decides which helper number is the first unknown one.
func verifierCases(m *ebpf.Map, abi int) []verifierCase {
	fs := uint32(landlockbpf.AttachLandlockFS)
	var cases []verifierCase
	add := func(name string, insns asm.Instructions, want error) {
		cases = append(cases, verifierCase{name: name, insns: insns, attach: fs, want: want})
	}

	// Accepted: each field read whole at its own offset.
	for _, f := range ctxFields {
		add(fmt.Sprintf("read_%s_off%d_size%d", f.name, f.off, f.size.Sizeof()), readCtx(f.off, f.size), nil)
	}
	add("read_all_fields", allFieldsRule(), nil)
	add("allow_rule", landlockbpf.Allow, nil)
	add("deny_rule", landlockbpf.Deny, nil)
	add("deny_actions_rule", landlockbpf.DenyActions(landlockbpf.ActionGet|landlockbpf.ActionWrite), nil)
	add("deny_actions_on_inode_rule", landlockbpf.DenyActionsOn(1<<40+7, landlockbpf.ActionGet), nil)
	add("helper_landlock_get_fs_mode", fsModeRule(), nil)
	add("helper_map_lookup_elem_array_map", mapLookupRule(m), nil)

	// Any write to the context: EACCES.
	for _, f := range ctxFields {
		add(fmt.Sprintf("store_reg_%s", f.name), storeCtx(f.off, f.size), unix.EACCES)
		add(fmt.Sprintf("store_imm_%s", f.name), storeImmCtx(f.off, f.size), unix.EACCES)
	}
	add("store_byte_arg2", storeCtx(landlockbpf.CtxOffArg2, asm.Byte), unix.EACCES)
	add("atomic_add_arg2", prog(asm.Instructions{
		asm.Mov.Imm(asm.R2, 1),
		asm.AddAtomic.Mem(asm.R1, asm.R2, asm.DWord, landlockbpf.CtxOffArg2),
	}, ret0), unix.EACCES)

	// Any read outside the context: EACCES.
	for _, r := range []struct {
		off  int16
		size asm.Size
	}{
		{landlockbpf.CtxSize, asm.DWord},
		{landlockbpf.CtxSize, asm.Word},
		{landlockbpf.CtxSize, asm.Byte},
		{landlockbpf.CtxSize - 4, asm.DWord}, // straddles the end
		{landlockbpf.CtxSize - 1, asm.Half},  // straddles the end
		{64, asm.DWord},
		{-8, asm.DWord},
		{-4, asm.Word},
	} {
		add(fmt.Sprintf("read_outside_off%d_size%d", r.off, r.size.Sizeof()), readCtx(r.off, r.size), unix.EACCES)
	}

	// Misaligned reads: EACCES.
	for _, r := range []struct {
		off  int16
		size asm.Size
	}{
		{4, asm.Word},   // the upper half of status
		{10, asm.Half},  // inside arch
		{13, asm.Byte},  // inside syscall_nr
		{1, asm.DWord},  // across status and arch
		{28, asm.Word},  // the upper half of arg1
		{36, asm.Word},  // the upper half of arg2
		{18, asm.Word},  // across syscall_cmd and event
		{26, asm.Half},  // inside arg1
		{33, asm.Byte},  // inside arg2
		{12, asm.DWord}, // across syscall_nr and syscall_cmd
	} {
		add(fmt.Sprintf("read_misaligned_off%d_size%d", r.off, r.size.Sizeof()), readCtx(r.off, r.size), unix.EACCES)
	}

	// Partial (or merged) reads of fields at their offset: EACCES.
	for _, r := range []struct {
		off  int16
		size asm.Size
	}{
		{landlockbpf.CtxOffStatus, asm.Word},
		{landlockbpf.CtxOffStatus, asm.Half},
		{landlockbpf.CtxOffStatus, asm.Byte},
		{landlockbpf.CtxOffArch, asm.Byte},
		{landlockbpf.CtxOffArch, asm.Half},
		{landlockbpf.CtxOffArch, asm.DWord}, // arch and syscall_nr at once
		{landlockbpf.CtxOffSyscallNr, asm.Half},
		{landlockbpf.CtxOffSyscallCmd, asm.Byte},
		{landlockbpf.CtxOffSyscallCmd, asm.DWord}, // syscall_cmd and event at once
		{landlockbpf.CtxOffEvent, asm.Half},
		{landlockbpf.CtxOffArg1, asm.Word},
		{landlockbpf.CtxOffArg1, asm.Byte},
		{landlockbpf.CtxOffArg2, asm.Word},
		{landlockbpf.CtxOffArg2, asm.Half},
	} {
		add(fmt.Sprintf("read_partial_off%d_size%d", r.off, r.size.Sizeof()), readCtx(r.off, r.size), unix.EACCES)
	}

	// Helpers other than bpf_map_lookup_elem and bpf_landlock_get_fs_mode
	// (the debug ones without BPF_F_LANDLOCK_DEBUG): refused at load.
	// The verifier refuses a helper that the program type does not offer
	// with EINVAL.
	for _, h := range []struct {
		name  string
		insns asm.Instructions
	}{
		{"bpf_ktime_get_ns", call(asm.FnKtimeGetNs)},
		{"bpf_get_prandom_u32", call(asm.FnGetPrandomU32)},
		{"bpf_get_current_pid_tgid_without_debug_flag", call(asm.FnGetCurrentPidTgid)},
		{"bpf_get_current_uid_gid_without_debug_flag", call(asm.FnGetCurrentUidGid)},
		{"bpf_get_current_comm_without_debug_flag", call(asm.FnGetCurrentComm, commArgs...)},
		{"bpf_trace_printk_without_debug_flag", call(asm.FnTracePrintk, printkArgs...)},
		{"bpf_map_update_elem", call(asm.FnMapUpdateElem, mapArgs(m)...)},
		{"bpf_map_delete_elem", call(asm.FnMapDeleteElem, mapArgs(m)[:5]...)},
	} {
		add("helper_"+h.name, h.insns, unix.EINVAL)
	}
	// The first helper number the program type does not know: 213 until
	// version 3 adds bpf_landlock_fs_beneath there, then 214. From
	// version 3, 213 is known, and a call of it without a map in R2 is
	// refused by the argument checks (ARG_CONST_MAP_PTR), with EACCES:
	// R2 never written (R2 !read_ok) or a scalar 0.
	if abi >= 3 {
		add("helper_unknown_helper_214", call(asm.BuiltinFunc(landlockbpf.FuncFSBeneath+1)), unix.EINVAL)
		add("helper_fs_beneath_r2_not_set", call(asm.BuiltinFunc(landlockbpf.FuncFSBeneath)), unix.EACCES)
		add("helper_fs_beneath_r2_scalar_0", call(asm.BuiltinFunc(landlockbpf.FuncFSBeneath),
			asm.Mov.Imm(asm.R2, 0), asm.Mov.Imm(asm.R3, 0)), unix.EACCES)
	} else {
		add("helper_unknown_helper_213", call(asm.BuiltinFunc(landlockbpf.FuncGetFSMode+1)), unix.EINVAL)
	}

	// Another expected attach type than BPF_LANDLOCK_FS: EINVAL.
	for _, a := range []uint32{0, 1, 45, landlockbpf.AttachLandlockFS - 1, landlockbpf.AttachLandlockFS + 1, 1000} {
		cases = append(cases, verifierCase{
			name: fmt.Sprintf("attach_type_%d", a), insns: landlockbpf.Allow, attach: a, want: unix.EINVAL,
		})
	}

	// Unknown program flags: EINVAL.
	for _, bit := range []uint{9, 15, 31} {
		cases = append(cases, verifierCase{
			name: fmt.Sprintf("prog_flag_1<<%d", bit), insns: landlockbpf.Allow, attach: fs, flags: 1 << bit, want: unix.EINVAL,
		})
	}
	return cases
}

// newArrayMap creates the array map the map programs use.
func newArrayMap(t *testing.T) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "landlock_test", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1,
	})
	require.NoError(t, err, "creating an array map")
	t.Cleanup(func() { m.Close() })
	return m
}

// TestVerifier loads the table of accepted and rejected programs, with the
// JIT on and off.
func TestVerifier(t *testing.T) {
	skipUnlessSupported(t)
	m := newArrayMap(t)
	abi, err := landlockbpf.KernelABIVersion()
	if err != nil {
		// A prefix of the series with the program type and without
		// the seccomp entry: no version 3 either.
		t.Logf("no Landlock eBPF ABI version (%v): the helpers are those of version 1", err)
		abi = 0
	}
	for _, jit := range landlockbpf.JITModes {
		t.Run(jit.Name, func(t *testing.T) {
			landlockbpf.SetJIT(t, jit.Value)
			for _, tc := range verifierCases(m, abi) {
				t.Run(tc.name, func(t *testing.T) {
					p, err := load(tc.insns, tc.attach, tc.flags)
					if tc.want == nil {
						require.NoError(t, err, "the program must load:\n%v", tc.insns)
						defer p.Close()
						landlockbpf.RequireJITed(t, p, jit.JITed)
						return
					}
					if p != nil {
						p.Close()
					}
					require.Error(t, err, "the program must be refused with %v:\n%v", tc.want, tc.insns)
					if assert.ErrorIs(t, err, tc.want, "errno of the refusal:\n%v", tc.insns) {
						t.Logf("refused as expected: %v", err)
					}
				})
			}
		})
	}
}
