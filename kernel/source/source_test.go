package source

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.org",
		"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.org",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return string(out)
}

func write(t *testing.T, p, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

func numbered(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// kernelFiles is a fake kernel tree: what Local checks for, and a file
// the test series patches.
var kernelFiles = map[string]string{
	"Makefile":          "VERSION = 6\nPATCHLEVEL = 12\n",
	"Kconfig":           "mainmenu \"Linux\"\n",
	"arch/x86/Kconfig":  "config X86\n\tdef_bool y\n",
	"security/hooks.c":  numbered(60),
	"security/Makefile": "obj-y += hooks.o\n",
}

// fakeTree writes a fake kernel tree into dir.
func fakeTree(t *testing.T, dir string) string {
	t.Helper()
	for name, content := range kernelFiles {
		write(t, filepath.Join(dir, name), content)
	}
	return dir
}

// snapshot maps every file of dir (but .git) to its content, and every
// directory to "<dir>".
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			m[rel] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m[rel] = string(b)
		return nil
	}))
	return m
}

// makeSeries writes a two-patch series against kernelFiles, made with git
// format-patch: one changes security/hooks.c, one adds security/new.c.
func makeSeries(t *testing.T) *series.Series {
	t.Helper()
	repo := fakeTree(t, t.TempDir())
	git(t, repo, "init", "-q")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "base")
	lines := strings.Split(kernelFiles["security/hooks.c"], "\n")
	lines[9] = "patched line 10"
	write(t, filepath.Join(repo, "security", "hooks.c"), strings.Join(lines, "\n"))
	git(t, repo, "commit", "-qam", "security: change a line")
	write(t, filepath.Join(repo, "security", "new.c"), "new file\n")
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-qm", "security: add a file")

	pdir := t.TempDir()
	git(t, repo, "format-patch", "-q", "-o", pdir, "HEAD~2")
	patches, err := filepath.Glob(filepath.Join(pdir, "*.patch"))
	require.NoError(t, err)
	require.Len(t, patches, 2)
	var list strings.Builder
	for _, p := range patches {
		list.WriteString(filepath.Base(p) + "\n")
	}
	write(t, filepath.Join(pdir, "series"), list.String())
	s, err := series.Read(filepath.Join(pdir, "series"))
	require.NoError(t, err)
	return s
}

func newCache(t *testing.T) *cache.Cache {
	t.Helper()
	c, err := cache.Default(t.TempDir())
	require.NoError(t, err)
	return c
}

func TestLocalPlainTree(t *testing.T) {
	dir := fakeTree(t, t.TempDir())
	tr, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.Equal(t, dir, tr.Dir)
	assert.True(t, strings.HasPrefix(tr.Key, "plain:"), tr.Key)
	assert.Equal(t, "tree "+dir, tr.Desc)
	assert.False(t, tr.owned, "a user's tree is never shared by hard links")

	again, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.Equal(t, tr.Key, again.Key, "an unchanged tree keeps its key")

	// A relative path gives the same tree.
	t.Chdir(filepath.Dir(dir))
	rel, err := Local(filepath.Base(dir), "x86")
	require.NoError(t, err)
	assert.Equal(t, dir, rel.Dir)
	assert.Equal(t, tr.Key, rel.Key)

	keys := map[string]string{"initial": tr.Key}
	change := func(what string, f func()) {
		t.Helper()
		f()
		got, err := Local(dir, "x86")
		require.NoError(t, err)
		for prev, k := range keys {
			assert.NotEqual(t, k, got.Key, "%s: same key as %s", what, prev)
		}
		keys[what] = got.Key
	}
	hooks := filepath.Join(dir, "security", "hooks.c")
	change("content", func() { write(t, hooks, kernelFiles["security/hooks.c"]+"more\n") })
	change("mtime", func() {
		// Same size, new time: an edit that keeps the length.
		future := time.Now().Add(time.Hour)
		require.NoError(t, os.Chtimes(hooks, future, future))
	})
	change("new file", func() { write(t, filepath.Join(dir, "security", "extra.c"), "x\n") })
	change("new directory", func() { require.NoError(t, os.Mkdir(filepath.Join(dir, "empty"), 0o755)) })
}

