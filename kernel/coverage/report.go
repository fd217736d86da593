package coverage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/internal/fsutil"
)

// Inputs is what a coverage report is made of.
type Inputs struct {
	// BuildDir is the kernel's build directory (O=), with the .gcno
	// files. It is only read.
	BuildDir string
	// TreeDir is the instrumented source tree the kernel was built from.
	TreeDir string
	// Out is the report directory (OUT/coverage); it is emptied first.
	Out  string
	Plan *Plan
	// Gcda are the guest's .gcda files by path relative to its debugfs
	// gcov directory (which mirrors the build directory's absolute path).
	Gcda map[string][]byte
}

// Summary is the report's result, also stored in results.json.
type Summary struct {
	// Dir is the report directory.
	Dir string `json:"dir"`
	// Lines and Functions cover every profiled file.
	Lines     Ratio `json:"lines"`
	Functions Ratio `json:"functions"`
	// SeriesLines covers the lines the series adds (all patches).
	SeriesLines Ratio           `json:"series_added_lines"`
	Patches     []PatchCoverage `json:"patches"`
	// Files are the profiled files the report covers.
	Files []string `json:"files"`
}

// Generate writes the report: the .gcda files beside copies of their
// .gcno files, lcov.info (geninfo, limited to the profiled files), the
// HTML (genhtml), patches.md and patches.json. Tool output goes to
// Out/lcov.log.
func Generate(ctx context.Context, in Inputs) (*Summary, error) {
	if err := os.RemoveAll(in.Out); err != nil {
		return nil, fmt.Errorf("coverage: clearing %s: %w", in.Out, err)
	}
	work := filepath.Join(in.Out, "gcov")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	if err := stage(in.BuildDir, work, in.Gcda); err != nil {
		return nil, err
	}
	logPath := filepath.Join(in.Out, "lcov.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	defer log.Close()
	all := filepath.Join(in.Out, "all.info")
	if err := runTool(ctx, log, logPath, "geninfo", work, "--base-directory", in.BuildDir,
		"--output-filename", all, "--rc", "lcov_branch_coverage=0"); err != nil {
		return nil, err
	}
	roots := treeRoots(in.TreeDir)
	keep := func(file string) bool {
		rel, ok := relTo(roots, file)
		return ok && in.Plan.Profile.Includes(rel)
	}
	info := filepath.Join(in.Out, "lcov.info")
	if err := filterLCOV(all, info, keep); err != nil {
		return nil, err
	}
	if err := runTool(ctx, log, logPath, "genhtml", info, "--output-directory", in.Out,
		"--prefix", in.TreeDir, "--title", "landlock-vmtest: kernel coverage of the series", "--legend"); err != nil {
		return nil, err
	}
	f, err := os.Open(info)
	if err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	t, err := ParseLCOV(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("coverage: %s: %w", info, err)
	}
	rel := Tracefile{}
	for name, fc := range t {
		if r, ok := relTo(roots, name); ok {
			rel[r] = fc
		}
	}
	sum := Summarize(in.Plan, rel)
	sum.Dir = in.Out
	if err := writeTables(in.Out, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// Summarize computes the totals and the per-patch table from a tracefile
// keyed by paths relative to the tree.
func Summarize(p *Plan, t Tracefile) *Summary {
	s := &Summary{Files: t.Files()}
	s.Lines, s.Functions = t.Totals(nil)
	diffs := make([][]FileDiff, len(p.Patches))
	for i, pt := range p.Patches {
		diffs[i] = pt.Diffs
	}
	sets := AddedLines(diffs, p.Profile.Covers)
	for i, pt := range p.Patches {
		s.Patches = append(s.Patches, Tally(pt.Name, sets[i], t))
	}
	s.SeriesLines = Tally("series", Union(sets), t).Lines
	return s
}

func writeTables(out string, s *Summary) error {
	var md bytes.Buffer
	md.WriteString("# Coverage of the lines each patch adds\n\n")
	total := PatchCoverage{Patch: "whole series (each line once)", Lines: s.SeriesLines}
	for _, p := range s.Patches {
		total.Added += p.Added
	}
	if err := WritePatchTable(&md, s.Patches, total); err != nil {
		return err
	}
	fmt.Fprintf(&md, "\nAll profiled code: lines %s, functions %s.\n", s.Lines, s.Functions)
	if err := fsutil.WriteReport(out, "patches", md.Bytes(), struct {
		Patches     []PatchCoverage `json:"patches"`
		SeriesLines Ratio           `json:"series_added_lines"`
	}{s.Patches, s.SeriesLines}); err != nil {
		return fmt.Errorf("coverage: %w", err)
	}
	return nil
}

// WriteSummary prints the summary lines shown at the end of a run.
func (s *Summary) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "coverage (%d profiled files): lines %s, functions %s\n", len(s.Files), s.Lines, s.Functions)
	fmt.Fprintf(w, "coverage of the lines the series adds: %s executed\n", s.SeriesLines)
	for _, p := range s.Patches {
		fmt.Fprintf(w, "  %s\n", p.PatchLine())
	}
	fmt.Fprintf(w, "coverage report: %s (lcov.info, patches.md)\n", filepath.Join(s.Dir, "index.html"))
}

// Includes reports whether a file (relative to the tree) belongs in the
// report: a profiled .c file, or any file of a profiled directory (its
// headers' inline functions are compiled into it).
func (p Profile) Includes(file string) bool {
	return p.Covers(file) || p.inDir(file)
}

// stage writes each .gcda beside a copy of its .gcno, under work, at the
// object's path relative to the build directory.
func stage(buildDir, work string, gcda map[string][]byte) error {
	names := make([]string, 0, len(gcda))
	for n := range gcda {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rel, err := ObjectPath(buildDir, n, func(p string) bool {
			_, err := os.Stat(filepath.Join(buildDir, p))
			return err == nil
		})
		if err != nil {
			return err
		}
		gcno := strings.TrimSuffix(rel, ".gcda") + ".gcno"
		dst := filepath.Join(work, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("coverage: %w", err)
		}
		if err := fsutil.CopyFile(filepath.Join(buildDir, filepath.FromSlash(gcno)), filepath.Join(work, filepath.FromSlash(gcno))); err != nil {
			return err
		}
		if err := os.WriteFile(dst, gcda[n], 0o644); err != nil {
			return fmt.Errorf("coverage: writing %s: %w", dst, err)
		}
	}
	return nil
}

// ObjectPath turns a .gcda path as the guest's debugfs shows it (the
// absolute path of the object in the build directory it was compiled in,
// without the leading slash) into a path relative to buildDir. When the
// object was compiled elsewhere (a ccache hit from another build
// directory), leading components are dropped until a .gcno exists for the
// rest (exists is asked about paths relative to buildDir).
func ObjectPath(buildDir, guestPath string, exists func(string) bool) (string, error) {
	p := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(guestPath)), "/")
	if !strings.HasSuffix(p, ".gcda") {
		return "", fmt.Errorf("coverage: %s is not a .gcda file", guestPath)
	}
	prefix := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(buildDir)), "/") + "/"
	if rel, ok := strings.CutPrefix(p, prefix); ok {
		return rel, nil
	}
	for rest := p; ; {
		_, after, ok := strings.Cut(rest, "/")
		if !ok {
			break
		}
		rest = after
		if exists(strings.TrimSuffix(rest, ".gcda") + ".gcno") {
			return rest, nil
		}
	}
	return "", fmt.Errorf("coverage: no .gcno in %s matches the guest's %s", buildDir, guestPath)
}

