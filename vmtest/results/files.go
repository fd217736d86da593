package results

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"
)

// WriteFiles writes a run's results.json and junit.xml in dir.
func WriteFiles(dir string, md Metadata, r Report, events []event.Event) error {
	var js, ju bytes.Buffer
	if err := WriteJSON(&js, md, r, events); err != nil {
		return err
	}
	if err := WriteJUnit(&ju, r); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), js.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing results.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junit.xml"), ju.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing junit.xml: %w", err)
	}
	return nil
}

// PrintEnd prints the end of a run on the terminal: the summary of the
// report, the splats grouped by bug (each bug's signature, kind,
// fingerprint, count and tests, and the text of its first splat), what
// more (the coverage summary) writes, the verdict with the output
// directory, the flaky tests when there are (counted as passed), and last
// the closing line "N passed, N failed, N skipped" that scripts read.
func PrintEnd(w io.Writer, md Metadata, r Report, out string, more func(io.Writer)) {
	body, _ := summaryBody(r)
	fmt.Fprint(w, body+"\n")
	splats := DescribeSplats(md.Splats)
	for _, g := range GroupSplats(splats) {
		first := splats[g.Splats[0]]
		fmt.Fprintf(w, "\n%s:\n%s\n", g.headline(), textutil.Indent(first.Text))
		if src := first.SourcesText(); src != "" {
			fmt.Fprintf(w, "decoded:\n%s\n", textutil.Indent(src))
		}
	}
	if more != nil {
		more(w)
	}
	code := exitcode.Code(md.ExitCode)
	fmt.Fprintf(w, "\nresult: %s (exit %d): %s\nresults in %s\n", code, int(code), md.ExitReason, out)
	if l := flakyLine(r); l != "" {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w, counts(r.Passed, r.Failed, r.Skipped))
}
