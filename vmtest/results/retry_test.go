package results

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// The streams of RETRY=: after the binary's first run, each rerun of a
// failed top-level test is a binary-start naming it (event.Retry), the
// rerun's test events, and a binary-end.

const flakyPkg = "example.com/flaky"

// rerun wraps test2json events into the records of the k-th rerun (of
// of) of test.
func rerun(binary, test string, k, of int, events []event.Event, exit *event.Exit) []event.Event {
	out := runBinary(binary, events, exit)
	out[0].Retry = &event.Retry{Test: test, Attempt: k, Of: of}
	return out
}

// result is the events of one test's run, from "run" to its result,
// with its output lines.
func result(binary, test, action string, output ...string) []event.Event {
	evs := []event.Event{tev(binary, "run", test, ""), tev(binary, "output", test, "=== RUN   "+test+"\n")}
	for _, o := range output {
		evs = append(evs, tev(binary, "output", test, o+"\n"))
	}
	return append(evs, tev(binary, action, test, ""))
}

func concat(parts ...[]event.Event) []event.Event {
	var out []event.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// flakyRun is a binary whose TestFlaky fails, then passes on its first
// retry, whose TestSub fails (through TestSub/a) on the first run and
// the first retry and passes on the second, and whose TestOK passes.
func flakyRun() []event.Event {
	b := flakyPkg
	first := concat(
		[]event.Event{tev(b, "start", "", "")},
		result(b, "TestOK", "pass"),
		result(b, "TestFlaky", "fail", "    flaky_test.go:9: failing on the first run"),
		[]event.Event{tev(b, "run", "TestSub", "")},
		result(b, "TestSub/a", "fail", "    flaky_test.go:20: a failed"),
		result(b, "TestSub/b", "pass"),
		[]event.Event{tev(b, "fail", "TestSub", ""), tev(b, "output", "", "FAIL\n"), tev(b, "fail", "", "")},
	)
	again := func(a string) []event.Event {
		evs := concat([]event.Event{tev(b, "start", "", ""), tev(b, "run", "TestSub", "")}, result(b, "TestSub/a", a), result(b, "TestSub/b", "pass"))
		return append(evs, tev(b, a, "TestSub", ""), tev(b, a, "", ""))
	}
	return concat(
		runBinary(b, first, &event.Exit{Code: 1, Seconds: 0.5}),
		rerun(b, "TestFlaky", 1, 2, concat(result(b, "TestFlaky", "pass", "    flaky_test.go:12: passing now"), []event.Event{tev(b, "output", "", "PASS\n"), tev(b, "pass", "", "")}), &event.Exit{Seconds: 0.25}),
		rerun(b, "TestSub", 1, 2, again("fail"), &event.Exit{Code: 1, Seconds: 0.25}),
		rerun(b, "TestSub", 2, 2, again("pass"), &event.Exit{Seconds: 0.25}),
	)
}

func TestRetryFlaky(t *testing.T) {
	r := collect(true, flakyRun()).Report()
	p := findPackage(t, r, flakyPkg)
	assert.Equal(t, StatusPass, p.Status)
	assert.False(t, p.Crashed, p.Reason)
	assert.Empty(t, p.Reason, "the first run's exit status 1 is its flaky tests'")
	assert.Equal(t, 1, p.ExitCode, "the binary's exit is its first run's")
	assert.InDelta(t, 1.25, p.Seconds, 1e-9, "the first run and the reruns")

	want := map[string]Status{"TestOK": StatusPass, "TestFlaky": StatusFlaky, "TestSub": StatusFlaky, "TestSub/a": StatusFlaky, "TestSub/b": StatusPass}
	var names []string
	for _, tt := range p.Tests {
		names = append(names, tt.Name)
		assert.Equal(t, want[tt.Name], tt.Status, tt.Name)
	}
	assert.Equal(t, []string{"TestOK", "TestFlaky", "TestSub", "TestSub/a", "TestSub/b"}, names, "each test once, reruns and all")

	assert.Equal(t, [4]int{5, 0, 0, 3}, [4]int{r.Passed, r.Failed, r.Skipped, r.Flaky}, "flaky tests count as passed, and apart")
	assert.Equal(t, [4]int{5, 0, 0, 3}, [4]int{p.Passed, p.Failed, p.Skipped, p.Flaky})
	assert.False(t, r.TestsFailed)
	assert.False(t, r.BinaryCrashed)

	fl := findTest(t, r, flakyPkg, "TestFlaky")
	assert.Equal(t, "flaky: failed in 1 of 2 runs, then passed on retry 1", fl.Note)
	assert.Equal(t, []string{
		"=== RUN   TestFlaky", "    flaky_test.go:9: failing on the first run",
		"=== RETRY TestFlaky (retry 1 of 2)",
		"=== RUN   TestFlaky", "    flaky_test.go:12: passing now",
	}, fl.Output, "the failed run's output stays")
	assert.Equal(t, []Attempt{
		{Run: 1, Status: StatusFail, Output: []string{"=== RUN   TestFlaky", "    flaky_test.go:9: failing on the first run"}},
		{Run: 2, Status: StatusPass, Output: []string{"=== RUN   TestFlaky", "    flaky_test.go:12: passing now"}},
	}, fl.Attempts)

	sub := findTest(t, r, flakyPkg, "TestSub")
	assert.Equal(t, "flaky: failed in 2 of 3 runs, then passed on retry 2", sub.Note)
	require.Len(t, sub.Attempts, 3)
	a := findTest(t, r, flakyPkg, "TestSub/a")
	assert.Equal(t, []Status{StatusFail, StatusFail, StatusPass}, []Status{a.Attempts[0].Status, a.Attempts[1].Status, a.Attempts[2].Status})
	b := findTest(t, r, flakyPkg, "TestSub/b")
	assert.Len(t, b.Attempts, 3, "a subtest runs in each rerun of its test")
	assert.Empty(t, b.Note)
	assert.Empty(t, findTest(t, r, flakyPkg, "TestOK").Attempts, "a test not run again has no attempts")

	assert.Equal(t, []string{"FAIL", "=== RETRY TestFlaky (retry 1 of 2)", "PASS", "=== RETRY TestSub (retry 1 of 2)", "=== RETRY TestSub (retry 2 of 2)"}, p.Output)
	assert.Len(t, r.FlakyTests(), 3)
}

func TestRetryFailsEveryTime(t *testing.T) {
	b := flakyPkg
	fail := func() []event.Event { return result(b, "TestBad", "fail", "    bad_test.go:3: bad") }
	r := collect(true,
		runBinary(b, concat(result(b, "TestOK", "pass"), fail()), &event.Exit{Code: 1, Seconds: 0.1}),
		rerun(b, "TestBad", 1, 2, fail(), &event.Exit{Code: 1, Seconds: 0.1}),
		rerun(b, "TestBad", 2, 2, fail(), &event.Exit{Code: 1, Seconds: 0.1}),
	).Report()
	p := findPackage(t, r, b)
	assert.Equal(t, StatusFail, p.Status)
	assert.False(t, p.Crashed, p.Reason)
	bad := findTest(t, r, b, "TestBad")
	assert.Equal(t, StatusFail, bad.Status)
	assert.Equal(t, "failed in every run: the first and 2 retry(s)", bad.Note)
	assert.Len(t, bad.Attempts, 3)
	assert.Equal(t, 3, strings.Count(strings.Join(bad.Output, "\n"), "bad_test.go:3: bad"), "every run's output")
	assert.Equal(t, [4]int{1, 1, 0, 0}, [4]int{r.Passed, r.Failed, r.Skipped, r.Flaky}, "a test run three times counts once")
	assert.True(t, r.TestsFailed)
}

// A subtest that fails, passes, then fails again is not said to have
// failed every time.
func TestRetryFailsAgainAfterAPass(t *testing.T) {
	b := flakyPkg
	run := func(sub, top string) []event.Event {
		return concat([]event.Event{tev(b, "run", "TestT", "")}, result(b, "TestT/s", sub), []event.Event{tev(b, top, "TestT", "")})
	}
	r := collect(true,
		runBinary(b, run("fail", "fail"), &event.Exit{Code: 1}),
		rerun(b, "TestT", 1, 2, concat([]event.Event{tev(b, "run", "TestT", "")}, result(b, "TestT/s", "pass"), result(b, "TestT/u", "fail"), []event.Event{tev(b, "fail", "TestT", "")}), &event.Exit{Code: 1}),
		rerun(b, "TestT", 2, 2, run("fail", "fail"), &event.Exit{Code: 1}),
	).Report()
	assert.Equal(t, "failed in 2 of 3 runs, the last one too", findTest(t, r, b, "TestT/s").Note)
	assert.Equal(t, "failed in every run: the first and 2 retry(s)", findTest(t, r, b, "TestT").Note)
	u := findTest(t, r, b, "TestT/u")
	assert.Equal(t, StatusFail, u.Status, "a subtest first seen in a rerun, which it failed")
	assert.Empty(t, u.Attempts)
	assert.Equal(t, [4]int{0, 3, 0, 0}, [4]int{r.Passed, r.Failed, r.Skipped, r.Flaky})
}

// Only a pass makes a failed test flaky: one that skips on its retry
// stays failed.
func TestRetrySkipIsNotAPass(t *testing.T) {
	b := flakyPkg
	r := collect(true,
		runBinary(b, result(b, "TestX", "fail", "    x_test.go:3: failed"), &event.Exit{Code: 1}),
		rerun(b, "TestX", 1, 1, result(b, "TestX", "skip", "    x_test.go:5: no device"), &event.Exit{}),
	).Report()
	x := findTest(t, r, b, "TestX")
	assert.Equal(t, StatusFail, x.Status)
	assert.Equal(t, "failed, then skipped on retry 1 (a skip is not a pass): x_test.go:5: no device", x.Note)
	assert.Equal(t, [4]int{0, 1, 0, 0}, [4]int{r.Passed, r.Failed, r.Skipped, r.Flaky})
}

// With -test.count=N a run passes only if every one of its N runs of the
// test does; a rerun's runs do not carry the first run's failure.
func TestRetryWithCount(t *testing.T) {
	b := flakyPkg
	r := collect(true,
		runBinary(b, concat(result(b, "TestC", "pass"), result(b, "TestC", "fail")), &event.Exit{Code: 1}),
		rerun(b, "TestC", 1, 1, concat(result(b, "TestC", "pass"), result(b, "TestC", "pass")), &event.Exit{}),
	).Report()
	c := findTest(t, r, b, "TestC")
	assert.Equal(t, StatusFlaky, c.Status)
	assert.Equal(t, []Status{StatusFail, StatusPass}, []Status{c.Attempts[0].Status, c.Attempts[1].Status})
}

// A failed subtest its test's passing rerun did not run again failed as
// part of the test: it is flaky too.
func TestRetryStaleSubtest(t *testing.T) {
	b := flakyPkg
	first := concat([]event.Event{tev(b, "run", "TestS", "")}, result(b, "TestS/once", "fail"), []event.Event{tev(b, "fail", "TestS", "")})
	r := collect(true,
		runBinary(b, first, &event.Exit{Code: 1}),
		rerun(b, "TestS", 1, 1, result(b, "TestS", "pass"), &event.Exit{}),
	).Report()
	assert.Equal(t, StatusFlaky, findTest(t, r, b, "TestS").Status)
	once := findTest(t, r, b, "TestS/once")
	assert.Equal(t, StatusFlaky, once.Status)
	assert.Equal(t, "flaky: failed as part of TestS, which then passed on a retry", once.Note)
	assert.Equal(t, 0, r.Failed)
}

// A rerun that crashes is a crash of the binary, and its test did not
// finish.
func TestRetryTimesOut(t *testing.T) {
	b := flakyPkg
	r := collect(true,
		runBinary(b, result(b, "TestX", "fail"), &event.Exit{Code: 1, Seconds: 1}),
		rerun(b, "TestX", 1, 1, []event.Event{tev(b, "run", "TestX", ""), tev(b, "output", "TestX", "=== RUN   TestX\n")}, &event.Exit{Code: 2, TimedOut: true, Seconds: 60}),
	).Report()
	p := findPackage(t, r, b)
	assert.True(t, p.Crashed)
	assert.Equal(t, "retry 1 of TestX: binary timed out after 60 s", p.Reason)
	assert.False(t, p.TimedOut, "the first run did not time out")
	x := findTest(t, r, b, "TestX")
	assert.Equal(t, StatusFail, x.Status)
	assert.Equal(t, "test did not finish: binary timed out after 60 s", x.Note)
	assert.Equal(t, "test did not finish: binary timed out after 60 s", x.Attempts[1].Note)
	assert.True(t, r.BinaryCrashed)
}

// The guest died during a rerun: the binary did not finish.
func TestRetryNeverEnds(t *testing.T) {
	b := flakyPkg
	r := collect(false,
		runBinary(b, result(b, "TestX", "fail"), &event.Exit{Code: 1}),
		rerun(b, "TestX", 1, 2, []event.Event{tev(b, "run", "TestX", "")}, nil),
	).Report()
	p := findPackage(t, r, b)
	assert.False(t, p.Finished)
	assert.True(t, p.Crashed)
	assert.Equal(t, "retry 1 of TestX did not finish (no binary-end record)", p.Reason)
	assert.Equal(t, "test did not finish: binary did not end (no binary-end record)", findTest(t, r, b, "TestX").Note)
}

// A rerun that exits non-zero although its test passed is a crash.
func TestRetryPassesButExitsNonZero(t *testing.T) {
	b := flakyPkg
	r := collect(true,
		runBinary(b, result(b, "TestX", "fail"), &event.Exit{Code: 1}),
		rerun(b, "TestX", 1, 1, result(b, "TestX", "pass"), &event.Exit{Code: 3}),
	).Report()
	p := findPackage(t, r, b)
	assert.True(t, p.Crashed)
	assert.Equal(t, "retry 1 of TestX: binary exited with status 3 but the test passed", p.Reason)
	assert.Equal(t, StatusFlaky, findTest(t, r, b, "TestX").Status)
	assert.Contains(t, findPackage(t, r, b).Tests[len(p.Tests)-1].Name, BinaryTestName, "the crash is a failure of its own")
}

// Real `go test -json` reruns of the fixture's failing tests: they fail
// again, and every test is still counted once.
func TestRealRetriesCountOnce(t *testing.T) {
	t.Parallel()
	again := func(test string) []event.Event {
		return parseFixture(t, runFixture(t, nil, "-run", "^"+test+"$"))
	}
	r := collect(true,
		runBinary(fixtureBinary, savedFixture(t), &event.Exit{Code: 1, Seconds: 0.2}),
		rerun(fixtureBinary, "TestFail", 1, 1, again("TestFail"), &event.Exit{Code: 1, Seconds: 0.1}),
		rerun(fixtureBinary, "TestSub", 1, 1, again("TestSub"), &event.Exit{Code: 1, Seconds: 0.1}),
	).Report()
	want := map[string]Status{
		"TestPass": StatusPass, "TestFail": StatusFail, "TestSkip": StatusSkip,
		"TestSub": StatusFail, "TestSub/ok": StatusPass, "TestSub/bad": StatusFail, "TestSub/skipped": StatusSkip,
	}
	p := findPackage(t, r, fixtureBinary)
	require.Len(t, p.Tests, len(want))
	for _, tt := range p.Tests {
		assert.Equal(t, want[tt.Name], tt.Status, tt.Name)
	}
	assert.False(t, p.Crashed, p.Reason)
	assert.Equal(t, [4]int{2, 3, 2, 0}, [4]int{r.Passed, r.Failed, r.Skipped, r.Flaky}, "as for one run")
	for _, name := range []string{"TestFail", "TestSub", "TestSub/ok", "TestSub/bad", "TestSub/skipped"} {
		assert.Len(t, findTest(t, r, fixtureBinary, name).Attempts, 2, name)
	}
	assert.Empty(t, findTest(t, r, fixtureBinary, "TestPass").Attempts)
	assert.Equal(t, StatusSkip, findTest(t, r, fixtureBinary, "TestSub/skipped").Status, "skipped every time: skipped")
	assert.Equal(t, "failed in every run: the first and 1 retry(s)", findTest(t, r, fixtureBinary, "TestFail").Note)
}

func TestRetrySummary(t *testing.T) {
	r := collect(true, flakyRun()).Report()
	var buf bytes.Buffer
	require.NoError(t, WriteSummary(&buf, r))
	out := buf.String()
	t.Logf("summary:\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	assert.Equal(t, "5 passed, 0 failed, 0 skipped", lines[len(lines)-1], "the closing line keeps its three counts")
	assert.Equal(t, "3 flaky (failed, then passed on a retry; counted as passed): "+flakyPkg+" TestFlaky, "+flakyPkg+" TestSub, "+flakyPkg+" TestSub/a", lines[len(lines)-2])
	assert.Regexp(t, `^ok\s+example\.com/flaky\s+5 passed \(3 flaky\), 0 failed, 0 skipped\s+1\.25s$`, lines[0])
	assert.Contains(t, out, "\nFlaky tests (failed, then passed on a retry; counted as passed):\n--- FLAKY: "+flakyPkg+" TestFlaky (0.00s)\n"+
		"    note: flaky: failed in 1 of 2 runs, then passed on retry 1\n    run 1 failed:\n    === RUN   TestFlaky\n        flaky_test.go:9: failing on the first run\n")
	assert.NotContains(t, out, "Failed tests")

	buf.Reset()
	PrintEnd(&buf, Metadata{ExitReason: "all tests passed"}, r, "out", nil)
	lines = strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	assert.Equal(t, "5 passed, 0 failed, 0 skipped", lines[len(lines)-1])
	assert.True(t, strings.HasPrefix(lines[len(lines)-2], "3 flaky (failed, then passed on a retry; counted as passed): "), lines[len(lines)-2])
	assert.Equal(t, "results in out", lines[len(lines)-3])
}

func TestRetryJUnit(t *testing.T) {
	b := flakyPkg
	r := collect(true, flakyRun(),
		runBinary("example.com/bad", result("example.com/bad", "TestBad", "fail", "bad 1"), &event.Exit{Code: 1}),
		rerun("example.com/bad", "TestBad", 1, 1, result("example.com/bad", "TestBad", "fail", "bad 2"), &event.Exit{Code: 1}),
	).Report()
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, r))
	t.Logf("JUnit:\n%s", buf.String())
	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &doc))
	assert.Equal(t, 6, doc.Tests)
	assert.Equal(t, 1, doc.Failures, "flaky tests are not failures")
	cases := map[string]JUnitTestCase{}
	for _, s := range doc.Suites {
		for _, c := range s.TestCases {
			cases[c.Name] = c
		}
		if s.Name == b {
			assert.Equal(t, 0, s.Failures)
			assert.Equal(t, 5, s.Tests)
		}
	}
	fl := cases["TestFlaky"]
	assert.Nil(t, fl.Failure, "a flaky test is a passing test case")
	assert.Equal(t, []JUnitRerun{{Message: "run 1 of 2 failed", Type: "flaky", SystemOut: "=== RUN   TestFlaky\n    flaky_test.go:9: failing on the first run\n"}}, fl.FlakyFailures)
	assert.Empty(t, fl.RerunFailures)
	assert.Len(t, cases["TestSub"].FlakyFailures, 2)
	assert.Empty(t, cases["TestSub/b"].FlakyFailures)
	assert.Empty(t, cases["TestOK"].FlakyFailures)

	bad := cases["TestBad"]
	require.NotNil(t, bad.Failure)
	assert.Equal(t, "failed in every run: the first and 1 retry(s)", bad.Failure.Message)
	assert.Contains(t, bad.Failure.Text, "bad 1\n=== RETRY TestBad (retry 1 of 1)\n=== RUN   TestBad\nbad 2\n", "every run's output in the failure")
	assert.Equal(t, []JUnitRerun{{Message: "run 2 of 2 failed", Type: "failure"}}, bad.RerunFailures)
	assert.Contains(t, buf.String(), `<flakyFailure message="run 1 of 2 failed" type="flaky">`)
}

