package build

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/mirror"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// fakeKbuild is a kernel tree's Makefile in miniature: the config targets
// the builder runs, and an image made from two sources through one object
// that make remakes only when a source is newer. Every step it takes is
// appended to $(O)/calls.
const fakeKbuild = `O ?= .
tinyconfig:
	mkdir -p $(O)
	echo 'CONFIG_X=y' > $(O)/.config
	echo tinyconfig >> $(O)/calls
olddefconfig:
	echo olddefconfig >> $(O)/calls
$(O)/obj: a.c b.c
	echo "compiled $?" >> $(O)/calls
	cat $^ > $@
bzImage: $(O)/obj
	mkdir -p $(O)/arch/x86/boot $(O)/include/config $(O)/scripts/gdb
	cp $(O)/obj $(O)/arch/x86/boot/bzImage
	echo 6.12.0-fake > $(O)/include/config/kernel.release
	echo elf > $(O)/vmlinux
	echo map > $(O)/System.map
	echo py > $(O)/scripts/gdb/constants.py
	ln -sf $(CURDIR)/gdb.py $(O)/vmlinux-gdb.py
.PHONY: tinyconfig olddefconfig bzImage
`

func fakeTree(t *testing.T, dir string, b string) *source.Tree {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, content := range map[string]string{"Makefile": fakeKbuild, "a.c": "int a;\n", "b.c": b, "gdb.py": "# gdb\n"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return &source.Tree{Dir: dir, Key: "plain:" + b, Origin: "local:test"}
}

func calls(t *testing.T, b *Builder) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.mirror.build, "calls"))
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// mirrorSetup skips without make, and returns an empty cache and the
// fragments the fake tree's tinyconfig satisfies.
func mirrorSetup(t *testing.T) (*cache.Cache, *kconfig.Fragments) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	c, err := cache.Default(t.TempDir())
	require.NoError(t, err)
	return c, fragments(t, "CONFIG_X=y\n")
}

func build(t *testing.T, c *cache.Cache, req Request) (*Builder, *Result) {
	t.Helper()
	b := NewMirrored(c, req)
	require.False(t, b.Cached())
	require.NoError(t, b.Configure())
	res, err := b.Compile()
	require.NoError(t, err)
	return b, res
}

