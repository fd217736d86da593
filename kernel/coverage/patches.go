package coverage

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// AddedLines follows, for each patch of a series (its parsed diffs, in
// series order), the lines it adds to where they are once the whole series
// is applied: result[i] maps a final file path to the sorted final line
// numbers of the lines patch i adds. Lines a later patch deletes or
// replaces, and files a later patch deletes, are dropped; renames are
// followed. keep selects files by final path (nil keeps every file).
func AddedLines(patches [][]FileDiff, keep func(string) bool) []map[string][]int {
	out := make([]map[string][]int, len(patches))
	for i, diffs := range patches {
		out[i] = map[string][]int{}
		for _, d := range diffs {
			if d.New == "" {
				continue
			}
			file, lines := d.New, d.Added()
			for _, later := range patches[i+1:] {
				if len(lines) == 0 {
					break
				}
				ld, ok := find(later, file)
				if !ok {
					continue
				}
				if ld.New == "" {
					lines = nil
					break
				}
				lines = mapLines(lines, ld.Hunks)
				file = ld.New
			}
			if len(lines) == 0 || (keep != nil && !keep(file)) {
				continue
			}
			out[i][file] = append(out[i][file], lines...)
			sort.Ints(out[i][file])
		}
	}
	return out
}

// find returns the diff of diffs that changes, renames or deletes file.
func find(diffs []FileDiff, file string) (FileDiff, bool) {
	for _, d := range diffs {
		if d.Old == file {
			return d, true
		}
	}
	return FileDiff{}, false
}

func mapLines(lines []int, hunks []Hunk) []int {
	var out []int
	for _, l := range lines {
		if n, ok := MapLine(l, hunks); ok {
			out = append(out, n)
		}
	}
	return out
}

// FileCoverage is how much of one file's added lines ran.
type FileCoverage struct {
	File string `json:"file"`
	// Added counts the added lines that reach the final tree.
	Added int `json:"added_lines"`
	// Lines counts the executable ones among them (Found) and the
	// executed ones (Hit).
	Lines Ratio `json:"lines"`
	// Compiled is false when the file has no coverage records at all
	// (not built with this config, or not linked).
	Compiled bool `json:"compiled"`
}

// PatchCoverage is how much of one patch's added lines ran.
type PatchCoverage struct {
	Patch string `json:"patch"`
	// Added counts the added lines (in profiled .c files) that reach the
	// final tree.
	Added int `json:"added_lines"`
	// Lines counts the executable ones (Found) and the executed ones
	// (Hit); lines with no gcov record (blank, comments, declarations)
	// are not counted.
	Lines Ratio          `json:"lines"`
	Files []FileCoverage `json:"files"`
}

// Tally counts which of lines (final path -> final line numbers) are
// executable and executed according to t, whose keys are paths relative
// to the tree.
func Tally(name string, lines map[string][]int, t Tracefile) PatchCoverage {
	pc := PatchCoverage{Patch: name}
	files := make([]string, 0, len(lines))
	for f := range lines {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		fc := FileCoverage{File: f, Added: len(lines[f])}
		if counts, ok := t[f]; ok {
			fc.Compiled = true
			for _, l := range lines[f] {
				c, ok := counts.Lines[l]
				if !ok {
					continue
				}
				fc.Lines.Found++
				if c > 0 {
					fc.Lines.Hit++
				}
			}
		}
		pc.Added += fc.Added
		pc.Lines.Found += fc.Lines.Found
		pc.Lines.Hit += fc.Lines.Hit
		pc.Files = append(pc.Files, fc)
	}
	return pc
}

// Union merges per-patch line sets (a line two patches claim counts once).
func Union(sets []map[string][]int) map[string][]int {
	seen := map[string]map[int]bool{}
	for _, s := range sets {
		for f, ls := range s {
			if seen[f] == nil {
				seen[f] = map[int]bool{}
			}
			for _, l := range ls {
				seen[f][l] = true
			}
		}
	}
	out := map[string][]int{}
	for f, ls := range seen {
		for l := range ls {
			out[f] = append(out[f], l)
		}
		sort.Ints(out[f])
	}
	return out
}

// WritePatchTable writes the per-patch table as Markdown.
func WritePatchTable(w io.Writer, patches []PatchCoverage, total PatchCoverage) error {
	var b strings.Builder
	b.WriteString("| patch | added lines executed | % | file: executed/executable (added) |\n|---|---|---|---|\n")
	row := func(p PatchCoverage) {
		var files []string
		for _, f := range p.Files {
			s := fmt.Sprintf("%s: %d/%d (%d)", f.File, f.Lines.Hit, f.Lines.Found, f.Added)
			if !f.Compiled {
				s = fmt.Sprintf("%s: not compiled (%d)", f.File, f.Added)
			}
			files = append(files, s)
		}
		if p.Lines.Found == 0 {
			// A patch with no executable line (documentation, headers
			// only) has no percentage, not 0%.
			fmt.Fprintf(&b, "| %s | no executable added line | - | %s |\n", p.Patch, strings.Join(files, "<br>"))
			return
		}
		fmt.Fprintf(&b, "| %s | %d/%d | %.1f%% | %s |\n", p.Patch, p.Lines.Hit, p.Lines.Found, p.Lines.Percent(), strings.Join(files, "<br>"))
	}
	for _, p := range patches {
		row(p)
	}
	row(total)
	b.WriteString("\nOnly executable lines count: an added line with no gcov record (blank, comment, declaration, code compiled out) is not in the numbers; \"added\" counts every added line of a profiled .c file that is still in the final tree.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// PatchLine is the one-line form printed at the end of a run.
func (p PatchCoverage) PatchLine() string {
	if p.Lines.Found == 0 {
		return fmt.Sprintf("%s: no executable added line in a profiled .c file", p.Patch)
	}
	return fmt.Sprintf("%s: %d/%d added lines executed (%.1f%%)", p.Patch, p.Lines.Hit, p.Lines.Found, p.Lines.Percent())
}
