package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/stage"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/coverage"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// covRun is the state of a COVERAGE=1 run.
type covRun struct {
	plan     *coverage.Plan
	tree     *source.Tree
	counters *coverage.Counters
	summary  *coverage.Summary
}

// instrument plans the coverage of the series and returns the copy of tree
// whose makefiles profile it.
func (r *Run) instrument(s *series.Series, tree *source.Tree) (*source.Tree, error) {
	plan, err := coverage.NewPlan(s)
	if err != nil {
		return nil, &exitcode.StageError{Stage: "patch", Code: exitcode.Infra, Err: err}
	}
	t, err := plan.Tree(r.cache, tree)
	if err != nil {
		return nil, &exitcode.StageError{Stage: "patch", Code: exitcode.Infra, Err: err}
	}
	r.cov = &covRun{plan: plan, tree: t, counters: coverage.NewCounters()}
	return t, nil
}

// takeCoverage keeps the guest's coverage events out of the test results
// (they carry the .gcda files); it reports whether ev was one.
func (r *Run) takeCoverage(ev event.Event) bool {
	if ev.Kind != event.KindCoverage {
		return false
	}
	if r.cov != nil {
		r.cov.counters.Add(ev)
	}
	return true
}

// coverageReport is the coverage stage, after the tests: it writes the
// report in OUT/coverage. When the tests passed but no report could be
// made, the run fails as an infrastructure problem; otherwise the tests'
// verdict stands.
func (r *Run) coverageReport(ctx context.Context, kernel *build.Result, code exitcode.Code, reason string) (exitcode.Code, string) {
	if r.cov == nil || r.opts.Shell {
		return code, reason
	}
	st := stage.Do(r.log, "coverage", func() (string, error) {
		gcda, err := r.cov.counters.Files()
		if err != nil {
			return "", err
		}
		sum, err := coverage.Generate(ctx, coverage.Inputs{
			BuildDir: kernel.Dir,
			TreeDir:  r.cov.tree.Dir,
			Out:      filepath.Join(r.opts.Out, "coverage"),
			Plan:     r.cov.plan,
			Gcda:     gcda,
		})
		if err != nil {
			return "", err
		}
		r.cov.summary = sum
		r.md.Coverage = sum
		return fmt.Sprintf("%d .gcda file(s), lines %s", len(gcda), sum.Lines), nil
	})
	if st.Err != nil {
		fmt.Fprintf(r.out, "\ncoverage failed: %v\n", st.Err)
		if code == exitcode.OK {
			return exitcode.Infra, "coverage: " + textutil.FirstLine(st.Err.Error())
		}
	}
	return code, reason
}

// printCoverage prints the coverage summary, if any.
func (r *Run) printCoverage(w io.Writer) {
	if r.cov != nil && r.cov.summary != nil {
		fmt.Fprintln(w)
		r.cov.summary.WriteSummary(w)
	}
}
