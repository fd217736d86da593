package ktap

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// fakeClock advances one second per reading.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

// convert feeds text to a Converter and returns its events and summary.
func convert(t *testing.T, text string) ([]event.TestEvent, Summary) {
	t.Helper()
	var evs []event.TestEvent
	clk := &fakeClock{t: time.Unix(0, 0)}
	c := New("kselftest/x/y", func(te event.TestEvent) error {
		evs = append(evs, te)
		return nil
	}, clk.now)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		require.NoError(t, c.Line(sc.Text()))
	}
	sum, err := c.End()
	require.NoError(t, err)
	for _, e := range evs {
		require.Equal(t, "kselftest/x/y", e.Package)
		require.False(t, e.Time.IsZero())
	}
	return evs, sum
}

// actions keeps the non-output events as "action test".
func actions(evs []event.TestEvent) []string {
	var out []string
	for _, e := range evs {
		if e.Action != "output" {
			out = append(out, strings.TrimSpace(e.Action+" "+e.Test))
		}
	}
	return out
}

// outputOf returns the output lines attributed to test.
func outputOf(evs []event.TestEvent, test string) []string {
	var out []string
	for _, e := range evs {
		if e.Action == "output" && e.Test == test {
			out = append(out, strings.TrimSuffix(e.Output, "\n"))
		}
	}
	return out
}

const harness = `TAP version 13
1..4
# Starting 4 tests from 2 test cases.
#  RUN           global.ok_test ...
#            OK  global.ok_test
ok 1 global.ok_test
#  RUN           layout1.failing ...
# fs_test.c:123:failing:Expected 0 (0) == err (-13)
# failing: Test failed
#          FAIL  layout1.failing
not ok 2 layout1.failing
#  RUN           layout2_overlay.no_restriction ...
#      SKIP      overlayfs is not supported (setup)
#            OK  layout2_overlay.no_restriction
ok 3 layout2_overlay.no_restriction # SKIP overlayfs is not supported (setup)
#  RUN           layout3_fs.tmpfs.tag ...
#            OK  layout3_fs.tmpfs.tag
ok 4 layout3_fs.tmpfs.tag
# FAILED: 3 / 4 tests passed.
# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0
`

func TestHarnessOutput(t *testing.T) {
	evs, sum := convert(t, harness)
	require.Equal(t, []string{
		"run global.ok_test", "pass global.ok_test",
		"run layout1.failing", "fail layout1.failing",
		"run layout2_overlay.no_restriction", "skip layout2_overlay.no_restriction",
		"run layout3_fs.tmpfs.tag", "pass layout3_fs.tmpfs.tag",
		"fail",
	}, actions(evs))
	require.Equal(t, Summary{Planned: 4, Results: 4, Passed: 2, Failed: 1, Skipped: 1}, sum)
	require.Equal(t, []string{
		"#  RUN           layout1.failing ...",
		"# fs_test.c:123:failing:Expected 0 (0) == err (-13)",
		"# failing: Test failed",
		"#          FAIL  layout1.failing",
		"not ok 2 layout1.failing",
	}, outputOf(evs, "layout1.failing"))
	// The header and the totals belong to the binary.
	require.Equal(t, []string{
		"TAP version 13", "1..4", "# Starting 4 tests from 2 test cases.",
		"# FAILED: 3 / 4 tests passed.",
		"# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:1 error:0",
	}, outputOf(evs, ""))
	// Elapsed: from the RUN line to the result, on the fake clock.
	for _, e := range evs {
		if e.Test == "global.ok_test" && e.Action == "pass" {
			require.Greater(t, e.Elapsed, 0.0)
		}
	}
}

func TestAllPass(t *testing.T) {
	evs, sum := convert(t, "TAP version 13\n1..2\n#  RUN  a.b ...\n#  OK  a.b\nok 1 a.b\n#  RUN  a.c ...\nok 2 a.c\n# PASSED: 2 / 2 tests passed.\n")
	require.Equal(t, []string{"run a.b", "pass a.b", "run a.c", "pass a.c", "pass"}, actions(evs))
	require.Equal(t, 2, sum.Passed)
}

