package results

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// tev makes a test2json record of binary by hand.
func tev(binary, action, test, output string) event.Event {
	return event.Event{
		Kind:   event.KindTest,
		Binary: binary,
		Test:   &event.TestEvent{Action: action, Package: binary, Test: test, Output: output},
	}
}

// passingPackage is the stream of a small package whose tests all pass.
func passingPackage(binary string) []event.Event {
	return []event.Event{
		tev(binary, "start", "", ""),
		tev(binary, "run", "TestOK", ""),
		tev(binary, "output", "TestOK", "=== RUN   TestOK\n"),
		tev(binary, "output", "TestOK", "--- PASS: TestOK (0.00s)\n"),
		tev(binary, "pass", "TestOK", ""),
		tev(binary, "output", "", "PASS\n"),
		tev(binary, "pass", "", ""),
	}
}

func TestSavedFixture(t *testing.T) {
	evs := savedFixture(t)
	r := collect(true, runBinary(fixtureBinary, evs, &event.Exit{Code: 1, Seconds: 0.5})).Report()
	checkFixtureReport(t, r)
	assert.True(t, r.Packages[0].Finished)
	assert.Equal(t, 1, r.Packages[0].ExitCode)
	assert.Equal(t, map[string]string{"kernel": "6.99.0-test"}, r.Guest)
}

func TestBareTest2JSONStream(t *testing.T) {
	// Saved `go test -json` output, with no binary-start or binary-end.
	evs := savedFixture(t)
	r := collect(true, evs).Report()
	checkFixtureReport(t, r)
	assert.True(t, r.Packages[0].Finished)
	pkgResult := evs[len(evs)-1].Test
	require.Equal(t, "fail", pkgResult.Action)
	assert.Greater(t, pkgResult.Elapsed, 0.0)
	assert.Equal(t, pkgResult.Elapsed, r.Packages[0].Seconds, "package elapsed from test2json")
}

func TestKilledBySignalMidTest(t *testing.T) {
	c := NewCollector()
	for _, ev := range runBinary(fixtureBinary, cutAfterRun(t, savedFixture(t), "TestFail"), nil) {
		c.Add(ev)
	}
	require.Equal(t, "fixture TestFail", c.Running())

	c.Add(event.Event{Kind: event.KindBinaryEnd, Binary: fixtureBinary, Exit: &event.Exit{Code: -1, Signal: "segmentation fault", Seconds: 1.5}})
	require.Equal(t, "", c.Running())
	c.Finish(true)
	r := c.Report()

	p := findPackage(t, r, fixtureBinary)
	assert.Equal(t, StatusFail, p.Status)
	assert.True(t, p.Crashed)
	assert.Equal(t, "binary killed by signal segmentation fault", p.Reason)
	assert.Equal(t, "segmentation fault", p.Signal)
	assert.Equal(t, -1, p.ExitCode)

	assert.Equal(t, StatusPass, findTest(t, r, fixtureBinary, "TestPass").Status)
	killed := findTest(t, r, fixtureBinary, "TestFail")
	assert.Equal(t, StatusFail, killed.Status)
	assert.Equal(t, "test did not finish: binary killed by signal segmentation fault", killed.Note)
	assert.Equal(t, []string{"=== RUN   TestFail"}, killed.Output)

	for _, tt := range p.Tests {
		assert.NotEqual(t, BinaryTestName, tt.Name, "a failing test already carries the crash")
	}
	assert.Equal(t, 1, r.Passed)
	assert.Equal(t, 1, r.Failed)
	assert.Equal(t, 0, r.Skipped)
	assert.True(t, r.TestsFailed)
	assert.True(t, r.BinaryCrashed)
}

