package seriescheck

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/worktree"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
)

// Review is one review check of a patch, a column of the table: what it
// found with the patch that the tree before the patch did not have, by
// file and message (not line). For spelling, which checkpatch.pl finds
// in the patch itself, that is all it found.
type Review struct {
	// Ran tells that the check ran, before and after the patch.
	Ran bool `json:"ran,omitempty"`
	// Files are the files it checked after the patch.
	Files []string `json:"files,omitempty"`
	// New are the findings the patch adds, "file:line: level: text".
	New []string `json:"new,omitempty"`
	// NA says why the check had nothing to look at (no file of its
	// kind in the patch).
	NA string `json:"na,omitempty"`
	// NotRun says, in a few words for the table, why it did not run
	// though it had something to look at ("no sparse", "no
	// baseline"); Why says more.
	NotRun string `json:"not_run,omitempty"`
	Why    string `json:"why,omitempty"`
}

// cell is the check's column: the count of new findings, "n/a" with
// nothing to check, "not run: why", or "-" when the step got nowhere
// near it (the base tree, a patch that does not apply or build).
func (r Review) cell() string {
	switch {
	case r.Ran:
		return strconv.Itoa(len(r.New))
	case r.NotRun != "":
		return "not run: " + r.NotRun
	case r.NA != "":
		return "n/a"
	}
	return "-"
}

// notRun is a check that did not run for short, explained by why.
func notRun(short, why string) Review {
	return Review{NotRun: short, Why: why}
}

// reviewCheck is what the table and judge() know of a check.
type reviewCheck struct {
	// name is its column and how the notes call it.
	name string
	// what counts its findings in a problem ("%d sparse warning(s)").
	what string
	// log is the findings file in the step's directory.
	log string
	get func(*Row) *Review
}

// reviewChecks are the checks in the order of their columns, after
// checkpatch's.
var reviewChecks = []reviewCheck{
	{name: "spelling", what: "spelling mistake(s) (checkpatch.pl --codespell)", log: "checkpatch.txt", get: func(r *Row) *Review { return &r.Spelling }},
	{name: "sparse", what: "sparse warning(s)", log: "sparse-after.log", get: func(r *Row) *Review { return &r.Sparse }},
	{name: "kernel-doc", what: "kernel-doc warning(s)", log: "kernel-doc-after.txt", get: func(r *Row) *Review { return &r.KernelDoc }},
	{name: "docutils", what: "docutils message(s)", log: "docutils-after.txt", get: func(r *Row) *Review { return &r.Docutils }},
}

// shownFindings is how many findings a problem quotes; the rest are in
// the findings file.
const shownFindings = 5

// reviewProblem says what a check found new at a step, or "".
func reviewProblem(k reviewCheck, r Review, dir string) string {
	if len(r.New) == 0 {
		return ""
	}
	quoted := r.New
	more := ""
	if len(quoted) > shownFindings {
		quoted = quoted[:shownFindings]
		more = fmt.Sprintf("; and %d more", len(r.New)-shownFindings)
	}
	return fmt.Sprintf("adds %d %s: %s%s (%s)", len(r.New), k.what, strings.Join(quoted, "; "), more, filepath.Join(dir, k.log))
}

// reviewNotes say which checks of a row did not run, and why.
func reviewNotes(r Row) []string {
	var out []string
	for _, k := range reviewChecks {
		rv := *k.get(&r)
		if rv.NotRun == "" {
			continue
		}
		why := rv.Why
		if why == "" {
			why = rv.NotRun
		}
		out = append(out, k.name+" not run: "+why)
	}
	return out
}