func TestPlainTAPWithoutRunLines(t *testing.T) {
	evs, _ := convert(t, "TAP version 13\n1..3\nok 1 - first\nnot ok 2 second # TODO not yet\nok 3\n")
	require.Equal(t, []string{"run first", "pass first", "run second", "skip second", "run test_3", "pass test_3", "pass"}, actions(evs))
}

func TestDirectives(t *testing.T) {
	evs, sum := convert(t, "1..4\nok 1 a # XFAIL expected\nok 2 b # xpass surprise\nnot ok 3 c # TODO later\nok 4 d # skip lowercase\n")
	require.Equal(t, []string{"run a", "pass a", "run b", "fail b", "run c", "skip c", "run d", "skip d", "fail"}, actions(evs))
	require.Equal(t, Summary{Planned: 4, Results: 4, Passed: 1, Failed: 1, Skipped: 2}, sum)
}

func TestNestedKTAP(t *testing.T) {
	text := `KTAP version 1
1..2
    KTAP version 1
    # Subtest: suite_a
    1..2
    ok 1 case_one
    not ok 2 case_two
not ok 1 suite_a
#  RUN           fixture.parent ...
  ok 1 child # SKIP nothing to do
ok 2 fixture.parent
`
	evs, sum := convert(t, text)
	require.Equal(t, []string{
		// The block's "# Subtest:" starts its test.
		"run suite_a",
		"run suite_a/case_one", "pass suite_a/case_one",
		"run suite_a/case_two", "fail suite_a/case_two",
		"fail suite_a",
		"run fixture.parent", "run fixture.parent/child", "skip fixture.parent/child", "pass fixture.parent",
		"fail",
	}, actions(evs))
	// Only top-level results count against the plan.
	require.Equal(t, Summary{Planned: 2, Results: 2, Passed: 1, Failed: 1}, sum)
}

// KUnit's parameterised case is a block within its suite's block: its
// parameters are subtests of the case, which is a subtest of the suite.
func TestNestedParameterisedKTAP(t *testing.T) {
	text := `KTAP version 1
1..1
    KTAP version 1
    # Subtest: suite_p
    1..2
        KTAP version 1
        # Subtest: case_param
        ok 1 one
        not ok 2 two
    # case_param: pass:1 fail:1 skip:0 total:2
    not ok 1 case_param
    ok 2 case_plain
# suite_p: pass:1 fail:1 skip:0 total:2
not ok 1 suite_p
`
	evs, sum := convert(t, text)
	require.Equal(t, []string{
		"run suite_p", "run suite_p/case_param",
		"run suite_p/case_param/one", "pass suite_p/case_param/one",
		"run suite_p/case_param/two", "fail suite_p/case_param/two",
		"fail suite_p/case_param",
		"run suite_p/case_plain", "pass suite_p/case_plain",
		"fail suite_p",
		"fail",
	}, actions(evs))
	require.Equal(t, Summary{Planned: 1, Results: 1, Failed: 1}, sum)
}

func TestCrashMidTest(t *testing.T) {
	// The binary died during a test: no result, no totals.
	evs, sum := convert(t, "TAP version 13\n1..3\n#  RUN  a.one ...\nok 1 a.one\n#  RUN  a.two ...\n# some output\n")
	require.Equal(t, []string{"run a.one", "pass a.one", "run a.two", "fail"}, actions(evs))
	require.Equal(t, []string{"#  RUN  a.two ...", "# some output"}, outputOf(evs, "a.two"))
	require.Contains(t, outputOf(evs, ""), "landlock-vmtest: the plan announced 3 test(s), 1 reported")
	require.Equal(t, 1, sum.Results)
}

func TestNoPlan(t *testing.T) {
	evs, sum := convert(t, "exec format error\n")
	require.Equal(t, []string{"fail"}, actions(evs))
	require.Equal(t, -1, sum.Planned)
	require.Contains(t, outputOf(evs, ""), "landlock-vmtest: no TAP plan (1..N) in the output")
}

