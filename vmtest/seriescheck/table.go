package seriescheck

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/landlock-vmtest/landlock-vmtest/internal/fsutil"
)

// cells renders a row's columns: patch, applies, builds, new warnings,
// checkpatch, the review checks (spelling, sparse, kernel-doc,
// docutils), passed/failed/skipped, time, verdict.
func cells(r Row) []string {
	warn := "-"
	switch {
	case r.WarningNote != "" && len(r.NewWarnings) == 0:
		warn = "n/a"
	case r.Builds == "yes" && r.Index > 0:
		warn = fmt.Sprint(len(r.NewWarnings))
	}
	tests := "-"
	if r.TestsRan {
		tests = fmt.Sprintf("%d/%d/%d", r.Passed, r.Failed, r.Skipped)
		if r.Flaky > 0 {
			tests += fmt.Sprintf(" (%d flaky)", r.Flaky)
		}
	}
	verdict := "green"
	switch {
	case r.Index == 0 && r.Green:
		verdict = "baseline"
	case r.Index == 0:
		verdict = "baseline, not green"
	case !r.Green && r.BrokenSince > 0 && len(r.Problems) == 1:
		verdict = fmt.Sprintf("red (broken since %d)", r.BrokenSince)
	case !r.Green:
		verdict = "RED"
	}
	name := r.Patch
	if r.Index > 0 {
		name = fmt.Sprintf("%d %s", r.Index, r.Patch)
	}
	out := []string{name, r.Applies, r.Builds, warn, r.Checkpatch}
	for _, k := range reviewChecks {
		out = append(out, k.get(&r).cell())
	}
	return append(out, tests, fmt.Sprintf("%.0fs", r.Seconds), verdict)
}

var header = func() []string {
	h := []string{"patch", "applies", "builds", "new warnings", "checkpatch"}
	for _, k := range reviewChecks {
		h = append(h, k.name)
	}
	return append(h, "pass/fail/skip", "time", "verdict")
}()

// Table prints the report as an aligned table, then the problems.
func Table(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rep.Rows {
		fmt.Fprintln(tw, strings.Join(cells(r), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  [%d] %s: %s\n", r.Index, r.Patch, p)
		}
		if len(r.FlakyTests) > 0 {
			fmt.Fprintf(w, "  [%d] %s: %s\n", r.Index, r.Patch, flakyNote(r))
		}
		for _, n := range reviewNotes(r) {
			fmt.Fprintf(w, "  [%d] %s: %s\n", r.Index, r.Patch, n)
		}
	}
	for _, s := range rep.Splats {
		fmt.Fprintf(w, "  splat %s\n", splatNote(s))
	}
	return nil
}

// splatNote says where a kernel bug appeared first and where it was seen.
func splatNote(s SplatHistory) string {
	steps := make([]string, len(s.Steps))
	for i, n := range s.Steps {
		steps[i] = fmt.Sprint(n)
	}
	first := fmt.Sprintf("patch %d %s", s.First, s.FirstPatch)
	if s.First == 0 {
		first = "the base tree"
	}
	return fmt.Sprintf("%q (%s, fingerprint %s): first at %s; seen %d time(s), at step(s) %s", s.Signature, s.Kind, s.Fingerprint, first, s.Count, strings.Join(steps, ", "))
}

// flakyNote names a row's flaky tests, which are no problem of the step.
func flakyNote(r Row) string {
	return "flaky (failed, then passed on a retry; counted as passed): " + strings.Join(r.FlakyTests, ", ")
}

// Markdown writes the report as a markdown document.
func Markdown(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "# series-check\n\nseries: `%s`  \nbase: %s  \ntests: `%s`  \nverdict: **%s** (exit %d), %.0fs\n\n", rep.Series, rep.Base, rep.Tests, rep.Verdict, rep.ExitCode, rep.Seconds)
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, r := range rep.Rows {
		c := cells(r)
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
	}
	var probs bytes.Buffer
	for _, r := range rep.Rows {
		for _, p := range r.Problems {
			fmt.Fprintf(&probs, "- **%d %s**: %s\n", r.Index, r.Patch, p)
		}
		if r.WarningNote != "" {
			fmt.Fprintf(&probs, "- %d %s: warnings not counted: %s\n", r.Index, r.Patch, r.WarningNote)
		}
		if len(r.FlakyTests) > 0 {
			fmt.Fprintf(&probs, "- %d %s: %s\n", r.Index, r.Patch, flakyNote(r))
		}
		for _, n := range reviewNotes(r) {
			fmt.Fprintf(&probs, "- %d %s: %s\n", r.Index, r.Patch, strings.ReplaceAll(n, "|", `\|`))
		}
	}
	if probs.Len() > 0 {
		fmt.Fprintf(w, "\n## Problems and notes\n\n%s", probs.String())
	}
	if len(rep.Splats) > 0 {
		fmt.Fprintf(w, "\n## Kernel splats\n\n")
		for _, s := range rep.Splats {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(splatNote(s), "|", `\|`))
		}
	}
}

// write stores series-check.md and series-check.json in dir.
func write(rep *Report, dir string) error {
	var md bytes.Buffer
	Markdown(&md, rep)
	return fsutil.WriteReport(dir, "series-check", md.Bytes(), rep)
}