func TestRetryJSON(t *testing.T) {
	r := collect(true, flakyRun()).Report()
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, Metadata{}, r, nil))
	var doc Document
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	assert.Equal(t, 3, doc.Summary.Flaky)
	assert.Equal(t, 5, doc.Summary.Passed)
	p := doc.Packages[0]
	assert.Equal(t, 3, p.Flaky)
	var raw struct {
		Packages []struct {
			Tests []map[string]any `json:"tests"`
		} `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &raw))
	for _, tc := range raw.Packages[0].Tests {
		if tc["name"] == "TestFlaky" {
			assert.Equal(t, "flaky", tc["status"])
			assert.Len(t, tc["attempts"], 2)
		}
	}
}

// Without reruns nothing of RETRY= shows in the files: no flaky count,
// no attempts, no Surefire rerun elements, no flaky line.
func TestNoRetryLeavesFilesAsTheyWere(t *testing.T) {
	c := mixedRun(t)
	r := c.Report()
	var js, ju, sum bytes.Buffer
	require.NoError(t, WriteJSON(&js, Metadata{}, r, c.Events()))
	require.NoError(t, WriteJUnit(&ju, r))
	require.NoError(t, WriteSummary(&sum, r))
	for _, s := range []string{`"flaky"`, `"attempts"`, `"Retry"`} {
		assert.NotContains(t, js.String(), s)
	}
	assert.NotContains(t, ju.String(), "flakyFailure")
	assert.NotContains(t, ju.String(), "rerunFailure")
	assert.NotContains(t, sum.String(), "flaky")
	assert.NotContains(t, sum.String(), "RETRY")
}
