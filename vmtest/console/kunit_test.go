package console

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// feedKUnit feeds text to a KUnit reader, ends it, and returns its events.
func feedKUnit(t *testing.T, text string, reachedUser bool) []event.Event {
	t.Helper()
	var evs []event.Event
	k := NewKUnit("kunit", "landlock*", time.Unix(1000, 0), func(ev event.Event) { evs = append(evs, ev) })
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k.Feed(sc.Text())
	}
	k.End(reachedUser)
	for _, ev := range evs {
		require.Equal(t, "kunit", ev.Binary)
		require.False(t, ev.Time.IsZero())
	}
	return evs
}

// kunitSummary keeps what a report would: "kind", "action test" and the
// errors.
func kunitSummary(evs []event.Event) []string {
	var out []string
	for _, ev := range evs {
		switch ev.Kind {
		case event.KindTest:
			if ev.Test.Action != "output" {
				out = append(out, strings.TrimSpace(ev.Test.Action+" "+ev.Test.Test))
			}
		case event.KindBinaryEnd:
			out = append(out, "binary-end "+map[bool]string{true: "0", false: "1"}[ev.Exit.Code == 0])
		case event.KindError:
			out = append(out, "error: "+ev.Error)
		default:
			out = append(out, string(ev.Kind))
		}
	}
	return out
}

// outputOf is the output of test in evs.
func outputOf(evs []event.Event, test string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Kind == event.KindTest && ev.Test.Action == "output" && ev.Test.Test == test {
			out = append(out, ev.Test.Output)
		}
	}
	return out
}

// The console of a real boot of the series' kernel with KUNIT=landlock*
// (6.12, x86_64, TCG), kernel lines before and after the KTAP included.
func TestKUnitRealBoot(t *testing.T) {
	b, err := os.ReadFile("testdata/kunit-landlock.log")
	require.NoError(t, err)
	evs := feedKUnit(t, string(b), true)
	want := []string{"binary-start", "run landlock_fs"}
	for _, c := range []string{"test_no_more_access", "test_scope_to_request_with_exec_none",
		"test_scope_to_request_with_exec_some", "test_scope_to_request_without_access",
		"test_is_eacces_with_none", "test_is_eacces_with_refer", "test_is_eacces_with_write"} {
		want = append(want, "run landlock_fs/"+c, "pass landlock_fs/"+c)
	}
	want = append(want, "pass landlock_fs", "pass", "binary-end 0")
	require.Equal(t, want, kunitSummary(evs))

	// The kernel's clock times the cases: the first case ran from its
	// suite's plan (0.655163) to its result (0.680594).
	for _, ev := range evs {
		if ev.Kind == event.KindTest && ev.Test.Action == "pass" && ev.Test.Test == "landlock_fs/test_no_more_access" {
			require.InDelta(t, 0.680594-0.655163, ev.Test.Elapsed, 0.0001)
			require.Equal(t, time.Unix(1000, 0).Add(680594*time.Microsecond), ev.Time)
		}
		if ev.Kind == event.KindBinaryEnd {
			require.InDelta(t, 0.688690-0.652827, ev.Exit.Seconds, 0.0001)
		}
	}
	// The lines after the plan's end are not the suite's.
	for _, ev := range evs {
		if ev.Kind == event.KindTest && ev.Test.Action == "output" {
			require.NotContains(t, ev.Test.Output, "Freeing initrd memory")
			require.NotContains(t, ev.Test.Output, "Segment Routing")
		}
	}
}

func TestKUnitFailedCaseAndForeignLines(t *testing.T) {
	text := `[    0.5] KTAP version 1
[    0.5] 1..2
[    0.5]     KTAP version 1
[    0.5]     # Subtest: landlock_bpf_actions
[    0.5]     1..2
[    0.6]     ok 1 test_mask_actions
[    0.6] random: crng init done
[    0.7]     # test_prot_actions: EXPECTATION FAILED at security/landlock/bpf_hooks_test.c:42
not ok 9 from user space, ignored
[    0.7]     not ok 2 test_prot_actions
[    0.7] # landlock_bpf_actions: pass:1 fail:1 skip:0 total:2
[    0.7] not ok 1 landlock_bpf_actions
[    0.8]     KTAP version 1
[    0.8]     # Subtest: landlock_fs
[    0.8]     1..1
[    0.8]     ok 1 test_no_more_access
[    0.8] ok 2 landlock_fs
`
	evs := feedKUnit(t, text, true)
	require.Equal(t, []string{
		"binary-start", "run landlock_bpf_actions",
		"run landlock_bpf_actions/test_mask_actions", "pass landlock_bpf_actions/test_mask_actions",
		"run landlock_bpf_actions/test_prot_actions", "fail landlock_bpf_actions/test_prot_actions",
		"fail landlock_bpf_actions", "run landlock_fs",
		"run landlock_fs/test_no_more_access", "pass landlock_fs/test_no_more_access",
		"pass landlock_fs",
		"fail", "binary-end 1",
	}, kunitSummary(evs))
	var out []string
	for _, ev := range evs {
		if ev.Kind == event.KindTest && ev.Test.Action == "output" {
			out = append(out, ev.Test.Output)
		}
	}
	require.Contains(t, strings.Join(out, ""), "EXPECTATION FAILED at security/landlock/bpf_hooks_test.c:42")
	require.NotContains(t, strings.Join(out, ""), "from user space")
}

