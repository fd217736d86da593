package results

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
)

// mixedRun is a run of three binaries: the fixture (failing tests), one that
// passes, and one killed by SIGSEGV in the middle of a test.
func mixedRun(t *testing.T) *Collector {
	t.Helper()
	evs := savedFixture(t)
	crashed := cutAfterRun(t, evs, "TestFail")
	crashed = append(crashed, tev(fixtureBinary, "output", "TestFail", "unexpected fault address 0x0\x00\n"))
	for i := range crashed {
		crashed[i].Binary = "example.com/crash"
	}
	return collect(true,
		runBinary(fixtureBinary, evs, &event.Exit{Code: 1, Seconds: 0.25}),
		runBinary("example.com/ok", passingPackage("example.com/ok"), &event.Exit{Seconds: 0.1}),
		runBinary("example.com/crash", crashed, &event.Exit{Code: -1, Signal: "segmentation fault", Seconds: 2}),
	)
}

func TestWriteSummary(t *testing.T) {
	r := mixedRun(t).Report()
	require.Equal(t, [3]int{4, 4, 2}, [3]int{r.Passed, r.Failed, r.Skipped})

	var buf bytes.Buffer
	require.NoError(t, WriteSummary(&buf, r))
	out := buf.String()
	t.Logf("summary:\n%s", out)

	require.True(t, strings.HasSuffix(out, "\n"), "summary ends with a line end")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Equal(t, "4 passed, 4 failed, 2 skipped", lines[len(lines)-1])

	assert.Regexp(t, `^FAIL\s+example\.com/crash\s+1 passed, 1 failed, 0 skipped\s+2\.00s\s+\(binary killed by signal segmentation fault\)$`, lines[0])
	assert.Regexp(t, `^ok\s+example\.com/ok\s+1 passed, 0 failed, 0 skipped\s+0\.10s$`, lines[1])
	assert.Regexp(t, `^FAIL\s+fixture\s+2 passed, 3 failed, 2 skipped\s+0\.25s$`, lines[2])

	assert.Contains(t, out, "--- FAIL: fixture TestFail (0.00s)\n    === RUN   TestFail\n        fixture_test.go:21: first line of output\n        fixture_test.go:22: got 1, want 2\n")
	assert.Contains(t, out, "--- FAIL: fixture TestSub/bad (0.00s)\n")
	assert.Contains(t, out, "--- FAIL: example.com/crash TestFail (")
	assert.Contains(t, out, "    note: test did not finish: binary killed by signal segmentation fault\n")
	assert.NotContains(t, out, "--- FAIL: fixture TestPass")
	assert.NotContains(t, out, "result stream incomplete")
}

func TestWriteSummaryCapsOutput(t *testing.T) {
	const pkg = "example.com/noisy"
	evs := []event.Event{tev(pkg, "run", "TestNoisy", "")}
	for range maxSummaryLines + 50 {
		evs = append(evs, tev(pkg, "output", "TestNoisy", "noise\n"))
	}
	evs = append(evs, tev(pkg, "output", "TestNoisy", "the end\n"), tev(pkg, "fail", "TestNoisy", ""), tev(pkg, "fail", "", ""))
	r := collect(true, runBinary(pkg, evs, &event.Exit{Code: 1})).Report()

	var buf bytes.Buffer
	require.NoError(t, WriteSummary(&buf, r))
	out := buf.String()
	assert.Contains(t, out, "    ... 51 earlier lines left out\n")
	assert.Contains(t, out, "    the end\n")
	assert.Equal(t, maxSummaryLines-1, strings.Count(out, "    noise\n"))
	assert.True(t, strings.HasSuffix(out, "\n0 passed, 1 failed, 0 skipped\n"))
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWritersReportErrors(t *testing.T) {
	r := mixedRun(t).Report()
	err := WriteSummary(failWriter{}, r)
	require.ErrorContains(t, err, "write summary: disk full")
	err = WriteJUnit(failWriter{}, r)
	require.ErrorContains(t, err, "disk full")
	err = WriteJSON(failWriter{}, Metadata{}, r, nil)
	require.ErrorContains(t, err, "write JSON: disk full")
}

func TestWriteJUnit(t *testing.T) {
	r := mixedRun(t).Report()
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, r))
	require.True(t, strings.HasPrefix(buf.String(), "<?xml"))

	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &doc), "JUnit output:\n%s", buf.String())
	assert.Equal(t, 10, doc.Tests)
	assert.Equal(t, 4, doc.Failures)
	assert.Equal(t, 2, doc.Skipped)
	assert.Equal(t, "2.350", doc.Time)
	require.Len(t, doc.Suites, 3)

	suites := make(map[string]JUnitTestSuite)
	for _, s := range doc.Suites {
		suites[s.Name] = s
	}
	fx := suites[fixtureBinary]
	assert.Equal(t, 7, fx.Tests)
	assert.Equal(t, 3, fx.Failures)
	assert.Equal(t, 2, fx.Skipped)
	assert.Equal(t, "0.250", fx.Time)
	assert.Contains(t, fx.SystemOut, "FAIL\tfixture\t")

	cases := make(map[string]JUnitTestCase)
	for _, tc := range fx.TestCases {
		assert.Equal(t, fixtureBinary, tc.Classname)
		cases[tc.Name] = tc
	}
	require.NotNil(t, cases["TestFail"].Failure)
	assert.Equal(t, "test failed", cases["TestFail"].Failure.Message)
	assert.Contains(t, cases["TestFail"].Failure.Text, "fixture_test.go:22: got 1, want 2\n")
	require.NotNil(t, cases["TestSub/bad"].Failure)
	assert.Contains(t, cases["TestSub/bad"].Failure.Text, "sub failed")
	require.NotNil(t, cases["TestSkip"].Skipped)
	assert.Equal(t, "fixture_test.go:25: needs landlock ABI 9", cases["TestSkip"].Skipped.Message)
	assert.Nil(t, cases["TestPass"].Failure)
	assert.Nil(t, cases["TestPass"].Skipped)
	assert.Nil(t, cases["TestSub/ok"].Failure)

	crash := suites["example.com/crash"]
	require.Len(t, crash.TestCases, 2)
	killed := crash.TestCases[1]
	assert.Equal(t, "TestFail", killed.Name)
	require.NotNil(t, killed.Failure)
	assert.Equal(t, "test did not finish: binary killed by signal segmentation fault", killed.Failure.Message)
	// The NUL byte, not allowed in XML, was replaced.
	assert.Contains(t, killed.Failure.Text, "unexpected fault address 0x0\uFFFD\n")
}

