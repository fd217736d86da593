package console

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wantSplat describes a report expected in a console log.
type wantSplat struct {
	kind  Kind
	test  string
	fatal bool
	// passes is set for a report that does not fail the run (Fails).
	passes bool
	// signature is the report's title (see Signature).
	signature string
	// first and last are the first and last quoted lines, without their
	// timestamps.
	first, last string
	// contains lists lines (without timestamps) the quote must hold, and
	// lacks lines it must not hold.
	contains, lacks []string
}

// logExpectations gives, for every file in testdata/*.log, the reports a
// scan of it must find, in order. A log without an entry fails the test, so
// that every log added to testdata comes with its expectation. The files
// named synthetic-*.log were written by hand after the printk formats of
// Linux 6.12; logs captured from the guest are to be added under other
// names (e.g. lkdtm-*.log).
var logExpectations = map[string][]wantSplat{
	// Captured from the guest: LKDTM provoking each report on the
	// harness's own 6.12 kernel (vmtest/pipeline/testdata/guest).
	// KUnit's KTAP at boot (KUNIT=landlock*): no report (kunit_test.go
	// reads its results).
	"kunit-landlock.log": nil,
	"kunit-failing.log":  nil,
	"lkdtm-panic.log": {{
		kind:      KindPanic,
		fatal:     true,
		signature: "kernel panic: dumptest",
		first:     "Kernel panic - not syncing: dumptest",
		last:      "Kernel Offset: disabled",
		contains:  []string{"CPU: 0 UID: 0 PID: 26 Comm: 00-panic.test Not tainted 6.12.117 #1 ", " ? lkdtm_PANIC+0xc/0xc"},
	}},
	"lkdtm-warning.log": {{
		kind:      KindWarning,
		signature: "WARNING in lkdtm_WARNING",
		first:     "------------[ cut here ]------------",
		last:      "---[ end trace 0000000000000000 ]---",
		contains:  []string{"RIP: 0010:lkdtm_WARNING+0x8/0xb", " ? lkdtm_do_action+0x18/0x1b"},
		lacks:     []string{"landlock-vmtest: github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline/testdata/guest/warning ended: exit status 0 after 0.5s"},
	}},
	// LKDTM's HUNG_TASK in a child, the detector's timeout lowered to
	// 2 s (vmtest/pipeline/testdata/guest/hungtask), with the runner's
	// console log level letting the task's stack through.
	"lkdtm-hung-task.log": {{
		kind:      KindHungTask,
		signature: "INFO: task hung in lkdtm_HUNG_TASK",
		first:     "INFO: task 00-hungtask.tes:36 blocked for more than 2 seconds.",
		last:      " </TASK>",
		contains:  []string{"task:00-hungtask.tes state:D stack:0     pid:36    tgid:36    ppid:30     flags:0x00000000", " ? lkdtm_HUNG_TASK+0x13/0x15"},
		lacks:     []string{"hungtask ended: exit status 0"},
	}},
	"lkdtm-soft-lockup.log": {{
		kind:      KindSoftLockup,
		signature: "BUG: soft lockup in lkdtm_SOFTLOCKUP",
		first:     "watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [00-softlockup.t:27]",
		last:      " </TASK>",
		contains:  []string{"RIP: 0010:lkdtm_SOFTLOCKUP+0x2/0x4"},
	}},
	// Captured from the guest on the debug kernel (DEBUG=1) before it
	// had more memory than the normal one: the OOM killer at work. It is
	// reported, not a failure by itself.
	"debug-oom.log": {{
		kind:      KindOOM,
		passes:    true,
		signature: "out of memory: 04-fsmap.test invoked the OOM killer (GFP_KERNEL|__GFP_COMP, order 0)",
		first:     "04-fsmap.test invoked oom-killer: gfp_mask=0x40cc0(GFP_KERNEL|__GFP_COMP), order=0, oom_score_adj=0",
		last:      " </TASK>",
		contains:  []string{"CPU: 0 UID: 0 PID: 563 Comm: 04-fsmap.test Not tainted 6.12.118 #1 ", " out_of_memory+0x5c7/0x60e"},
	}},
	// Captured from the guest on the debug kernel: the debugsplats
	// fixture (vmtest/pipeline/testdata/guest/debugsplats) provoking
	// lockdep (with the "scheduling while atomic" that follows from the
	// spinlock left held), KASAN, the same WARNING twice, UBSAN array
	// bounds and list corruption through LKDTM. The clocksource watchdog
	// marking the TSC unstable, in the same boot, is not a report.
	"debug-lkdtm.log": {
		{
			kind:      KindLockdep,
			signature: "lock held when returning to user space in lkdtm_do_action",
			first:     "================================================",
			last:      " #0: ffffffff82546e18 (lock_me_up){+.+.}-{2:2}, at: lkdtm_do_action+0x3c/0x40",
		},
		{
			kind:      KindBug,
			signature: "BUG: scheduling while atomic in irqentry_exit_to_user_mode",
			first:     "BUG: scheduling while atomic: 00-debugsplats./39/0x00000002",
			last:      " </TASK>",
		},
		{
			kind:      KindKASAN,
			signature: "KASAN: slab-use-after-free Read in lkdtm_READ_AFTER_FREE",
			first:     "==================================================================",
			last:      "==================================================================",
		},
		{
			kind:      KindWarning,
			signature: "WARNING in lkdtm_WARNING",
			first:     "------------[ cut here ]------------",
			last:      "---[ end trace 0000000000000000 ]---",
		},
		{
			kind:      KindWarning,
			signature: "WARNING in lkdtm_WARNING",
			first:     "------------[ cut here ]------------",
			last:      "---[ end trace 0000000000000000 ]---",
		},
		{
			kind:      KindUBSAN,
			signature: "UBSAN: array-index-out-of-bounds in lkdtm_ARRAY_BOUNDS",
			first:     "------------[ cut here ]------------",
			last:      "---[ end trace ]---",
		},
		{
			kind:      KindWarning,
			signature: "WARNING in lkdtm_CORRUPT_LIST_ADD",
			first:     "------------[ cut here ]------------",
			last:      "---[ end trace 0000000000000000 ]---",
		},
	},
	"synthetic-clean-boot.log": nil,
	"synthetic-warning.log": {{
		kind:      KindWarning,
		test:      "TestAddRuleNoAccess",
		signature: "WARNING in insert_rule",
		first:     "------------[ cut here ]------------",
		last:      "---[ end trace 0000000000000000 ]---",
		contains:  []string{"WARNING: CPU: 1 PID: 231 at security/landlock/ruleset.c:212 insert_rule+0x2d1/0x310", " landlock_insert_rule+0x5b/0x90"},
	}},
	"synthetic-null-deref.log": {{
		kind:      KindNullDeref,
		test:      "TestDomainMerge",
		signature: "BUG: kernel NULL pointer dereference in landlock_merge_ruleset",
		first:     "BUG: kernel NULL pointer dereference, address: 0000000000000010",
		last:      "---[ end trace 0000000000000000 ]---",
		contains:  []string{"Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI", "CR2: 0000000000000010"},
	}},
	"synthetic-panic.log": {{
		kind:      KindPanic,
		test:      "TestExecInit/replace_init",
		signature: "kernel panic: Attempted to kill init!",
		fatal:     true,
		first:     "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
		last:      "---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100 ]---",
		contains:  []string{" do_exit+0x9be/0xbb0", "Kernel Offset: disabled"},
	}},
	"synthetic-gpf-panic.log": {{
		kind:      KindGPF,
		test:      "TestRulesetRelease",
		signature: "general protection fault in landlock_put_hierarchy",
		first:     "Oops: general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI",
		last:      "---[ end trace 0000000000000000 ]---",
	}, {
		kind:      KindPanic,
		test:      "TestRulesetRelease",
		signature: "kernel panic: Fatal exception",
		fatal:     true,
		first:     "Kernel panic - not syncing: Fatal exception",
		last:      "---[ end Kernel panic - not syncing: Fatal exception ]---",
	}},
	"synthetic-soft-lockup.log": {{
		kind:      KindSoftLockup,
		test:      "TestSpinForever",
		signature: "BUG: soft lockup in find_rule",
		first:     "watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [landlock.test:245]",
		last:      " </TASK>",
		contains:  []string{"CPU#0 Utilization every 4s during lockup:", " landlock_find_rule+0x15/0x30"},
		lacks:     []string{"clocksource: Switched to clocksource hpet"},
	}},
	"synthetic-rcu-stall.log": {{
		kind:      KindRCUStall,
		test:      "TestLongWalk",
		signature: "INFO: rcu detected stall in landlock_walk_path",
		first:     "rcu: INFO: rcu_preempt self-detected stall on CPU",
		last:      " </TASK>",
		contains:  []string{"rcu: \t(t=21000 jiffies g=2605 q=340 ncpus=2)", " hook_path_mknod+0x5c/0x90"},
	}, {
		kind:      KindRCUStall,
		test:      "TestLongWalk",
		signature: "INFO: rcu detected stall in landlock_walk_path",
		first:     "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
		last:      " </TASK>",
		contains:  []string{"NMI backtrace for cpu 0", "rcu: RCU grace-period kthread stack dump:", " rcu_gp_kthread+0xd9/0x120"},
	}},
	"synthetic-hung-task.log": {{
		kind:      KindHungTask,
		test:      "TestDeadlock",
		signature: "INFO: task hung in landlock_restrict_self",
		first:     "INFO: task landlock.test:252 blocked for more than 122 seconds.",
		last:      " </TASK>",
		contains:  []string{" __mutex_lock.constprop.0+0x32b/0x6e0"},
		lacks:     []string{"Showing all locks held in the system:"},
	}},
	"synthetic-kasan.log": {{
		kind:      KindKASAN,
		test:      "TestRulesetFdClose",
		signature: "KASAN: slab-use-after-free Read in landlock_put_ruleset",
		first:     "==================================================================",
		last:      "==================================================================",
		contains:  []string{"BUG: KASAN: slab-use-after-free in landlock_put_ruleset+0x3a/0x90", "Freed by task 231:", "Memory state around the buggy address:"},
		lacks:     []string{"Disabling lock debugging due to kernel taint"},
	}},
	"synthetic-ubsan.log": {{
		kind:      KindUBSAN,
		test:      "TestLayerMasks",
		signature: "UBSAN: array-index-out-of-bounds in landlock_unmask_layers",
		first:     "------------[ cut here ]------------",
		last:      "---[ end trace ]---",
		contains:  []string{"UBSAN: array-index-out-of-bounds in security/landlock/ruleset.c:633:25", "index 16 is out of range for type 'layer_mask_t [16]'"},
	}},
}

