package guest

import (
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

func TestRetryFailed(t *testing.T) {
	// outcomes[test] are the results of its reruns, in order.
	outcomes := map[string][]bool{
		"TestSecond": {false, true},
		"TestFirst":  {true},
		"TestNever":  {false, false, false},
	}
	var calls []string
	run := func(test string, k int) (bool, error) {
		calls = append(calls, test+"#"+string(rune('0'+k)))
		return outcomes[test][k-1], nil
	}
	flaky, failing, err := retryFailed([]string{"TestSecond", "TestNever", "TestFirst"}, 3, run)
	require.NoError(t, err)
	assert.Equal(t, []string{"TestSecond", "TestFirst"}, flaky)
	assert.Equal(t, []string{"TestNever"}, failing)
	assert.Equal(t, []string{"TestSecond#1", "TestSecond#2", "TestNever#1", "TestNever#2", "TestNever#3", "TestFirst#1"}, calls, "each test until it passes, at most n times, in order")

	calls = nil
	flaky, failing, err = retryFailed([]string{"TestSecond"}, 1, run)
	require.NoError(t, err)
	assert.Empty(t, flaky)
	assert.Equal(t, []string{"TestSecond"}, failing, "one rerun was not enough")
	assert.Equal(t, []string{"TestSecond#1"}, calls)

	calls = nil
	flaky, failing, err = retryFailed([]string{"TestSecond"}, 0, run)
	require.NoError(t, err)
	assert.Empty(t, flaky)
	assert.Equal(t, []string{"TestSecond"}, failing)
	assert.Empty(t, calls, "no rerun with n = 0")

	flaky, failing, err = retryFailed(nil, 3, run)
	require.NoError(t, err)
	assert.Empty(t, flaky)
	assert.Empty(t, failing)

	broken := errors.New("result channel broken")
	calls = nil
	flaky, failing, err = retryFailed([]string{"TestFirst", "TestSecond", "TestNever"}, 2, func(test string, k int) (bool, error) {
		calls = append(calls, test)
		if test == "TestSecond" {
			return false, broken
		}
		return true, nil
	})
	require.ErrorIs(t, err, broken)
	assert.Equal(t, []string{"TestFirst"}, flaky)
	assert.Empty(t, failing)
	assert.Equal(t, []string{"TestFirst", "TestSecond"}, calls, "the first error stops the reruns")
}

func TestRetryPattern(t *testing.T) {
	for _, c := range []struct {
		test, run, want string
	}{
		{"TestA", "", "^TestA$"},
		{"TestA", "TestA", "^TestA$"},
		{"TestA", "^Test", "^TestA$"},
		{"TestA", "TestA/sub", "^TestA$/sub"},
		{"TestA", "TestA/sub/deeper", "^TestA$/sub/deeper"},
		{"TestA", "TestA/x|TestB/y", "^TestA$/x"},
		{"TestB", "TestA/x|TestB/y", "^TestB$/y"},
		{"TestA", "TestA/x|TestA/y", "^TestA$/x|^TestA$/y"},
		{"TestA", "TestA/x|Test", "^TestA$"}, // an alternative that runs all of TestA wins
		{"TestA", "^(TestA|TestB)$/sub", "^TestA$/sub"},
		{"TestA", "Test[/|]A|TestA/s", "^TestA$/s"},
		{"TestA", `Test\/A|TestA/s`, "^TestA$/s"},
		{"TestA", "TestB", "^TestA$"},
		{"Test_ü", "", "^Test_ü$"},
		{"TestA.b", "", `^TestA\.b$`},
	} {
		got := retryPattern(c.test, c.run)
		assert.Equal(t, c.want, got, "retryPattern(%q, %q)", c.test, c.run)
		// Every level compiles.
		for _, levels := range splitRun(got) {
			for _, l := range levels {
				_, err := regexp.Compile(l)
				assert.NoError(t, err, "%q", got)
			}
		}
	}
}

func TestSplitRun(t *testing.T) {
	assert.Equal(t, [][]string{{""}}, splitRun(""))
	assert.Equal(t, [][]string{{"A"}}, splitRun("A"))
	assert.Equal(t, [][]string{{"A", "b", "c"}}, splitRun("A/b/c"))
	assert.Equal(t, [][]string{{"A", "x"}, {"B"}}, splitRun("A/x|B"))
	assert.Equal(t, [][]string{{"(A|B)", "x"}}, splitRun("(A|B)/x"))
	assert.Equal(t, [][]string{{"[/|]", "x"}}, splitRun("[/|]/x"))
	assert.Equal(t, [][]string{{`A\/B`, "x"}}, splitRun(`A\/B/x`))
	assert.Equal(t, [][]string{{"]A", "x"}}, splitRun("]A/x"), "an unmatched ] is a literal")
}

func TestRetryArgs(t *testing.T) {
	assert.Equal(t, []string{"-test.count=3", "-test.run=^TestA$/sub"}, retryArgs([]string{"-test.run=TestA/sub", "-test.count=3"}, "TestA"))
	assert.Equal(t, []string{"-test.run=^TestA$"}, retryArgs(nil, "TestA"))
}

func TestTally(t *testing.T) {
	var tl tally
	for _, te := range []event.TestEvent{
		{Action: "start"},
		{Action: "run", Test: "TestA"},
		{Action: "fail", Test: "TestA/sub"},
		{Action: "fail", Test: "TestA"},
		{Action: "pass", Test: "TestB"},
		{Action: "skip", Test: "TestC"},
		{Action: "fail", Test: "TestD"},
		{Action: "pass", Test: "TestD"}, // -test.count=2
		{Action: "fail", Test: "TestA"}, // -test.count=2: once in failed
		{Action: "fail"},
	} {
		tl.add(te)
	}
	assert.Equal(t, []string{"TestA", "TestD"}, tl.failed, "top-level tests, in order, once each")
	assert.True(t, tl.passed("TestB"))
	assert.False(t, tl.passed("TestC"), "a skip is not a pass")
	assert.False(t, tl.passed("TestD"), "a pass after a fail in the same run is not a pass")
	assert.False(t, tl.passed("TestA"))
	assert.False(t, tl.passed("TestNone"))
}

// attempt is one run of a binary in a retry test: its Retry (nil for the
// first run) and what it produced.
type attempt struct {
	retry *event.Retry
	run1
}

// attempts splits events as split does, with each run's Retry.
func attempts(t *testing.T, events []event.Event) []attempt {
	t.Helper()
	var retries []*event.Retry
	for _, e := range events {
		if e.Kind == event.KindBinaryStart {
			retries = append(retries, e.Retry)
		}
	}
	runs := split(t, events)
	require.Len(t, runs, len(retries))
	out := make([]attempt, len(runs))
	for i := range runs {
		out[i] = attempt{retries[i], runs[i]}
	}
	return out
}

func TestRunnerRetriesFailedTests(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	flaky := f.binary("flaky")
	events, log, err := run(t, f, &contract.Manifest{
		Binaries: []contract.Binary{flaky},
		Timeout:  contract.Duration(time.Minute),
		Retry:    2,
		Env:      map[string]string{"FLAKY_MARKER": filepath.Join(t.TempDir(), "marker")},
	})
	require.NoError(t, err)
	runs := attempts(t, events)
	require.Len(t, runs, 4, "the first run, one rerun of TestFlaky, two of TestAlwaysFails")

	first := runs[0]
	assert.Nil(t, first.retry)
	assert.Equal(t, map[string]string{"TestPasses": "pass", "TestFlaky": "fail", "TestAlwaysFails": "fail", "TestAlwaysFails/sub": "fail", "TestAlwaysFails/other": "pass", "": "fail"}, results(first.tests))
	assert.Contains(t, output(first.tests), "failing on the first run")
	assert.Equal(t, 1, first.exit.Code)

	assert.Equal(t, &event.Retry{Test: "TestFlaky", Attempt: 1, Of: 2}, runs[1].retry)
	assert.Equal(t, map[string]string{"TestFlaky": "pass", "": "pass"}, results(runs[1].tests), "only TestFlaky runs again")
	assert.Contains(t, output(runs[1].tests), "passing on a later run")
	assert.Equal(t, 0, runs[1].exit.Code)

	for k, r := range runs[2:] {
		assert.Equal(t, &event.Retry{Test: "TestAlwaysFails", Attempt: k + 1, Of: 2}, r.retry)
		assert.Equal(t, map[string]string{"TestAlwaysFails": "fail", "TestAlwaysFails/sub": "fail", "TestAlwaysFails/other": "pass", "": "fail"}, results(r.tests))
		assert.Equal(t, 1, r.exit.Code)
		assert.False(t, r.exit.TimedOut)
		assert.Greater(t, r.exit.Seconds, 0.0)
	}
	for _, r := range runs {
		assert.Equal(t, flaky.Package, r.pkg)
		assert.Empty(t, r.errors)
	}

	assert.Contains(t, log, "landlock-vmtest: retrying "+flaky.Package+" TestFlaky (retry 1 of 2, timeout 1m0s)")
	assert.Contains(t, log, "landlock-vmtest: "+flaky.Package+" TestFlaky: retry 1 of 2 passed: exit status 0 after")
	assert.Contains(t, log, "landlock-vmtest: "+flaky.Package+" TestAlwaysFails: retry 2 of 2 failed: exit status 1 after")
	assert.Contains(t, log, "landlock-vmtest: "+flaky.Package+": flaky (failed, then passed on a retry): TestFlaky\n")
	assert.Contains(t, log, "landlock-vmtest: "+flaky.Package+": failed on every retry: TestAlwaysFails\n")
}

// The rerun keeps RUN='s choice of subtests.
func TestRunnerRetryKeepsRunSubtests(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	events, _, err := run(t, f, &contract.Manifest{
		Binaries: []contract.Binary{f.binary("flaky")},
		Timeout:  contract.Duration(time.Minute),
		Args:     []string{"-test.run=^TestAlwaysFails$/^sub$"},
		Retry:    1,
	})
	require.NoError(t, err)
	runs := attempts(t, events)
	require.Len(t, runs, 2)
	want := map[string]string{"TestAlwaysFails": "fail", "TestAlwaysFails/sub": "fail", "": "fail"}
	assert.Equal(t, want, results(runs[0].tests))
	assert.Equal(t, &event.Retry{Test: "TestAlwaysFails", Attempt: 1, Of: 1}, runs[1].retry)
	assert.Equal(t, want, results(runs[1].tests), "the rerun leaves out the subtest RUN= left out")
}

// Without Retry nothing runs again: the events are those of one run.
func TestRunnerNoRetry(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	events, log, err := run(t, f, &contract.Manifest{
		Binaries: []contract.Binary{f.binary("flaky")},
		Timeout:  contract.Duration(time.Minute),
		Env:      map[string]string{"FLAKY_MARKER": filepath.Join(t.TempDir(), "marker")},
	})
	require.NoError(t, err)
	runs := attempts(t, events)
	require.Len(t, runs, 1)
	assert.Nil(t, runs[0].retry)
	assert.Equal(t, "fail", results(runs[0].tests)["TestFlaky"])
	assert.NotContains(t, log, "retry")
	for _, e := range events {
		assert.Nil(t, e.Retry)
	}
}

// A binary that crashed (here: timed out) after a test failed is not run
// again: no rerun makes a crash good.
func TestRunnerNoRetryAfterCrash(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	hangs := f.binary("hangs")
	events, log, err := run(t, f, &contract.Manifest{
		Binaries: []contract.Binary{hangs},
		Timeout:  contract.Duration(2 * time.Second),
		Retry:    2,
	})
	require.NoError(t, err)
	runs := attempts(t, events)
	require.Len(t, runs, 1)
	assert.True(t, runs[0].exit.TimedOut)
	assert.Equal(t, "fail", results(runs[0].tests)["TestFails"])
	assert.Contains(t, log, "landlock-vmtest: "+hangs.Package+": not retrying its failed tests: the binary timed out after")
	assert.False(t, strings.Contains(log, "retrying "+hangs.Package))
}
