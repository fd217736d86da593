package coverage

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// FileDiff is one file's part of a unified diff. Old or New is "" when the
// file is created or deleted.
type FileDiff struct {
	Old, New string
	Hunks    []Hunk
}

// Hunk is one "@@ -a,b +c,d @@" section. Lines holds its body: each line
// starts with ' ', '-' or '+'.
type Hunk struct {
	OldStart, OldLines int
	NewStart, NewLines int
	Lines              []string
}

var hunkHeader = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@`)

// ParseDiff reads the unified diffs of a patch (a `git format-patch` file
// or plain diff output). Text around the diffs (mail headers, the
// signature) is ignored; a hunk whose body is shorter than its header says
// is an error.
func ParseDiff(text string) ([]FileDiff, error) {
	var (
		files []FileDiff
		cur   *FileDiff
		lines = splitKeep(text)
	)
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "diff --git "):
			files = append(files, FileDiff{})
			cur = &files[len(files)-1]
			if a, b, ok := gitNames(l); ok {
				cur.Old, cur.New = a, b
			}
		case strings.HasPrefix(l, "--- ") && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "+++ "):
			if cur == nil || len(cur.Hunks) > 0 {
				files = append(files, FileDiff{})
				cur = &files[len(files)-1]
			}
			cur.Old = diffName(l[4:])
			cur.New = diffName(lines[i+1][4:])
			i++
		case strings.HasPrefix(l, "@@ "):
			if cur == nil {
				return nil, fmt.Errorf("line %d: hunk before any file header", i+1)
			}
			h, next, err := readHunk(lines, i)
			if err != nil {
				return nil, err
			}
			cur.Hunks = append(cur.Hunks, h)
			i = next - 1
		}
	}
	return files, nil
}

func splitKeep(text string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// gitNames reads "diff --git a/X b/Y" (names without spaces).
func gitNames(l string) (string, string, bool) {
	f := strings.Fields(strings.TrimPrefix(l, "diff --git "))
	if len(f) != 2 {
		return "", "", false
	}
	return stripPrefix(f[0]), stripPrefix(f[1]), true
}

func diffName(s string) string {
	if i := strings.IndexByte(s, '\t'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "/dev/null" {
		return ""
	}
	return stripPrefix(s)
}

func stripPrefix(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func readHunk(lines []string, at int) (Hunk, int, error) {
	m := hunkHeader.FindStringSubmatch(lines[at])
	if m == nil {
		return Hunk{}, 0, fmt.Errorf("line %d: bad hunk header %q", at+1, lines[at])
	}
	num := func(s string, def int) int {
		if s == "" {
			return def
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	h := Hunk{OldStart: num(m[1], 0), OldLines: num(m[2], 1), NewStart: num(m[3], 0), NewLines: num(m[4], 1)}
	oldLeft, newLeft := h.OldLines, h.NewLines
	i := at + 1
	for ; i < len(lines) && (oldLeft > 0 || newLeft > 0); i++ {
		l := lines[i]
		if strings.HasPrefix(l, `\`) { // "\ No newline at end of file"
			continue
		}
		op := byte(' ')
		if l != "" {
			op = l[0]
		}
		switch op {
		case ' ':
			oldLeft--
			newLeft--
		case '-':
			oldLeft--
		case '+':
			newLeft--
		default:
			return Hunk{}, 0, fmt.Errorf("line %d: unexpected %q inside the hunk at line %d", i+1, l, at+1)
		}
		if l == "" {
			l = " "
		}
		h.Lines = append(h.Lines, l)
	}
	if oldLeft != 0 || newLeft != 0 {
		return Hunk{}, 0, fmt.Errorf("line %d: hunk is shorter than its header %q says", at+1, lines[at])
	}
	for i < len(lines) && strings.HasPrefix(lines[i], `\`) {
		i++
	}
	return h, i, nil
}

// Added returns the line numbers, in the new file, of the lines the hunk
// adds.
func (h Hunk) Added() []int {
	var out []int
	n := h.NewStart
	for _, l := range h.Lines {
		switch l[0] {
		case '+':
			out = append(out, n)
			n++
		case ' ':
			n++
		}
	}
	return out
}

// Added returns the line numbers, in the new file, of every line the diff
// adds.
func (f FileDiff) Added() []int {
	var out []int
	for _, h := range f.Hunks {
		out = append(out, h.Added()...)
	}
	return out
}

// MapLine maps line (a line number of the file before hunks were applied)
// to its number after them. It returns false when the hunks delete the
// line. hunks must be one file's, in order, as a diff lists them.
func MapLine(line int, hunks []Hunk) (int, bool) {
	delta := 0
	for _, h := range hunks {
		if h.OldLines > 0 && line >= h.OldStart && line < h.OldStart+h.OldLines {
			o, n := h.OldStart, h.NewStart
			for _, l := range h.Lines {
				switch l[0] {
				case ' ':
					if o == line {
						return n, true
					}
					o++
					n++
				case '-':
					if o == line {
						return 0, false
					}
					o++
				case '+':
					n++
				}
			}
			return 0, false // not reached with a well-formed hunk
		}
		first := h.OldStart
		if h.OldLines == 0 {
			first++ // an insertion comes after line OldStart
		}
		if line < first {
			break
		}
		delta = next(h.NewStart, h.NewLines) - next(h.OldStart, h.OldLines)
	}
	return line + delta, true
}

// next is the first line after a hunk's range; an empty range starts
// after the line it names.
func next(start, n int) int {
	if n == 0 {
		return start + 1
	}
	return start + n
}
