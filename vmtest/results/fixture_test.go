package results

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// fixtureBinary is the name the fixture package is reported under.
const fixtureBinary = "fixture"

// fixtureGoMod is the go.mod of the throwaway fixture module.
const fixtureGoMod = "module fixture\n\ngo 1.26\n"

// fixtureSource is a tiny test package with a passing, a failing and a
// skipped test and subtests of each kind. With FIXTURE_EXIT=2 in its
// environment its binary exits with status 2 after the tests.
const fixtureSource = `package fixture

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv("FIXTURE_EXIT") == "2" {
		fmt.Println("fixture: exiting with status 2 after the tests")
		os.Exit(2)
	}
	os.Exit(code)
}

func TestPass(t *testing.T) { t.Log("all good") }

func TestFail(t *testing.T) {
	t.Log("first line of output")
	t.Errorf("got %d, want %d", 1, 2)
}

func TestSkip(t *testing.T) { t.Skip("needs landlock ABI 9") }

func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Error("sub failed") })
	t.Run("skipped", func(t *testing.T) { t.Skip("not here") })
}
`

// fixtureTestdata is the saved `go test -json` output of the fixture.
const fixtureTestdata = "testdata/fixture.json"

// runFixture writes the fixture module to a temporary directory, runs
// `go test -json -count=1` there with the extra arguments and environment,
// and returns its standard output. A non-zero exit of go test is expected
// (the fixture has failing tests) and not an error; anything on standard
// error besides that is logged.
func runFixture(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go not on PATH: %v", err)
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(fixtureGoMod), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "fixture_test.go"), []byte(fixtureSource), 0o644))

	cmd := exec.Command(goBin, append([]string{"test", "-json", "-count=1"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOWORK=off")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		require.NoError(t, err, "run go test in the fixture; stderr:\n%s", stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("go test stderr:\n%s", stderr.String())
	}
	require.NotEmpty(t, stdout.Bytes(), "go test -json printed nothing; stderr:\n%s", stderr.String())
	return stdout.Bytes()
}

// runBinary wraps test2json events into the records the guest runner sends
// for one binary: binary-start, the events, then binary-end with exit (none
// when exit is nil, as when the guest died).
func runBinary(binary string, events []event.Event, exit *event.Exit) []event.Event {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	out := []event.Event{{Kind: event.KindBinaryStart, Time: start, Binary: binary}}
	out = append(out, events...)
	if exit != nil {
		end := start.Add(time.Duration(exit.Seconds * float64(time.Second)))
		if n := len(events); n > 0 && events[n-1].Time.After(start) {
			end = events[n-1].Time.Add(time.Duration(exit.Seconds * float64(time.Second)))
		}
		out = append(out, event.Event{Kind: event.KindBinaryEnd, Time: end, Binary: binary, Exit: exit})
	}
	return out
}

// collect feeds events to a new Collector, finishes it with doneSeen and
// returns it.
func collect(doneSeen bool, events ...[]event.Event) *Collector {
	c := NewCollector()
	c.Add(event.Event{Kind: event.KindHello, Info: map[string]string{"kernel": "6.99.0-test"}})
	for _, evs := range events {
		for _, ev := range evs {
			c.Add(ev)
		}
	}
	c.Finish(doneSeen)
	return c
}

// parseFixture parses `go test -json` output of the fixture.
func parseFixture(t *testing.T, out []byte) []event.Event {
	t.Helper()
	evs, err := ParseTest2JSON(bytes.NewReader(out), fixtureBinary)
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	return evs
}

// savedFixture returns the events of the saved fixture output.
func savedFixture(t *testing.T) []event.Event {
	t.Helper()
	out, err := os.ReadFile(fixtureTestdata)
	require.NoError(t, err)
	return parseFixture(t, out)
}

// cutAfterRun returns the events up to and including the "run" of test: the
// stream of a binary that died while test ran.
func cutAfterRun(t *testing.T, evs []event.Event, test string) []event.Event {
	t.Helper()
	for i, ev := range evs {
		if ev.Test != nil && ev.Test.Action == "run" && ev.Test.Test == test {
			// Keep the "=== RUN" output line too, as a real stream has.
			if i+1 < len(evs) && evs[i+1].Test.Action == "output" && evs[i+1].Test.Test == test {
				i++
			}
			return slices.Clone(evs[:i+1])
		}
	}
	require.FailNow(t, "no run of "+test+" in the fixture output")
	return nil
}

// findTest returns the named test of the named package in r.
func findTest(t *testing.T, r Report, pkg, test string) Test {
	t.Helper()
	p := findPackage(t, r, pkg)
	for _, tt := range p.Tests {
		if tt.Name == test {
			return tt
		}
	}
	require.FailNow(t, "test not in report", "%s %s", pkg, test)
	return Test{}
}

// findPackage returns the named package of r.
func findPackage(t *testing.T, r Report, pkg string) Package {
	t.Helper()
	for _, p := range r.Packages {
		if p.Name == pkg {
			return p
		}
	}
	require.FailNow(t, "package not in report", pkg)
	return Package{}
}

// checkFixtureReport checks the report of one full run of the fixture.
func checkFixtureReport(t *testing.T, r Report) {
	t.Helper()
	require.Len(t, r.Packages, 1)
	p := r.Packages[0]
	require.Equal(t, fixtureBinary, p.Name)
	require.Equal(t, StatusFail, p.Status)
	require.False(t, p.Crashed, "reason: %s", p.Reason)
	require.Empty(t, p.Reason)

	var names []string
	for _, tt := range p.Tests {
		names = append(names, tt.Name)
	}
	require.Equal(t, []string{"TestPass", "TestFail", "TestSkip", "TestSub", "TestSub/ok", "TestSub/bad", "TestSub/skipped"}, names)

	want := map[string]Status{
		"TestPass": StatusPass, "TestFail": StatusFail, "TestSkip": StatusSkip,
		"TestSub": StatusFail, "TestSub/ok": StatusPass, "TestSub/bad": StatusFail, "TestSub/skipped": StatusSkip,
	}
	for _, tt := range p.Tests {
		require.Equal(t, want[tt.Name], tt.Status, tt.Name)
	}

	fail := findTest(t, r, fixtureBinary, "TestFail")
	require.Contains(t, fail.Output, "    fixture_test.go:22: got 1, want 2")
	require.Contains(t, fail.Output, "--- FAIL: TestFail (0.00s)")
	require.Empty(t, fail.Note)
	require.NotContains(t, fail.Output, "    fixture_test.go:18: all good", "output of another test leaked in")

	require.Equal(t, "fixture_test.go:25: needs landlock ABI 9", findTest(t, r, fixtureBinary, "TestSkip").Note)
	require.Equal(t, "fixture_test.go:30: not here", findTest(t, r, fixtureBinary, "TestSub/skipped").Note)
	require.Contains(t, findTest(t, r, fixtureBinary, "TestSub/bad").Output, "    fixture_test.go:29: sub failed")
	require.Contains(t, p.Output, "FAIL")

	require.Equal(t, 2, p.Passed)
	require.Equal(t, 3, p.Failed)
	require.Equal(t, 2, p.Skipped)
	require.Equal(t, 2, r.Passed)
	require.Equal(t, 3, r.Failed)
	require.Equal(t, 2, r.Skipped)
	require.True(t, r.TestsFailed)
	require.False(t, r.BinaryCrashed)
}

func TestRealGoTestRun(t *testing.T) {
	t.Parallel()
	out := runFixture(t, nil)
	if os.Getenv("UPDATE_TESTDATA") == "1" {
		require.NoError(t, os.WriteFile(fixtureTestdata, out, 0o644))
	}
	evs := parseFixture(t, out)
	c := collect(true, runBinary(fixtureBinary, evs, &event.Exit{Code: 1, Seconds: 0.2}))
	r := c.Report()
	checkFixtureReport(t, r)
	require.True(t, r.Complete)
	require.Equal(t, 0.2, r.Packages[0].Seconds)
	require.Equal(t, "", c.Running())
}

func TestRealPassingPackage(t *testing.T) {
	t.Parallel()
	evs := parseFixture(t, runFixture(t, nil, "-run", "^(TestPass|TestSkip|TestSub)$/^(ok|skipped)$"))
	r := collect(true, runBinary(fixtureBinary, evs, &event.Exit{Code: 0, Seconds: 0.1})).Report()

	require.Len(t, r.Packages, 1)
	p := r.Packages[0]
	require.Equal(t, StatusPass, p.Status)
	require.False(t, p.Crashed)
	require.True(t, p.Finished)
	require.Equal(t, 3, r.Passed, "TestPass, TestSub, TestSub/ok")
	require.Equal(t, 0, r.Failed)
	require.Equal(t, 2, r.Skipped)
	require.False(t, r.TestsFailed)
	require.False(t, r.BinaryCrashed)

	var sum bytes.Buffer
	require.NoError(t, WriteSummary(&sum, r))
	require.Regexp(t, `(?m)^ok\s+fixture\s+3 passed, 0 failed, 2 skipped\s+0\.10s`, sum.String())
	require.NotContains(t, sum.String(), "Failed tests")
}

func TestRealExitTwoAfterAllPassed(t *testing.T) {
	t.Parallel()
	evs := parseFixture(t, runFixture(t, []string{"FIXTURE_EXIT=2"}, "-run", "^TestPass$"))
	r := collect(true, runBinary(fixtureBinary, evs, &event.Exit{Code: 2, Seconds: 0.1})).Report()

	p := findPackage(t, r, fixtureBinary)
	require.Equal(t, StatusFail, p.Status)
	require.True(t, p.Crashed)
	require.Equal(t, "binary exited with status 2 but no test failed", p.Reason)
	require.Equal(t, StatusPass, findTest(t, r, fixtureBinary, "TestPass").Status)

	crash := findTest(t, r, fixtureBinary, BinaryTestName)
	require.Equal(t, StatusFail, crash.Status)
	require.True(t, crash.Synthetic)
	require.Equal(t, p.Reason, crash.Note)
	require.Contains(t, crash.Output, "fixture: exiting with status 2 after the tests")

	require.Equal(t, 1, r.Passed)
	require.Equal(t, 1, r.Failed)
	require.False(t, r.TestsFailed, "no real test failed")
	require.True(t, r.BinaryCrashed)
}