// testTracker follows "=== RUN" and "--- PASS/FAIL/SKIP" lines of go test
// -v output to know which test is running, as the harness does from its
// own event stream.
type testTracker struct {
	current string
}

// observe updates the running test from one console line.
func (tr *testTracker) observe(line string) {
	l := strings.TrimSpace(splitLine(line).body)
	if name, ok := strings.CutPrefix(l, "=== RUN"); ok {
		tr.current = strings.TrimSpace(name)
		return
	}
	for _, p := range []string{"--- PASS:", "--- FAIL:", "--- SKIP:"} {
		rest, ok := strings.CutPrefix(l, p)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
		if name == tr.current {
			parent, _, nested := strings.Cut(name, "/")
			if !nested {
				parent = ""
			}
			tr.current = parent
		}
	}
}

func TestLogs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.log"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	found := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		found[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := logExpectations[name]
			if !ok {
				t.Fatalf("no expectation for testdata/%s: add an entry to logExpectations", name)
			}
			m, got := scanWithTracker(t, file)
			checkSplats(t, want, got)

			fatal, fails := false, false
			for _, w := range want {
				fatal = fatal || w.fatal
				fails = fails || !w.passes
			}
			assert.Equal(t, fatal, isClosed(m.Fatal()), "Fatal channel closed")
			assert.Equal(t, fails, m.Failed(), "Failed")

			// Scan agrees with a Monitor fed line by line.
			f, err := os.Open(file)
			require.NoError(t, err)
			defer f.Close()
			scanned, err := Scan(f, nil)
			require.NoError(t, err)
			require.Len(t, scanned, len(got))
			for i := range got {
				g := got[i]
				g.Test = ""
				assert.Equal(t, g, scanned[i])
			}
		})
	}
	for name := range logExpectations {
		assert.Truef(t, found[name], "logExpectations names %s, which is not in testdata", name)
	}
}

