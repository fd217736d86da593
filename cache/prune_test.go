package cache

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// age sets the mtime of path, and of its lock file when there is one.
func age(t *testing.T, path string, ago time.Duration) {
	t.Helper()
	when := time.Now().Add(-ago)
	require.NoError(t, os.Chtimes(path, when, when))
	if _, err := os.Stat(path + ".lock"); err == nil {
		require.NoError(t, os.Chtimes(path+".lock", when, when))
	}
}

func names(rs []Removed) []string {
	var out []string
	for _, r := range rs {
		s := r.Kind + "/" + r.Name
		if r.InUse {
			s += " (in use)"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestPruneRemovesWhatWasNotUsedSinceTheCutoff(t *testing.T) {
	c := &Cache{Root: t.TempDir()}
	fill := func(kind, key string) string {
		dir := c.Path(kind, key)
		_, err := Build(dir, func(tmp string) error {
			return os.WriteFile(filepath.Join(tmp, "f"), []byte(key), 0o644)
		})
		require.NoError(t, err)
		return dir
	}
	old := fill("trees", "old")
	recent := fill("trees", "recent")
	usedAgain := fill("initramfs", "used-again")
	age(t, old, 30*24*time.Hour)
	age(t, recent, time.Hour)
	age(t, usedAgain, 30*24*time.Hour)
	// A cache hit marks the entry used.
	built, err := Build(usedAgain, func(string) error { t.Fatal("filled again"); return nil })
	require.NoError(t, err)
	require.False(t, built)

	// A persistent build directory, last locked long ago.
	build := c.Path("build", "b")
	require.NoError(t, os.MkdirAll(build, 0o755))
	unlock, err := Lock(build)
	require.NoError(t, err)
	unlock()
	age(t, build, 30*24*time.Hour)

	// An old build directory a run holds right now.
	held := c.Path("build", "held")
	require.NoError(t, os.MkdirAll(held, 0o755))
	unlockHeld, err := Lock(held)
	require.NoError(t, err)
	defer unlockHeld()
	age(t, held, 30*24*time.Hour)

	// The leftover of an interrupted fill, however recent.
	leftover := c.Path("trees", "x"+tmpMarker+"123")
	require.NoError(t, os.MkdirAll(leftover, 0o755))

	// Not a prunable kind.
	ccache := c.Path("ccache", "")
	require.NoError(t, os.MkdirAll(ccache, 0o755))
	age(t, ccache, 30*24*time.Hour)

	removed, err := c.Prune(time.Now().Add(-14 * 24 * time.Hour))
	require.NoError(t, err)
	assert.Equal(t, []string{"build/b", "build/held (in use)", "trees/old", "trees/x.tmp-123"}, names(removed))

	for _, gone := range []string{old, old + ".lock", build, build + ".lock", leftover} {
		assert.NoFileExists(t, gone)
		assert.NoDirExists(t, gone)
	}
	for _, kept := range []string{recent, usedAgain, held, ccache} {
		assert.DirExists(t, kept)
	}
}

func TestEntriesFlagsAnIncompleteEntry(t *testing.T) {
	c := &Cache{Root: t.TempDir()}
	require.NoError(t, os.MkdirAll(c.Path("kselftest", "half"), 0o755))
	require.NoError(t, os.WriteFile(c.Path("kselftest", "half")+".log", nil, 0o644))
	es, err := c.Entries()
	require.NoError(t, err)
	require.Len(t, es, 1, "the log beside an entry is not an entry")
	assert.True(t, es[0].Incomplete)

	removed, err := c.Prune(time.Now().Add(-time.Hour))
	require.NoError(t, err)
	assert.Equal(t, []string{"kselftest/half"}, names(removed), "an entry never completed goes whatever its age")
	assert.NoFileExists(t, c.Path("kselftest", "half")+".log")
}

func TestUsageCountsAHardLinkedFileOnce(t *testing.T) {
	c := &Cache{Root: t.TempDir()}
	src := c.Path("src", "a")
	tree := c.Path("trees", "b")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.MkdirAll(tree, 0o755))
	data := make([]byte, 64*1024)
	require.NoError(t, os.WriteFile(filepath.Join(src, "big"), data, 0o644))
	require.NoError(t, os.Link(filepath.Join(src, "big"), filepath.Join(tree, "big")))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "own"), data, 0o644))

	per, total, err := c.Usage()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, per["src"], int64(len(data)))
	assert.Less(t, per["trees"], 2*int64(len(data)), "the linked file is counted under src only")
	assert.Equal(t, per["src"]+per["trees"], total)
}
