package mirror

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func mtime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.ModTime()
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.Sys().(*syscall.Stat_t).Ino
}

// A tree like a kernel's: nested files, an executable script, a symlink,
// and a .git that is not mirrored.
func tree(t *testing.T) string {
	src := filepath.Join(t.TempDir(), "src")
	write(t, filepath.Join(src, "Makefile"), "all:\n")
	write(t, filepath.Join(src, "fs", "d_path.c"), "int a;\n")
	write(t, filepath.Join(src, "security", "landlock", "fs.c"), "int b;\n")
	write(t, filepath.Join(src, "scripts", "ld-version.sh"), "#!/bin/sh\n")
	require.NoError(t, os.Chmod(filepath.Join(src, "scripts", "ld-version.sh"), 0o755))
	require.NoError(t, os.Symlink("fs/d_path.c", filepath.Join(src, "link")))
	write(t, filepath.Join(src, ".git", "HEAD"), "ref\n")
	return src
}

func setup(t *testing.T) (src, dst string, o Options) {
	src = tree(t)
	root := t.TempDir()
	return src, filepath.Join(root, "src"), Options{Index: filepath.Join(root, "index"), Skip: []string{".git"}}
}

// The first Sync copies everything but what is skipped, modes and
// symlinks kept, and says the mirror is fresh.
func TestFirstSyncCopiesTheTree(t *testing.T) {
	src, dst, o := setup(t)
	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.True(t, st.Fresh)
	assert.Equal(t, 5, st.Files)
	assert.Equal(t, "int b;\n", read(t, filepath.Join(dst, "security", "landlock", "fs.c")))
	fi, err := os.Stat(filepath.Join(dst, "scripts", "ld-version.sh"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	to, err := os.Readlink(filepath.Join(dst, "link"))
	require.NoError(t, err)
	assert.Equal(t, "fs/d_path.c", to)
	assert.NoDirExists(t, filepath.Join(dst, ".git"))
	assert.NotEqual(t, inode(t, filepath.Join(src, "Makefile")), inode(t, filepath.Join(dst, "Makefile")), "copied, not linked")
}

// With nothing changed, a second Sync reads nothing, writes nothing and
// leaves every time alone.
func TestSyncOfAnUnchangedTreeDoesNothing(t *testing.T) {
	src, dst, o := setup(t)
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	before := mtime(t, filepath.Join(dst, "fs", "d_path.c"))
	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.False(t, st.Fresh)
	assert.Zero(t, st.Read)
	assert.Empty(t, st.Written)
	assert.Empty(t, st.Removed)
	assert.Equal(t, before, mtime(t, filepath.Join(dst, "fs", "d_path.c")))
}

// An edit rewrites that file alone, with a new time and a new inode; a
// file whose time changed but not its content is read, not written.
func TestSyncRewritesOnlyWhatChanged(t *testing.T) {
	src, dst, o := setup(t)
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"fs/d_path.c", "security/landlock/fs.c", "Makefile"} {
		require.NoError(t, os.Chtimes(filepath.Join(dst, f), old, old))
	}
	write(t, filepath.Join(src, "security", "landlock", "fs.c"), "int b; /* edited */\n")
	now := time.Now()
	require.NoError(t, os.Chtimes(filepath.Join(src, "Makefile"), now, now))
	ino := inode(t, filepath.Join(dst, "security", "landlock", "fs.c"))

	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.Equal(t, []string{"security/landlock/fs.c"}, st.Written)
	assert.Equal(t, 2, st.Read, "the edited file and the touched one")
	assert.Equal(t, "int b; /* edited */\n", read(t, filepath.Join(dst, "security", "landlock", "fs.c")))
	assert.True(t, mtime(t, filepath.Join(dst, "security", "landlock", "fs.c")).After(old.Add(time.Minute)))
	assert.NotEqual(t, ino, inode(t, filepath.Join(dst, "security", "landlock", "fs.c")))
	assert.Equal(t, old.Unix(), mtime(t, filepath.Join(dst, "Makefile")).Unix(), "same content: left alone")
	assert.Equal(t, old.Unix(), mtime(t, filepath.Join(dst, "fs", "d_path.c")).Unix())
}

// A file the source no longer has goes; a new one comes; a symlink that
// points elsewhere is remade.
func TestSyncRemovesAndAdds(t *testing.T) {
	src, dst, o := setup(t)
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(src, "fs", "d_path.c")))
	write(t, filepath.Join(src, "security", "landlock", "new.c"), "int c;\n")
	require.NoError(t, os.Remove(filepath.Join(src, "link")))
	require.NoError(t, os.Symlink("Makefile", filepath.Join(src, "link")))

	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.Equal(t, []string{"fs/d_path.c"}, st.Removed)
	assert.Equal(t, []string{"link", "security/landlock/new.c"}, st.Written)
	assert.NoFileExists(t, filepath.Join(dst, "fs", "d_path.c"))
	assert.Equal(t, "int c;\n", read(t, filepath.Join(dst, "security", "landlock", "new.c")))
	to, err := os.Readlink(filepath.Join(dst, "link"))
	require.NoError(t, err)
	assert.Equal(t, "Makefile", to)
}

