// Package seriescheck checks every patch of a series as review CI does:
// for each prefix it applies the next patch, builds incrementally from the
// step before, counts the compiler warnings the patch adds (W=1 on the C
// files it touches, against the same files one step earlier), and so
// sparse's (C=2 on the same files), kernel-doc's (-Wall on its C files
// and headers) and docutils's (on its .rst files), runs checkpatch.pl
// --strict --codespell on it, boots the kernel and runs the guest tests,
// and flags any test that fails where it did not fail one step before.
package seriescheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/worktree"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/step"
)

// Options are the knobs of a check.
type Options struct {
	// Run are the pipeline's knobs (tests, configs, timeouts, ...);
	// Run.Out is the check's output directory.
	Run pipeline.Options
	// Series is a series file, a directory of patches or an mbox.
	Series string
	// Stdout receives progress and the table.
	Stdout io.Writer
}

// Row is one step of the check: the base tree (Index 0) or one patch.
type Row struct {
	Index   int    `json:"index"`
	Patch   string `json:"patch"`
	Subject string `json:"subject,omitempty"`
	// Applies, Builds: "yes", "no", or "-" when not tried.
	Applies string `json:"applies"`
	Builds  string `json:"builds"`
	// NewWarnings are the W=1 warnings the patch adds.
	NewWarnings []string `json:"new_warnings"`
	// WarningFiles are the C files compiled with W=1 for the count.
	WarningFiles []string `json:"warning_files"`
	// WarningNote says why warnings were not counted, if they were not.
	WarningNote string `json:"warning_note,omitempty"`
	// Checkpatch is "clean", "nE nW nC" or "-".
	Checkpatch         string   `json:"checkpatch"`
	CheckpatchErrors   int      `json:"checkpatch_errors"`
	CheckpatchWarnings int      `json:"checkpatch_warnings"`
	CheckpatchChecks   int      `json:"checkpatch_checks"`
	Passed             int      `json:"passed"`
	Failed             int      `json:"failed"`
	Skipped            int      `json:"skipped"`
	TestsRan           bool     `json:"tests_ran"`
	TestsResult        string   `json:"tests_result"`
	NewFailures        []string `json:"new_failures"`
	Seconds            float64  `json:"seconds"`
	Green              bool     `json:"green"`

	// Spelling is checkpatch.pl --codespell's TYPO_SPELLING findings
	// (among its warnings too); Sparse, KernelDoc and Docutils are the
	// findings the patch adds to the files it touches: each a column.
	Spelling  Review `json:"spelling"`
	Sparse    Review `json:"sparse"`
	KernelDoc Review `json:"kernel_doc"`
	Docutils  Review `json:"docutils"`

	// Flaky counts the tests that failed, then passed when RETRY= ran
	// them again (counted in Passed too, and no failure of the step);
	// FlakyTests names them, "package test".
	Flaky      int      `json:"flaky,omitempty"`
	FlakyTests []string `json:"flaky_tests,omitempty"`
	// Splats are the kernel's reports in the step's boot, grouped by
	// fingerprint; NewSplats the titles of those the last tested step
	// before did not have.
	Splats    []results.SplatGroup `json:"splats,omitempty"`
	NewSplats []string             `json:"new_splats,omitempty"`
	// BrokenSince is the patch whose build error this step still has
	// (0 when the step builds or broke on its own).
	BrokenSince int      `json:"broken_since,omitempty"`
	Problems    []string `json:"problems"`
	Code        int      `json:"exit_code"`
	Out         string   `json:"out,omitempty"`

	// What the step found on its own, before judge() compared it with
	// the steps before: kept in the JSON of a step run alone (--step),
	// so that --merge judges the steps together as a sequential check
	// does.
	BuildError    string                    `json:"build_error,omitempty"`
	Statuses      map[string]results.Status `json:"statuses,omitempty"`
	TestCode      exitcode.Code             `json:"test_code,omitempty"`
	Built         bool                      `json:"built,omitempty"`
	CheckpatchOK  bool                      `json:"checkpatch_ok,omitempty"`
	CheckpatchRan bool                      `json:"checkpatch_ran,omitempty"`
	// Judged tells that judge() decided the row (a patch that applied
	// and whose harness did not fail); RawProblems and RawCode are the
	// row's problems and code before it did.
	Judged      bool     `json:"judged,omitempty"`
	RawProblems []string `json:"raw_problems,omitempty"`
	RawCode     int      `json:"raw_code,omitempty"`
}

