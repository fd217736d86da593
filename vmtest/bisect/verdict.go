// Package bisect finds the first patch of a series, or the first commit of
// a git history, at which a named test fails. Each step builds the kernel
// incrementally, boots it and runs the test RUNS times; one pure function,
// Decide, turns the runs into the step's verdict.
package bisect

import (
	"fmt"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
)

// Run is one run of the named test at one step.
type Run struct {
	// Code is the pipeline's exit code for the run.
	Code exitcode.Code `json:"code"`
	// Matched counts the tests whose name matched TEST; Failed, Passed
	// and Skipped count those among them, Passed the flaky ones too
	// (RETRY=: failed, then passed on a retry), which Flaky counts alone.
	Matched int `json:"matched"`
	Failed  int `json:"failed"`
	Passed  int `json:"passed"`
	Skipped int `json:"skipped"`
	Flaky   int `json:"flaky,omitempty"`
}

// Decision is a step's verdict, as git bisect run understands it.
type Decision int

// The decisions, with the exit code bisect-step gives git bisect run.
const (
	Good Decision = iota // exit 0
	Bad                  // exit 1
	Skip                 // exit 125: this kernel cannot tell
	Stop                 // exit 128: the infrastructure failed; git aborts
)

func (d Decision) String() string {
	switch d {
	case Good:
		return "good"
	case Bad:
		return "bad"
	case Skip:
		return "skip"
	}
	return "stop"
}

// ExitCode is what a `git bisect run` script exits with for d.
func (d Decision) ExitCode() int {
	switch d {
	case Good:
		return 0
	case Bad:
		return 1
	case Skip:
		return 125
	}
	return 128
}

// Verdict is a step's decision with how many runs agreed with it.
type Verdict struct {
	Decision Decision `json:"-"`
	Name     string   `json:"decision"`
	Agreed   int      `json:"agreed"`
	Runs     int      `json:"runs"`
	Why      string   `json:"why"`
}

// Decide turns the runs of one step into its verdict:
//
//   - an infrastructure failure (or a usage error) in any run stops the
//     bisection: the next step could not be trusted either;
//   - a kernel that does not apply, configure or build, or that fails
//     before the test ran (no boot), is skipped: it cannot tell;
//   - a run where the test is not found is skipped too;
//   - otherwise the step is bad if the test failed in any run (a flaky
//     failure appears only from the culprit on, so one failure is
//     evidence; a pass is not), and good if it passed in every run that
//     could tell. A test that failed and then passed when RETRY= ran it
//     again is flaky, not failed: a run where it was is good, and the
//     reason says how many runs had it flaky.
//
// Agreed counts the runs that support the decision.
func Decide(runs []Run) Verdict {
	v := func(d Decision, agreed int, why string) Verdict {
		return Verdict{Decision: d, Name: d.String(), Agreed: agreed, Runs: len(runs), Why: why}
	}
	if len(runs) == 0 {
		return v(Stop, 0, "no run")
	}
	var good, bad, noBoot, notFound, flaky int
	for _, r := range runs {
		switch r.Code {
		case exitcode.Infra, exitcode.Usage:
			return v(Stop, 0, fmt.Sprintf("infrastructure failure (%s)", r.Code))
		case exitcode.PatchFailed, exitcode.ConfigFailed, exitcode.BuildFailed:
			return v(Skip, len(runs), fmt.Sprintf("the kernel cannot be tested: %s", r.Code))
		}
		switch {
		case r.Failed > 0:
			bad++
		case r.Matched == 0 && r.Code == exitcode.KernelCrashed:
			noBoot++
		case r.Matched == 0:
			notFound++
		default:
			good++
			if r.Flaky > 0 {
				flaky++
			}
		}
	}
	switch {
	case bad > 0:
		return v(Bad, bad, fmt.Sprintf("the test failed in %d of %d run(s)", bad, len(runs)))
	case good > 0 && flaky > 0:
		return v(Good, good, fmt.Sprintf("the test passed in %d of %d run(s), flaky (failed, then passed on a retry) in %d", good, len(runs), flaky))
	case good > 0:
		return v(Good, good, fmt.Sprintf("the test passed in %d of %d run(s)", good, len(runs)))
	case noBoot > 0:
		return v(Skip, noBoot, "the kernel did not boot or crashed before the test ran")
	}
	return v(Skip, notFound, "no test matched TEST at this step")
}

// Next picks the step to test between a known good and a known bad one
// (both exclusive), skipping those already skipped: the middle, else the
// untested one nearest to it. ok is false when none is left.
func Next(good, bad int, skipped map[int]bool) (int, bool) {
	if bad-good < 2 {
		return 0, false
	}
	mid := good + (bad-good)/2
	for d := 0; d < bad-good; d++ {
		for _, c := range []int{mid - d, mid + d} {
			if c > good && c < bad && !skipped[c] {
				return c, true
			}
		}
	}
	return 0, false
}
