package bpffuzz

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// eBPF opcode parts (include/uapi/linux/bpf_common.h, bpf.h).
const (
	clsLD    = 0x00
	clsLDX   = 0x01
	clsST    = 0x02
	clsSTX   = 0x03
	clsALU   = 0x04
	clsJMP   = 0x05
	clsJMP32 = 0x06
	clsALU64 = 0x07

	szW  = 0x00
	szH  = 0x08
	szB  = 0x10
	szDW = 0x18

	modeIMM    = 0x00
	modeABS    = 0x20
	modeIND    = 0x40
	modeMEM    = 0x60
	modeMEMSX  = 0x80
	modeATOMIC = 0xc0

	srcK = 0x00
	srcX = 0x08

	opAdd  = 0x00
	opAnd  = 0x50
	opMov  = 0xb0
	opJEq  = 0x10
	opJNe  = 0x50
	opJSLT = 0xc0
	opCall = 0x80
	opExit = 0x90

	ldImm64 = clsLD | szDW | modeIMM
)

// ALU and JMP operations, to draw from.
var (
	aluOps = []uint8{0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0}
	jmpOps = []uint8{0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0}
	sizes  = []uint8{szW, szH, szB, szDW}
	modes  = []uint8{modeIMM, modeABS, modeIND, modeMEM, modeMEMSX, modeATOMIC}
)

// Shorthands for the seed rules.
func movImm(dst uint8, imm int32) insn { return mk(clsALU64|opMov|srcK, dst, 0, 0, imm) }
func movReg(dst, src uint8) insn       { return mk(clsALU64|opMov|srcX, dst, src, 0, 0) }
func exit() insn                       { return mk(clsJMP|opExit, 0, 0, 0, 0) }
func call(id int32) insn               { return mk(clsJMP|opCall, 0, 0, 0, id) }
func ldx(size, dst, src uint8, off int16) insn {
	return mk(clsLDX|size|modeMEM, dst, src, off, 0)
}

// ctxFields are the offsets and sizes of struct landlock_context.
var ctxFields = []struct {
	off  int16
	size uint8
}{
	{landlockbpf.CtxOffStatus, szDW},
	{landlockbpf.CtxOffArch, szW},
	{landlockbpf.CtxOffSyscallNr, szW},
	{landlockbpf.CtxOffSyscallCmd, szW},
	{landlockbpf.CtxOffEvent, szW},
	{landlockbpf.CtxOffArg1, szDW},
	{landlockbpf.CtxOffArg2, szDW},
}

// seedRule is a valid Landlock rule; allows says it returns 0 whatever the
// action, so that a child may append it and go on working; flags are the
// prog_flags it needs.
type seedRule struct {
	name   string
	insns  []insn
	allows bool
	flags  uint32
}