func TestTimedOutMidSubtest(t *testing.T) {
	c := NewCollector()
	for _, ev := range runBinary(fixtureBinary, cutAfterRun(t, savedFixture(t), "TestSub/bad"), nil) {
		c.Add(ev)
	}
	require.Equal(t, "fixture TestSub/bad", c.Running())
	c.Add(event.Event{Kind: event.KindBinaryEnd, Binary: fixtureBinary, Exit: &event.Exit{Code: -1, Signal: "killed", TimedOut: true, Seconds: 30.02}})
	c.Finish(true)
	r := c.Report()

	p := findPackage(t, r, fixtureBinary)
	assert.True(t, p.Crashed)
	assert.True(t, p.TimedOut)
	assert.Equal(t, "binary timed out after 30 s", p.Reason)
	for _, name := range []string{"TestSub", "TestSub/bad"} {
		tt := findTest(t, r, fixtureBinary, name)
		assert.Equal(t, StatusFail, tt.Status, name)
		assert.Equal(t, "test did not finish: binary timed out after 30 s", tt.Note, name)
	}
	assert.Equal(t, StatusPass, findTest(t, r, fixtureBinary, "TestSub/ok").Status)
	assert.Equal(t, StatusFail, findTest(t, r, fixtureBinary, "TestFail").Status)
	assert.Empty(t, findTest(t, r, fixtureBinary, "TestFail").Note)
	// TestPass, TestSub/ok pass; TestFail, TestSub, TestSub/bad fail; TestSkip skips.
	assert.Equal(t, [3]int{2, 3, 1}, [3]int{r.Passed, r.Failed, r.Skipped})
	assert.True(t, r.BinaryCrashed)
	assert.True(t, r.TestsFailed)
}

func TestTimedOutBetweenTests(t *testing.T) {
	evs := passingPackage("example.com/slow")
	evs = evs[:len(evs)-2] // no package result: killed in TestMain after the tests
	r := collect(true, runBinary("example.com/slow", evs, &event.Exit{Code: -1, Signal: "killed", TimedOut: true, Seconds: 60})).Report()

	p := findPackage(t, r, "example.com/slow")
	assert.Equal(t, StatusFail, p.Status)
	assert.True(t, p.Crashed)
	assert.Equal(t, "binary timed out after 60 s", p.Reason)
	crash := findTest(t, r, "example.com/slow", BinaryTestName)
	assert.Equal(t, StatusFail, crash.Status)
	assert.Equal(t, "binary timed out after 60 s", crash.Note)
	assert.Equal(t, [3]int{1, 1, 0}, [3]int{r.Passed, r.Failed, r.Skipped})
	assert.False(t, r.TestsFailed)
	assert.True(t, r.BinaryCrashed)
}

func TestBinaryStartWithoutEnd(t *testing.T) {
	c := NewCollector()
	for _, ev := range runBinary("example.com/first", passingPackage("example.com/first"), &event.Exit{Seconds: 0.3}) {
		c.Add(ev)
	}
	require.Equal(t, "", c.Running())
	for _, ev := range runBinary(fixtureBinary, cutAfterRun(t, savedFixture(t), "TestSub/ok"), nil) {
		c.Add(ev)
	}
	require.Equal(t, "fixture TestSub/ok", c.Running())
	c.Finish(false) // the guest died: no binary-end, no done marker
	require.Equal(t, "", c.Running())
	r := c.Report()

	first := findPackage(t, r, "example.com/first")
	assert.Equal(t, StatusPass, first.Status)
	assert.False(t, first.Crashed)

	p := findPackage(t, r, fixtureBinary)
	assert.False(t, p.Finished)
	assert.True(t, p.Crashed)
	assert.Equal(t, StatusFail, p.Status)
	assert.Equal(t, "binary did not finish (no binary-end record)", p.Reason)
	for _, name := range []string{"TestSub", "TestSub/ok"} {
		tt := findTest(t, r, fixtureBinary, name)
		assert.Equal(t, StatusFail, tt.Status, name)
		assert.Equal(t, "test did not finish: binary did not end (no binary-end record)", tt.Note, name)
	}
	assert.False(t, r.Complete)
	assert.True(t, r.BinaryCrashed)

	var sum bytes.Buffer
	require.NoError(t, WriteSummary(&sum, r))
	assert.Contains(t, sum.String(), "result stream incomplete")
	assert.Contains(t, sum.String(), "--- FAIL: fixture TestSub/ok")
}

