package coverage

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

const sampleLCOV = `TN:
SF:/t/security/landlock/bpf_prog.c
FN:10,landlock_prog_load
FN:30,unused_fn
FNDA:4,landlock_prog_load
FNDA:0,unused_fn
DA:10,4
DA:11,4
DA:12,0
DA:31,0
DA:40,2.5e+20
LF:5
LH:3
end_of_record
SF:/t/kernel/seccomp.c
DA:5,1
DA:6,-1
end_of_record
`

func TestParseLCOVAndTotals(t *testing.T) {
	tf, err := ParseLCOV(strings.NewReader(sampleLCOV))
	if err != nil {
		t.Fatal(err)
	}
	rel := tf.Relative("/t")
	if got, want := rel.Files(), []string{"kernel/seccomp.c", "security/landlock/bpf_prog.c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("files = %v, want %v", got, want)
	}
	lines, funcs := rel.Totals(nil)
	if lines != (Ratio{Hit: 5, Found: 7}) || funcs != (Ratio{Hit: 1, Found: 2}) {
		t.Errorf("totals: lines %v, funcs %v", lines, funcs)
	}
	if got := lines.String(); got != "5/7 (71.4%)" {
		t.Errorf("ratio string %q", got)
	}
	if _, err := ParseLCOV(strings.NewReader("DA:1,1\n")); err == nil {
		t.Error("DA outside a file: no error")
	}
}