// An edit of one file of the tree, in a tree with a new key, makes make
// remake only what depends on it, in the mirror's build directory, with
// the .config kept; each result lands in its own content-keyed directory,
// where a build of the same key finds it without running make.
func TestMirroredBuildRebuildsOnlyTheEdit(t *testing.T) {
	c, frags := mirrorSetup(t)
	t1 := fakeTree(t, filepath.Join(t.TempDir(), "t1"), "int b;\n")

	b1, r1 := build(t, c, Request{Tree: t1, Fragments: frags})
	assert.Equal(t, []string{"tinyconfig", "olddefconfig", "compiled a.c b.c"}, calls(t, b1))
	assert.Equal(t, c.Path("build", Key(Request{Tree: t1, Fragments: frags})), r1.Dir)
	assert.Equal(t, "6.12.0-fake", r1.Release)
	img, err := os.ReadFile(r1.Image)
	require.NoError(t, err)
	assert.Equal(t, "int a;\nint b;\n", string(img))
	for _, f := range []string{"vmlinux", "System.map", ".config", "scripts/gdb/constants.py", "build.log"} {
		assert.FileExists(t, filepath.Join(r1.Dir, f))
	}
	link, err := os.Readlink(filepath.Join(r1.Dir, "source"))
	require.NoError(t, err)
	assert.Equal(t, t1.Dir, link)
	assert.Contains(t, b1.Mirrored(), "afresh")
	gdb, err := os.Readlink(filepath.Join(r1.Dir, "vmlinux-gdb.py"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(t1.Dir, "gdb.py"), gdb, "into the keyed tree, not the mirror")
	recorded, err := os.ReadFile(filepath.Join(r1.Dir, MirrorSource))
	require.NoError(t, err)
	assert.Equal(t, b1.mirror.src+"\n", string(recorded))

	t2 := fakeTree(t, filepath.Join(t.TempDir(), "t2"), "int b; /* edited */\n")
	b2, r2 := build(t, c, Request{Tree: t2, Fragments: frags})
	assert.Equal(t, []string{"tinyconfig", "olddefconfig", "compiled a.c b.c", "compiled b.c"}, calls(t, b2), "only b.c is newer than the object; no config step")
	assert.Equal(t, b1.mirror.root, b2.mirror.root, "one mirror for the origin and config")
	assert.NotEqual(t, r1.Dir, r2.Dir)
	img, err = os.ReadFile(r2.Image)
	require.NoError(t, err)
	assert.Equal(t, "int a;\nint b; /* edited */\n", string(img))
	assert.Contains(t, b2.Mirrored(), "1 file(s) changed, 0 removed (b.c), .config kept")

	// Back to the first tree: its build is done, in its own directory.
	again := NewMirrored(c, Request{Tree: t1, Fragments: frags})
	assert.True(t, again.Cached())
	res, err := again.Compile()
	require.NoError(t, err)
	assert.True(t, res.Cached)
	img, err = os.ReadFile(res.Image)
	require.NoError(t, err)
	assert.Equal(t, "int a;\nint b;\n", string(img), "the keyed copy is not the mirror's")

	// Other fragments: another mirror, configured afresh.
	other := fragments(t, "CONFIG_X=y\nCONFIG_Y=n\n")
	b3 := NewMirrored(c, Request{Tree: t1, Fragments: other})
	assert.NotEqual(t, b1.mirror.root, b3.mirror.root)
}

// A requested symbol that the tree no longer gives (a Kconfig the edit
// changed, with the .config kept) is a config error after the build, and
// the next build configures afresh.
func TestMirroredBuildChecksTheKeptConfig(t *testing.T) {
	c, frags := mirrorSetup(t)
	t1 := fakeTree(t, filepath.Join(t.TempDir(), "t1"), "int b;\n")
	b1, _ := build(t, c, Request{Tree: t1, Fragments: frags})

	// The kept .config lost the symbol (as syncconfig would drop one
	// whose Kconfig entry went away).
	require.NoError(t, os.WriteFile(filepath.Join(b1.mirror.build, ".config"), []byte("# CONFIG_X is not set\n"), 0o644))
	t2 := fakeTree(t, filepath.Join(t.TempDir(), "t2"), "int b2;\n")
	b2 := NewMirrored(c, Request{Tree: t2, Fragments: frags})
	require.NoError(t, b2.Configure())
	_, err := b2.Compile()
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "CONFIG_X: requested y")
	assert.False(t, cache.Done(c.Path("build", Key(Request{Tree: t2, Fragments: frags}))))

	b3, _ := build(t, c, Request{Tree: t2, Fragments: frags})
	got := calls(t, b3)
	assert.Equal(t, []string{"tinyconfig", "olddefconfig"}, got[len(got)-2:], "configured afresh; the object was up to date")
}

// A sync that changes a Kconfig file or a fragment tinyconfig reads
// configures afresh; other files keep the .config.
func TestChangesConfig(t *testing.T) {
	for rel, want := range map[string]bool{
		"security/landlock/Kconfig":        true,
		"arch/x86/Kconfig.cpu":             true,
		"kernel/configs/tiny.config":       true,
		"arch/x86/configs/tiny.config":     true,
		"scripts/ld-version.sh":            true,
		"security/landlock/fs.c":           false,
		"include/linux/kconfig.h":          false,
		"Documentation/kbuild/kconfig.rst": false,
	} {
		assert.Equal(t, want, changesConfig(mirror.Stats{Written: []string{rel}}), rel)
		assert.Equal(t, want, changesConfig(mirror.Stats{Removed: []string{rel}}), rel)
	}
}

// A make that was killed (the mark of a build going on is still there)
// may have left half-made objects newer than their sources: the next
// build starts the build directory over.
func TestMirroredBuildAfterAKilledMake(t *testing.T) {
	c, frags := mirrorSetup(t)
	b1, _ := build(t, c, Request{Tree: fakeTree(t, filepath.Join(t.TempDir(), "t1"), "int b;\n"), Fragments: frags})
	assert.NoFileExists(t, filepath.Join(b1.mirror.build, building), "a make that ended takes its mark away")
	require.NoError(t, os.WriteFile(filepath.Join(b1.mirror.build, building), nil, 0o644))

	b2, _ := build(t, c, Request{Tree: fakeTree(t, filepath.Join(t.TempDir(), "t2"), "int b2;\n"), Fragments: frags})
	assert.Equal(t, []string{"tinyconfig", "olddefconfig", "compiled a.c b.c"}, calls(t, b2), "configured and built afresh")
}
