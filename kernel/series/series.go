// Package series reads a quilt-style patch series (a `series` file that
// lists `git format-patch` files in order) and applies it to a kernel tree,
// stopping at the first patch that does not apply with the patch's name and
// its first failing hunk.
package series

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
)

// Patch is one entry of a series.
type Patch struct {
	// Name is the file name as the series file lists it.
	Name string
	// Path is where the patch file is.
	Path string
	// Subject is the patch's "Subject:" header without "[PATCH n/m]".
	Subject string
}

// Series is an ordered list of patches.
type Series struct {
	// Dir is the directory the series file is in.
	Dir     string
	Patches []Patch
}

// Read parses the series file at path. Blank lines and lines starting with
// '#' are ignored; an entry may carry quilt's "-p1" option and nothing else.
func Read(path string) (*Series, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("series file %s: %w", path, err)
	}
	path = abs
	s := &Series{Dir: filepath.Dir(path)}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading series file: %w", err)
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		name := fields[0]
		for _, opt := range fields[1:] {
			if opt != "-p1" {
				return nil, fmt.Errorf("%s:%d: %s: unsupported option %q (only -p1)", path, n, name, opt)
			}
		}
		if first, dup := seen[name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice (first on line %d)", path, n, name, first)
		}
		seen[name] = n
		p := Patch{Name: name, Path: filepath.Join(s.Dir, name)}
		subject, err := readSubject(p.Path)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		p.Subject = subject
		s.Patches = append(s.Patches, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading series file %s: %w", path, err)
	}
	return s, nil
}

var subjectPrefix = regexp.MustCompile(`^\[[^\]]*\]\s*`)

// readSubject returns the Subject header of a patch file (folded lines
// joined), or its file name when it has none.
func readSubject(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("patch %s: %w", filepath.Base(path), err)
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if l == "" || strings.HasPrefix(l, "diff --git") || strings.HasPrefix(l, "---") {
			break
		}
		if !strings.HasPrefix(l, "Subject:") {
			continue
		}
		subj := strings.TrimSpace(strings.TrimPrefix(l, "Subject:"))
		for _, cont := range lines[i+1:] {
			if !strings.HasPrefix(cont, " ") && !strings.HasPrefix(cont, "\t") {
				break
			}
			subj += " " + strings.TrimSpace(cont)
		}
		return subjectPrefix.ReplaceAllString(subj, ""), nil
	}
	return filepath.Base(path), nil
}

// Hash is a digest of the series: the order, the names and the content of
// every patch. It is part of the kernel build's cache key.
func (s *Series) Hash() (string, error) {
	h := sha256.New()
	for _, p := range s.Patches {
		data, err := os.ReadFile(p.Path)
		if err != nil {
			return "", fmt.Errorf("hashing patch %s: %w", p.Name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p.Name, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Names lists the patch names in order.
func (s *Series) Names() []string {
	names := make([]string, len(s.Patches))
	for i, p := range s.Patches {
		names[i] = p.Name
	}
	return names
}

// ApplyError says which patch did not apply, and where.
type ApplyError struct {
	// Index is the 1-based position of the patch in the series.
	Index int
	Patch Patch
	// File is the file of the first failing hunk ("" if unknown).
	File string
	// Hunk is the 1-based number of the first failing hunk within File's
	// section of the patch, 0 if the failure is not about a hunk (a file
	// that does not exist, a malformed patch).
	Hunk int
	// HunkText is the text of the failing hunk, quoted from the patch.
	HunkText string
	// Output is what patch(1) printed.
	Output string
}

// ExitCode is PatchFailed: the run exits with it.
func (e *ApplyError) ExitCode() exitcode.Code { return exitcode.PatchFailed }

func (e *ApplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "patch %d (%s) does not apply", e.Index, e.Patch.Name)
	if e.Patch.Subject != "" && e.Patch.Subject != e.Patch.Name {
		fmt.Fprintf(&b, " [%s]", e.Patch.Subject)
	}
	switch {
	case e.Hunk > 0:
		fmt.Fprintf(&b, ": first failing hunk is #%d in %s:\n%s", e.Hunk, e.File, e.HunkText)
	default:
		fmt.Fprintf(&b, ":\n%s", strings.TrimSpace(e.Output))
	}
	return b.String()
}

// Apply applies the series to the tree in dir, in order. Each patch is
// first tried with --dry-run, so a patch that does not apply leaves the tree
// as the patches before it made it. Hunks must apply without fuzz, as with
// git am: a patch that needs fuzz has drifted from the tree it targets.
func (s *Series) Apply(dir string) error {
	for i, p := range s.Patches {
		if err := applyOne(dir, i+1, p); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(dir string, index int, p Patch) error {
	args := []string{"-p1", "--batch", "--forward", "--fuzz=0", "--no-backup-if-mismatch", "-r", "-", "-i", p.Path, "-d", dir}
	dry := exec.Command("patch", append([]string{"--dry-run"}, args...)...)
	out, err := dry.CombinedOutput()
	if err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return fmt.Errorf("running patch(1) for %s: %w", p.Name, err)
		}
		return explain(index, p, string(out))
	}
	real := exec.Command("patch", append([]string{"--silent"}, args...)...)
	if out, err := real.CombinedOutput(); err != nil {
		return fmt.Errorf("patch %s passed --dry-run but failed to apply: %w\n%s", p.Name, err, out)
	}
	return nil
}

var (
	patchingFile = regexp.MustCompile(`^(?:checking|patching) file (.+)$`)
	hunkFailed   = regexp.MustCompile(`^Hunk #(\d+) FAILED at`)
)

// explain turns patch(1)'s output into an ApplyError naming the first
// failing hunk and quoting it from the patch file.
func explain(index int, p Patch, out string) error {
	e := &ApplyError{Index: index, Patch: p, Output: out}
	file := ""
	for _, line := range strings.Split(out, "\n") {
		if m := patchingFile.FindStringSubmatch(line); m != nil {
			file = strings.Trim(m[1], "'")
			continue
		}
		if m := hunkFailed.FindStringSubmatch(line); m != nil {
			e.File = file
			e.Hunk, _ = strconv.Atoi(m[1])
			break
		}
	}
	if e.Hunk > 0 {
		data, err := os.ReadFile(p.Path)
		if err == nil {
			e.HunkText = FindHunk(string(data), e.File, e.Hunk)
		}
		if e.HunkText == "" {
			e.HunkText = strings.TrimSpace(out)
		}
	}
	return e
}

// FindHunk returns the text of hunk number n (1-based) of the section of
// a unified diff that patches file (the path after the a/ or b/ prefix), or
// "" when there is no such hunk.
func FindHunk(diff, file string, n int) string {
	var (
		inFile bool
		count  int
		hunk   []string
	)
	for _, line := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(line, "+++ "):
			name := strings.Fields(strings.TrimPrefix(line, "+++ "))
			inFile = len(name) > 0 && stripComponent(name[0]) == file
			count = 0
			if hunk != nil {
				return strings.Join(hunk, "\n")
			}
			continue
		case strings.HasPrefix(line, "diff ") || strings.HasPrefix(line, "--- ") || line == "-- ":
			if hunk != nil {
				return strings.Join(hunk, "\n")
			}
			continue
		case strings.HasPrefix(line, "@@"):
			if hunk != nil {
				return strings.Join(hunk, "\n")
			}
			if inFile {
				count++
				if count == n {
					hunk = []string{line}
				}
			}
			continue
		}
		if hunk != nil {
			hunk = append(hunk, line)
		}
	}
	return strings.TrimRight(strings.Join(hunk, "\n"), "\n")
}

func stripComponent(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