// scanWithTracker feeds the log to a Monitor whose running test comes from
// the go test output in the log itself.
func scanWithTracker(t *testing.T, file string) (*Monitor, []Splat) {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var tr testTracker
	m := New(func() string { return tr.current })
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if l == "" {
			continue
		}
		tr.observe(l)
		m.Feed(l)
	}
	return m, m.Splats()
}

// checkSplats compares the reports found in a log with the expected ones.
func checkSplats(t *testing.T, want []wantSplat, got []Splat) {
	t.Helper()
	var kinds []Kind
	for _, s := range got {
		kinds = append(kinds, s.Kind)
	}
	require.Lenf(t, got, len(want), "kinds found: %v", kinds)
	for i, w := range want {
		s := got[i]
		assert.Equalf(t, w.kind, s.Kind, "splat %d kind", i)
		assert.Equalf(t, w.test, s.Test, "splat %d test", i)
		assert.Equalf(t, w.fatal, s.Fatal, "splat %d fatal", i)
		assert.Equalf(t, !w.passes, s.Fails, "splat %d fails", i)
		assert.Falsef(t, s.Truncated, "splat %d truncated", i)
		b := bodies(s)
		assert.Equalf(t, w.first, b[0], "splat %d first line", i)
		assert.Equalf(t, w.last, b[len(b)-1], "splat %d last line", i)
		for _, c := range w.contains {
			assert.Containsf(t, b, c, "splat %d quote", i)
		}
		for _, c := range w.lacks {
			assert.NotContainsf(t, b, c, "splat %d quote", i)
		}
		for _, l := range strings.Split(s.Text, "\n") {
			assert.Truef(t, splitLine(l).stamped, "splat %d quotes a line without timestamp: %q", i, l)
			assert.NotContainsf(t, l, "\r", "splat %d quotes a carriage return", i)
		}
		assert.Containsf(t, s.Text, s.Title, "splat %d text holds its title", i)
		assert.Equalf(t, w.signature, s.Signature, "splat %d signature", i)
		assert.Equalf(t, w.signature, Signature(s.Text), "splat %d signature of its text", i)
		assert.Equalf(t, Fingerprint(w.signature), s.Fingerprint, "splat %d fingerprint", i)
		assert.Equalf(t, Frames(s.Text), s.Frames, "splat %d frames", i)
		for _, f := range s.Frames {
			assert.Regexpf(t, `^[\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+$`, f, "splat %d frame", i)
		}
	}
}
