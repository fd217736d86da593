package bpftype

// Version 4: the verifier in its unprivileged mode. A task without CAP_BPF
// may load Landlock programs (kernel.unprivileged_bpf_disabled = 0), and
// bpf_check() then sets allow_ptr_leaks, allow_uninit_stack, bypass_spec_v1
// and v4 and bpf_capable from its capabilities (kernel/bpf/verifier.c,
// bpf_check): all false. Each program here is loaded as root, which
// bpf(2) lets have what the unprivileged mode forbids, and as nobody with
// no_new_privs, with the errno and verifier message the 6.12 sources give
// (/work/dev/rs: kernel/bpf/syscall.c and verifier.c with the series):
//
//   - a pointer stored into a map value: check_mem_access(), "R%d leaks
//     addr into map", EACCES (allow_ptr_leaks);
//   - a map value pointer compared with a non-zero constant:
//     check_cond_jmp_op(), "R%d pointer comparison prohibited", EACCES;
//   - a read of stack never written: check_stack_read_fixed_off(),
//     "invalid read from stack R10 off=-8 size=8", EACCES
//     (allow_uninit_stack);
//   - a back-edge (a bounded loop): check_cfg()'s push_insn(),
//     "back-edge from insn", EINVAL (bpf_capable);
//   - a bpf-to-bpf call, and a kfunc call: add_subprog_and_kfunc(),
//     "loading/calling other bpf or kernel functions are allowed for
//     CAP_BPF and CAP_SYS_ADMIN", EPERM (bpf_capable; for a kfunc, before
//     the series' own refusal, which root gets: EACCES);
//   - more than BPF_MAXINSNS (4096) instructions: bpf_prog_load(), E2BIG,
//     before the verifier (root's limit is BPF_COMPLEXITY_LIMIT_INSNS).
//
// Then the version 1 table (verifierCases) as nobody: the unprivileged
// mode changes none of its answers. With the JIT on and off. The loads go
// through landlockbpf.ProgLoad, bpf(2) itself: cilium/ebpf turns the EPERM
// of a refused bpf-to-bpf call into ErrNotSupported (its feature probe
// cannot load one either).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// unprivCase is a program, what loading it gives root (nil: it loads) and
// an unprivileged task, and what the verifier log of the unprivileged
// refusal says ("" when the refusal comes before the verifier).
type unprivCase struct {
	name   string
	insns  asm.Instructions
	root   error
	unpriv error
	log    string
}

// lookupValue looks key 0 up in the array map mapFD (R0: its value, or
// NULL: then it jumps to "out"), with the context saved in R6 and a stack
// pointer (fp-16) in R7, both callee-saved.
func lookupValue(mapFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Reg(asm.R7, asm.RFP),
		asm.Add.Imm(asm.R7, -16),
		storeImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
	}
}

// outRet0 is the end of the lookupValue programs: "out", return 0.
var outRet0 = asm.Instructions{asm.Mov.Imm(asm.R0, 0).WithSymbol("out"), asm.Return()}

// movs returns n instructions: n-1 times r0 = 0, then exit.
func movs(n int) asm.Instructions {
	insns := make(asm.Instructions, 0, n)
	for range n - 1 {
		insns = append(insns, asm.Mov.Imm(asm.R0, 0))
	}
	return append(insns, asm.Return())
}

// unprivModeCases are the programs the unprivileged mode refuses (and the
// two at the instruction limit), for the array map mapFD (8-byte values).
func unprivModeCases(mapFD int) []unprivCase {
	const (
		kfuncMsg = "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN"
	)
	cases := []unprivCase{
		{"store_ctx_pointer_in_map_value", prog(lookupValue(mapFD),
			asm.Instructions{asm.StoreMem(asm.R0, 0, asm.R6, asm.DWord)}, outRet0),
			nil, unix.EACCES, "R6 leaks addr into map"},
		{"store_stack_pointer_in_map_value", prog(lookupValue(mapFD),
			asm.Instructions{asm.StoreMem(asm.R0, 0, asm.R7, asm.DWord)}, outRet0),
			nil, unix.EACCES, "R7 leaks addr into map"},
		{"store_map_value_pointer_in_map_value", prog(lookupValue(mapFD),
			asm.Instructions{asm.StoreMem(asm.R0, 0, asm.R0, asm.DWord)}, outRet0),
			nil, unix.EACCES, "R0 leaks addr into map"},
		{"compare_map_value_pointer_with_5", prog(lookupValue(mapFD),
			asm.Instructions{asm.JGT.Imm(asm.R0, 5, "out"), asm.Mov.Imm(asm.R1, 1)}, outRet0),
			nil, unix.EACCES, "R0 pointer comparison prohibited"},
		{"read_uninitialized_stack", asm.Instructions{
			asm.LoadMem(asm.R2, asm.RFP, -8, asm.DWord),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}, nil, unix.EACCES, "invalid read from stack"},
		{"bounded_loop", asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Mov.Imm(asm.R1, 0),
			asm.Add.Imm(asm.R1, 1).WithSymbol("loop"),
			asm.JLT.Imm(asm.R1, 4, "loop"),
			asm.Return(),
		}, nil, unix.EINVAL, "back-edge from insn 3 to 2"},
		{"bpf_to_bpf_call", asm.Instructions{
			asm.Call.Label("sub"),
			asm.Return(),
			asm.Mov.Imm(asm.R0, 0).WithSymbol("sub"),
			asm.Return(),
		}, nil, unix.EPERM, kfuncMsg},
		{"4096_instructions", movs(4096), nil, nil, ""},
		{"4097_instructions", movs(4097), nil, unix.E2BIG, ""},
	}
	// The kfunc calls of TestKfuncCallsRejected: root gets the series'
	// EACCES, an unprivileged task the core's EPERM first.
	for _, k := range kfuncCases {
		cases = append(cases, unprivCase{"kfunc_" + k.name, k.insns, unix.EACCES, unix.EPERM, kfuncMsg})
	}
	return cases
}

