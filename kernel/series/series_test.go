package series

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.org",
		"GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return string(out)
}

func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// makeSeries builds a base tree and a two-patch series with git
// format-patch; it returns the pristine tree and the series file.
func makeSeries(t *testing.T) (tree, seriesFile string) {
	t.Helper()
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "security"), 0o755))
	base := numbered(60)
	require.NoError(t, os.WriteFile(filepath.Join(repo, "security", "hooks.c"), []byte(base), 0o644))
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "base")

	tree = t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "security"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "security", "hooks.c"), []byte(base), 0o644))

	lines := strings.Split(base, "\n")
	lines[4] = "first change"
	lines[40] = "second hunk change"
	require.NoError(t, os.WriteFile(filepath.Join(repo, "security", "hooks.c"), []byte(strings.Join(lines, "\n")), 0o644))
	git(t, repo, "commit", "-qam", "landlock: change two places\n\nBecause.")
	require.NoError(t, os.WriteFile(filepath.Join(repo, "security", "new.c"), []byte("new file\n"), 0o644))
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "landlock: add a file with a subject that is long enough to be folded by git format-patch over two lines")

	pdir := t.TempDir()
	git(t, repo, "format-patch", "-q", "-o", pdir, "HEAD~2")
	names, err := filepath.Glob(filepath.Join(pdir, "*.patch"))
	require.NoError(t, err)
	require.Len(t, names, 2)
	var list strings.Builder
	list.WriteString("# test series\n\n")
	for _, n := range names {
		list.WriteString(filepath.Base(n) + "\n")
	}
	seriesFile = filepath.Join(pdir, "series")
	require.NoError(t, os.WriteFile(seriesFile, []byte(list.String()), 0o644))
	return tree, seriesFile
}

func TestReadAndApply(t *testing.T) {
	tree, file := makeSeries(t)
	s, err := Read(file)
	require.NoError(t, err)
	require.Len(t, s.Patches, 2)
	assert.Equal(t, "landlock: change two places", s.Patches[0].Subject)
	assert.Equal(t, "landlock: add a file with a subject that is long enough to be folded by git format-patch over two lines", s.Patches[1].Subject)
	assert.Equal(t, []string{"0001-landlock-change-two-places.patch", s.Patches[1].Name}, s.Names())

	require.NoError(t, s.Apply(tree))
	got, err := os.ReadFile(filepath.Join(tree, "security", "hooks.c"))
	require.NoError(t, err)
	assert.Contains(t, string(got), "second hunk change")
	_, err = os.Stat(filepath.Join(tree, "security", "new.c"))
	assert.NoError(t, err)

	// Applying again: the first patch is already there, which patch(1)
	// reports as a reversed patch, and nothing is changed.
	err = s.Apply(tree)
	var ae *ApplyError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 1, ae.Index)
}

func TestApplyNamesFirstFailingHunk(t *testing.T) {
	tree, file := makeSeries(t)
	// Change the tree under the second hunk of the first patch.
	path := filepath.Join(tree, "security", "hooks.c")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	for i := 36; i < 46; i++ {
		lines[i] = "diverged"
	}
	diverged := strings.Join(lines, "\n")
	require.NoError(t, os.WriteFile(path, []byte(diverged), 0o644))

	s, err := Read(file)
	require.NoError(t, err)
	err = s.Apply(tree)
	var ae *ApplyError
	require.True(t, errors.As(err, &ae), "got %v", err)
	assert.Equal(t, 1, ae.Index)
	assert.Equal(t, "security/hooks.c", ae.File)
	assert.Equal(t, 2, ae.Hunk)
	assert.True(t, strings.HasPrefix(ae.HunkText, "@@ "), ae.HunkText)
	assert.Contains(t, ae.HunkText, "+second hunk change")
	assert.NotContains(t, ae.HunkText, "first change")
	assert.Contains(t, err.Error(), "0001-landlock-change-two-places.patch")
	assert.Contains(t, err.Error(), "hunk is #2 in security/hooks.c")

	// The dry run kept the tree as it was: hunk 1 was not half-applied.
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, diverged, string(after))
	_, err = os.Stat(path + ".rej")
	assert.True(t, os.IsNotExist(err), "no reject file left behind")
}

func TestApplyMissingFile(t *testing.T) {
	tree, file := makeSeries(t)
	require.NoError(t, os.Remove(filepath.Join(tree, "security", "hooks.c")))
	s, err := Read(file)
	require.NoError(t, err)
	err = s.Apply(tree)
	var ae *ApplyError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 0, ae.Hunk)
	assert.Contains(t, err.Error(), "does not apply")
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	write("a.patch", "Subject: [PATCH 1/1] a\n\n---\n")

	_, err := Read(write("missing", "a.patch\nb.patch\n"))
	assert.ErrorContains(t, err, "b.patch")

	_, err = Read(write("dup", "a.patch\n# c\na.patch\n"))
	assert.ErrorContains(t, err, "listed twice (first on line 1)")

	_, err = Read(write("opt", "a.patch -p0\n"))
	assert.ErrorContains(t, err, "unsupported option")

	s, err := Read(write("ok", "a.patch -p1\n"))
	require.NoError(t, err)
	assert.Equal(t, "a", s.Patches[0].Subject)

	empty, err := Read(write("empty", "# nothing yet\n"))
	require.NoError(t, err)
	assert.Empty(t, empty.Patches)
	require.NoError(t, empty.Apply(t.TempDir()))

	_, err = Read(filepath.Join(dir, "nope"))
	assert.Error(t, err)
}

func TestHashFollowsContentAndOrder(t *testing.T) {
	_, file := makeSeries(t)
	s, err := Read(file)
	require.NoError(t, err)
	h1, err := s.Hash()
	require.NoError(t, err)

	swapped := &Series{Dir: s.Dir, Patches: []Patch{s.Patches[1], s.Patches[0]}}
	h2, err := swapped.Hash()
	require.NoError(t, err)
	assert.NotEqual(t, h1, h2)

	f, err := os.OpenFile(s.Patches[1].Path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	h3, err := s.Hash()
	require.NoError(t, err)
	assert.NotEqual(t, h1, h3)
}

func TestFindHunk(t *testing.T) {
	diff := `--- a/x.c
+++ b/x.c
@@ -1,2 +1,2 @@
-a
+b
@@ -10,2 +10,2 @@
-c
+d
diff --git a/y.c b/y.c
--- a/y.c
+++ b/y.c
@@ -1 +1 @@
-e
+f
`
	assert.Equal(t, "@@ -10,2 +10,2 @@\n-c\n+d", FindHunk(diff, "x.c", 2))
	assert.Equal(t, "@@ -1 +1 @@\n-e\n+f", FindHunk(diff, "y.c", 1))
	assert.Equal(t, "", FindHunk(diff, "y.c", 2))
	assert.Equal(t, "", FindHunk(diff, "z.c", 1))
}