// Report is the whole check.
type Report struct {
	Series   string  `json:"series"`
	Base     string  `json:"base"`
	Tests    string  `json:"tests"`
	Rows     []Row   `json:"rows"`
	ExitCode int     `json:"exit_code"`
	Verdict  string  `json:"verdict"`
	Seconds  float64 `json:"seconds"`
	// Splats are the check's kernel reports, one per fingerprint, each
	// with the step it first appeared at.
	Splats []SplatHistory `json:"splats,omitempty"`
	// Patches is the number of patches of the series; Step is set in the
	// report of a step run alone (--step).
	Patches int  `json:"patches"`
	Step    *int `json:"step,omitempty"`
}

// SplatHistory is one kernel bug over the steps of a check.
type SplatHistory struct {
	Signature   string `json:"signature"`
	Fingerprint string `json:"fingerprint"`
	Kind        string `json:"kind"`
	// First is the step where it first appeared (0: the base tree),
	// FirstPatch that step's patch.
	First      int    `json:"first"`
	FirstPatch string `json:"first_patch"`
	// Steps are the steps whose boot had it, in order, and Count how
	// many times it was seen over all of them.
	Steps []int `json:"steps"`
	Count int   `json:"count"`
}

// splatHistory groups the splats of rows by fingerprint, in the order
// they first appeared.
func splatHistory(rows []Row) []SplatHistory {
	var out []SplatHistory
	at := map[string]int{}
	for _, r := range rows {
		for _, g := range r.Splats {
			i, ok := at[g.Fingerprint]
			if !ok {
				i = len(out)
				at[g.Fingerprint] = i
				out = append(out, SplatHistory{Signature: g.Signature, Fingerprint: g.Fingerprint, Kind: g.Kind, First: r.Index, FirstPatch: r.Patch})
			}
			out[i].Steps = append(out[i].Steps, r.Index)
			out[i].Count += g.Count
		}
	}
	return out
}

// newSplats are the titles of the splats of now whose fingerprints before
// (nil: none) did not have.
func newSplats(before *Row, now Row) []string {
	seen := map[string]bool{}
	if before != nil {
		for _, g := range before.Splats {
			seen[g.Fingerprint] = true
		}
	}
	var out []string
	for _, g := range now.Splats {
		if !seen[g.Fingerprint] {
			out = append(out, fmt.Sprintf("%q (%s)", g.Signature, g.Fingerprint))
		}
	}
	return out
}

// Check runs the check and returns its report and exit code: 0 when every
// patch is green, otherwise the code of the first red patch's first
// problem (patch, build, warnings, tests); Infra stops the check.
func Check(ctx context.Context, o Options) (*Report, exitcode.Code) {
	start := time.Now()
	out, rep, env, code := setup(o)
	if env == nil {
		return rep, code
	}
	defer env.Close()
	n := len(env.Series.Patches)
	rep.Patches = n
	fmt.Fprintf(out, "series-check: %d patch(es) on %s, tests %s\n", n, env.Base.Desc, rep.Tests)

	c := checker{ctx: ctx, env: env, out: out, root: o.Run.Out, tools: ensureReviewTools(hosttools.Real(), o.Run.Mach(), out)}
	if err := env.WT.Reset(); err != nil {
		fmt.Fprintf(out, "series-check: %v\n", err)
		return rep, exitcode.Infra
	}
	rows := []Row{c.base()}
	// A base tree that does not build, or a harness that failed, leaves
	// nothing to compare the patches with.
	stopped := rows[0].Builds == "no" || halts(rows[0].Code)
	why := "not tried: the base tree failed"
	for i := 1; i <= n; i++ {
		if stopped {
			p := env.Series.Patches[i-1]
			rows = append(rows, notTried(i, p.Name, p.Subject, why))
			continue
		}
		row := c.patch(i, rows)
		rows = append(rows, row)
		if row.Applies == "no" {
			stopped, why = true, "not tried: an earlier patch did not apply"
		}
		if halts(row.Code) {
			break
		}
	}
	rep.Rows = rows
	for i := range rep.Rows {
		// What a --merge needs, not a sequential report.
		rep.Rows[i].Statuses = nil
	}
	rep.Splats = splatHistory(rows)
	rep.Seconds = time.Since(start).Seconds()
	code, verdict := decide(rows)
	rep.ExitCode, rep.Verdict = int(code), verdict
	if err := write(rep, o.Run.Out); err != nil {
		fmt.Fprintf(out, "writing the report: %v\n", err)
		code = exitcode.Infra
	}
	fmt.Fprintln(out)
	_ = Table(out, rep)
	fmt.Fprintf(out, "\nseries-check: %s (exit %d)\nreport in %s\n", verdict, int(code), filepath.Join(o.Run.Out, "series-check.md"))
	return rep, code
}