func TestBinaryStartOnlyNoTests(t *testing.T) {
	c := NewCollector()
	c.Add(event.Event{Kind: event.KindBinaryStart, Binary: "example.com/hang"})
	require.Equal(t, "example.com/hang", c.Running())
	r := c.Report()
	p := findPackage(t, r, "example.com/hang")
	assert.True(t, p.Crashed)
	crash := findTest(t, r, "example.com/hang", BinaryTestName)
	assert.Equal(t, "binary did not finish (no binary-end record)", crash.Note)
	assert.Equal(t, 1, r.Failed)
	assert.False(t, r.Complete, "Finish was not called")
}

func TestRunnerErrors(t *testing.T) {
	c := NewCollector()
	c.Add(event.Event{Kind: event.KindError, Error: "no test binaries in /tests"})
	c.Add(event.Event{Kind: event.KindBinaryStart, Binary: "example.com/broken"})
	c.Add(event.Event{Kind: event.KindError, Binary: "example.com/broken", Error: "exec format error"})
	c.Add(event.Event{Kind: event.KindBinaryEnd, Binary: "example.com/broken", Exit: &event.Exit{Code: -1}})
	c.Finish(true)
	r := c.Report()

	assert.Equal(t, []string{"no test binaries in /tests"}, r.Errors)
	p := findPackage(t, r, "example.com/broken")
	assert.True(t, p.Crashed)
	assert.Equal(t, []string{"exec format error"}, p.Errors)
	assert.Equal(t, "runner error: exec format error; binary exited with status -1 but no test failed", p.Reason)
	assert.Equal(t, StatusFail, findTest(t, r, "example.com/broken", BinaryTestName).Status)
	assert.Equal(t, 1, r.Failed)
	assert.True(t, r.BinaryCrashed)

	var sum bytes.Buffer
	require.NoError(t, WriteSummary(&sum, r))
	assert.Contains(t, sum.String(), "runner error: no test binaries in /tests\n")
}

func TestSkippedPackage(t *testing.T) {
	const pkg = "example.com/notests"
	evs := []event.Event{
		tev(pkg, "start", "", ""),
		tev(pkg, "output", "", "?   \texample.com/notests\t[no test files]\n"),
		tev(pkg, "skip", "", ""),
	}
	r := collect(true, runBinary(pkg, evs, &event.Exit{Code: 0})).Report()
	p := findPackage(t, r, pkg)
	assert.Equal(t, StatusSkip, p.Status)
	assert.False(t, p.Crashed)
	assert.Empty(t, p.Tests)
	assert.Equal(t, [3]int{0, 0, 0}, [3]int{r.Passed, r.Failed, r.Skipped})
	assert.False(t, r.TestsFailed)
	assert.False(t, r.BinaryCrashed)
}

func TestPackagesSortedByName(t *testing.T) {
	r := collect(true,
		runBinary("z.example/last", passingPackage("z.example/last"), &event.Exit{}),
		runBinary("a.example/first", passingPackage("a.example/first"), &event.Exit{}),
		runBinary("m.example/middle", passingPackage("m.example/middle"), &event.Exit{}),
	).Report()
	var names []string
	for _, p := range r.Packages {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"a.example/first", "m.example/middle", "z.example/last"}, names)
	assert.Equal(t, 3, r.Passed)
}