// seedRules returns the valid rules the mutations start from. mapFD is an
// array map (4-byte key, 8-byte value) for the lookup rule, or -1.
func seedRules(mapFD int) []seedRule {
	rules := []seedRule{
		{"allow", []insn{movImm(0, 0), exit()}, true, 0},
		{"deny", []insn{movImm(0, 1), exit()}, false, 0},
		{"deny-write", denyActions(landlockbpf.ActionWrite), false, 0},
		{"deny-exec-new-remove", denyActions(landlockbpf.ActionExec | landlockbpf.ActionNew | landlockbpf.ActionRemove), false, 0},
		{"fs-mode", []insn{call(landlockbpf.FuncGetFSMode), movImm(0, 0), exit()}, true, 0},
		{"deny-dirs", []insn{
			call(landlockbpf.FuncGetFSMode),
			mk(clsALU64|opAnd|srcK, 0, 0, 0, 0o170000),
			mk(clsJMP|opJEq|srcK, 0, 0, 2, 0o040000),
			movImm(0, 0),
			exit(),
			movImm(0, 1),
			exit(),
		}, false, 0},
		{"fs-mode-and-arg1", []insn{
			movReg(6, 1),
			call(landlockbpf.FuncGetFSMode),
			mk(clsJMP|opJSLT|srcK, 0, 0, 1, 0),
			ldx(szDW, 2, 6, landlockbpf.CtxOffArg1),
			ldx(szDW, 3, 6, landlockbpf.CtxOffArg2),
			movImm(0, 0),
			exit(),
		}, true, 0},
		{"ioctl-cmd", []insn{
			ldx(szW, 2, 1, landlockbpf.CtxOffSyscallCmd),
			movImm(0, 0),
			mk(clsJMP|opJNe|srcK, 2, 0, 1, 0x5401),
			movImm(0, 0),
			exit(),
		}, true, 0},
	}
	// The debug helpers (BPF_F_LANDLOCK_DEBUG): bpf_get_current_pid_tgid,
	// bpf_get_current_uid_gid, bpf_get_current_comm.
	rules = append(rules,
		seedRule{"debug-pid-uid", []insn{call(14), call(15), movImm(0, 0), exit()}, true, landlockbpf.ProgFlagDebug},
		seedRule{"debug-comm", []insn{
			movReg(1, 10),
			mk(clsALU64|opAdd|srcK, 1, 0, 0, -16),
			movImm(2, 16),
			call(16),
			movImm(0, 0),
			exit(),
		}, true, landlockbpf.ProgFlagDebug},
	)
	all := []insn{}
	for i, f := range ctxFields {
		rules = append(rules, seedRule{fmt.Sprintf("read-%d", f.off), []insn{ldx(f.size, 2, 1, f.off), movImm(0, 0), exit()}, true, 0})
		all = append(all, ldx(f.size, uint8(2+i%4), 1, f.off), mk(clsALU64|opAdd|srcX, 0, uint8(2+i%4), 0, 0))
	}
	rules = append(rules, seedRule{"read-all", append(append([]insn{movImm(0, 0)}, all...), movImm(0, 0), exit()), true, 0})
	if mapFD >= 0 {
		rules = append(rules, seedRule{"map-lookup", []insn{
			mk(clsST|szW|modeMEM, 10, 0, -4, 0),
			mk(ldImm64, 1, 1, 0, int32(mapFD)), // BPF_PSEUDO_MAP_FD
			mk(0, 0, 0, 0, 0),
			movReg(2, 10),
			mk(clsALU64|opAdd|srcK, 2, 0, 0, -4),
			call(1), // bpf_map_lookup_elem
			mk(clsJMP|opJEq|srcK, 0, 0, 1, 0),
			ldx(szDW, 1, 0, 0),
			movImm(0, 0),
			exit(),
		}, true, 0})
	}
	return rules
}

// denyActions is landlockbpf.DenyActions with the jump resolved.
func denyActions(mask int32) []insn {
	return []insn{
		ldx(szDW, 2, 1, landlockbpf.CtxOffArg2),
		movImm(0, 0),
		mk(clsALU64|opAnd|srcK, 2, 0, 0, mask),
		mk(clsJMP|opJEq|srcK, 2, 0, 1, 0),
		movImm(0, 1),
		exit(),
	}
}

// gen draws inputs from one seeded source.
type gen struct {
	r     *rand.Rand
	seeds []seedRule
}

// newGen returns a generator for seed.
func newGen(seed uint64, seeds []seedRule) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seeds: seeds}
}

// chance is true with probability p.
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

// pick returns a random element of s.
func pick[T any](g *gen, s []T) T { return s[g.r.IntN(len(s))] }

// reg draws a register, mostly a valid one (0..10).
func (g *gen) reg() uint8 {
	if g.chance(0.9) {
		return uint8(g.r.IntN(11))
	}
	return uint8(g.r.IntN(16))
}

// off draws an offset: small, within the context, or anything.
func (g *gen) off() int16 {
	switch g.r.IntN(5) {
	case 0, 1:
		return int16(g.r.IntN(17) - 8)
	case 2:
		return int16(g.r.IntN(49))
	case 3:
		return int16(-g.r.IntN(513))
	default:
		return int16(g.r.Uint32())
	}
}

// imm draws an immediate: small, special, a helper id, or anything.
func (g *gen) imm() int32 {
	switch g.r.IntN(5) {
	case 0, 1:
		return int32(g.r.IntN(33) - 16)
	case 2:
		return pick(g, []int32{0, 1, -1, -1 << 31, 1<<31 - 1, 0o170000, 0o040000, 64, 32, 16, 8, landlockbpf.FuncGetFSMode})
	case 3:
		return int32(g.r.IntN(230))
	default:
		return int32(g.r.Uint32())
	}
}

