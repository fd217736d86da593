package pipeline

import (
	"github.com/landlock-vmtest/landlock-vmtest/kernel/coverage"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// covRun is the state of a COVERAGE=1 run.
type covRun struct {
	plan *coverage.Plan
	tree *source.Tree
}

// instrument plans the coverage of the series and returns the copy of tree
// whose makefiles profile it.
func (r *Run) instrument(s *series.Series, tree *source.Tree) (*source.Tree, error) {
	plan, err := coverage.NewPlan(s)
	if err != nil {
		return nil, &StageError{Stage: "patch", Code: Infra, Err: err}
	}
	t, err := plan.Tree(r.cache, tree)
	if err != nil {
		return nil, &StageError{Stage: "patch", Code: Infra, Err: err}
	}
	r.cov = &covRun{plan: plan, tree: t}
	return t, nil
}
