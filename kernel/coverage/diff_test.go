package coverage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const samplePatch = `From 1234 Mon Sep 17 00:00:00 2001
Subject: [PATCH 1/2] demo

---
 a.c | 3 ++-
 new.c | 2 ++
 2 files changed

diff --git a/dir/a.c b/dir/a.c
index 1111..2222 100644
--- a/dir/a.c
+++ b/dir/a.c
@@ -2,4 +2,5 @@ int x;
 two
-three
+THREE
+three-and-a-half
 four
 five
@@ -10,0 +12,2 @@ ten
+after-ten-1
+after-ten-2
diff --git a/dir/new.c b/dir/new.c
new file mode 100644
--- /dev/null
+++ b/dir/new.c
@@ -0,0 +1,2 @@
+-- not a signature
+last
\ No newline at end of file
-- 
2.39.5
`

func TestParseDiff(t *testing.T) {
	files, err := ParseDiff(samplePatch)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("got %d files, want 2: %+v", len(files), files)
	}
	a, n := files[0], files[1]
	if a.Old != "dir/a.c" || a.New != "dir/a.c" || len(a.Hunks) != 2 {
		t.Errorf("a.c: %+v", a)
	}
	if got, want := a.Added(), []int{3, 4, 12, 13}; !reflect.DeepEqual(got, want) {
		t.Errorf("a.c added = %v, want %v", got, want)
	}
	if n.Old != "" || n.New != "dir/new.c" {
		t.Errorf("new.c names: %q -> %q", n.Old, n.New)
	}
	if got, want := n.Added(), []int{1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("new.c added = %v, want %v", got, want)
	}
}

func TestParseDiffShortHunk(t *testing.T) {
	_, err := ParseDiff("--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,3 @@\n one\n-two\n")
	if err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("err = %v, want a short-hunk error", err)
	}
}

func TestMapLine(t *testing.T) {
	files, err := ParseDiff(samplePatch)
	if err != nil {
		t.Fatal(err)
	}
	h := files[0].Hunks
	for _, c := range []struct {
		old, new int
		ok       bool
	}{
		{1, 1, true},   // before every hunk
		{2, 2, true},   // context
		{3, 0, false},  // deleted ("three")
		{4, 5, true},   // context after the +2/-1
		{5, 6, true},   // last context line of the hunk
		{6, 7, true},   // between hunks: +1
		{10, 11, true}, // the line the insertion follows
		{11, 14, true}, // after the insertion: +3
	} {
		got, ok := MapLine(c.old, h)
		if got != c.new || ok != c.ok {
			t.Errorf("MapLine(%d) = %d, %v; want %d, %v", c.old, got, ok, c.new, c.ok)
		}
	}
	if got, ok := MapLine(7, nil); got != 7 || !ok {
		t.Errorf("no hunks: MapLine(7) = %d, %v", got, ok)
	}
}