// randomInsn draws one instruction (two for a 64-bit immediate load).
func (g *gen) randomInsn() []insn {
	var code uint8
	if g.chance(0.25) {
		code = uint8(g.r.IntN(256))
	} else {
		switch cls := uint8(g.r.IntN(8)); cls {
		case clsALU, clsALU64:
			code = cls | pick(g, aluOps) | pick(g, []uint8{srcK, srcX})
		case clsJMP, clsJMP32:
			code = cls | pick(g, jmpOps) | pick(g, []uint8{srcK, srcX})
		case clsLD:
			if g.chance(0.7) {
				code = ldImm64
			} else {
				code = cls | pick(g, sizes) | pick(g, modes)
			}
		default: // LDX, ST, STX
			code = cls | pick(g, sizes)
			if g.chance(0.8) {
				code |= modeMEM
			} else {
				code |= pick(g, modes)
			}
		}
	}
	i := mk(code, g.reg(), g.reg(), g.off(), g.imm())
	if code&0x07 == clsJMP && code&0xf0 == opCall {
		// Mostly helper calls (src 0), sometimes pseudo calls and kfuncs.
		src := pick(g, []uint8{0, 0, 0, 0, 1, 2})
		i.Regs = i.dst() | src<<4
		if src == 0 && g.chance(0.7) {
			i.Imm = int32(g.r.IntN(230))
		}
	}
	if code != ldImm64 {
		return []insn{i}
	}
	// BPF_PSEUDO_* kinds 0..6, and a second half that is mostly zero.
	i.Regs = i.dst() | uint8(g.r.IntN(7))<<4
	second := mk(0, 0, 0, 0, 0)
	if g.chance(0.3) {
		second = mk(uint8(g.r.IntN(256)), g.reg(), g.reg(), g.off(), g.imm())
	}
	return []insn{i, second}
}

// randomProgram draws 1..64 instructions.
func (g *gen) randomProgram() []insn {
	n := 1 + g.r.IntN(64)
	p := make([]insn, 0, n+1)
	if g.chance(0.3) {
		p = append(p, movImm(0, int32(g.r.IntN(3))))
	}
	for len(p) < n {
		p = append(p, g.randomInsn()...)
	}
	p = p[:min(len(p), 64)]
	if g.chance(0.6) {
		p[len(p)-1] = exit()
	}
	return p
}

// mutate returns a copy of p changed one to four times.
func (g *gen) mutate(p []insn) []insn {
	p = slices.Clone(p)
	for range 1 + g.r.IntN(4) {
		if len(p) == 0 {
			p = append(p, g.randomInsn()...)
		}
		k := g.r.IntN(len(p))
		switch g.r.IntN(13) {
		case 0: // flip a bit
			b := g.r.IntN(64)
			switch {
			case b < 8:
				p[k].Code ^= 1 << b
			case b < 16:
				p[k].Regs ^= 1 << (b - 8)
			case b < 32:
				p[k].Off ^= 1 << (b - 16)
			default:
				p[k].Imm ^= 1 << (b - 32)
			}
		case 1: // a new field
			switch g.r.IntN(4) {
			case 0:
				p[k].Code = uint8(g.r.IntN(256))
			case 1:
				p[k].Regs = g.reg() | g.reg()<<4
			case 2:
				p[k].Off = g.off()
			default:
				p[k].Imm = g.imm()
			}
		case 2: // context access: another offset or size
			p[k].Off += int16(g.r.IntN(17) - 8)
			if g.chance(0.5) {
				p[k].Code = p[k].Code&^0x18 | pick(g, sizes)
			}
		case 3: // a read of the context turned into a write
			if p[k].Code&0x07 == clsLDX {
				if g.chance(0.5) {
					p[k] = mk(clsSTX|p[k].Code&0x18|modeMEM, 1, p[k].dst(), p[k].Off, 0)
				} else {
					p[k] = mk(clsST|p[k].Code&0x18|modeMEM, 1, 0, p[k].Off, g.imm())
				}
			} else {
				p[k] = mk(clsSTX|pick(g, sizes)|pick(g, []uint8{modeMEM, modeATOMIC}), 1, g.reg(), g.off(), pick(g, []int32{0, 1, 0x40, 0xe1, 0xf1}))
			}
		case 4: // another helper
			p[k] = call(pick(g, []int32{
				1, 2, 3, 5, 6, 7, 8, 12, 14, 15, 16, 25, 35, 113, 114,
				landlockbpf.FuncGetFSMode, landlockbpf.FuncGetFSMode + 1, int32(g.r.IntN(230)),
			}))
		case 5: // another jump offset
			p[k].Off = int16(g.r.IntN(2*len(p)+1) - len(p))
		case 6: // insert
			p = slices.Insert(p, k, g.randomInsn()...)
		case 7: // delete
			p = slices.Delete(p, k, k+1)
		case 8: // duplicate
			p = slices.Insert(p, k, p[k])
		case 9: // swap
			j := g.r.IntN(len(p))
			p[k], p[j] = p[j], p[k]
		case 10: // no exit at the end, or a return value that denies
			if g.chance(0.5) {
				p = p[:len(p)-1]
			} else {
				p = slices.Insert(p, len(p)-1, movImm(0, g.imm()))
			}
		case 11: // another register
			p[k].Regs = g.reg() | p[k].src()<<4
			if g.chance(0.5) {
				p[k].Regs = p[k].dst() | g.reg()<<4
			}
		default: // a use of r1 (the context) through another register
			p = slices.Insert(p, 0, movReg(uint8(6+g.r.IntN(4)), 1), mk(clsALU64|opAdd|srcK, 1, 0, 0, int32(g.r.IntN(48))))
		}
	}
	if len(p) == 0 {
		p = []insn{exit()}
	}
	return p[:min(len(p), 64)]
}