// setup is what a check and a step run alone start with: the output
// directory, the tools, the base tree and the series, and the report's
// header. env is nil when that failed, with code saying how.
func setup(o Options) (io.Writer, *Report, *step.Env, exitcode.Code) {
	out := o.Stdout
	if out == nil {
		out = os.Stdout
	}
	rep := &Report{Series: o.Series, Tests: strings.Join(o.Run.Tests, " ")}
	if err := os.MkdirAll(o.Run.Out, 0o755); err != nil {
		fmt.Fprintf(out, "creating %s: %v\n", o.Run.Out, err)
		return out, rep, nil, exitcode.Infra
	}
	env, err := step.Setup(o.Run, o.Series, filepath.Join(o.Run.Out, "series"), "series-check", out)
	if err != nil {
		fmt.Fprintf(out, "series-check: %v\n", err)
		return out, rep, nil, exitcode.Of(err)
	}
	rep.Base = env.Base.Desc
	return out, rep, env, exitcode.OK
}

// halts reports whether a step's exit code stops the check: the harness
// failed (Infra), or the user asked for something no step can do (Usage,
// e.g. a KSELFTESTS directory the tree does not have).
func halts(code int) bool {
	return exitcode.Code(code) == exitcode.Infra || exitcode.Code(code) == exitcode.Usage
}

// decide picks the exit code: the first red patch's first problem. The
// base tree's own failures are reported but are not the series' fault,
// unless the base does not build or test at all.
func decide(rows []Row) (exitcode.Code, string) {
	var red, still []string
	code := exitcode.OK
	for _, r := range rows {
		if r.Index == 0 {
			if halts(r.Code) || r.Builds == "no" {
				return exitcode.Code(r.Code), "the base tree itself failed: " + strings.Join(r.Problems, "; ")
			}
			continue
		}
		if halts(r.Code) {
			return exitcode.Code(r.Code), fmt.Sprintf("stopped at patch %d: %s", r.Index, strings.Join(r.Problems, "; "))
		}
		if !r.Green {
			if code == exitcode.OK {
				code = exitcode.Code(r.Code)
			}
			if r.BrokenSince > 0 && len(r.Problems) == 1 {
				still = append(still, strconv.Itoa(r.Index))
				continue
			}
			red = append(red, fmt.Sprintf("%d (%s)", r.Index, r.Patch))
		}
	}
	notRun := notRunSummary(rows)
	if len(red) == 0 && len(still) == 0 {
		why := fmt.Sprintf("all %d patch(es) green", len(rows)-1)
		if notRun != "" {
			why += ", but not every check ran; " + notRun
		}
		return exitcode.OK, why
	}
	why := "red: patch " + strings.Join(red, ", patch ")
	if len(still) > 0 {
		why += "; the build stays broken at patch " + strings.Join(still, ", ")
	}
	if notRun != "" {
		why += "; " + notRun
	}
	return code, why
}

type checker struct {
	ctx   context.Context
	env   *step.Env
	out   io.Writer
	root  string
	tools reviewTools
}

func (c *checker) stepDir(i int, name string) string {
	name = strings.TrimSuffix(name, ".patch")
	return filepath.Join(c.root, "steps", fmt.Sprintf("%02d-%s", i, name))
}

// base builds and tests the base tree.
func (c *checker) base() Row {
	start := time.Now()
	row := Row{Index: 0, Patch: "(base)", Subject: c.env.Base.Desc, Applies: "-", Checkpatch: "-"}
	dir := c.stepDir(0, "base")
	row.Out = dir
	fmt.Fprintf(c.out, "==> [0/%d] base tree\n", len(c.env.Series.Patches))
	c.buildAndTest(&row, dir, nil)
	row.Seconds = time.Since(start).Seconds()
	c.summary(row)
	return row
}

// lastTested is the latest row before i whose tests ran.
func lastTested(rows []Row) *Row {
	for k := len(rows) - 1; k >= 0; k-- {
		if rows[k].TestsRan {
			return &rows[k]
		}
	}
	return nil
}

