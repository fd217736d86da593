// Package results turns the records a guest runner sends (see package event)
// into test results: a per package, per test view of what passed, failed and
// was skipped, a human readable summary, JUnit XML and a JSON document that
// keeps every record.
//
// Feed records to a Collector in the order they arrived, tell it with Finish
// whether the stream ended with its "done" marker, then build a Report and
// hand it to WriteSummary, WriteJUnit and WriteJSON.
package results

// Status is the outcome of a test or a package.
type Status string

// The outcomes a test or package can have.
const (
	// StatusPass means the test (or every test of the package) passed.
	StatusPass Status = "pass"
	// StatusFail means the test failed, or did not finish; for a package,
	// that a test failed or the binary ended abnormally.
	StatusFail Status = "fail"
	// StatusSkip means the test was skipped; for a package, that it had
	// no tests to run (test2json reported the package as skipped).
	StatusSkip Status = "skip"
	// StatusFlaky means the test failed, then passed when RETRY= ran it
	// again in the same boot: not a failure of the run, and counted
	// among the passed tests too. Packages are never flaky.
	StatusFlaky Status = "flaky"
)

// BinaryTestName is the name of the synthetic test that carries the failure
// of a package whose binary ended abnormally while none of its tests failed,
// so that such a crash is always counted as a failure.
const BinaryTestName = "(binary)"

// Report is the outcome of a whole run, built by Collector.Report.
type Report struct {
	// Packages holds one entry per test binary, sorted by name.
	Packages []Package
	// Passed, Failed and Skipped count tests over all packages,
	// subtests and synthetic BinaryTestName failures included; Passed
	// counts the flaky tests too, and Flaky those alone.
	Passed, Failed, Skipped, Flaky int
	// TestsFailed is true when at least one real (not synthetic) test
	// failed, unfinished tests included.
	TestsFailed bool
	// BinaryCrashed is true when at least one binary ended abnormally:
	// killed by a signal, timed out, exited non-zero with no failing
	// test, never ended, or had a runner error (see Package.Crashed).
	BinaryCrashed bool
	// Complete is true when Collector.Finish was told that the stream
	// ended with its "done" marker. When false, more binaries may have
	// been due to run: callers should not treat the run as a success.
	Complete bool
	// Guest holds the facts of the runner's hello record, if any.
	Guest map[string]string
	// Errors holds runner errors not tied to a binary.
	Errors []string
}

// Package is the outcome of one test binary.
type Package struct {
	// Name is the import path of the package (the event's Binary).
	Name string `json:"name"`
	// Status is fail when a test failed or the binary crashed, skip when
	// test2json reported the package as skipped and it ran no test, and
	// pass otherwise.
	Status Status `json:"status"`
	// Reason says why the package failed beyond its tests' own results
	// (crash, timeout, runner error); empty otherwise.
	Reason string `json:"reason,omitempty"`
	// Crashed is true when the binary ended abnormally: killed by a
	// signal, timed out, exited non-zero (or reported FAIL) with no
	// failing test, never ended, or the runner reported an error for it.
	Crashed bool `json:"crashed"`
	// Finished is true when the binary's end was seen: its binary-end
	// record or, for a bare test2json stream, its package result.
	Finished bool `json:"finished"`
	// ExitCode, Signal and TimedOut copy the binary-end record's Exit.
	ExitCode int    `json:"exit_code"`
	Signal   string `json:"signal,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// Seconds is the binary's wall time (from binary-end), or the
	// elapsed time test2json reported for the package.
	Seconds float64 `json:"seconds"`
	// Passed, Failed and Skipped count this package's tests; Passed
	// counts the flaky tests too, and Flaky those alone.
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	Flaky   int `json:"flaky,omitempty"`
	// Tests lists the tests in the order they started, subtests under
	// their full name ("TestA/sub").
	Tests []Test `json:"tests"`
	// Output holds the package-level output lines (not tied to a test).
	Output []string `json:"output,omitempty"`
	// Errors holds the runner errors reported for this binary.
	Errors []string `json:"errors,omitempty"`
}

// Test is the outcome of one test or subtest.
type Test struct {
	// Name is the full test name, "TestA/sub" for a subtest.
	Name string `json:"name"`
	// Status is the test's outcome; a test that started but never ended
	// is StatusFail, one that failed and then passed on a retry
	// StatusFlaky.
	Status Status `json:"status"`
	// Seconds is the elapsed time test2json reported, or for an
	// unfinished test the time from its start to the binary's end when
	// both are known.
	Seconds float64 `json:"seconds"`
	// Note explains the status: why an unfinished test counts as failed,
	// why a synthetic test exists, or the reason a test was skipped.
	Note string `json:"note,omitempty"`
	// Synthetic is true for the BinaryTestName entry that stands for a
	// crashed binary rather than a real test.
	Synthetic bool `json:"synthetic,omitempty"`
	// Output holds the test's output lines, without line ends: of every
	// run, each rerun's headed by a "=== RETRY Test (retry k of N)" line.
	Output []string `json:"output,omitempty"`
	// Attempts, for a test that RETRY= ran again, are its runs in this
	// boot in order: the binary's first run, then each rerun.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Attempt is one run of a test that RETRY= ran again.
type Attempt struct {
	// Run is 1 for the binary's first run, k+1 for its k-th rerun.
	Run int `json:"run"`
	// Status is the run's outcome (StatusFail when it did not finish).
	Status Status `json:"status"`
	// Seconds is the elapsed time test2json reported.
	Seconds float64 `json:"seconds"`
	// Note says why a run that did not finish counts as failed.
	Note string `json:"note,omitempty"`
	// Output holds the run's output lines.
	Output []string `json:"output,omitempty"`
}

// FailedTests returns the failed tests of the report, each with the name of
// its package, in report order.
func (r Report) FailedTests() []PackageTest {
	var out []PackageTest
	for _, p := range r.Packages {
		for _, t := range p.Tests {
			if t.Status == StatusFail {
				out = append(out, PackageTest{Package: p.Name, Test: t})
			}
		}
	}
	return out
}

// FlakyTests returns the flaky tests of the report, each with the name of
// its package, in report order.
func (r Report) FlakyTests() []PackageTest {
	var out []PackageTest
	for _, p := range r.Packages {
		for _, t := range p.Tests {
			if t.Status == StatusFlaky {
				out = append(out, PackageTest{Package: p.Name, Test: t})
			}
		}
	}
	return out
}

// PackageTest is a test together with the name of its package.
type PackageTest struct {
	// Package is the import path of the test's package.
	Package string
	// Test is the test itself.
	Test Test
}