// progFlags draws prog_flags: mostly none, or known flags, or anything.
func (g *gen) progFlags() uint32 {
	switch g.r.IntN(10) {
	case 0, 1, 2, 3, 4, 5:
		return 0
	case 6, 7:
		// BPF_F_STRICT_ALIGNMENT .. BPF_F_TEST_REG_INVARIANTS,
		// BPF_F_LANDLOCK_DEBUG, BPF_F_TOKEN_FD.
		return pick(g, []uint32{1, 2, 4, 8, 16, 32, 64, 128, landlockbpf.ProgFlagDebug, 1 << 16, 1 | 4 | 8})
	case 8:
		return 1 << g.r.IntN(32)
	default:
		return g.r.Uint32()
	}
}

// attach draws expected_attach_type: mostly BPF_LANDLOCK_FS.
func (g *gen) attach() uint32 {
	switch g.r.IntN(20) {
	case 0, 1, 2:
		return uint32(g.r.IntN(65))
	case 3:
		return g.r.Uint32()
	case 4:
		return landlockbpf.AttachLandlockFS + 1 + uint32(g.r.IntN(3))
	default:
		return landlockbpf.AttachLandlockFS
	}
}

// input draws a whole BPF_PROG_LOAD call.
func (g *gen) input() *loadInput {
	in := &loadInput{Attach: g.attach(), ProgFlags: g.progFlags()}
	switch r := g.r.IntN(10); {
	case r < 4:
		in.Insns, in.Origin = g.randomProgram(), "random"
	case r < 9:
		s := pick(g, g.seeds)
		in.Insns, in.Origin = g.mutate(s.insns), "mutant:"+s.name
		if s.flags != 0 && g.chance(0.8) {
			in.ProgFlags = s.flags
		}
	default:
		s := pick(g, g.seeds)
		in.Insns, in.Origin = slices.Clone(s.insns), "seed:"+s.name
		if s.flags != 0 && g.chance(0.8) {
			in.ProgFlags = s.flags
		}
	}
	switch r := g.r.IntN(100); {
	case r < 2:
		in.NullIns = true
	case r < 3:
		in.ZeroCnt = true
	}
	switch r := g.r.IntN(20); {
	case r < 16:
		in.License = []byte("GPL\x00")
	case r == 16:
		in.License = []byte("MIT\x00")
	case r == 17:
		in.License = []byte("Dual BSD/GPL\x00")
	case r == 18:
		b := make([]byte, g.r.IntN(200)+1)
		for i := range len(b) - 1 {
			b[i] = byte(1 + g.r.IntN(255))
		}
		in.License = b
	default:
		in.License = nil
	}
	if g.chance(0.25) {
		in.LogLevel = pick(g, []uint32{0, 1, 2, 3, 4, 5, 7, 8, 9, 16, g.r.Uint32()})
		switch g.r.IntN(4) {
		case 0:
			in.LogSizeNull = pick(g, []uint32{0, 1, 4096, g.r.Uint32()})
		case 1:
			in.LogBuf = make([]byte, 1+g.r.IntN(127))
		default:
			in.LogBuf = make([]byte, 128+g.r.IntN(4096))
		}
	}
	if g.chance(0.1) {
		in.KernVersion = g.r.Uint32()
	}
	switch r := g.r.IntN(20); {
	case r == 0:
		for i := range in.ProgName {
			in.ProgName[i] = byte(g.r.IntN(256))
		}
	case r == 1:
	default:
		copy(in.ProgName[:], "fuzz")
	}
	if g.chance(0.03) {
		in.Ifindex = pick(g, []uint32{1, 2, g.r.Uint32()})
	}
	return in
}