func (c *checker) patch(i int, rows []Row) (row Row) {
	start := time.Now()
	p := c.env.Series.Patches[i-1]
	row = Row{Index: i, Patch: p.Name, Subject: p.Subject, Applies: "yes", Builds: "-", Checkpatch: "-"}
	dir := c.stepDir(i, p.Name)
	row.Out = dir
	defer func() {
		row.Seconds = time.Since(start).Seconds()
		c.summary(row)
	}()
	fmt.Fprintf(c.out, "==> [%d/%d] %s\n", i, len(c.env.Series.Patches), p.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return infra(row, err)
	}

	// checkpatch, on the tree the patch applies to.
	cp, ran, err := c.env.WT.Checkpatch(p.Path, worktree.CheckpatchOptions{Codespell: c.tools.codespell})
	switch {
	case err != nil:
		row.Checkpatch = "error"
		row.Problems = append(row.Problems, "checkpatch.pl: "+textutil.FirstLine(err.Error()))
		row.Spelling = notRun("checkpatch.pl failed", textutil.FirstLine(err.Error()))
	case ran:
		row.Checkpatch = cp.String()
		row.CheckpatchErrors, row.CheckpatchWarnings, row.CheckpatchChecks = cp.Errors, cp.Warnings, cp.Checks
		_ = os.WriteFile(filepath.Join(dir, "checkpatch.txt"), []byte(cp.Output), 0o644)
		row.CheckpatchRan, row.CheckpatchOK = true, cp.Errors+cp.Warnings == 0
		row.Spelling = c.tools.spelling(cp)
	default:
		row.Checkpatch = "n/a"
		row.Spelling.NA = "the tree has no scripts/checkpatch.pl"
	}

	// The touched C files, compiled with W=1 and checked with sparse
	// before the patch (the step before's build must have succeeded for
	// a baseline), and the touched files read by kernel-doc and
	// docutils.
	files, err := p.Files()
	if err != nil {
		return infra(row, err)
	}
	prev := rows[len(rows)-1]
	var before []build.Warning
	baseline := prev.Built
	objsBefore := c.env.Objects(files)
	if baseline {
		before, err = c.env.Warnings(objsBefore, filepath.Join(dir, "w1-before.log"))
		if err != nil {
			return infra(row, err)
		}
	}
	sparseBefore, sparseSkip := c.sparseBefore(objsBefore, baseline, dir)
	kernelDoc := c.kernelDocBefore(files, dir)
	docutils := c.docutilsBefore(files, dir)

	if err := c.env.WT.Apply(c.env.Series, i); err != nil {
		row.Applies = "no"
		var ae *series.ApplyError
		if errors.As(err, &ae) {
			_ = os.WriteFile(filepath.Join(dir, "apply.txt"), []byte(err.Error()+"\n"), 0o644)
		}
		row.Problems = append(row.Problems, "does not apply: "+textutil.FirstLine(err.Error()))
		row.Code = int(exitcode.PatchFailed)
		return row
	}
	// The tree checks need no build: the patch's column even when it
	// does not build.
	row.KernelDoc = c.kernelDocAfter(kernelDoc, files, dir)
	row.Docutils = c.docutilsAfter(docutils, files, dir)
	c.buildAndTest(&row, dir, func() {
		objs := c.env.Objects(files)
		row.WarningFiles = objs
		w1 := c.w1After(&row, before, objs, baseline, dir)
		row.Sparse = c.sparseAfter(sparseBefore, sparseSkip, objs, w1, dir)
	})
	if exitcode.Code(row.Code) == exitcode.Infra {
		return row
	}
	row.Judged, row.RawProblems, row.RawCode = true, slices.Clone(row.Problems), row.Code
	return judge(row, prev, rows, dir)
}

// w1After counts the W=1 warnings of objs that before lacks, into row;
// the error is the W=1 build's, if it failed.
func (c *checker) w1After(row *Row, before []build.Warning, objs []string, baseline bool, dir string) error {
	switch {
	case len(objs) == 0:
		row.WarningNote = "no C file of this patch is built by the config"
		return nil
	case !baseline:
		row.WarningNote = "the step before did not build: no baseline"
		return nil
	}
	after, err := c.env.Warnings(objs, filepath.Join(dir, "w1-after.log"))
	if err != nil {
		row.Problems = append(row.Problems, "W=1 build: "+textutil.FirstLine(err.Error()))
		return err
	}
	row.NewWarnings = newFindings(before, after)
	return nil
}

