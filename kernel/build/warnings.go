package build

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Warning is one compiler warning of a build log.
type Warning struct {
	// File is the source file, relative to the tree.
	File string
	// Line is where the compiler placed it.
	Line int
	// Text is the message with its option ("unused variable 'x'
	// [-Wunused-variable]").
	Text string
}

// Key identifies a warning across builds whose line numbers differ: the
// file and the message.
func (w Warning) Key() string { return w.File + ": " + w.Text }

func (w Warning) String() string {
	return w.File + ":" + itoa(w.Line) + ": warning: " + w.Text
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

var warningLine = regexp.MustCompile(`^(\S+?):(\d+):(?:\d+:)? warning: (.+)$`)

// Warnings reads the compiler warnings of a make log, with file names
// made relative to the source tree srcDir (out-of-tree builds print them
// absolute or relative to the build directory buildDir). A warning
// printed twice (a header included twice) counts once per place.
func Warnings(logPath, srcDir, buildDir string) ([]Warning, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []Warning
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		m := warningLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		w := Warning{File: relative(m[1], srcDir, buildDir), Text: m[3]}
		for _, c := range m[2] {
			w.Line = w.Line*10 + int(c-'0')
		}
		k := w.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, w)
	}
	return out, sc.Err()
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
