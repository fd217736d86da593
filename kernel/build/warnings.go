package build

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Warning is one finding of a tool that reports as gcc does ("file:line:
// warning: text"): the compiler, sparse, kernel-doc; docutils's messages
// are read into it too.
type Warning struct {
	// File is the source file, relative to the tree.
	File string
	// Line is where the tool placed it; 0 when it did not say.
	Line int
	// Level is "warning" (also when empty), "error", or "severe" (a
	// docutils message that stops a document).
	Level string
	// Text is the message, with the compiler's option ("unused variable
	// 'x' [-Wunused-variable]").
	Text string
}

func (w Warning) level() string {
	if w.Level == "" {
		return "warning"
	}
	return w.Level
}

// Key identifies a finding across trees whose line numbers differ: the
// file, the level and the message.
func (w Warning) Key() string { return w.File + ": " + w.level() + ": " + w.Text }

func (w Warning) String() string {
	if w.Line == 0 {
		return w.File + ": " + w.level() + ": " + w.Text
	}
	return w.File + ":" + strconv.Itoa(w.Line) + ": " + w.level() + ": " + w.Text
}

var (
	// gcc's warnings, and kernel-doc's, which has no column.
	warningLine = regexp.MustCompile(`^(\S+?):(\d+):(?:\d+:)? warning: (.+)$`)
	// The same with errors (kernel-doc's "Cannot parse struct or union!").
	findingLine = regexp.MustCompile(`^(\S+?):(\d+):(?:\d+:)? (warning|error): (.+)$`)
	// sparse with -fdiagnostic-prefix: "f.c:1:2: sparse: warning: text",
	// then lines at the same place with no level ("f.c:1:2: sparse:
	// expected int", "... got long") that belong to it.
	sparseLine = regexp.MustCompile(`^(\S+?):(\d+):(\d+): sparse: (?:(warning|error): )?(.+)$`)
)

// Warnings reads the compiler warnings of a make log, with file names
// made relative to the source tree srcDir (out-of-tree builds print them
// absolute or relative to the build directory buildDir). A warning
// printed twice (a header included twice) counts once per place.
func Warnings(logPath, srcDir, buildDir string) ([]Warning, error) {
	var out []Warning
	err := eachLine(logPath, func(l string) {
		if m := warningLine.FindStringSubmatch(l); m != nil {
			out = append(out, Warning{File: relative(m[1], srcDir, buildDir), Line: atoi(m[2]), Level: "warning", Text: m[3]})
		}
	})
	return unique(out), err
}

// Findings reads the warnings and errors of a log in gcc's format, as
// scripts/kernel-doc prints them, file names made relative as Warnings
// does (kernel-doc, run in the tree, prints them as it was given them:
// pass the tree as buildDir). An indented line right after a finding
// is the end of its text (kernel-doc quotes the line it could not read
// there). A finding printed twice counts once.
func Findings(logPath, srcDir, buildDir string) ([]Warning, error) {
	var out []Warning
	after := false
	err := eachLine(logPath, func(l string) {
		m := findingLine.FindStringSubmatch(l)
		switch {
		case m != nil:
			out = append(out, Warning{File: relative(m[1], srcDir, buildDir), Line: atoi(m[2]), Level: m[3], Text: m[4]})
			after = true
		case after && strings.TrimSpace(l) != "" && (l[0] == ' ' || l[0] == '\t'):
			out[len(out)-1].Text += " " + strings.TrimSpace(l)
		default:
			after = false
		}
	})
	return unique(out), err
}

// Sparse reads sparse's warnings and errors out of the log of a make
// run with C=2 CHECK=sparse CF=-fdiagnostic-prefix, the prefix telling
// them from the compiler's. The lines sparse prints after a finding at
// the same place ("expected ...", "got ...") are added to its text,
// separated by "; ". A finding printed twice (a header checked with two
// C files) counts once per place.
func Sparse(logPath, srcDir, buildDir string) ([]Warning, error) {
	var out []Warning
	lastAt := ""
	err := eachLine(logPath, func(l string) {
		m := sparseLine.FindStringSubmatch(l)
		if m == nil {
			return
		}
		at := m[1] + ":" + m[2] + ":" + m[3]
		if m[4] == "" {
			if len(out) > 0 && at == lastAt {
				out[len(out)-1].Text += "; " + strings.TrimSpace(m[5])
			}
			return
		}
		lastAt = at
		out = append(out, Warning{File: relative(m[1], srcDir, buildDir), Line: atoi(m[2]), Level: m[4], Text: strings.TrimSpace(m[5])})
	})
	return unique(out), err
}

// eachLine calls fn with every line of a log.
func eachLine(logPath string, fn func(line string)) error {
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		fn(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", logPath, err)
	}
	return nil
}

// unique keeps the first of the findings that are the same at the same
// place.
func unique(ws []Warning) []Warning {
	seen := map[string]bool{}
	out := ws[:0]
	for _, w := range ws {
		k := w.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, w)
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func relative(file, srcDir, buildDir string) string {
	if !filepath.IsAbs(file) && buildDir != "" {
		file = filepath.Join(buildDir, file)
	}
	file = filepath.Clean(file)
	if rel, err := filepath.Rel(srcDir, file); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return file
}

// NewWarnings returns the warnings of after that before does not have, by
// Key and counting repeats: the same message twice in a file where there
// was one before is one new warning.
func NewWarnings(before, after []Warning) []Warning {
	left := map[string]int{}
	for _, w := range before {
		left[w.Key()]++
	}
	var out []Warning
	for _, w := range after {
		if left[w.Key()] > 0 {
			left[w.Key()]--
			continue
		}
		out = append(out, w)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}