func TestAddedLinesFollowsLaterPatches(t *testing.T) {
	p1, err := ParseDiff("diff --git a/k/f.c b/k/f.c\n--- /dev/null\n+++ b/k/f.c\n@@ -0,0 +1,4 @@\n+a\n+b\n+c\n+d\n" +
		"diff --git a/k/gone.c b/k/gone.c\n--- /dev/null\n+++ b/k/gone.c\n@@ -0,0 +1 @@\n+x\n" +
		"diff --git a/k/h.h b/k/h.h\n--- /dev/null\n+++ b/k/h.h\n@@ -0,0 +1 @@\n+h\n")
	if err != nil {
		t.Fatal(err)
	}
	// Patch 2 inserts two lines before "a", deletes "c", renames f.c
	// and deletes gone.c.
	p2, err := ParseDiff("diff --git a/k/f.c b/k/g.c\nsimilarity index 80%\nrename from k/f.c\nrename to k/g.c\n--- a/k/f.c\n+++ b/k/g.c\n@@ -1,4 +1,5 @@\n+n1\n+n2\n a\n b\n-c\n d\n" +
		"diff --git a/k/gone.c b/k/gone.c\ndeleted file mode 100644\n--- a/k/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n")
	if err != nil {
		t.Fatal(err)
	}
	got := AddedLines([][]FileDiff{p1, p2}, func(f string) bool { return strings.HasSuffix(f, ".c") })
	want := []map[string][]int{
		{"k/g.c": {3, 4, 5}},
		{"k/g.c": {1, 2}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AddedLines = %v, want %v", got, want)
	}
}

// TestAddedLinesAgainstDiff builds a three-version history of files whose
// lines are all distinct, makes the patches with diff(1), and checks that
// every added line is mapped to where its text is in the last version.
func TestAddedLinesAgainstDiff(t *testing.T) {
	if _, err := exec.LookPath("diff"); err != nil {
		t.Skip("diff(1) not installed")
	}
	v0 := seq("base", 40)
	v1 := edit(v0, map[int][]string{3: {"p1-a", "p1-b"}, 10: nil, 20: {"p1-c"}, 39: {"p1-d", "p1-e", "p1-f"}}, true)
	v2 := edit(v1, map[int][]string{0: {"p2-top"}, 4: nil, 5: {"p2-x"}, 25: {"p2-y", "p2-z"}}, false)
	dir := t.TempDir()
	d1 := unified(t, dir, v0, v1)
	d2 := unified(t, dir, v1, v2)
	got := AddedLines([][]FileDiff{d1, d2}, nil)
	pos := map[string]int{}
	for i, l := range v2 {
		pos[l] = i + 1
	}
	for i, prefix := range []string{"p1-", "p2-"} {
		var want []int
		for _, l := range v2 {
			if strings.HasPrefix(l, prefix) {
				want = append(want, pos[l])
			}
		}
		if !reflect.DeepEqual(got[i]["f.c"], want) {
			t.Errorf("patch %d: lines %v, want %v\nv2:\n%s", i+1, got[i]["f.c"], want, strings.Join(v2, "\n"))
		}
	}
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	return out
}

// edit replaces the line at each index (0-based) with the given lines
// (nil deletes it); with insert, the lines go before it instead.
func edit(in []string, at map[int][]string, insert bool) []string {
	var out []string
	for i, l := range in {
		repl, ok := at[i]
		switch {
		case !ok:
			out = append(out, l)
		case insert:
			out = append(out, repl...)
			out = append(out, l)
		default:
			out = append(out, repl...)
		}
	}
	return out
}

func unified(t *testing.T, dir string, from, to []string) []FileDiff {
	t.Helper()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte(strings.Join(from, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(strings.Join(to, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("diff", "-U2", "--label", "a/f.c", "--label", "b/f.c", a, b).Output()
	d, err := ParseDiff(string(out))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return d
}

func TestRealSeries(t *testing.T) {
	series := filepath.Join("..", "..", "patches")
	names, err := filepath.Glob(filepath.Join(series, "0*.patch"))
	if err != nil || len(names) == 0 {
		t.Skip("no patches/")
	}
	var all [][]FileDiff
	var files []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ParseDiff(string(b))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		all = append(all, d)
		for _, f := range d {
			files = append(files, f.New)
		}
	}
	p := NewProfile(DefaultDirs, files)
	for _, f := range []string{"kernel/seccomp.c", "kernel/bpf/syscall.c", "kernel/bpf/btf.c", "kernel/bpf/verifier.c"} {
		if !p.Covers(f) {
			t.Errorf("profile %s does not cover %s", p, f)
		}
	}
	for _, f := range []string{"security/landlock/bpf_prog.c", "security/landlock/bpf_hooks.c", "security/landlock/bpf_seccomp.c"} {
		if !p.Covers(f) {
			t.Errorf("profile does not cover %s", f)
		}
	}
	sets := AddedLines(all, p.Covers)
	for i, s := range sets {
		for f, ls := range s {
			for j := 1; j < len(ls); j++ {
				if ls[j] <= ls[j-1] {
					t.Errorf("patch %d %s: lines not increasing: %v", i+1, f, ls)
				}
			}
		}
	}
	if len(sets[1]["security/landlock/bpf_hooks.c"]) == 0 {
		t.Errorf("patch 2 adds no line to bpf_hooks.c: %v", sets[1])
	}
}

// TestAddedLinesMatchPatchedTree checks, against a tree with the whole
// series applied (COVERAGE_TEST_TREE), that each mapped line holds the
// text the patch added. It is skipped without that tree.
func TestAddedLinesMatchPatchedTree(t *testing.T) {
	tree := os.Getenv("COVERAGE_TEST_TREE")
	if tree == "" {
		t.Skip("set COVERAGE_TEST_TREE to a tree with patches/ applied")
	}
	names, _ := filepath.Glob(filepath.Join("..", "..", "patches", "0*.patch"))
	var all [][]FileDiff
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ParseDiff(string(b))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, d)
	}
	sets := AddedLines(all, nil)
	checked := 0
	for i, set := range sets {
		for f, ls := range set {
			// The series renames nothing: the final path is the
			// patch's. The lines a patch adds to a file, in order,
			// must hold the texts it adds, in order, less those later
			// patches removed.
			var added []string
			for _, d := range all[i] {
				if d.New != f {
					continue
				}
				for _, h := range d.Hunks {
					for _, l := range h.Lines {
						if l[0] == '+' {
							added = append(added, l[1:])
						}
					}
				}
			}
			b, err := os.ReadFile(filepath.Join(tree, f))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Split(string(b), "\n")
			var final []string
			for _, l := range ls {
				if l < 1 || l > len(text) {
					t.Fatalf("patch %d: %s:%d is past the end of the file", i+1, f, l)
				}
				final = append(final, text[l-1])
			}
			if !subsequence(final, added) {
				t.Errorf("patch %d: %s: the mapped lines do not hold the added texts in order", i+1, f)
			}
			if len(final) == len(added) && !reflect.DeepEqual(final, added) {
				t.Errorf("patch %d: %s: mapped texts differ from the added ones", i+1, f)
			}
			checked += len(ls)
		}
	}
	t.Logf("%d mapped lines checked", checked)
}

// subsequence reports whether sub appears in all, in order.
func subsequence(sub, all []string) bool {
	j := 0
	for _, s := range all {
		if j < len(sub) && sub[j] == s {
			j++
		}
	}
	return j == len(sub)
}