func TestTally(t *testing.T) {
	tf, err := ParseLCOV(strings.NewReader(sampleLCOV))
	if err != nil {
		t.Fatal(err)
	}
	rel := tf.Relative("/t")
	pc := Tally("0001-x.patch", map[string][]int{
		// 9 and 20 have no record (comment, blank): not counted.
		"security/landlock/bpf_prog.c": {9, 10, 11, 12, 20},
		"kernel/fork.c":                {1, 2},
	}, rel)
	if pc.Added != 7 || pc.Lines != (Ratio{Hit: 2, Found: 3}) {
		t.Errorf("tally: %+v", pc)
	}
	if len(pc.Files) != 2 || pc.Files[0].File != "kernel/fork.c" || pc.Files[0].Compiled {
		t.Errorf("files: %+v", pc.Files)
	}
	if got := pc.PatchLine(); got != "0001-x.patch: 2/3 added lines executed (66.7%)" {
		t.Errorf("line %q", got)
	}
	if got := (PatchCoverage{Patch: "0005-doc.patch"}).PatchLine(); got != "0005-doc.patch: no executable added line in a profiled .c file" {
		t.Errorf("line %q", got)
	}
	var md bytes.Buffer
	if err := WritePatchTable(&md, []PatchCoverage{pc, {Patch: "0005-doc.patch"}}, pc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| 0001-x.patch | 2/3 | 66.7% |") || !strings.Contains(md.String(), "kernel/fork.c: not compiled (2)") ||
		!strings.Contains(md.String(), "| 0005-doc.patch | no executable added line | - |") {
		t.Errorf("table:\n%s", md.String())
	}
	u := Union([]map[string][]int{{"a.c": {3, 1}}, {"a.c": {1, 2}, "b.c": {5}}})
	if !reflect.DeepEqual(u, map[string][]int{"a.c": {1, 2, 3}, "b.c": {5}}) {
		t.Errorf("union %v", u)
	}
}

func TestSummarize(t *testing.T) {
	diffs, err := ParseDiff("--- /dev/null\n+++ b/security/landlock/bpf_prog.c\n@@ -0,0 +1,12 @@\n" + strings.Repeat("+x\n", 12))
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{Profile: NewProfile(DefaultDirs, nil), Patches: []Patch{{Name: "0001-a.patch", Diffs: diffs}}}
	tf, _ := ParseLCOV(strings.NewReader(sampleLCOV))
	s := Summarize(p, tf.Relative("/t"))
	if len(s.Patches) != 1 || s.Patches[0].Lines != (Ratio{Hit: 2, Found: 3}) || s.SeriesLines != s.Patches[0].Lines {
		t.Errorf("summary: %+v", s)
	}
}

func TestObjectPath(t *testing.T) {
	exists := func(p string) bool { return p == "kernel/seccomp.gcno" }
	for _, c := range []struct{ guest, want string }{
		{"root/.cache/lv/build/K1/kernel/seccomp.gcda", "kernel/seccomp.gcda"},
		// Compiled in another build directory (ccache): found by suffix.
		{"root/.cache/lv/build/OTHER/kernel/seccomp.gcda", "kernel/seccomp.gcda"},
	} {
		got, err := ObjectPath("/root/.cache/lv/build/K1", c.guest, exists)
		if err != nil || got != c.want {
			t.Errorf("ObjectPath(%q) = %q, %v; want %q", c.guest, got, err, c.want)
		}
	}
	if _, err := ObjectPath("/b", "x/y/fork.gcda", exists); err == nil {
		t.Error("no matching .gcno: no error")
	}
	if _, err := ObjectPath("/b", "b/fork.gcno", exists); err == nil {
		t.Error("not a .gcda: no error")
	}
}

func TestFilterLCOV(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "all.info"), filepath.Join(dir, "lcov.info")
	if err := os.WriteFile(from, []byte(sampleLCOV), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := filterLCOV(from, to, func(f string) bool { return strings.HasSuffix(f, "seccomp.c") }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(to)
	if string(b) != "SF:/t/kernel/seccomp.c\nDA:5,1\nDA:6,-1\nend_of_record\n" {
		t.Errorf("filtered:\n%s", b)
	}
	if err := filterLCOV(from, to, func(string) bool { return false }); err == nil {
		t.Error("nothing kept: no error")
	}
}

func TestProfileAndInstrument(t *testing.T) {
	p := NewProfile([]string{"security/landlock"}, []string{"kernel/seccomp.c", "kernel/fork.c", "security/landlock/setup.c", "include/linux/x.h", "kernel/seccomp.c"})
	if !reflect.DeepEqual(p.Files, []string{"kernel/fork.c", "kernel/seccomp.c"}) {
		t.Fatalf("files %v", p.Files)
	}
	if !p.Covers("security/landlock/fs.c") || p.Covers("security/landlock/fs.h") || !p.Includes("security/landlock/fs.h") || p.Covers("kernel/exit.c") {
		t.Error("Covers/Includes wrong")
	}
	src, tree := t.TempDir(), t.TempDir()
	for _, d := range []string{"kernel", "security/landlock"} {
		if err := os.MkdirAll(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The tree's kernel/Makefile is a hard link to the source's, as in
	// the cache: instrumenting must not change the source.
	orig := "obj-y += fork.o"
	if err := os.WriteFile(filepath.Join(src, "kernel/Makefile"), []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "kernel/Makefile"), filepath.Join(tree, "kernel/Makefile")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "security/landlock/Makefile"), []byte("obj-y := setup.o\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Instrument(tree, p); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "kernel/Makefile")); string(b) != orig {
		t.Errorf("source changed through the hard link: %q", b)
	}
	k, _ := os.ReadFile(filepath.Join(tree, "kernel/Makefile"))
	if !strings.HasSuffix(string(k), "GCOV_PROFILE_fork.o := y\nGCOV_PROFILE_seccomp.o := y\n") || !strings.HasPrefix(string(k), orig+"\n") {
		t.Errorf("kernel/Makefile:\n%s", k)
	}
	l, _ := os.ReadFile(filepath.Join(tree, "security/landlock/Makefile"))
	if !strings.HasSuffix(string(l), "\nGCOV_PROFILE := y\n") {
		t.Errorf("landlock Makefile:\n%s", l)
	}
	if err := Instrument(t.TempDir(), p); err == nil || !strings.Contains(err.Error(), "no Kbuild or Makefile") {
		t.Errorf("missing Makefile: %v", err)
	}
}

func TestCounters(t *testing.T) {
	c := NewCounters()
	c.Add(event.Event{Kind: event.KindTest})
	c.Add(event.Event{Kind: event.KindCoverage, Chunk: &event.Chunk{Path: "a.gcda", Part: 1, Parts: 2, Data: []byte("world")}})
	c.Add(event.Event{Kind: event.KindCoverage, Chunk: &event.Chunk{Path: "a.gcda", Part: 0, Parts: 2, Data: []byte("hello ")}})
	c.Add(event.Event{Kind: event.KindCoverage, Chunk: &event.Chunk{Path: "empty.gcda", Part: 0, Parts: 1}})
	files, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	if string(files["a.gcda"]) != "hello world" || files["empty.gcda"] == nil || len(files) != 2 {
		t.Errorf("files %q", files)
	}
	c.Add(event.Event{Kind: event.KindCoverage, Chunk: &event.Chunk{Path: "b.gcda", Part: 0, Parts: 2}})
	if _, err := c.Files(); err == nil || !strings.Contains(err.Error(), "b.gcda: chunk 1 of 2 never came") {
		t.Errorf("missing chunk: %v", err)
	}
	if _, err := NewCounters().Files(); err == nil {
		t.Error("nothing came: no error")
	}
	g := NewCounters()
	g.Add(event.Event{Kind: event.KindCoverage, Error: "no .gcda file under /sys/kernel/debug/gcov"})
	if _, err := g.Files(); err == nil || !strings.Contains(err.Error(), "no .gcda file") {
		t.Errorf("guest error: %v", err)
	}
}
