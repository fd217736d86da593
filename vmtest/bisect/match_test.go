package bisect

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/step"
)

// A flaky test (RETRY=) counts as passed, and apart; the run is good.
func TestMatchCountsFlaky(t *testing.T) {
	tr := &tester{test: regexp.MustCompile(`^TestX`)}
	r, lines := tr.match(step.Outcome{Code: exitcode.OK, Report: results.Report{Packages: []results.Package{{
		Name: "p",
		Tests: []results.Test{
			{Name: "TestX", Status: results.StatusFlaky, Output: []string{"failed once", "=== RETRY TestX (retry 1 of 1)", "passed"}},
			{Name: "TestXY", Status: results.StatusPass},
			{Name: "TestOther", Status: results.StatusFail},
		},
	}}}})
	assert.Equal(t, Run{Code: exitcode.OK, Matched: 2, Passed: 2, Flaky: 1}, r)
	assert.Equal(t, []string{"--- FLAKY TestX (p)", "failed once", "=== RETRY TestX (retry 1 of 1)", "passed", "--- PASS TestXY (p)"}, lines)
	assert.Equal(t, Good, Decide([]Run{r}).Decision)
}