func TestRunningParallelTests(t *testing.T) {
	const pkg = "example.com/par"
	c := NewCollector()
	add := func(evs ...event.Event) {
		for _, ev := range evs {
			c.Add(ev)
		}
	}
	add(event.Event{Kind: event.KindBinaryStart, Binary: pkg})
	assert.Equal(t, pkg, c.Running())
	add(tev(pkg, "run", "TestP1", ""), tev(pkg, "pause", "TestP1", ""))
	add(tev(pkg, "run", "TestP2", ""), tev(pkg, "pause", "TestP2", ""))
	assert.Equal(t, pkg+" TestP2", c.Running())
	add(tev(pkg, "cont", "TestP1", ""))
	assert.Equal(t, pkg+" TestP1", c.Running())
	add(tev(pkg, "pass", "TestP1", ""))
	assert.Equal(t, pkg+" TestP2", c.Running())
	add(tev(pkg, "cont", "TestP2", ""), tev(pkg, "fail", "TestP2", ""))
	assert.Equal(t, pkg, c.Running())
	add(event.Event{Kind: event.KindBinaryEnd, Binary: pkg, Exit: &event.Exit{Code: 1}})
	assert.Equal(t, "", c.Running())
}

// Binaries side by side (SMP): Running names each running binary, in the
// order they started, and each binary's interleaved events stay its own.
func TestRunningBinariesSideBySide(t *testing.T) {
	const a, b = "example.com/a", "example.com/b"
	c := NewCollector()
	add := func(evs ...event.Event) {
		for _, ev := range evs {
			c.Add(ev)
		}
	}
	add(event.Event{Kind: event.KindBinaryStart, Binary: a}, tev(a, "run", "TestA", ""))
	add(event.Event{Kind: event.KindBinaryStart, Binary: b})
	assert.Equal(t, a+" TestA or "+b, c.Running())
	add(tev(b, "run", "TestB", ""), tev(a, "output", "TestA", "from a\n"), tev(b, "fail", "TestB", ""))
	assert.Equal(t, a+" TestA or "+b, c.Running())
	add(tev(a, "pass", "TestA", ""), tev(a, "pass", "", ""), event.Event{Kind: event.KindBinaryEnd, Binary: a, Exit: &event.Exit{}})
	assert.Equal(t, b, c.Running())
	add(tev(b, "fail", "", ""), event.Event{Kind: event.KindBinaryEnd, Binary: b, Exit: &event.Exit{Code: 1}})
	assert.Equal(t, "", c.Running())
	c.Finish(true)
	r := c.Report()
	pa, pb := findPackage(t, r, a), findPackage(t, r, b)
	require.Len(t, pa.Tests, 1)
	assert.Equal(t, StatusPass, pa.Tests[0].Status)
	assert.Contains(t, pa.Tests[0].Output, "from a")
	require.Len(t, pb.Tests, 1)
	assert.Equal(t, StatusFail, pb.Tests[0].Status)
	assert.Equal(t, 1, r.Passed)
	assert.Equal(t, 1, r.Failed)
}

func TestRepeatedRunKeepsFailure(t *testing.T) {
	const pkg = "example.com/flaky"
	evs := []event.Event{
		tev(pkg, "run", "TestFlaky", ""), tev(pkg, "fail", "TestFlaky", ""),
		tev(pkg, "run", "TestFlaky", ""), tev(pkg, "pass", "TestFlaky", ""),
		tev(pkg, "fail", "", ""),
	}
	r := collect(true, runBinary(pkg, evs, &event.Exit{Code: 1})).Report()
	assert.Equal(t, StatusFail, findTest(t, r, pkg, "TestFlaky").Status)
	assert.Equal(t, 1, r.Failed)
	assert.False(t, r.BinaryCrashed)
}

func TestRunningIsSafeConcurrently(t *testing.T) {
	c := NewCollector()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	seen := make(map[string]bool)
	go func() {
		defer wg.Done()
		for {
			seen[c.Running()] = true
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	for i := range 200 {
		pkg := fmt.Sprintf("example.com/p%03d", i)
		for _, ev := range runBinary(pkg, passingPackage(pkg), &event.Exit{}) {
			c.Add(ev)
		}
	}
	close(stop)
	wg.Wait()
	assert.NotEmpty(t, seen)
	assert.Len(t, c.Events(), 200*9)
	assert.Equal(t, 200, c.Report().Passed)
}