// notRunSummary names the checks that did not run at some patch, with
// those patches and their reasons, for the verdict: a check not run is
// never a pass. "" when every check ran where it had something to do.
func notRunSummary(rows []Row) string {
	var parts []string
	for _, k := range reviewChecks {
		var at []string
		var why []string
		for _, r := range rows {
			rv := *k.get(&r)
			if r.Index == 0 || rv.NotRun == "" {
				continue
			}
			at = append(at, strconv.Itoa(r.Index))
			if !slices.Contains(why, rv.NotRun) {
				why = append(why, rv.NotRun)
			}
		}
		if len(at) > 0 {
			parts = append(parts, fmt.Sprintf("%s at patch %s (%s)", k.name, strings.Join(at, ", "), strings.Join(why, "; ")))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "not run: " + strings.Join(parts, ", ")
}

// reviewTools are the review checks' tools on this host: sparse's and
// docutils's commands, codespell's dictionary ("" when missing), and
// why each missing one is.
type reviewTools struct {
	sparse, docutils, codespell string
	missing                     map[string]string
}

// ensureReviewTools installs the review checks' tools (hosttools.For,
// Review) when they are missing, as the others were; one that stays
// missing leaves its check not run, with the reason, and stops nothing.
func ensureReviewTools(h hosttools.Host, m machine.Machine, log io.Writer) reviewTools {
	missing := h.TryEnsure(hosttools.For(hosttools.Request{Machine: m, Review: true}), log)
	t := reviewTools{missing: map[string]string{}}
	for _, n := range hosttools.Review() {
		if why, ok := missing[n.String()]; ok {
			t.missing[n.String()] = why
			fmt.Fprintf(log, "series-check: %s; its check is not run\n", why)
			continue
		}
		switch n.Package {
		case "sparse":
			t.sparse = n.Command
		case "python3-docutils":
			t.docutils = n.Command
		case "codespell":
			t.codespell = n.Path
		}
	}
	return t
}

// why is the reason a tool is missing.
func (t reviewTools) why(need string) string {
	if w := t.missing[need]; w != "" {
		return w
	}
	return need + " not found"
}

// spelling is the spelling column of a checkpatch.pl run.
func (t reviewTools) spelling(cp worktree.CheckpatchResult) Review {
	if !cp.Codespell {
		return notRun("no codespell", t.why(hosttools.CodespellDictionary))
	}
	return Review{Ran: true, New: slices.Clone(cp.Spelling)}
}

// newFindings are the findings of after that before lacks.
func newFindings(before, after []build.Warning) []string {
	var out []string
	for _, w := range build.NewWarnings(before, after) {
		out = append(out, w.String())
	}
	return out
}

// hasSuffix reports whether any of files ends with one of suffixes.
func hasSuffix(files []string, suffixes ...string) bool {
	for _, f := range files {
		for _, s := range suffixes {
			if strings.HasSuffix(f, s) {
				return true
			}
		}
	}
	return false
}

// treeReview is a check that reads the tree without building it
// (kernel-doc, docutils), run before the patch: its after run gives the
// column.
type treeReview struct {
	// na, notRun: the column when nothing is to be run at all.
	na     string
	notRun *Review
	before worktree.Review
	err    error
}

// compare is the column of a tree check from its run before the patch
// and its run after (after, err).
func (b treeReview) compare(tool string, after worktree.Review, err error) Review {
	switch {
	case b.na != "":
		return Review{NA: b.na}
	case b.notRun != nil:
		return *b.notRun
	case b.err != nil:
		return notRun(tool+" failed", "before the patch: "+textutil.FirstLine(b.err.Error()))
	case err != nil:
		return notRun(tool+" failed", textutil.FirstLine(err.Error()))
	}
	files := slices.Clone(after.Files)
	sort.Strings(files)
	return Review{Ran: true, Files: files, New: newFindings(b.before.Findings, after.Findings)}
}

// kernelDocBefore runs kernel-doc on the C files and headers of the
// patch, in the tree before it.
func (c *checker) kernelDocBefore(files []string, dir string) treeReview {
	if !hasSuffix(files, ".c", ".h") {
		return treeReview{na: "no C file or header in the patch"}
	}
	r, err := c.env.WT.KernelDoc(files, filepath.Join(dir, "kernel-doc-before.txt"))
	if errors.Is(err, worktree.ErrNoKernelDoc) {
		return treeReview{notRun: &Review{NotRun: "no scripts/kernel-doc", Why: err.Error()}}
	}
	return treeReview{before: r, err: err}
}

// kernelDocAfter is the kernel-doc column, on the tree with the patch.
func (c *checker) kernelDocAfter(b treeReview, files []string, dir string) Review {
	if b.na != "" || b.notRun != nil || b.err != nil {
		return b.compare("kernel-doc", worktree.Review{}, nil)
	}
	r, err := c.env.WT.KernelDoc(files, filepath.Join(dir, "kernel-doc-after.txt"))
	return b.compare("kernel-doc", r, err)
}

// docutilsBefore parses the patch's .rst files in the tree before it.
func (c *checker) docutilsBefore(files []string, dir string) treeReview {
	switch {
	case !hasSuffix(files, ".rst"):
		return treeReview{na: "no .rst file in the patch"}
	case c.tools.docutils == "":
		return treeReview{notRun: &Review{NotRun: "no docutils", Why: c.tools.why("docutils")}}
	}
	r, err := c.env.WT.Docutils(c.tools.docutils, files, filepath.Join(dir, "docutils-before.txt"))
	return treeReview{before: r, err: err}
}

// docutilsAfter is the docutils column, on the tree with the patch.
func (c *checker) docutilsAfter(b treeReview, files []string, dir string) Review {
	if b.na != "" || b.notRun != nil || b.err != nil {
		return b.compare("docutils", worktree.Review{}, nil)
	}
	r, err := c.env.WT.Docutils(c.tools.docutils, files, filepath.Join(dir, "docutils-after.txt"))
	return b.compare("docutils", r, err)
}

// sparseBefore is sparse's baseline: the patch's C files that the tree
// before it builds, checked there; ok is false when there is none to
// compare with (no sparse, the step before did not build, make failed),
// and then skip says why.
func (c *checker) sparseBefore(objs []string, baseline bool, dir string) (before []build.Warning, skip *Review) {
	switch {
	case c.tools.sparse == "":
		r := notRun("no sparse", c.tools.why("sparse"))
		return nil, &r
	case !baseline:
		r := notRun("no baseline", "the step before did not build")
		return nil, &r
	}
	before, err := c.env.Sparse(objs, filepath.Join(dir, "sparse-before.log"))
	if err != nil {
		r := notRun("make C=2 failed", "before the patch: "+textutil.FirstLine(err.Error()))
		return nil, &r
	}
	return before, nil
}

// sparseAfter is the sparse column: objs, the patch's C files that the
// config builds, checked after the W=1 count (w1 its error) on the
// built tree with the patch.
func (c *checker) sparseAfter(before []build.Warning, skip *Review, objs []string, w1 error, dir string) Review {
	switch {
	case len(objs) == 0:
		return Review{NA: "no C file of this patch is built by the config"}
	case skip != nil:
		return *skip
	case w1 != nil:
		return notRun("W=1 build failed", textutil.FirstLine(w1.Error()))
	}
	after, err := c.env.Sparse(objs, filepath.Join(dir, "sparse-after.log"))
	if err != nil {
		return notRun("make C=2 failed", textutil.FirstLine(err.Error()))
	}
	return Review{Ran: true, Files: slices.Clone(objs), New: newFindings(before, after)}
}
