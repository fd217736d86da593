package bpfsandbox

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
)

// The kernel's answers a run of the rule can get.
const (
	enoent = -2 // -ENOENT
)

// world is the context and what the helpers answer in one run of the
// rule.
type world struct {
	arch    uint32 // the context's arch
	nr      uint32 // the context's syscall_nr
	actions uint64
	mode    int64         // bpf_landlock_get_fs_mode
	beneath map[int]int64 // map fd -> bpf_landlock_fs_beneath
	calls   map[int32]int // helper -> how many calls
	asked   map[int]bool  // maps fs_beneath was asked about
}

// reg is a register of the interpreter: a scalar, the context or a map.
type reg struct {
	kind string // "", "ctx", "map"
	val  int64
}

// run interprets the marshalled program prog (the subset of eBPF Rule
// emits) in w and returns R0. It checks what the verifier would: R1 is
// the context at every call, R2 a map pointer and R3 0 for fs_beneath,
// no read of an unset register, no write to R10.
func run(t *testing.T, prog []byte, w *world) int64 {
	t.Helper()
	require.Zero(t, len(prog)%8)
	n := len(prog) / 8
	var r [11]reg
	set := [11]bool{1: true, 10: true}
	r[1] = reg{kind: "ctx"}
	get := func(pc int, i uint8) reg {
		require.True(t, set[i], "insn %d reads R%d before it is set", pc, i)
		return r[i]
	}
	for pc, steps := 0, 0; ; steps++ {
		require.Less(t, steps, 1000, "the program runs away")
		require.Less(t, pc, n, "the program runs off its end")
		ins := prog[pc*8 : pc*8+8]
		op, dst, src := ins[0], ins[1]&0xf, ins[1]>>4
		off := int16(binary.LittleEndian.Uint16(ins[2:]))
		imm := int64(int32(binary.LittleEndian.Uint32(ins[4:])))
		require.NotEqual(t, uint8(10), dst, "insn %d writes R10", pc)
		next := pc + 1
		switch op {
		case 0xb7: // mov64 imm
			r[dst], set[dst] = reg{val: imm}, true
		case 0xbf: // mov64 reg
			r[dst], set[dst] = get(pc, src), true
		case 0x57: // and64 imm
			v := get(pc, dst)
			require.Empty(t, v.kind, "insn %d: and on a pointer", pc)
			r[dst].val = v.val & imm
		case 0x79: // ldx dw
			v := get(pc, src)
			require.Equal(t, "ctx", v.kind, "insn %d loads from R%d, not the context", pc, src)
			require.Equal(t, int16(CtxOffArg2), off, "insn %d: the only 64-bit field the rule reads is arg2", pc)
			r[dst], set[dst] = reg{val: int64(w.actions)}, true
		case 0x61: // ldx w
			v := get(pc, src)
			require.Equal(t, "ctx", v.kind, "insn %d loads from R%d, not the context", pc, src)
			switch off {
			case CtxOffArch:
				r[dst] = reg{val: int64(w.arch)}
			case CtxOffSyscallNr:
				r[dst] = reg{val: int64(w.nr)}
			default:
				t.Fatalf("insn %d: a 32-bit read at offset %d, not arch or syscall_nr", pc, off)
			}
			set[dst] = true
		case 0x18: // ld_imm64
			require.Less(t, pc+1, n)
			require.Equal(t, uint8(1), src, "insn %d: a 64-bit load that is not a map fd (BPF_PSEUDO_MAP_FD)", pc)
			r[dst], set[dst] = reg{kind: "map", val: imm}, true
			next = pc + 2
		case 0x15, 0x55: // jeq, jne imm
			v := get(pc, dst)
			require.Empty(t, v.kind, "insn %d compares a pointer", pc)
			if (v.val == imm) == (op == 0x15) {
				next = pc + 1 + int(off)
			}
		case 0x16, 0x56: // jeq32, jne32 imm: the low 32 bits
			v := get(pc, dst)
			require.Empty(t, v.kind, "insn %d compares a pointer", pc)
			if (uint32(v.val) == uint32(imm)) == (op == 0x16) {
				next = pc + 1 + int(off)
			}
		case 0x05: // ja
			next = pc + 1 + int(off)
		case 0x85: // call
			require.Equal(t, "ctx", get(pc, 1).kind, "insn %d: R1 is not the context at the call", pc)
			w.calls[int32(imm)]++
			switch imm {
			case FuncGetFSMode:
				r[0] = reg{val: w.mode}
			case FuncFSBeneath:
				m := get(pc, 2)
				require.Equal(t, "map", m.kind, "insn %d: R2 is not a map", pc)
				require.Equal(t, reg{val: 0}, get(pc, 3), "insn %d: flags (R3) not 0", pc)
				ans, ok := w.beneath[int(m.val)]
				require.True(t, ok, "insn %d: fs_beneath of unknown map fd %d", pc, m.val)
				w.asked[int(m.val)] = true
				r[0] = reg{val: ans}
			default:
				t.Fatalf("insn %d calls helper %d", pc, imm)
			}
			set[0] = true
			for i := 1; i <= 5; i++ {
				set[i] = false // caller-saved: clobbered
			}
		case 0x95: // exit
			v := get(pc, 0)
			require.Empty(t, v.kind, "insn %d returns a pointer", pc)
			return v.val
		default:
			t.Fatalf("insn %d: opcode %#x the interpreter does not know", pc, op)
		}
		pc = next
	}
}

