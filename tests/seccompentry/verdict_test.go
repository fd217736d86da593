package seccompentry

import (
	"math"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// returnRule is a rule whose R0 at exit is v, all 64 bits of it
// (BPF_LD | BPF_IMM | BPF_DW).
func returnRule(v int64) asm.Instructions {
	return asm.Instructions{asm.LoadImm(asm.R0, v, asm.DWord), asm.Return()}
}

// onlyOn makes body the verdict on the object with inode number ino and
// allows every other action: a rule that denied every action of its
// thread would also deny the Go runtime's own mmap(2) calls there, and a
// runtime that cannot map memory throws.
func onlyOn(ino uint64, body asm.Instructions) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, landlockbpf.CtxOffArg1, asm.DWord),
		asm.LoadImm(asm.R3, int64(ino), asm.DWord),
		asm.JNE.Reg(asm.R2, asm.R3, "other_object"),
	}
	insns = append(insns, body...)
	return append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("other_object"), asm.Return())
}

// lookupKey sets R0 to the address of the value at key of the array map
// m, or to 0 (then it jumps to label).
func lookupKey(m *ebpf.Map, key int64, label string) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, key, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, label),
	}
}

// mapValueRule is a rule that returns the 64-bit value at key 0 of the
// array map m (8-byte values): a value the verifier cannot know.
func mapValueRule(m *ebpf.Map) asm.Instructions {
	return append(lookupKey(m, 0, "none"),
		asm.LoadMem(asm.R0, asm.R0, 0, asm.DWord),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("none"),
		asm.Return(),
	)
}

// countRule is a rule that adds 1 to the 64-bit counter at key of the
// array map m each time it runs, and allows.
func countRule(m *ebpf.Map, key int64) asm.Instructions {
	return append(lookupKey(m, key, "allow"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	)
}

// newCounterMap creates an array map of n 64-bit values, all 0, closed when
// t ends.
func newCounterMap(t *testing.T, n uint32) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: n})
	require.NoError(t, err, "creating an array map")
	t.Cleanup(func() { m.Close() })
	return m
}

// appendAndOpen appends rules, in order, on a thread of their own, and
// opens path there before and after. It returns the three results.
func appendAndOpen(path string, rules ...*ebpf.Program) (before, appendErr, after error) {
	landlockbpf.OnLockedThread(func() {
		if before = openClose(path); before != nil {
			return
		}
		for _, r := range rules {
			if appendErr = landlockbpf.Append(r); appendErr != nil {
				return
			}
		}
		after = openClose(path)
	})
	return before, appendErr, after
}

// TestReturnValueAll64Bits: a rule allows when all 64 bits of R0 are 0
// at its exit, and denies (the hook fails with EPERM) for any other value,
// whatever bits are set: only the upper half, only bit 63, or a value from
// a map that the verifier cannot know. With the JIT on and off.
func TestReturnValueAll64Bits(t *testing.T) {
	skipUnlessSupported(t)
	for _, jit := range landlockbpf.JITModes {
		t.Run(jit.Name, func(t *testing.T) {
			landlockbpf.SetJIT(t, jit.Value)
			privdrop.Run(t, keepRoot, returnValueScenario(jit.JITed))
		})
	}
}

