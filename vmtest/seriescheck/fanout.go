package seriescheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
)

// CheckStep is one step of the check run alone (series-check --step N),
// from whatever cache it finds: the base tree (0), or patch n on top of
// the first n-1, built first so that the patch's W=1 warnings have their
// baseline. Its report, in o.Run.Out, has the one row with what the step
// found (test statuses, splats, warnings), for Merge to judge against the
// other steps; on its own the step is judged against nothing before it.
func CheckStep(ctx context.Context, o Options, n int) (*Report, exitcode.Code) {
	start := time.Now()
	out, rep, env, code := setup(o)
	if env == nil {
		return rep, code
	}
	defer env.Close()
	rep.Patches, rep.Step = len(env.Series.Patches), &n
	if n < 0 || n > len(env.Series.Patches) {
		fmt.Fprintf(out, "series-check --step %d: the series has steps 0 (the base tree) to %d\n", n, len(env.Series.Patches))
		return rep, exitcode.Usage
	}
	fmt.Fprintf(out, "series-check: step %d of %d patch(es) on %s, tests %s\n", n, len(env.Series.Patches), env.Base.Desc, rep.Tests)
	c := checker{ctx: ctx, env: env, out: out, root: o.Run.Out, tools: ensureReviewTools(hosttools.Real(), o.Run.Mach(), out)}
	row, code := c.alone(n)
	rep.Rows = []Row{row}
	rep.Splats = splatHistory(rep.Rows)
	rep.Seconds = time.Since(start).Seconds()
	rep.ExitCode = int(code)
	rep.Verdict = fmt.Sprintf("step %d run alone, judged against no step before it (series-check --merge judges it with the others)", n)
	if !halts(int(code)) {
		// The step's problems are only known against the steps
		// before it: the merge gives the verdict and the exit code.
		code = exitcode.OK
	}
	if err := write(rep, o.Run.Out); err != nil {
		fmt.Fprintf(out, "writing the report: %v\n", err)
		return rep, exitcode.Infra
	}
	fmt.Fprintln(out)
	_ = Table(out, rep)
	fmt.Fprintf(out, "\nseries-check: %s (exit %d)\nreport in %s\n", rep.Verdict, int(code), filepath.Join(o.Run.Out, "series-check.json"))
	return rep, code
}

// alone runs step n with only the tree it needs before it.
func (c *checker) alone(n int) (Row, exitcode.Code) {
	if err := c.env.WT.Reset(); err != nil {
		return infra(Row{Index: n}, err), exitcode.Infra
	}
	if n == 0 {
		row := c.base()
		return row, exitcode.Code(row.Code)
	}
	p := c.env.Series.Patches[n-1]
	prev := Row{Index: n - 1, Builds: "-"}
	for i := 1; i < n; i++ {
		if err := c.env.WT.Apply(c.env.Series, i); err != nil {
			row := notTried(n, p.Name, p.Subject, fmt.Sprintf("not tried: patch %d did not apply: %v", i, err))
			return row, exitcode.PatchFailed
		}
	}
	dir := c.stepDir(n-1, "before")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return infra(Row{Index: n, Patch: p.Name}, err), exitcode.Infra
	}
	fmt.Fprintf(c.out, "==> building the %d patch(es) before patch %d, for its warnings' baseline\n", n-1, n)
	if _, err := c.env.Build(c.ctx, filepath.Join(dir, "build.log")); err == nil {
		prev.Builds, prev.Built = "yes", true
	} else {
		prev.Builds = "no"
		fmt.Fprintf(c.out, "  the tree before patch %d does not build (%v): no warnings baseline\n", n, err)
	}
	row := c.patch(n, []Row{prev})
	return row, exitcode.Code(row.Code)
}

// MergeOptions are the inputs of Merge.
type MergeOptions struct {
	// Dirs are the output directories of the steps (series-check --step),
	// each with its series-check.json.
	Dirs []string
	// Out is where the merged report goes.
	Out    string
	Stdout io.Writer
}

// Merge joins the reports of steps run apart (CheckStep) into the report
// a sequential check gives (series-check --merge DIR...): each patch
// judged against the steps before it, the same table, verdict and exit
// code. Every step from the base to the last must be there, once.
func Merge(o MergeOptions) (*Report, exitcode.Code) {
	out := o.Stdout
	if out == nil {
		out = os.Stdout
	}
	rep, err := mergeReports(o.Dirs)
	if err != nil {
		fmt.Fprintf(out, "series-check --merge: %v\n", err)
		return rep, exitcode.Usage
	}
	code, verdict := decide(rep.Rows)
	rep.ExitCode, rep.Verdict = int(code), verdict
	if err := write(rep, o.Out); err != nil {
		fmt.Fprintf(out, "writing the report: %v\n", err)
		return rep, exitcode.Infra
	}
	_ = Table(out, rep)
	fmt.Fprintf(out, "\nseries-check: %s (exit %d)\nreport in %s\n", verdict, int(code), filepath.Join(o.Out, "series-check.md"))
	return rep, code
}

// mergeReports reads the steps' reports and assembles their rows.
func mergeReports(dirs []string) (*Report, error) {
	rep := &Report{}
	byIndex := map[int]Row{}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "series-check.json"))
		if err != nil {
			return rep, fmt.Errorf("reading a step's report: %w", err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return rep, fmt.Errorf("%s: %w", filepath.Join(d, "series-check.json"), err)
		}
		if r.Step == nil {
			return rep, fmt.Errorf("%s: not the report of a step run alone (series-check --step N)", d)
		}
		if len(byIndex) == 0 {
			rep.Series, rep.Base, rep.Tests, rep.Patches = r.Series, r.Base, r.Tests, r.Patches
		} else if r.Series != rep.Series || r.Base != rep.Base || r.Tests != rep.Tests || r.Patches != rep.Patches {
			return rep, fmt.Errorf("%s: step %d checked another series, base tree or tests (%s, %d patch(es), %s, tests %s) than the others (%s, %d patch(es), %s, tests %s)",
				d, *r.Step, r.Series, r.Patches, r.Base, r.Tests, rep.Series, rep.Patches, rep.Base, rep.Tests)
		}
		for _, row := range r.Rows {
			if _, dup := byIndex[row.Index]; dup {
				return rep, fmt.Errorf("step %d is in more than one report (%s among them)", row.Index, d)
			}
			byIndex[row.Index] = row
		}
		rep.Seconds += r.Seconds
	}
	idx := slices.Sorted(maps.Keys(byIndex))
	if len(idx) == 0 {
		return rep, fmt.Errorf("no step in %s", strings.Join(dirs, " "))
	}
	var missing []string
	for want := 0; want <= max(idx[len(idx)-1], rep.Patches); want++ {
		if _, ok := byIndex[want]; !ok {
			missing = append(missing, fmt.Sprint(want))
		}
	}
	if len(missing) > 0 {
		return rep, fmt.Errorf("the series has steps 0 (the base tree) to %d; missing: step %s", rep.Patches, strings.Join(missing, ", "))
	}
	steps := make([]Row, 0, len(idx))
	for _, i := range idx {
		steps = append(steps, byIndex[i])
	}
	rep.Rows = assemble(steps)
	rep.Splats = splatHistory(rep.Rows)
	return rep, nil
}