// rejudge is row, a step that ran on its own (--step), judged after rows,
// the steps before it, judged already: as a sequential check has it.
func rejudge(row Row, rows []Row) Row {
	if !row.Judged || len(rows) == 0 {
		return row
	}
	row.Problems, row.Code = slices.Clone(row.RawProblems), row.RawCode
	row.NewFailures, row.NewSplats, row.BrokenSince, row.Green = nil, nil, 0, false
	return judge(row, rows[len(rows)-1], rows, row.Out)
}

// notTried is the row of step i, not tried for why.
func notTried(i int, patch, subject, why string) Row {
	return Row{Index: i, Patch: patch, Subject: subject, Applies: "-", Builds: "-", Checkpatch: "-", Problems: []string{why}, Code: int(exitcode.PatchFailed)}
}

// assemble judges steps, run apart and sorted by index from the base on,
// as the sequential check does: each patch against the steps before it,
// none tried after the base failed or a patch did not apply, and none
// after one that stops the check.
func assemble(steps []Row) []Row {
	var rows []Row
	stopped, why := false, ""
	for _, r := range steps {
		if r.Index == 0 {
			rows = append(rows, r)
			stopped, why = r.Builds == "no" || halts(r.Code), "not tried: the base tree failed"
			continue
		}
		if stopped {
			rows = append(rows, notTried(r.Index, r.Patch, r.Subject, why))
			continue
		}
		r = rejudge(r, rows)
		rows = append(rows, r)
		if r.Applies == "no" {
			stopped, why = true, "not tried: an earlier patch did not apply"
		}
		if halts(r.Code) {
			break
		}
	}
	return rows
}

// judge decides a patch's step, built and tested, against the steps
// before it (rows, prev the one just before): its problems, code and
// colour, the first problem deciding the code. dir is the step's output.
func judge(row, prev Row, rows []Row, dir string) Row {
	code := exitcode.OK
	if row.Builds == "no" {
		code = exitcode.Code(row.Code)
		// The same error as the step before: the break is an earlier
		// patch's, this one only did not fix it.
		if prev.Builds == "no" && row.BuildError != "" && row.BuildError == prev.BuildError {
			row.BrokenSince = prev.Index
			if prev.BrokenSince > 0 {
				row.BrokenSince = prev.BrokenSince
			}
			row.Problems[len(row.Problems)-1] = fmt.Sprintf("still does not build, broken since patch %d: %s", row.BrokenSince, row.BuildError)
		}
	}
	if len(row.NewWarnings) > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("adds %d W=1 warning(s): %s", len(row.NewWarnings), strings.Join(row.NewWarnings, "; ")))
		if code == exitcode.OK {
			code = exitcode.Warnings
		}
	}
	if row.CheckpatchRan && !row.CheckpatchOK {
		row.Problems = append(row.Problems, fmt.Sprintf("checkpatch.pl --strict: %d error(s), %d warning(s) (%s)", row.CheckpatchErrors, row.CheckpatchWarnings, filepath.Join(dir, "checkpatch.txt")))
		if code == exitcode.OK {
			code = exitcode.Warnings
		}
	}
	for _, k := range reviewChecks {
		if p := reviewProblem(k, *k.get(&row), dir); p != "" {
			row.Problems = append(row.Problems, p)
			if code == exitcode.OK {
				code = exitcode.Warnings
			}
		}
	}
	if row.TestsRan {
		prevT := lastTested(rows)
		if prevT != nil {
			row.NewFailures = newFailures(prevT.Statuses, row.Statuses)
		} else {
			row.NewFailures = newFailures(nil, row.Statuses)
		}
		row.NewSplats = newSplats(prevT, row)
		if len(row.NewSplats) > 0 {
			// The patch's, even when the step before splatted too: the
			// fingerprints tell one bug from another.
			row.Problems = append(row.Problems, fmt.Sprintf("%d kernel splat(s) first seen at this patch: %s", len(row.NewSplats), strings.Join(row.NewSplats, ", ")))
		}
		switch {
		case len(row.NewFailures) > 0:
			row.Problems = append(row.Problems, fmt.Sprintf("%d test(s) fail that did not fail one step before: %s", len(row.NewFailures), strings.Join(row.NewFailures, ", ")))
			if code == exitcode.OK {
				code = row.TestCode
				if code == exitcode.OK {
					code = exitcode.TestsFailed
				}
			}
		case row.TestCode != exitcode.OK && row.TestCode != exitcode.TestsFailed:
			// A crash or hang is the patch's unless the step before
			// ended the same way, or the step has a splat of its own.
			if prevT == nil || prevT.TestCode != row.TestCode {
				if len(row.NewSplats) == 0 {
					row.Problems = append(row.Problems, row.TestsResult)
				}
				if code == exitcode.OK {
					code = row.TestCode
				}
			}
		}
		if len(row.NewSplats) > 0 && code == exitcode.OK {
			code = exitcode.KernelCrashed
		}
	}
	row.Code = int(code)
	row.Green = code == exitcode.OK
	return row
}