// returnValueScenario is TestReturnValueAll64Bits' scenario, with the JIT
// on or off as jited says (set before the child started).
func returnValueScenario(jited bool) func(t *testing.T) {
	constants := []struct {
		name  string
		insns asm.Instructions
		deny  bool
	}{
		{"r0_0", returnRule(0), false},
		{"r0_0_alu32", asm.Instructions{asm.Mov.Imm32(asm.R0, 0), asm.Return()}, false},
		{"r0_1", returnRule(1), true},
		{"r0_2", returnRule(2), true},
		{"r0_-1_alu64", asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()}, true},
		{"r0_0xffffffff_alu32", asm.Instructions{asm.Mov.Imm32(asm.R0, -1), asm.Return()}, true},
		{"r0_1<<32", returnRule(1 << 32), true},
		{"r0_0xffffffff00000000", returnRule(-1 << 32), true},
		{"r0_1<<63", returnRule(math.MinInt64), true},
	}
	mapValues := []struct {
		name  string
		value uint64
		deny  bool
	}{
		{"map_value_0", 0, false},
		{"map_value_1", 1, true},
		{"map_value_1<<32", 1 << 32, true},
		{"map_value_0xffffffff00000000", 0xffffffff00000000, true},
		{"map_value_1<<63", 1 << 63, true},
	}
	return func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "target")
		ino := inodeOf(t, path)
		requireDistinctInode(t, ino, executable(t), "/dev/null")
		check := func(t *testing.T, deny bool, before, appendErr, after error) {
			t.Helper()
			require.NoError(t, before, "open before the rule")
			require.NoError(t, appendErr, "appending the rule")
			if deny {
				assert.ErrorIs(t, after, unix.EPERM, "open under the rule: a non-zero R0 denies")
			} else {
				assert.NoError(t, after, "open under the rule: R0 = 0 allows")
			}
		}
		for _, c := range constants {
			t.Run(c.name, func(t *testing.T) {
				rule := loadRule(t, onlyOn(ino, c.insns))
				landlockbpf.RequireJITed(t, rule, jited)
				before, appendErr, after := appendAndOpen(path, rule)
				check(t, c.deny, before, appendErr, after)
			})
		}

		m := newCounterMap(t, 1)
		rule := loadRule(t, onlyOn(ino, mapValueRule(m)))
		landlockbpf.RequireJITed(t, rule, jited)
		for _, v := range mapValues {
			t.Run(v.name, func(t *testing.T) {
				require.NoError(t, m.Put(uint32(0), v.value), "setting the value the rule returns")
				before, appendErr, after := appendAndOpen(path, rule)
				check(t, v.deny, before, appendErr, after)
			})
		}
	}
}

// TestEveryRuleRuns: every rule of a domain runs at every hook, in the
// order they were appended, even after one of them has denied: a rule that
// counts its runs and allows sees the denied open, whether it comes before
// or after the rules that deny.
func TestEveryRuleRuns(t *testing.T) {
	skipUnlessSupported(t)
	privdrop.Run(t, keepRoot, everyRuleRunsScenario)
}

// everyRuleRunsScenario is TestEveryRuleRuns' scenario.
func everyRuleRunsScenario(t *testing.T) {
	path := writeFile(t, t.TempDir(), "target")
	ino := inodeOf(t, path)
	requireDistinctInode(t, ino, executable(t), "/dev/null")
	m := newCounterMap(t, 2)
	// Denies every action on the target only (see onlyOn).
	deny := loadRule(t, landlockbpf.DenyActionsOn(ino, -1))
	// Count the actions on the target only: the other actions of the
	// open (the path walk) are allowed by every rule, so they would
	// be counted even by a kernel that stops at the first deny.
	count0 := loadRule(t, onlyOn(ino, countRule(m, 0)))
	count1 := loadRule(t, onlyOn(ino, countRule(m, 1)))

	for _, tc := range []struct {
		name   string
		rules  []*ebpf.Program // in the order they are appended
		denies bool
		keys   []uint32 // the counters that must grow
	}{
		{"count_alone", []*ebpf.Program{count0}, false, []uint32{0}},
		{"deny_then_count", []*ebpf.Program{deny, count0}, true, []uint32{0}},
		{"count_then_deny", []*ebpf.Program{count0, deny}, true, []uint32{0}},
		{"count_deny_count", []*ebpf.Program{count0, deny, count1}, true, []uint32{0, 1}},
		{"deny_deny_count", []*ebpf.Program{deny, deny, count0}, true, []uint32{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k := range uint32(2) {
				require.NoError(t, m.Put(k, uint64(0)), "resetting counter %d", k)
			}
			before, appendErr, after := appendAndOpen(path, tc.rules...)
			require.NoError(t, before, "open before the rules")
			require.NoError(t, appendErr, "appending the rules")
			if tc.denies {
				assert.ErrorIs(t, after, unix.EPERM, "open under a rule that denies every action on the file")
			} else {
				assert.NoError(t, after, "open under rules that allow")
			}
			for _, k := range tc.keys {
				var n uint64
				require.NoError(t, m.Lookup(k, &n), "reading counter %d", k)
				assert.NotZero(t, n, "counter %d: the counting rule never ran during the open (rules %s)", k, tc.name)
				t.Logf("counter %d: %d runs", k, n)
			}
		})
	}
}
