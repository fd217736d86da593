package bisect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/step"
)

// Options are the knobs of a bisection.
type Options struct {
	// Run are the pipeline's knobs; Run.Out is the output directory.
	Run pipeline.Options
	// Series is the series (file, directory or mbox); in git mode it is
	// applied on top of every commit, and may be empty.
	Series string
	// Test is the regexp naming the test(s) that fail.
	Test string
	// Runs is how many times each step runs the test (flaky tests).
	Runs int
	// Good and Bad are commits of the git tree Run.KernelSrc (git mode).
	Good, Bad string
	Stdout    io.Writer
}

// StepResult is what one step of the bisection found.
type StepResult struct {
	// Step is the prefix length (series mode) or the commit (git mode).
	Step    string  `json:"step"`
	Label   string  `json:"label"`
	Verdict Verdict `json:"verdict"`
	Runs    []Run   `json:"runs"`
	// Output are the matching tests' output lines of the last run that
	// ran them (the failing ones first).
	Output []string `json:"output,omitempty"`
	Out    string   `json:"out"`
}

// Report is the bisection's result.
type Report struct {
	Mode    string `json:"mode"`
	Test    string `json:"test"`
	Runs    int    `json:"runs_per_step"`
	Found   bool   `json:"found"`
	Culprit string `json:"culprit,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Candidates lists the steps the culprit is among when skipped
	// steps left it ambiguous.
	Candidates []string      `json:"candidates,omitempty"`
	Confidence string        `json:"confidence,omitempty"`
	Message    string        `json:"message"`
	AtCulprit  *StepResult   `json:"at_culprit,omitempty"`
	Before     *StepResult   `json:"before,omitempty"`
	Steps      []*StepResult `json:"steps"`
}

// tester runs one step's test RUNS times on a built kernel.
type tester struct {
	env  *step.Env
	test *regexp.Regexp
	runs int
	log  io.Writer
}

// run builds the tree as it is now and runs the test t.runs times,
// writing each run's results under dir.
func (t *tester) run(ctx context.Context, id, label, dir string) *StepResult {
	sr := &StepResult{Step: id, Label: label, Out: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		sr.Runs = []Run{{Code: exitcode.Infra}}
		sr.Verdict = Decide(sr.Runs)
		return sr
	}
	fmt.Fprintf(t.log, "==> step %s: %s\n", id, label)
	kernel, err := t.env.Build(ctx, filepath.Join(dir, "build.log"))
	if err != nil {
		code := exitcode.Of(err)
		if ctx.Err() != nil {
			// Interrupted: not the kernel's fault.
			code = exitcode.Infra
		}
		var be *build.Error
		if errors.As(err, &be) {
			fmt.Fprintf(t.log, "  build failed (log %s)\n", filepath.Join(dir, "build.log"))
		} else {
			fmt.Fprintf(t.log, "  %v\n", err)
		}
		sr.Runs = []Run{{Code: code}}
		sr.Verdict = Decide(sr.Runs)
		fmt.Fprintf(t.log, "<== step %s: %s (%s)\n", id, sr.Verdict.Name, sr.Verdict.Why)
		return sr
	}
	for k := 1; k <= t.runs; k++ {
		out := filepath.Join(dir, fmt.Sprintf("run-%d", k))
		o := t.env.Test(ctx, kernel, out, t.test.String())
		r, lines := t.match(o)
		sr.Runs = append(sr.Runs, r)
		if len(lines) > 0 {
			sr.Output = lines
		}
		flaky := ""
		if r.Flaky > 0 {
			flaky = fmt.Sprintf(" (%d flaky)", r.Flaky)
		}
		fmt.Fprintf(t.log, "  run %d/%d: %s; matching tests: %d failed, %d passed%s, %d skipped\n", k, t.runs, o.Code, r.Failed, r.Passed, flaky, r.Skipped)
		if o.Code == exitcode.Infra {
			break
		}
	}
	sr.Verdict = Decide(sr.Runs)
	fmt.Fprintf(t.log, "<== step %s: %s (%s)\n", id, sr.Verdict.Name, sr.Verdict.Why)
	return sr
}

// match counts the tests of a run whose name matches TEST, and returns
// their output, failing tests first.
func (t *tester) match(o step.Outcome) (Run, []string) {
	r := Run{Code: o.Code}
	var failing, other []string
	for _, p := range o.Report.Packages {
		for _, tc := range p.Tests {
			if tc.Synthetic || !t.test.MatchString(tc.Name) {
				continue
			}
			r.Matched++
			head := fmt.Sprintf("--- %s %s (%s)", strings.ToUpper(string(tc.Status)), tc.Name, p.Name)
			switch tc.Status {
			case results.StatusFail:
				r.Failed++
				failing = append(append(failing, head), tc.Output...)
			case results.StatusPass:
				r.Passed++
				other = append(append(other, head), tc.Output...)
			case results.StatusFlaky:
				// Passed in the end; its output shows the failed run.
				r.Passed++
				r.Flaky++
				other = append(append(other, head), tc.Output...)
			case results.StatusSkip:
				r.Skipped++
				other = append(append(other, head), tc.Output...)
			}
		}
	}
	return r, append(failing, other...)
}

// finish writes bisect.json and bisect.md and prints the summary.
func finish(rep *Report, out string, w io.Writer) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding bisect.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "bisect.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing bisect.json: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# bisect (%s)\n\nTEST: `%s`, %d run(s) per step\n\n**%s**\n", rep.Mode, rep.Test, rep.Runs, rep.Message)
	if rep.Confidence != "" {
		fmt.Fprintf(&b, "\nconfidence: %s\n", rep.Confidence)
	}
	fmt.Fprintf(&b, "\n| step | what | verdict | why |\n|---|---|---|---|\n")
	for _, s := range rep.Steps {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", s.Step, strings.ReplaceAll(s.Label, "|", `\|`), s.Verdict.Name, s.Verdict.Why)
	}
	for _, s := range []struct {
		title string
		r     *StepResult
	}{{"at the culprit", rep.AtCulprit}, {"one step before", rep.Before}} {
		if s.r == nil {
			continue
		}
		fmt.Fprintf(&b, "\n## The test's output %s (%s: %s)\n\n```\n%s\n```\n", s.title, s.r.Step, s.r.Label, strings.Join(s.r.Output, "\n"))
	}
	if err := os.WriteFile(filepath.Join(out, "bisect.md"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing bisect.md: %w", err)
	}
	fmt.Fprintf(w, "\nbisect: %s\n", rep.Message)
	if rep.Confidence != "" {
		fmt.Fprintf(w, "confidence: %s\n", rep.Confidence)
	}
	for _, s := range []struct {
		title string
		r     *StepResult
	}{{"at the culprit", rep.AtCulprit}, {"one step before", rep.Before}} {
		if s.r != nil {
			fmt.Fprintf(w, "\nthe test's output %s (%s):\n%s\n", s.title, s.r.Label, indent(strings.Join(s.r.Output, "\n")))
		}
	}
	fmt.Fprintf(w, "\nreport in %s\n", filepath.Join(out, "bisect.md"))
	return nil
}

func indent(s string) string {
	if s == "" {
		return "    (no output)"
	}
	return textutil.Indent(s)
}

func confidence(culprit, before *StepResult) string {
	s := fmt.Sprintf("the culprit failed the test in %d of %d run(s)", culprit.Verdict.Agreed, culprit.Verdict.Runs)
	if before != nil {
		s += fmt.Sprintf("; the step before passed it in %d of %d run(s)", before.Verdict.Agreed, before.Verdict.Runs)
	}
	return s
}