// marshal assembles insns as the loader will.
func marshal(t *testing.T, insns asm.Instructions) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, insns.Marshal(&buf, binary.LittleEndian))
	return buf.Bytes()
}

// want is the verdict the package documentation promises (0 allow, 1
// deny), written from the documentation, not from Rule.
func want(mount bool, actions uint64, mode int64, rwAns, roAns int64, withRO bool) int64 {
	if mount {
		return 1
	}
	if mode >= 0 && mode&0o170000 == 0o020000 {
		return 0
	}
	if actions&(ActionWrite|ActionNew|ActionRemove) != 0 {
		if rwAns == 0 {
			return 1
		}
		return 0
	}
	if withRO && roAns == 0 && rwAns == 0 {
		return 1
	}
	return 0
}

// syscall is a context's (arch, syscall_nr).
type syscall struct {
	arch, nr uint32
	name     string
	mount    bool
}

// testSyscalls are the mount-family system calls of MountSyscalls, and
// system calls that are not: openat and write of the native ABI, and
// every number of the table under each arch of the table it does not
// belong to (i386's mount is 21, x86_64's 21 is access).
func testSyscalls(t *testing.T) []syscall {
	t.Helper()
	calls := MountSyscalls()
	require.NotEmpty(t, calls, "no mount system calls for this GOARCH")
	native := calls[0].Arch
	var out []syscall
	in := map[[2]uint32]bool{}
	var arches []uint32
	for _, c := range calls {
		out = append(out, syscall{c.Arch, c.Nr, c.Name, true})
		in[[2]uint32{c.Arch, c.Nr}] = true
		if len(arches) == 0 || arches[len(arches)-1] != c.Arch {
			arches = append(arches, c.Arch)
		}
	}
	out = append(out,
		syscall{native, unix.SYS_OPENAT, "openat (native)", false},
		syscall{native, unix.SYS_WRITE, "write (native)", false},
		syscall{0, 0, "no arch, nr 0", false})
	for _, c := range calls {
		for _, a := range arches {
			if !in[[2]uint32{a, c.Nr}] {
				out = append(out, syscall{a, c.Nr, fmt.Sprintf("nr %d of %s under arch %#x", c.Nr, c.Name, a), false})
			}
		}
	}
	return out
}