func TestLocalGitTree(t *testing.T) {
	dir := fakeTree(t, t.TempDir())
	git(t, dir, "init", "-q")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-qm", "base")
	head := strings.TrimSpace(git(t, dir, "rev-parse", "HEAD"))

	clean, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(clean.Key, "git:"), clean.Key)
	assert.Equal(t, "git tree "+dir+" at "+head[:12], clean.Desc)
	assert.NotContains(t, clean.Desc, "uncommitted")

	// Touching a file without changing it does not change a git tree's key.
	future := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(dir, "Makefile"), future, future))
	touched, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.Equal(t, clean.Key, touched.Key)

	hooks := filepath.Join(dir, "security", "hooks.c")
	write(t, hooks, kernelFiles["security/hooks.c"]+"uncommitted\n")
	dirty, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.NotEqual(t, clean.Key, dirty.Key, "an uncommitted change changes the key")
	assert.Contains(t, dirty.Desc, "with uncommitted changes")
	assert.Contains(t, dirty.Desc, head[:12])

	write(t, hooks, kernelFiles["security/hooks.c"]+"another uncommitted change\n")
	dirty2, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.NotEqual(t, dirty.Key, dirty2.Key, "each uncommitted change has its key")

	write(t, hooks, kernelFiles["security/hooks.c"])
	reverted, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.Equal(t, clean.Key, reverted.Key, "back to the commit, back to its key")

	write(t, filepath.Join(dir, "security", "untracked.c"), "new\n")
	untracked, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.NotEqual(t, clean.Key, untracked.Key, "an untracked file changes the key")
	assert.Contains(t, untracked.Desc, "with uncommitted changes")
	write(t, filepath.Join(dir, "security", "untracked.c"), "edited\n")
	edited, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.NotEqual(t, untracked.Key, edited.Key, "editing an untracked file changes the key")
	require.NoError(t, os.Remove(filepath.Join(dir, "security", "untracked.c")))

	write(t, hooks, kernelFiles["security/hooks.c"]+"committed\n")
	git(t, dir, "commit", "-qam", "second")
	next, err := Local(dir, "x86")
	require.NoError(t, err)
	assert.NotEqual(t, clean.Key, next.Key, "a new commit changes the key")
	assert.NotContains(t, next.Desc, "uncommitted")
	assert.NotContains(t, next.Desc, head[:12])
}

func TestLocalGitTreeWithoutCommit(t *testing.T) {
	dir := fakeTree(t, t.TempDir())
	git(t, dir, "init", "-q")
	_, err := Local(dir, "x86")
	assert.ErrorContains(t, err, "git rev-parse HEAD")
}

func TestLocalRefusesBuiltTree(t *testing.T) {
	for _, built := range []string{".config", "include/config"} {
		t.Run(built, func(t *testing.T) {
			dir := fakeTree(t, t.TempDir())
			if built == ".config" {
				write(t, filepath.Join(dir, ".config"), "CONFIG_X86=y\n")
			} else {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, built), 0o755))
			}
			_, err := Local(dir, "x86")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "mrproper")
			assert.Contains(t, err.Error(), "make -C "+dir+" mrproper")
			assert.Contains(t, err.Error(), "("+built+" exists)")
		})
	}
}

func TestLocalRefusesNonKernelTree(t *testing.T) {
	for _, missing := range []string{"Makefile", "Kconfig", "arch/x86/Kconfig"} {
		t.Run(missing, func(t *testing.T) {
			dir := fakeTree(t, t.TempDir())
			require.NoError(t, os.Remove(filepath.Join(dir, missing)))
			_, err := Local(dir, "x86")
			assert.ErrorContains(t, err, "is not an x86 kernel tree")
			assert.ErrorContains(t, err, missing)
		})
	}
	_, err := Local(filepath.Join(t.TempDir(), "absent"), "x86")
	assert.ErrorContains(t, err, "is not an x86 kernel tree")
}