func TestWriteJUnitCrashWithoutFailingTest(t *testing.T) {
	evs := parseFixture(t, []byte(`{"Action":"run","Package":"fixture","Test":"TestPass"}
{"Action":"pass","Package":"fixture","Test":"TestPass","Elapsed":0.01}
{"Action":"output","Package":"fixture","Output":"PASS\n"}
{"Action":"pass","Package":"fixture","Elapsed":0.02}
`))
	r := collect(true, runBinary(fixtureBinary, evs, &event.Exit{Code: 2, Seconds: 0.5})).Report()
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, r))
	var doc JUnitTestSuites
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &doc))
	require.Len(t, doc.Suites, 1)
	assert.Equal(t, 2, doc.Suites[0].Tests)
	assert.Equal(t, 1, doc.Suites[0].Failures)
	last := doc.Suites[0].TestCases[1]
	assert.Equal(t, BinaryTestName, last.Name)
	require.NotNil(t, last.Failure)
	assert.Equal(t, "binary exited with status 2 but no test failed", last.Failure.Message)
	assert.Equal(t, "0.010", doc.Suites[0].TestCases[0].Time)
}

func TestWriteJSONRoundTrip(t *testing.T) {
	c := mixedRun(t)
	r := c.Report()
	md := Metadata{
		KernelRelease: "6.99.0-test",
		Series:        []string{"landlock-abi-9"},
		ConfigHash:    "abc123",
		Accelerator:   "tcg",
		Stages:        []Stage{{Name: "boot", Seconds: 3.5, Status: "ok"}, {Name: "test", Seconds: 20, Status: "fail"}},
		ExitCode:      1,
		ExitReason:    "tests failed",
		Splats:        []Splat{{Kind: "WARNING", Test: "example.com/crash TestFail", Text: "WARNING: CPU: 0 PID: 1 at fs/x.c:1"}},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, md, r, c.Events()))

	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(buf.Bytes(), &raw))
	for _, key := range []string{"metadata", "summary", "packages", "events"} {
		assert.Contains(t, raw, key)
	}
	var summary map[string]any
	require.NoError(t, json.Unmarshal(raw["summary"], &summary))
	assert.Equal(t, 4.0, summary["passed"])
	assert.Equal(t, 4.0, summary["failed"])
	assert.Equal(t, 2.0, summary["skipped"])
	assert.Contains(t, string(raw["metadata"]), `"kernel_release": "6.99.0-test"`)
	assert.Contains(t, string(raw["metadata"]), `"exit_reason": "tests failed"`)

	for _, key := range []string{`"splats"`, `"kind": "WARNING"`, `"test": "example.com/crash TestFail"`, `"text": "WARNING: CPU: 0 PID: 1 at fs/x.c:1"`, `"signature": "WARNING in x.c"`, `"fingerprint"`, `"splat_groups"`} {
		assert.Contains(t, string(raw["metadata"]), key)
	}

	var doc Document
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	// The splats come back described and grouped; md itself is left as
	// it was.
	wantMD := md
	fp := console.Fingerprint("WARNING in x.c")
	wantMD.Splats = []Splat{{Kind: "WARNING", Test: "example.com/crash TestFail", Text: "WARNING: CPU: 0 PID: 1 at fs/x.c:1", Signature: "WARNING in x.c", Fingerprint: fp}}
	wantMD.SplatGroups = []SplatGroup{{Signature: "WARNING in x.c", Fingerprint: fp, Kind: "WARNING", Count: 1, Tests: []string{"example.com/crash TestFail"}, Splats: []int{0}}}
	assert.Equal(t, wantMD, doc.Metadata)
	assert.Empty(t, md.Splats[0].Signature)
	assert.Equal(t, r.Packages, doc.Packages)
	assert.Equal(t, Summary{
		Passed: 4, Failed: 4, Skipped: 2,
		TestsFailed: true, BinaryCrashed: true, Complete: true,
		Guest: map[string]string{"kernel": "6.99.0-test"},
	}, doc.Summary)

	// Events compare as JSON: times lose their monotonic reading.
	want, err := json.Marshal(c.Events())
	require.NoError(t, err)
	got, err := json.Marshal(doc.Events)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
	assert.Len(t, doc.Events, len(c.Events()))

	// Feeding the saved events back gives the same report.
	c2 := NewCollector()
	for _, ev := range doc.Events {
		c2.Add(ev)
	}
	c2.Finish(true)
	assert.Equal(t, r.Packages, c2.Report().Packages)
}

func TestWriteJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, Metadata{}, Report{}, nil))
	assert.Contains(t, buf.String(), `"packages": []`)
	assert.Contains(t, buf.String(), `"events": []`)
	assert.Contains(t, buf.String(), `"splat_groups": []`)
}

func TestParseTest2JSONSaved(t *testing.T) {
	out, err := os.ReadFile(fixtureTestdata)
	require.NoError(t, err)
	evs := parseFixture(t, out)
	require.Len(t, evs, bytes.Count(out, []byte("\n")))

	actions := make(map[string]int)
	for _, ev := range evs {
		require.Equal(t, event.KindTest, ev.Kind)
		require.Equal(t, fixtureBinary, ev.Binary)
		require.NotNil(t, ev.Test)
		require.Equal(t, "fixture", ev.Test.Package)
		require.False(t, ev.Time.IsZero(), "events carry the test2json time")
		actions[ev.Test.Action]++
	}
	assert.Equal(t, 1, actions["start"])
	assert.Equal(t, 7, actions["run"])
	assert.Equal(t, 2, actions["pass"], "TestPass, TestSub/ok")
	assert.Equal(t, 4, actions["fail"], "TestFail, TestSub/bad, TestSub, the package")
	assert.Equal(t, 2, actions["skip"])

	last := evs[len(evs)-1].Test
	assert.Equal(t, "fail", last.Action)
	assert.Empty(t, last.Test)
	assert.Greater(t, last.Elapsed, 0.0)
}

func TestParseTest2JSONNonJSONLines(t *testing.T) {
	in := "# example.com/x\n" +
		`{"Time":"2026-01-02T03:04:05Z","Action":"run","Package":"example.com/x","Test":"TestX"}` + "\n" +
		"{not json\n" +
		`{"Output":"no action"}` + "\n" +
		`{"ImportPath":"example.com/y [example.com/y.test]","Action":"build-output","Output":"y.go:1: oops\n"}` + "\n" +
		"last line without newline"
	evs, err := ParseTest2JSON(strings.NewReader(in), "")
	require.NoError(t, err)
	require.Len(t, evs, 6)

	assert.Equal(t, event.TestEvent{Action: "output", Output: "# example.com/x\n"}, *evs[0].Test)
	assert.Equal(t, "example.com/x", evs[1].Binary)
	assert.Equal(t, "run", evs[1].Test.Action)
	assert.Equal(t, "TestX", evs[1].Test.Test)
	assert.Equal(t, 2026, evs[1].Time.Year())
	assert.Equal(t, "{not json\n", evs[2].Test.Output)
	assert.Equal(t, "output", evs[3].Test.Action)
	assert.Equal(t, "{\"Output\":\"no action\"}\n", evs[3].Test.Output)
	assert.Equal(t, "example.com/y", evs[4].Binary)
	assert.Equal(t, "build-output", evs[4].Test.Action)
	assert.Equal(t, "last line without newline\n", evs[5].Test.Output)

	evs, err = ParseTest2JSON(strings.NewReader(in), "example.com/bin")
	require.NoError(t, err)
	for _, ev := range evs {
		assert.Equal(t, "example.com/bin", ev.Binary)
	}
	assert.Equal(t, "example.com/bin", evs[0].Test.Package)
}

// failReader returns some data, then an error.
type failReader struct{ data *strings.Reader }

func (f failReader) Read(p []byte) (int, error) {
	if f.data.Len() > 0 {
		return f.data.Read(p)
	}
	return 0, errors.New("connection reset")
}

func TestParseTest2JSONReadError(t *testing.T) {
	evs, err := ParseTest2JSON(failReader{strings.NewReader("{\"Action\":\"run\",\"Test\":\"TestA\"}\npartial")}, "b")
	require.ErrorContains(t, err, "read test2json line 2: connection reset")
	require.Len(t, evs, 2, "lines read before the error are kept")
}