// TestRuleVerdicts runs Rule, assembled, for every action, file type and
// answer of the helpers, with and without an ro map, in mount-family
// system calls and others.
func TestRuleVerdicts(t *testing.T) {
	const rwFD, roFD = 7, 9
	rw, ro := &FSMap{fd: rwFD, maxEntries: 1}, &FSMap{fd: roFD, maxEntries: 1}
	actions := map[string]uint64{
		"EXEC": ActionExec, "WRITE": ActionWrite, "READ": ActionRead, "NEW": ActionNew,
		"GET": ActionGet, "REMOVE": ActionRemove, "IOCTL": ActionIoctl, "LOCK": ActionLock,
		"FCNTL": ActionFcntl, "READ|WRITE": ActionRead | ActionWrite, "none": 0,
	}
	modes := map[string]int64{"reg": 0o100644, "dir": 0o040755, "chr": 0o020666, "fifo": 0o010600, "ENOENT": enoent}
	answers := []int64{1, 0, enoent}
	calls := testSyscalls(t)
	for _, withRO := range []bool{false, true} {
		var roMap *FSMap
		if withRO {
			roMap = ro
		}
		prog := marshal(t, Rule(rw, roMap))
		for _, sc := range calls {
			for an, a := range actions {
				for mn, m := range modes {
					for _, rwAns := range answers {
						for _, roAns := range answers {
							w := &world{arch: sc.arch, nr: sc.nr, actions: a, mode: m,
								beneath: map[int]int64{rwFD: rwAns, roFD: roAns},
								calls:   map[int32]int{}, asked: map[int]bool{}}
							name := fmt.Sprintf("%s ro=%v %s mode=%s rw=%d ro=%d", sc.name, withRO, an, mn, rwAns, roAns)
							got := run(t, prog, w)
							if !assert.Equal(t, want(sc.mount, a, m, rwAns, roAns, withRO), got, name) {
								return
							}
							if !withRO {
								assert.False(t, w.asked[roFD], "%s: asked about the ro map", name)
							}
						}
					}
				}
			}
		}
	}
}

// TestRuleDeniesMountSyscalls: every action of a mount-family system call
// is denied before any helper is called, the tty included, beneath rw
// too: a bind mount onto a directory beneath rw (its WRITE at the mount
// point) gets EPERM.
func TestRuleDeniesMountSyscalls(t *testing.T) {
	rw := &FSMap{fd: 5, maxEntries: 1}
	prog := marshal(t, Rule(rw, nil))
	for _, c := range MountSyscalls() {
		for _, mode := range []int64{0o040755, 0o020620, enoent} {
			w := &world{arch: c.Arch, nr: c.Nr, actions: ActionWrite, mode: mode,
				beneath: map[int]int64{5: 1}, calls: map[int32]int{}, asked: map[int]bool{}}
			assert.Equal(t, int64(1), run(t, prog, w), "%s, mode %#o, beneath rw", c.Name, mode)
			assert.Empty(t, w.calls, "%s: helpers called", c.Name)
		}
	}
}

// TestMountSyscallNumbers: the native entries of the table are the
// numbers golang.org/x/sys/unix has for this GOARCH, and each one of
// mount, umount2, move_mount, pivot_root and fsconfig is there for every
// ABI of the table.
func TestMountSyscallNumbers(t *testing.T) {
	calls := MountSyscalls()
	require.NotEmpty(t, calls)
	native := calls[0].Arch
	got := map[string]uint32{}
	names := map[uint32]map[string]bool{}
	for _, c := range calls {
		name, abi, ok := strings.Cut(strings.TrimSuffix(c.Name, ")"), " (")
		require.True(t, ok, c.Name)
		if names[c.Arch] == nil {
			names[c.Arch] = map[string]bool{}
		}
		names[c.Arch][name+" "+abi] = true
		if c.Arch == native && c.Nr&0x40000000 == 0 {
			got[name] = c.Nr
		}
	}
	assert.Equal(t, map[string]uint32{
		"mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2, "move_mount": unix.SYS_MOVE_MOUNT,
		"pivot_root": unix.SYS_PIVOT_ROOT, "fsconfig": unix.SYS_FSCONFIG,
	}, got, "native numbers")
	for arch, ns := range names {
		abis := map[string]bool{}
		for n := range ns {
			_, abi, _ := strings.Cut(n, " ")
			abis[abi] = true
		}
		for abi := range abis {
			for _, call := range []string{"mount", "umount2", "move_mount", "pivot_root", "fsconfig"} {
				assert.True(t, ns[call+" "+abi], "arch %#x: no %s (%s)", arch, call, abi)
			}
		}
	}
	assert.NoError(t, checkMountSyscalls())
}