func TestWholeBinarySkipped(t *testing.T) {
	evs, sum := convert(t, "TAP version 13\n1..0 # SKIP Landlock is not supported\n")
	require.Equal(t, []string{"skip"}, actions(evs))
	require.Equal(t, 0, sum.Planned)
	require.Contains(t, outputOf(evs, ""), "SKIP: Landlock is not supported")
}

func TestBailOut(t *testing.T) {
	evs, sum := convert(t, "1..2\nok 1 a\nBail out! no more\n")
	require.Equal(t, []string{"run a", "pass a", "fail"}, actions(evs))
	require.True(t, sum.Bailed)
}

func TestEmitErrorStops(t *testing.T) {
	boom := errors.New("channel closed")
	calls := 0
	c := New("p", func(event.TestEvent) error {
		calls++
		return boom
	}, nil)
	err := c.Line("TAP version 13")
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "emitting output event of p")
	require.ErrorIs(t, c.Line("1..1"), boom)
	_, err = c.End()
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, calls)
}

// TestRealGuestOutput converts output saved from guest runs of the
// upstream kselftests (testdata/*.tap) and checks each test's result
// against the totals the harness printed itself.
func TestRealGuestOutput(t *testing.T) {
	files, err := filepath.Glob("testdata/*.tap")
	require.NoError(t, err)
	if len(files) == 0 {
		t.Skip("no saved output")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			evs, sum := convert(t, string(b))
			var totals string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "# Totals:") {
					totals = l
				}
			}
			require.NotEmpty(t, totals, "the harness prints its totals")
			want := fmt.Sprintf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0", sum.Passed, sum.Failed, sum.Skipped)
			require.Equal(t, want, totals)
			require.Equal(t, sum.Planned, sum.Results)
			var results int
			for _, e := range evs {
				switch e.Action {
				case "pass", "fail", "skip":
					if e.Test != "" {
						results++
					}
				}
			}
			require.Equal(t, sum.Results, results)
		})
	}
}

func TestRealFsTestDetails(t *testing.T) {
	b, err := os.ReadFile("testdata/landlock-fs_test.tap")
	require.NoError(t, err)
	evs, sum := convert(t, string(b))
	require.Equal(t, Summary{Planned: 176, Results: 176, Passed: 171, Skipped: 5}, sum)
	res := map[string]string{}
	for _, e := range evs {
		switch e.Action {
		case "pass", "fail", "skip":
			res[e.Test] = e.Action
		}
	}
	require.Equal(t, "pass", res[""])
	require.Equal(t, "pass", res["layout1.rule_inside_mount_ns"])
	require.Equal(t, "skip", res["layout3_fs.hostfs.tag_inode_file"])
	require.Equal(t, "pass", res["layout3_fs.tmpfs.tag_inode_file"])
	require.Contains(t, outputOf(evs, "layout3_fs.hostfs.tag_inode_file"), "#      SKIP      this filesystem is not supported (setup)")

	b, err = os.ReadFile("testdata/landlock-fs_test-failing.tap")
	require.NoError(t, err)
	evs, _ = convert(t, string(b))
	require.Equal(t, []string{
		"#  RUN           layout1.rule_inside_mount_ns ...",
		`# fs_test.c:1688:rule_inside_mount_ns:Expected EACCES (13) == test_open("/", O_RDONLY) (0)`,
		"# fs_test.c:323:rule_inside_mount_ns:Expected EINVAL (22) == errno (2)",
		"# rule_inside_mount_ns: Test terminated by assertion",
		"#          FAIL  layout1.rule_inside_mount_ns",
		"not ok 24 layout1.rule_inside_mount_ns",
	}, outputOf(evs, "layout1.rule_inside_mount_ns"), "diagnostics on stderr land in their test")
	require.Equal(t, "fail", actions(evs)[len(actions(evs))-1])
}
