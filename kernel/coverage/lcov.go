package coverage

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// FileCounts is one source file's records of an lcov tracefile.
type FileCounts struct {
	// Lines maps an executable line to its execution count.
	Lines map[int]int64
	// Functions maps a function name to its execution count.
	Functions map[string]int64
}

// Tracefile is a parsed lcov tracefile, by source file path as written in
// its SF: records.
type Tracefile map[string]*FileCounts

// ParseLCOV reads an lcov tracefile (lcov.info). Records it does not use
// (branches, checksums, summaries) are skipped; when a file appears twice
// its counts are added.
func ParseLCOV(r io.Reader) (Tracefile, error) {
	t := Tracefile{}
	var cur *FileCounts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, ":")
		switch key {
		case "SF":
			cur = t[val]
			if cur == nil {
				cur = &FileCounts{Lines: map[int]int64{}, Functions: map[string]int64{}}
				t[val] = cur
			}
		case "end_of_record":
			cur = nil
		case "DA", "FN", "FNDA":
			if cur == nil {
				return nil, fmt.Errorf("lcov line %d: %s record outside a file", n, key)
			}
			f := strings.Split(val, ",")
			if len(f) < 2 {
				return nil, fmt.Errorf("lcov line %d: malformed %q", n, line)
			}
			switch key {
			case "DA":
				ln, err1 := strconv.Atoi(f[0])
				cnt, err2 := parseCount(f[1])
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("lcov line %d: malformed %q", n, line)
				}
				cur.Lines[ln] += cnt
			case "FN":
				name := f[len(f)-1]
				if _, ok := cur.Functions[name]; !ok {
					cur.Functions[name] = 0
				}
			case "FNDA":
				cnt, err := parseCount(f[0])
				if err != nil {
					return nil, fmt.Errorf("lcov line %d: malformed %q", n, line)
				}
				cur.Functions[f[1]] += cnt
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading lcov tracefile: %w", err)
	}
	return t, nil
}

// parseCount reads an execution count; gcov may write large ones in
// floating-point notation, and a negative count (a counter overflow) is
// taken as executed.
func parseCount(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			n = 1
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64, nil
	case f < 0:
		return 1, nil
	}
	return int64(f), nil
}

// Ratio is hit of found.
type Ratio struct {
	Hit   int `json:"hit"`
	Found int `json:"found"`
}

// Percent is the ratio in percent (0 when nothing was found).
func (r Ratio) Percent() float64 {
	if r.Found == 0 {
		return 0
	}
	return 100 * float64(r.Hit) / float64(r.Found)
}

func (r Ratio) String() string {
	return fmt.Sprintf("%d/%d (%.1f%%)", r.Hit, r.Found, r.Percent())
}

// Totals counts the executed lines and functions of the files keep
// accepts (every file when keep is nil).
func (t Tracefile) Totals(keep func(string) bool) (lines, funcs Ratio) {
	for name, f := range t {
		if keep != nil && !keep(name) {
			continue
		}
		for _, c := range f.Lines {
			lines.Found++
			if c > 0 {
				lines.Hit++
			}
		}
		for _, c := range f.Functions {
			funcs.Found++
			if c > 0 {
				funcs.Hit++
			}
		}
	}
	return lines, funcs
}

// Relative re-keys the tracefile by paths relative to root (files outside
// root keep their path).
func (t Tracefile) Relative(root string) Tracefile {
	root = strings.TrimSuffix(root, "/") + "/"
	out := Tracefile{}
	for name, f := range t {
		out[strings.TrimPrefix(name, root)] = f
	}
	return out
}

// Files lists the tracefile's files, sorted.
func (t Tracefile) Files() []string {
	out := make([]string, 0, len(t))
	for name := range t {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