func TestPatchedLocalTree(t *testing.T) {
	c := newCache(t)
	user := fakeTree(t, t.TempDir())
	// A user's git tree: its .git stays out of the copy.
	git(t, user, "init", "-q")
	git(t, user, "add", ".")
	git(t, user, "commit", "-qm", "base")
	tr, err := Local(user, "x86")
	require.NoError(t, err)
	before := snapshot(t, user)
	s := makeSeries(t)

	p, err := Patched(c, tr, s)
	require.NoError(t, err)
	assert.NotEqual(t, user, p.Dir)
	assert.Equal(t, filepath.Join(c.Root, "trees"), filepath.Dir(p.Dir))
	assert.True(t, cache.Done(p.Dir))
	assert.True(t, strings.HasPrefix(p.Key, "patched:"), p.Key)
	assert.NotEqual(t, tr.Key, p.Key)
	assert.Equal(t, tr.Desc+" + 2 patch(es)", p.Desc)
	assert.True(t, p.owned)

	hooks, err := os.ReadFile(filepath.Join(p.Dir, "security", "hooks.c"))
	require.NoError(t, err)
	assert.Contains(t, string(hooks), "patched line 10")
	assert.NotContains(t, string(hooks), "\nline 10\n")
	newc, err := os.ReadFile(filepath.Join(p.Dir, "security", "new.c"))
	require.NoError(t, err)
	assert.Equal(t, "new file\n", string(newc))
	for _, f := range []string{"Makefile", "Kconfig", "arch/x86/Kconfig", "security/Makefile"} {
		b, err := os.ReadFile(filepath.Join(p.Dir, f))
		require.NoError(t, err, f)
		assert.Equal(t, kernelFiles[f], string(b), f)
	}
	assert.NoDirExists(t, filepath.Join(p.Dir, ".git"), "the copy has no .git")

	assert.Equal(t, before, snapshot(t, user), "the user's tree is untouched")
	assert.Equal(t, "", git(t, user, "status", "--porcelain"))

	// A second call finds the copy in the cache: it does not copy again.
	marker := filepath.Join(p.Dir, "marker-from-test")
	write(t, marker, "still here")
	again, err := Patched(c, tr, s)
	require.NoError(t, err)
	assert.Equal(t, p, again)
	assert.FileExists(t, marker)
	assert.Equal(t, before, snapshot(t, user))

	// Another tree content is another copy.
	write(t, filepath.Join(user, "security", "Makefile"), "obj-y += hooks.o new.o\n")
	tr2, err := Local(user, "x86")
	require.NoError(t, err)
	p2, err := Patched(c, tr2, s)
	require.NoError(t, err)
	assert.NotEqual(t, p.Dir, p2.Dir)
	assert.NotEqual(t, p.Key, p2.Key)
}

func TestPatchedPlainTree(t *testing.T) {
	c := newCache(t)
	user := fakeTree(t, t.TempDir())
	tr, err := Local(user, "x86")
	require.NoError(t, err)
	before := snapshot(t, user)
	p, err := Patched(c, tr, makeSeries(t))
	require.NoError(t, err)
	assert.Equal(t, before, snapshot(t, user))
	assert.FileExists(t, filepath.Join(p.Dir, "security", "new.c"))
	// A user's tree is copied, not linked.
	assert.NotEqual(t, inodeOf(t, filepath.Join(user, "Makefile")), inodeOf(t, filepath.Join(p.Dir, "Makefile")))
}

func TestPatchedSeriesThatDoesNotApply(t *testing.T) {
	c := newCache(t)
	user := fakeTree(t, t.TempDir())
	write(t, filepath.Join(user, "security", "hooks.c"), "something else entirely\n")
	tr, err := Local(user, "x86")
	require.NoError(t, err)
	before := snapshot(t, user)
	_, err = Patched(c, tr, makeSeries(t))
	var ae *series.ApplyError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 1, ae.Index)
	assert.Equal(t, before, snapshot(t, user))
	assert.Empty(t, entriesBesideLocks(t, filepath.Join(c.Root, "trees")), "no half-patched copy is left in the cache")
}

func TestPatchedEmptySeries(t *testing.T) {
	c := newCache(t)
	tr, err := Local(fakeTree(t, t.TempDir()), "x86")
	require.NoError(t, err)
	p, err := Patched(c, tr, &series.Series{Dir: t.TempDir()})
	require.NoError(t, err)
	assert.Same(t, tr, p, "an empty series builds the tree itself")
	assert.NoDirExists(t, filepath.Join(c.Root, "trees"))
}

func inodeOf(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	require.NoError(t, err)
	return st.Sys().(*syscall.Stat_t).Ino
}

// makeTarball packs a fake kernel tree under a top directory, the way
// Debian's linux-source tarball is laid out.
func makeTarball(t *testing.T, extra string) string {
	t.Helper()
	root := t.TempDir()
	fakeTree(t, filepath.Join(root, "linux-source-6.12"))
	write(t, filepath.Join(root, "linux-source-6.12", "EXTRA"), extra)
	tarball := filepath.Join(t.TempDir(), "linux-source-6.12.tar.xz")
	out, err := exec.Command("tar", "-cJf", tarball, "-C", root, "linux-source-6.12").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return tarball
}