// checkLoad loads insns (BPF_LANDLOCK_FS unless attach says otherwise,
// with flags) and checks the result against want (nil: it loads, JIT-
// compiled as jited says); for a refusal with msg set, it loads again with
// the verifier log and looks for msg in it.
func checkLoad(t *testing.T, who string, insns asm.Instructions, attach, flags uint32, want error, msg string, jited bool) {
	t.Helper()
	fd, err := landlockbpf.ProgLoad(insns, attach, flags)
	if want == nil {
		if assert.NoError(t, err, "the program must load %s (%d instructions)", who, len(insns)) {
			landlockbpf.RequireJITedFD(t, fd, jited)
			unix.Close(fd)
		}
		return
	}
	if err == nil {
		unix.Close(fd)
	}
	if !assert.ErrorIs(t, err, want, "loading %s (%d instructions):\n%s", who, len(insns), shortInsns(insns)) || msg == "" {
		return
	}
	fd, log, err := landlockbpf.ProgLoadWithLog(insns, attach, flags)
	if err == nil {
		unix.Close(fd)
	}
	assert.ErrorIs(t, err, want, "loading %s again with the verifier log", who)
	assert.Contains(t, log, msg, "the verifier log of the refusal %s", who)
}

// shortInsns prints insns, or their number when there are many.
func shortInsns(insns asm.Instructions) string {
	if len(insns) > 32 {
		return fmt.Sprintf("(%d instructions)", len(insns))
	}
	return strings.TrimSpace(fmt.Sprint(insns))
}

// TestVerifierUnprivileged: the unprivileged mode's refusals (unprivModeCases)
// as root and as nobody with no_new_privs, then the version 1 table
// (verifierCases) as nobody, with the JIT on and off. Skips below ABI
// version 4.
func TestVerifierUnprivileged(t *testing.T) {
	skipUnlessSupported(t)
	landlockbpf.SkipUnlessUnprivileged(t)
	abi, err := landlockbpf.KernelABIVersion()
	require.NoError(t, err)
	landlockbpf.AllowUnprivilegedBPF(t)
	for _, jit := range landlockbpf.JITModes {
		t.Run(jit.Name, func(t *testing.T) {
			// As root, before the child starts; the child finds the
			// value set and changes nothing.
			landlockbpf.SetJIT(t, jit.Value)
			t.Run("root", func(t *testing.T) {
				m := newArrayMap(t)
				for _, c := range unprivModeCases(m.FD()) {
					t.Run(c.name, func(t *testing.T) {
						checkLoad(t, "as root", c.insns, landlockbpf.AttachLandlockFS, 0, c.root, "", jit.JITed)
					})
				}
			})
			t.Run("unprivileged", func(t *testing.T) {
				landlockbpf.RunUnprivileged(t, func(t *testing.T) {
					m := newArrayMap(t) // created after the drop
					for _, c := range unprivModeCases(m.FD()) {
						t.Run(c.name, func(t *testing.T) {
							checkLoad(t, "as nobody", c.insns, landlockbpf.AttachLandlockFS, 0, c.unpriv, c.log, jit.JITed)
						})
					}
					t.Run("version_1_table", func(t *testing.T) {
						for _, c := range verifierCases(m, abi) {
							t.Run(c.name, func(t *testing.T) {
								checkLoad(t, "as nobody", c.insns, c.attach, c.flags, c.want, "", jit.JITed)
							})
						}
					})
				})
			})
		})
	}
}

// TestUnprivModeCasesEncode checks, on the host too, that every program of
// unprivModeCases encodes (its jumps and calls resolve), that the limit
// cases have 4096 and 4097 instructions, and that the loop's jump goes
// back from instruction 3 to 2, as the expected verifier message says.
func TestUnprivModeCasesEncode(t *testing.T) {
	counts := map[string]int{}
	for _, c := range unprivModeCases(3) {
		var buf bytes.Buffer
		insns := append(asm.Instructions(nil), c.insns...)
		require.NoError(t, insns.Marshal(&buf, binary.LittleEndian), c.name)
		counts[c.name] = buf.Len() / asm.InstructionSize
		if c.name == "bounded_loop" {
			b := buf.Bytes()[3*asm.InstructionSize:]
			assert.Equal(t, int16(-2), int16(binary.LittleEndian.Uint16(b[2:])), "the loop's jump offset: from 3 back to 2")
		}
	}
	assert.Equal(t, 4096, counts["4096_instructions"])
	assert.Equal(t, 4097, counts["4097_instructions"])
}
