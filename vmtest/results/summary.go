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
// its tests), then each failed test with its note and indented output, then
// runner errors and a warning when the stream lacked its "done" marker. The
// last line is exactly "N passed, N failed, N skipped"; nothing follows it.
func WriteSummary(w io.Writer, r Report) error {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fs\t%s\n", word, p.Name, counts(p.Passed, p.Failed, p.Skipped), p.Seconds, reason)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("results: format package lines: %w", err)
	}
	for line := range strings.Lines(table.String()) {
		buf.WriteString(strings.TrimRight(line, " \n") + "\n")
	}

	if failed := r.FailedTests(); len(failed) > 0 {
		buf.WriteString("\nFailed tests:\n")
		for _, f := range failed {
			fmt.Fprintf(&buf, "--- FAIL: %s %s (%.2fs)\n", f.Package, f.Test.Name, f.Test.Seconds)
			if f.Test.Note != "" {
				fmt.Fprintf(&buf, "    note: %s\n", f.Test.Note)
			}
			lines := f.Test.Output
			if n := len(lines) - maxSummaryLines; n > 0 {
				fmt.Fprintf(&buf, "    ... %d earlier lines left out\n", n)
				lines = lines[n:]
			}
			for _, l := range lines {
				fmt.Fprintf(&buf, "    %s\n", l)
			}
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

	buf.WriteString("\n" + counts(r.Passed, r.Failed, r.Skipped) + "\n")
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("results: write summary: %w", err)
	}
	return nil
}

// counts formats test counts the way the summary's last line has them.
func counts(passed, failed, skipped int) string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", passed, failed, skipped)
}
