package series

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Open reads a series from what a user points at: a quilt series file, a
// directory of `git format-patch` files (its `series` file when it has
// one, otherwise every *.patch in name order), or an mbox file of patch
// mails as `b4 am` or `git format-patch --stdout` write it. The mails of
// an mbox are split into numbered patch files in splitDir, which must be
// an empty or missing directory; the cover letter (a mail with no diff)
// is left out.
func Open(path, splitDir string) (*Series, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("series %s: %w", path, err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "series")); err == nil {
			return Read(filepath.Join(path, "series"))
		}
		return readDir(path)
	}
	head := make([]byte, 5)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("series %s: %w", path, err)
	}
	n, _ := f.Read(head)
	f.Close()
	if string(head[:n]) == "From " {
		return splitMbox(path, splitDir)
	}
	return Read(path)
}

// readDir makes a series of the *.patch files of dir, in name order.
func readDir(dir string) (*Series, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("series directory %s: %w", dir, err)
	}
	names, err := filepath.Glob(filepath.Join(abs, "*.patch"))
	if err != nil {
		return nil, fmt.Errorf("series directory %s: %w", dir, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("series directory %s has no series file and no *.patch files", dir)
	}
	sort.Strings(names)
	s := &Series{Dir: abs}
	for _, n := range names {
		subject, err := readSubject(n)
		if err != nil {
			return nil, err
		}
		s.Patches = append(s.Patches, Patch{Name: filepath.Base(n), Path: n, Subject: subject})
	}
	return s, nil
}

// mboxFrom matches the "From " line that starts each mail of an mbox
// (git writes "From <sha> Mon Sep 17 00:00:00 2001", b4 "From git@z Thu
// Jan  1 00:00:00 1970"); a body line that merely starts with "From " has
// no such date.
var mboxFrom = regexp.MustCompile(`^From \S+ +(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d+ \d\d:\d\d:\d\d \d{4}$`)

// patchNumber reads "n/m" from a subject's "[PATCH v2 n/m]" prefix.
var patchNumber = regexp.MustCompile(`^\[[^\]]*?(\d+)/(\d+)\]`)

type mail struct {
	lines   []string
	subject string
	number  int
	order   int
}

// splitMbox splits an mbox into patch files in splitDir and returns them
// as a series, ordered by their "[PATCH n/m]" numbers when every mail has
// one, in file order otherwise.
func splitMbox(path, splitDir string) (*Series, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading mbox %s: %w", path, err)
	}
	mails := splitMails(data)
	var patches []mail
	numbered := true
	for _, m := range mails {
		if !hasDiff(m.lines) {
			continue
		}
		if m.number == 0 {
			numbered = false
		}
		patches = append(patches, m)
	}
	if len(patches) == 0 {
		return nil, fmt.Errorf("mbox %s holds %d mail(s) and none of them has a diff", path, len(mails))
	}
	if numbered {
		sort.SliceStable(patches, func(i, j int) bool { return patches[i].number < patches[j].number })
	}
	if err := os.MkdirAll(splitDir, 0o755); err != nil {
		return nil, fmt.Errorf("splitting mbox %s: %w", path, err)
	}
	abs, err := filepath.Abs(splitDir)
	if err != nil {
		return nil, fmt.Errorf("splitting mbox %s: %w", path, err)
	}
	s := &Series{Dir: abs}
	var list strings.Builder
	for i, m := range patches {
		name := fmt.Sprintf("%04d-%s.patch", i+1, slug(m.subject))
		p := filepath.Join(abs, name)
		if err := os.WriteFile(p, []byte(strings.Join(m.lines, "\n")+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("splitting mbox %s: %w", path, err)
		}
		subject, err := readSubject(p)
		if err != nil {
			return nil, err
		}
		s.Patches = append(s.Patches, Patch{Name: name, Path: p, Subject: subject})
		list.WriteString(name + "\n")
	}
	fmt.Fprintf(&list, "# split from %s\n", path)
	if err := os.WriteFile(filepath.Join(abs, "series"), []byte(list.String()), 0o644); err != nil {
		return nil, fmt.Errorf("splitting mbox %s: %w", path, err)
	}
	return s, nil
}

func splitMails(data []byte) []mail {
	var (
		mails []mail
		cur   *mail
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		if mboxFrom.MatchString(line) {
			mails = append(mails, mail{order: len(mails)})
			cur = &mails[len(mails)-1]
		}
		if cur == nil {
			continue
		}
		// mboxrd quotes body lines starting with "From " as ">From ".
		if strings.HasPrefix(line, ">") && strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
			line = line[1:]
		}
		cur.lines = append(cur.lines, line)
	}
	for i := range mails {
		m := &mails[i]
		m.subject = headerSubject(m.lines)
		if g := patchNumber.FindStringSubmatch(m.subject); g != nil {
			m.number, _ = strconv.Atoi(g[1])
		}
	}
	return mails
}

// headerSubject returns the raw Subject header of a mail, folded lines
// joined.
func headerSubject(lines []string) string {
	for i, l := range lines {
		if l == "" {
			break
		}
		if !strings.HasPrefix(l, "Subject:") {
			continue
		}
		s := strings.TrimSpace(strings.TrimPrefix(l, "Subject:"))
		for _, c := range lines[i+1:] {
			if !strings.HasPrefix(c, " ") && !strings.HasPrefix(c, "\t") {
				break
			}
			s += " " + strings.TrimSpace(c)
		}
		return s
	}
	return ""
}

func hasDiff(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, "diff --git ") || strings.HasPrefix(l, "+++ b/") {
			return true
		}
	}
	return false
}

// slug turns a subject into a file name part as git format-patch does:
// the prefix in brackets dropped, runs of other characters made one '-'.
func slug(subject string) string {
	s := subjectPrefix.ReplaceAllString(subject, "")
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r == '.' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 52 {
			break
		}
	}
	out := strings.Trim(b.String(), "-.")
	if out == "" {
		out = "patch"
	}
	return out
}

// Prefix returns the series made of the first n patches.
func (s *Series) Prefix(n int) *Series {
	if n > len(s.Patches) {
		n = len(s.Patches)
	}
	return &Series{Dir: s.Dir, Patches: append([]Patch(nil), s.Patches[:n]...)}
}

// Files lists the files a patch touches (old and new names, without the
// a/ and b/ prefixes), in the order the diff names them.
func (p Patch) Files() ([]string, error) {
	data, err := os.ReadFile(p.Path)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", p.Name, err)
	}
	return DiffFiles(string(data)), nil
}

// DiffFiles lists the files a unified diff touches.
func DiffFiles(diff string) []string {
	seen := map[string]bool{}
	var files []string
	add := func(f string) {
		if f == "" || f == "/dev/null" || seen[f] {
			return
		}
		seen[f] = true
		files = append(files, f)
	}
	for _, line := range strings.Split(diff, "\n") {
		var name string
		switch {
		case strings.HasPrefix(line, "--- "):
			name = strings.TrimPrefix(line, "--- ")
		case strings.HasPrefix(line, "+++ "):
			name = strings.TrimPrefix(line, "+++ ")
		default:
			continue
		}
		if f := strings.Fields(name); len(f) > 0 && f[0] != "/dev/null" {
			add(stripComponent(f[0]))
		}
	}
	return files
}

// ApplyOne applies the patch numbered index (1-based) of the series to the
// tree in dir, with the same rules and errors as Apply.
func (s *Series) ApplyOne(dir string, index int) error {
	if index < 1 || index > len(s.Patches) {
		return fmt.Errorf("series has no patch %d", index)
	}
	return applyOne(dir, index, s.Patches[index-1])
}