// Link shares the files of a first Sync with the source; a later change
// is a new file in the mirror, and the source's file is left as it was.
func TestLinkedMirrorNeverWritesThrough(t *testing.T) {
	src, dst, o := setup(t)
	o.Link = true
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.Equal(t, inode(t, filepath.Join(src, "fs", "d_path.c")), inode(t, filepath.Join(dst, "fs", "d_path.c")))

	// The source replaces its file (as patch(1) does), not rewrites it.
	other := filepath.Join(t.TempDir(), "d_path.c")
	write(t, other, "int a2;\n")
	keep := filepath.Join(t.TempDir(), "keep")
	require.NoError(t, os.Link(filepath.Join(src, "fs", "d_path.c"), keep))
	require.NoError(t, os.Rename(other, filepath.Join(src, "fs", "d_path.c")))

	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.Equal(t, []string{"fs/d_path.c"}, st.Written)
	assert.Equal(t, "int a2;\n", read(t, filepath.Join(dst, "fs", "d_path.c")))
	assert.Equal(t, "int a;\n", read(t, keep), "the old file, shared with the first mirror, is unchanged")
}

// An index that cannot be read (a Sync that was interrupted) makes the
// next Sync start over: the mirror is emptied, and it says so.
func TestTornIndexStartsOver(t *testing.T) {
	src, dst, o := setup(t)
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	write(t, filepath.Join(dst, "stray.o"), "x")
	require.NoError(t, os.WriteFile(o.Index, []byte("not gob"), 0o644))
	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.True(t, st.Fresh)
	assert.NoFileExists(t, filepath.Join(dst, "stray.o"))
	assert.FileExists(t, filepath.Join(dst, "Makefile"))
}

// A Sync that fails leaves no index, so the next one starts over rather
// than trust a half-made mirror.
func TestFailedSyncLeavesNoIndex(t *testing.T) {
	src, dst, o := setup(t)
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	_, err = Sync(filepath.Join(src, "no-such-dir"), dst, o)
	require.Error(t, err)
	assert.NoFileExists(t, o.Index)
}

// A directory that became a symlink, a directory that became a file and a
// file that became a directory: the mirror follows, and removing what went
// with a directory never follows the new symlink out of its place.
func TestSyncFollowsTypeChanges(t *testing.T) {
	src, dst, o := setup(t)
	write(t, filepath.Join(src, "other", "x.h"), "other x\n")
	write(t, filepath.Join(src, "foo", "x.h"), "foo x\n")
	write(t, filepath.Join(src, "bar", "y.h"), "bar y\n")
	write(t, filepath.Join(src, "baz"), "baz file\n")
	_, err := Sync(src, dst, o)
	require.NoError(t, err)

	require.NoError(t, os.RemoveAll(filepath.Join(src, "foo")))
	require.NoError(t, os.Symlink("other", filepath.Join(src, "foo")))
	require.NoError(t, os.RemoveAll(filepath.Join(src, "bar")))
	write(t, filepath.Join(src, "bar"), "bar file\n")
	require.NoError(t, os.Remove(filepath.Join(src, "baz")))
	write(t, filepath.Join(src, "baz", "z.h"), "baz z\n")

	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.Equal(t, "other x\n", read(t, filepath.Join(dst, "other", "x.h")), "not removed through the new symlink")
	to, err := os.Readlink(filepath.Join(dst, "foo"))
	require.NoError(t, err)
	assert.Equal(t, "other", to)
	assert.Equal(t, "bar file\n", read(t, filepath.Join(dst, "bar")))
	assert.Equal(t, "baz z\n", read(t, filepath.Join(dst, "baz", "z.h")))
	assert.Empty(t, st.Removed, "what went, went with its directory or became one")

	// And the next Sync finds the mirror in step.
	st, err = Sync(src, dst, o)
	require.NoError(t, err)
	assert.Empty(t, st.Written)
	assert.Zero(t, st.Read)
}

// BeforeFresh runs before a mirror is made afresh, and only then.
func TestBeforeFresh(t *testing.T) {
	src, dst, o := setup(t)
	calls := 0
	o.BeforeFresh = func() error { calls++; return nil }
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	_, err = Sync(src, dst, o)
	require.NoError(t, err)
	assert.Equal(t, 1, calls)
	require.NoError(t, os.Remove(o.Index))
	o.BeforeFresh = func() error { return os.ErrPermission }
	_, err = Sync(src, dst, o)
	assert.ErrorIs(t, err, os.ErrPermission)
	assert.FileExists(t, filepath.Join(dst, "Makefile"), "nothing emptied when it fails")
}

// A copy has the source's mode whatever the umask, so that the next Sync
// finds it equal.
func TestCopyKeepsTheModeUnderAStrictUmask(t *testing.T) {
	src, dst, o := setup(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	_, err := Sync(src, dst, o)
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(dst, "Makefile"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	now := time.Now()
	require.NoError(t, os.Chtimes(filepath.Join(src, "Makefile"), now, now))
	st, err := Sync(src, dst, o)
	require.NoError(t, err)
	assert.Empty(t, st.Written)
}
