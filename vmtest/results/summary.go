package results

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// maxSummaryLines caps the output lines WriteSummary prints per failed test;
// the full output is in the JUnit and JSON files.
const maxSummaryLines = 200

// WriteSummary writes a human readable summary of r to w: one line per
// package (ok, FAIL or skip, its counts, its time and why it failed beyond
// its tests), then each failed test with its note and indented output,
// each flaky test with the output of its failed runs, then runner errors
// and a warning when the stream lacked its "done" marker. The last line is
// exactly "N passed, N failed, N skipped"; nothing follows it. With flaky
// tests (RETRY=), which it counts among the passed, the line before it
// names them (flakyLine).
func WriteSummary(w io.Writer, r Report) error {
	body, err := summaryBody(r)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString(body + "\n")
	if l := flakyLine(r); l != "" {
		buf.WriteString(l + "\n")
	}
	buf.WriteString(counts(r.Passed, r.Failed, r.Skipped) + "\n")
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("results: write summary: %w", err)
	}
	return nil
}

// summaryBody is the summary up to its closing lines.
func summaryBody(r Report) (string, error) {
	var table, buf bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 8, 2, ' ', 0)
	for _, p := range r.Packages {
		word := "ok"
		switch p.Status {
		case StatusFail:
			word = "FAIL"
		case StatusSkip:
			word = "skip"
		}
		reason := ""
		if p.Reason != "" {
			reason = "(" + p.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fs\t%s\n", word, p.Name, packageCounts(p), p.Seconds, reason)
	}
	if err := tw.Flush(); err != nil {
		return "", fmt.Errorf("results: format package lines: %w", err)
	}
	for line := range strings.Lines(table.String()) {
		buf.WriteString(strings.TrimRight(line, " \n") + "\n")
	}

	if failed := r.FailedTests(); len(failed) > 0 {
		buf.WriteString("\nFailed tests:\n")
		for _, f := range failed {
			fmt.Fprintf(&buf, "--- FAIL: %s %s (%.2fs)\n", f.Package, f.Test.Name, f.Test.Seconds)
			writeNoteAndOutput(&buf, f.Test.Note, f.Test.Output)
		}
	}
	if flaky := r.FlakyTests(); len(flaky) > 0 {
		buf.WriteString("\nFlaky tests (failed, then passed on a retry; counted as passed):\n")
		for _, f := range flaky {
			fmt.Fprintf(&buf, "--- FLAKY: %s %s (%.2fs)\n", f.Package, f.Test.Name, f.Test.Seconds)
			var lines []string
			for _, a := range f.Test.Attempts {
				if a.Status == StatusFail {
					lines = append(lines, fmt.Sprintf("run %d failed:", a.Run))
					lines = append(lines, a.Output...)
				}
			}
			writeNoteAndOutput(&buf, f.Test.Note, lines)
		}
	}

	if len(r.Errors) > 0 {
		buf.WriteString("\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&buf, "runner error: %s\n", e)
		}
	}
	if !r.Complete {
		buf.WriteString("\nresult stream incomplete: the done marker was not received\n")
	}
	return buf.String(), nil
}

// writeNoteAndOutput writes a test's note and its output lines, indented,
// at most maxSummaryLines of them (the last).
func writeNoteAndOutput(buf *bytes.Buffer, note string, lines []string) {
	if note != "" {
		fmt.Fprintf(buf, "    note: %s\n", note)
	}
	if n := len(lines) - maxSummaryLines; n > 0 {
		fmt.Fprintf(buf, "    ... %d earlier lines left out\n", n)
		lines = lines[n:]
	}
	for _, l := range lines {
		fmt.Fprintf(buf, "    %s\n", l)
	}
}

// flakyLine is the line that comes just before the closing one when some
// tests were flaky: how many, that they count as passed, and which; ""
// when none was. The closing line keeps its three counts, which scripts
// read.
func flakyLine(r Report) string {
	flaky := r.FlakyTests()
	if len(flaky) == 0 {
		return ""
	}
	names := make([]string, len(flaky))
	for i, f := range flaky {
		names[i] = f.Package + " " + f.Test.Name
	}
	return fmt.Sprintf("%d flaky (failed, then passed on a retry; counted as passed): %s", len(flaky), strings.Join(names, ", "))
}

// packageCounts formats a package's counts for its summary line: as the
// closing line has them, the flaky tests among the passed named too.
func packageCounts(p Package) string {
	if p.Flaky == 0 {
		return counts(p.Passed, p.Failed, p.Skipped)
	}
	return fmt.Sprintf("%d passed (%d flaky), %d failed, %d skipped", p.Passed, p.Flaky, p.Failed, p.Skipped)
}

// counts formats test counts the way the summary's last line has them.
func counts(passed, failed, skipped int) string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", passed, failed, skipped)
}