// TestRuleSpotChecks: the cases the sandboxer exists for, spelled out.
func TestRuleSpotChecks(t *testing.T) {
	const rwFD, roFD = 3, 4
	rw, ro := &FSMap{fd: rwFD, maxEntries: 1}, &FSMap{fd: roFD, maxEntries: 1}
	for _, c := range []struct {
		name       string
		ro         bool
		actions    uint64
		mode       int64
		rwAns      int64
		roAns      int64
		deny       bool
		fsBeneaths int
	}{
		{"write a file outside rw", false, ActionWrite, 0o100644, 0, 0, true, 1},
		{"write a file beneath rw", false, ActionWrite, 0o100644, 1, 0, false, 1},
		{"create outside rw (NEW, no inode)", false, ActionNew, enoent, 0, 0, true, 1},
		{"unlink outside rw", false, ActionRemove, 0o100644, 0, 0, true, 1},
		{"path-less write run (inode_permission)", false, ActionWrite, 0o100644, enoent, 0, false, 1},
		{"write the tty", false, ActionWrite, 0o020620, 0, 0, false, 0},
		{"read outside rw, no ro", false, ActionRead, 0o100644, 0, 0, false, 0},
		{"read outside both", true, ActionRead, 0o100644, 0, 0, true, 2},
		{"read beneath ro", true, ActionRead, 0o100644, 0, 1, false, 1},
		{"read beneath rw only", true, ActionRead, 0o100644, 1, 0, false, 2},
		{"walk a directory outside (MAY_EXEC, path-less)", true, ActionExec, 0o040755, enoent, enoent, false, 1},
		{"read /dev/null outside both", true, ActionRead, 0o020666, 0, 0, false, 0},
		{"write outside rw but beneath ro", true, ActionWrite, 0o100644, 0, 1, true, 1},
	} {
		var roMap *FSMap
		if c.ro {
			roMap = ro
		}
		w := &world{arch: MountSyscalls()[0].Arch, nr: unix.SYS_OPENAT, actions: c.actions, mode: c.mode,
			beneath: map[int]int64{rwFD: c.rwAns, roFD: c.roAns},
			calls:   map[int32]int{}, asked: map[int]bool{}}
		got := run(t, marshal(t, Rule(rw, roMap)), w)
		assert.Equal(t, c.deny, got != 0, c.name)
		assert.Equal(t, 1, w.calls[FuncGetFSMode], "%s: get_fs_mode calls", c.name)
		assert.Equal(t, c.fsBeneaths, w.calls[FuncFSBeneath], "%s: fs_beneath calls", c.name)
	}
}

// TestRuleMapFDs: the maps' fds are in the program as BPF_PSEUDO_MAP_FD
// loads, which the kernel replaces by the maps.
func TestRuleMapFDs(t *testing.T) {
	rw, ro := &FSMap{fd: 11}, &FSMap{fd: 12}
	var fds []int64
	for _, ins := range Rule(rw, ro) {
		if ins.IsLoadFromMap() {
			fds = append(fds, ins.Constant)
		}
	}
	assert.Equal(t, []int64{11, 12, 11}, fds)
	fds = nil
	for _, ins := range Rule(rw, nil) {
		if ins.IsLoadFromMap() {
			fds = append(fds, ins.Constant)
		}
	}
	assert.Equal(t, []int64{11}, fds)
}