// runTool runs an lcov tool, its output appended to log; a failure names
// the command and the log.
func runTool(ctx context.Context, log io.Writer, logPath, name string, args ...string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("coverage: %s not found (Debian package lcov): %w", name, err)
	}
	fmt.Fprintf(log, "$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("coverage: %s %s: %w (log: %s)", name, strings.Join(args, " "), err, logPath)
	}
	return nil
}

// treeRoots are the tree's path and, if different, its resolved path.
func treeRoots(dir string) []string {
	roots := []string{filepath.Clean(dir)}
	if r, err := filepath.EvalSymlinks(dir); err == nil && r != roots[0] {
		roots = append(roots, r)
	}
	return roots
}

func relTo(roots []string, file string) (string, bool) {
	for _, r := range roots {
		if rel, ok := strings.CutPrefix(filepath.Clean(file), r+"/"); ok {
			return filepath.ToSlash(rel), true
		}
	}
	return "", false
}

// filterLCOV copies the records of the files keep accepts from one lcov
// tracefile to another.
func filterLCOV(from, to string, keep func(string) bool) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("coverage: %w", err)
	}
	defer in.Close()
	var out bytes.Buffer
	kept := 0
	copying := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		l := sc.Text()
		if name, ok := strings.CutPrefix(l, "SF:"); ok {
			copying = keep(name)
			if copying {
				kept++
			}
		}
		if copying {
			out.WriteString(l + "\n")
		}
		if l == "end_of_record" {
			copying = false
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("coverage: reading %s: %w", from, err)
	}
	if kept == 0 {
		return fmt.Errorf("coverage: %s has no record for the profiled files", from)
	}
	if err := os.WriteFile(to, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("coverage: %w", err)
	}
	return nil
}