func TestDebian(t *testing.T) {
	c := newCache(t)
	tarball := makeTarball(t, "one")
	sum, err := cache.FileSHA256(tarball)
	require.NoError(t, err)

	tr, err := Debian(c, tarball)
	require.NoError(t, err)
	assert.Equal(t, c.Path("src", sum[:24]), tr.Dir)
	assert.Equal(t, "tarball:"+sum, tr.Key)
	assert.True(t, strings.HasPrefix(tr.Desc, "Debian linux-source-6.12.tar.xz"), tr.Desc)
	assert.Contains(t, tr.Desc, "(sha256 "+sum[:12]+")")
	assert.True(t, tr.owned)
	assert.True(t, cache.Done(tr.Dir))
	for name, content := range kernelFiles {
		b, err := os.ReadFile(filepath.Join(tr.Dir, name))
		require.NoError(t, err, "%s extracted without the top directory", name)
		assert.Equal(t, content, string(b))
	}
	assert.NoDirExists(t, filepath.Join(tr.Dir, "linux-source-6.12"))

	// The checksum is remembered: one memo holding it.
	memos, err := os.ReadDir(filepath.Join(c.Root, "sums"))
	require.NoError(t, err)
	require.Len(t, memos, 1)
	memo, err := os.ReadFile(filepath.Join(c.Root, "sums", memos[0].Name()))
	require.NoError(t, err)
	assert.Equal(t, sum, string(memo))

	// A second call does not extract again: what the test leaves in the
	// tree stays, and the extracted files keep their inode.
	marker := filepath.Join(tr.Dir, "marker-from-test")
	write(t, marker, "x")
	ino := inodeOf(t, filepath.Join(tr.Dir, "Makefile"))
	again, err := Debian(c, tarball)
	require.NoError(t, err)
	assert.Equal(t, tr, again)
	assert.FileExists(t, marker)
	assert.Equal(t, ino, inodeOf(t, filepath.Join(tr.Dir, "Makefile")))

	// Another tarball is another tree.
	other := makeTarball(t, "two")
	tr2, err := Debian(c, other)
	require.NoError(t, err)
	assert.NotEqual(t, tr.Dir, tr2.Dir)
	assert.NotEqual(t, tr.Key, tr2.Key)
	b, err := os.ReadFile(filepath.Join(tr2.Dir, "EXTRA"))
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
}

// The memo is keyed by the tarball's path, size, time and inode: a
// tarball replaced in place is hashed again.
func TestDebianTarballReplaced(t *testing.T) {
	c := newCache(t)
	tarball := makeTarball(t, "one")
	tr, err := Debian(c, tarball)
	require.NoError(t, err)

	replacement := makeTarball(t, "a longer replacement")
	require.NoError(t, os.Rename(replacement, tarball))
	tr2, err := Debian(c, tarball)
	require.NoError(t, err)
	assert.NotEqual(t, tr.Key, tr2.Key)
	b, err := os.ReadFile(filepath.Join(tr2.Dir, "EXTRA"))
	require.NoError(t, err)
	assert.Equal(t, "a longer replacement", string(b))
}

func TestDebianErrors(t *testing.T) {
	c := newCache(t)
	_, err := Debian(c, filepath.Join(t.TempDir(), "absent.tar.xz"))
	assert.ErrorContains(t, err, "kernel source tarball")

	bad := filepath.Join(t.TempDir(), "bad.tar.xz")
	write(t, bad, "this is not a tarball")
	_, err = Debian(c, bad)
	assert.ErrorContains(t, err, "extracting "+bad)
	assert.Empty(t, entriesBesideLocks(t, filepath.Join(c.Root, "src")), "a failed extraction leaves nothing in the cache")
}

// Patching the cache's own tree shares unchanged files by hard links, and
// the patched files do not carry back into the extracted tree.
func TestPatchedDebianTree(t *testing.T) {
	c := newCache(t)
	tr, err := Debian(c, makeTarball(t, "one"))
	require.NoError(t, err)
	before := snapshot(t, tr.Dir)

	p, err := Patched(c, tr, makeSeries(t))
	require.NoError(t, err)
	assert.Equal(t, before, snapshot(t, tr.Dir), "the extracted tree is untouched")
	hooks, err := os.ReadFile(filepath.Join(p.Dir, "security", "hooks.c"))
	require.NoError(t, err)
	assert.Contains(t, string(hooks), "patched line 10")
	assert.Equal(t, inodeOf(t, filepath.Join(tr.Dir, "Makefile")), inodeOf(t, filepath.Join(p.Dir, "Makefile")), "unchanged files are linked")
	assert.NotEqual(t, inodeOf(t, filepath.Join(tr.Dir, "security", "hooks.c")), inodeOf(t, filepath.Join(p.Dir, "security", "hooks.c")))
}

// entriesBesideLocks lists dir without the entries' lock files, which stay
// by design (cache.Lock).
func entriesBesideLocks(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			names = append(names, e.Name())
		}
	}
	return names
}