func TestKUnitNoSuiteMatched(t *testing.T) {
	evs := feedKUnit(t, "[    0.5] KTAP version 1\n[    0.5] 1..0\n[    0.6] Run /init as init process\n", true)
	require.Equal(t, []string{
		"binary-start", "run landlock*", "fail landlock*", "skip", "binary-end 1",
	}, kunitSummary(evs))
	require.Equal(t, []string{"KUnit ran no suite: none built into this kernel matches KUNIT=landlock* (kunit.filter_glob); set the suite's CONFIG_ symbol with CONFIG=\n"}, outputOf(evs, "landlock*"))
}

func TestKUnitNoKTAP(t *testing.T) {
	evs := feedKUnit(t, "[    0.6] Run /init as init process\n", true)
	require.Equal(t, []string{"binary-start", "run landlock*", "fail landlock*", "fail", "binary-end 1"}, kunitSummary(evs))
	require.Len(t, outputOf(evs, "landlock*"), 1)
	require.Contains(t, outputOf(evs, "landlock*")[0], "no KUnit output (KTAP) on the console")

	// A kernel that never got to user space has its boot failure
	// reported already: nothing about KUnit.
	require.Empty(t, feedKUnit(t, "[    0.6] Kernel panic - not syncing: VFS\n", false))
}

// A suite that crashed the kernel: what ran is reported and the running
// case has no result (the report makes it unfinished).
func TestKUnitCrashInSuite(t *testing.T) {
	text := `[    0.5] KTAP version 1
[    0.5] 1..1
[    0.5]     KTAP version 1
[    0.5]     # Subtest: landlock_bpf_levels
[    0.5]     1..2
[    0.6]     ok 1 test_copy
[    0.7] BUG: kernel NULL pointer dereference, address: 0000000000000008
`
	evs := feedKUnit(t, text, false)
	require.Equal(t, []string{
		"binary-start", "run landlock_bpf_levels",
		"run landlock_bpf_levels/test_copy", "pass landlock_bpf_levels/test_copy",
	}, kunitSummary(evs))
	// The suite has no result: the report makes it unfinished. What
	// came after the last result is the binary's.
	require.Contains(t, strings.Join(outputOf(evs, ""), ""), "BUG: kernel NULL pointer dereference")

	// The same KTAP cut short with the runner up after it: the plan
	// was not kept.
	evs = feedKUnit(t, text, true)
	s := kunitSummary(evs)
	require.Equal(t, "error: the KTAP ended after 0 of the 1 suite(s) it announced", s[4])
	require.Equal(t, []string{"fail", "binary-end 1"}, s[len(s)-2:])
}

// A real boot with two of the series' KUnit cases failing (the kernel
// of the series at 0029 with mask_actions' MAY_APPEND mapping taken out
// and room_for_rule's < made <=, to see that the suites can fail).
func TestKUnitRealFailures(t *testing.T) {
	b, err := os.ReadFile("testdata/kunit-failing.log")
	require.NoError(t, err)
	evs := feedKUnit(t, string(b), true)
	s := kunitSummary(evs)
	for _, want := range []string{
		"pass landlock_fs", "fail landlock_bpf_actions/test_mask_actions", "pass landlock_bpf_actions/test_prot_actions",
		"fail landlock_bpf_actions", "pass landlock_bpf_rules/test_new_level_copies", "fail landlock_bpf_rules/test_rule_limit",
		"fail landlock_bpf_rules", "fail", "binary-end 1",
	} {
		require.Contains(t, s, want)
	}
	out := strings.Join(outputOf(evs, "landlock_bpf_actions/test_mask_actions"), "")
	require.Contains(t, out, "EXPECTATION FAILED at security/landlock/bpf_hooks.c:432")
	require.Contains(t, out, "Expected (1ULL << 1) == mask_actions(0x00000008), but")
	// The expectation's values, indented deeper, are the case's too.
	require.Contains(t, out, "(1ULL << 1) == 2 (0x2)")
	require.Contains(t, out, "mask_actions(0x00000008) == 0 (0x0)")
	// The suite's header is not its first case's.
	require.NotContains(t, out, "1..2")
	require.NotContains(t, out, "# Subtest")
	require.Contains(t, strings.Join(outputOf(evs, "landlock_bpf_rules/test_rule_limit"), ""), "Expected room_for_rule(top) to be false, but is true")
}