// buildAndTest builds the worktree as it is, runs afterBuild (warnings),
// then boots and tests, filling row.
func (c *checker) buildAndTest(row *Row, dir string, afterBuild func()) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		*row = infra(*row, err)
		return
	}
	kernel, err := c.env.Build(c.ctx, filepath.Join(dir, "build.log"))
	if err != nil && c.ctx.Err() != nil {
		*row = infra(*row, fmt.Errorf("interrupted: %w", c.ctx.Err()))
		return
	}
	if err != nil {
		row.Builds = "no"
		code := exitcode.Of(err)
		row.Code = int(code)
		var be *build.Error
		if errors.As(err, &be) {
			row.BuildError = strings.ReplaceAll(firstErrorLine(be.Excerpt), c.env.Src+"/", "")
			row.Problems = append(row.Problems, "does not build: "+row.BuildError)
			fmt.Fprintf(c.out, "  build failed (log %s):\n%s\n", filepath.Join(dir, "build.log"), textutil.Indent(be.Excerpt))
		} else {
			row.Problems = append(row.Problems, code.String()+": "+textutil.FirstLine(err.Error()))
			fmt.Fprintf(c.out, "  %v\n", err)
		}
		return
	}
	row.Builds = "yes"
	row.Built = true
	if afterBuild != nil {
		afterBuild()
	}
	o := c.env.Test(c.ctx, kernel, dir, "")
	row.TestsRan = true
	row.TestCode = o.Code
	row.TestsResult = fmt.Sprintf("%s: %s", o.Code, o.Reason)
	row.Passed, row.Failed, row.Skipped = o.Report.Passed, o.Report.Failed, o.Report.Skipped
	row.Flaky = o.Report.Flaky
	for _, f := range o.Report.FlakyTests() {
		row.FlakyTests = append(row.FlakyTests, f.Package+" "+f.Test.Name)
	}
	row.Statuses = step.Statuses(o.Report)
	// Only the splats that fail a run: an OOM kill's report, say, is not
	// a bug of the patch by itself.
	row.Splats = results.GroupSplats(slices.DeleteFunc(slices.Clone(o.Splats), func(s results.Splat) bool { return !s.Fails }))
	if len(row.Splats) == 0 {
		row.Splats = nil
	}
	if o.Code == exitcode.Infra {
		row.Code = int(exitcode.Infra)
		row.Problems = append(row.Problems, row.TestsResult)
		return
	}
	if row.Index == 0 {
		row.Green = o.Code == exitcode.OK
		row.Code = int(o.Code)
		if !row.Green {
			row.Problems = append(row.Problems, "base tree: "+row.TestsResult)
		}
	}
}

func infra(row Row, err error) Row {
	row.Code = int(exitcode.Infra)
	row.Problems = append(row.Problems, "infrastructure: "+err.Error())
	return row
}

// newFailures lists the tests that fail now and did not fail before
// (passed, skipped, flaky or did not exist), sorted; a flaky test
// (RETRY=) is no failure.
func newFailures(before, now map[string]results.Status) []string {
	var out []string
	for name, st := range now {
		if st == results.StatusFail && before[name] != results.StatusFail {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (c *checker) summary(r Row) {
	status := "green"
	if !r.Green {
		status = "RED"
	}
	if r.Index == 0 && !r.Green {
		status = "base not green (not counted against the series)"
	}
	fmt.Fprintf(c.out, "<== [%d] %s: %s (%.1fs)\n", r.Index, r.Patch, status, r.Seconds)
	for _, p := range r.Problems {
		fmt.Fprintf(c.out, "    %s\n", p)
	}
	for _, n := range reviewNotes(r) {
		fmt.Fprintf(c.out, "    %s\n", n)
	}
}

// firstErrorLine picks the compiler's first error line out of an excerpt.
func firstErrorLine(excerpt string) string {
	for _, l := range strings.Split(excerpt, "\n") {
		if strings.Contains(l, "error:") {
			return strings.TrimSpace(l)
		}
	}
	return textutil.FirstLine(strings.TrimSpace(excerpt))
}
