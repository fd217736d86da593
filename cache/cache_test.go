package cache

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultXDG(t *testing.T) {
	xdg := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	c, err := Default("")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(xdg, "landlock-vmtest"), c.Root)
	st, err := os.Stat(c.Root)
	require.NoError(t, err, "the root is created")
	assert.True(t, st.IsDir())
}

func TestDefaultHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", home)
	c, err := Default("")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".cache", "landlock-vmtest"), c.Root)
	assert.DirExists(t, c.Root)
}

func TestDefaultExplicitDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "unused"))
	dir := filepath.Join(t.TempDir(), "a", "b")
	c, err := Default(dir)
	require.NoError(t, err)
	assert.Equal(t, dir, c.Root, "an explicit directory wins over XDG_CACHE_HOME")
	assert.DirExists(t, dir)
	assert.NoDirExists(t, os.Getenv("XDG_CACHE_HOME"))

	// A relative directory is made absolute.
	wd := t.TempDir()
	t.Chdir(wd)
	c, err = Default("rel")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(wd, "rel"), c.Root)
	assert.True(t, filepath.IsAbs(c.Root))
	assert.DirExists(t, filepath.Join(wd, "rel"))

	assert.Equal(t, filepath.Join(wd, "rel", "build", "k1"), c.Path("build", "k1"))
}

func TestDefaultCannotCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := Default(filepath.Join(file, "sub"))
	assert.ErrorContains(t, err, "creating cache directory")
}

func TestDoneAndMarkDone(t *testing.T) {
	dir := t.TempDir()
	assert.False(t, Done(dir))
	require.NoError(t, MarkDone(dir))
	assert.True(t, Done(dir))
	assert.FileExists(t, filepath.Join(dir, doneMarker))
	assert.False(t, Done(filepath.Join(dir, "absent")))
	assert.Error(t, MarkDone(filepath.Join(dir, "absent")))
}

// siblings lists the entries of dir's parent other than dir itself.
func siblings(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		// The entry's lock file stays beside it by design.
		if e.Name() != filepath.Base(dir) && e.Name() != filepath.Base(dir)+".lock" {
			out = append(out, e.Name())
		}
	}
	return out
}

// Two runs that want the same entry at once take turns: one fills it,
// the other finds it done.
func TestBuildConcurrentRunsFillOnce(t *testing.T) {
	c, err := Default(t.TempDir())
	require.NoError(t, err)
	dir := c.Path("kind", "shared")
	var calls atomic.Int32
	fill := func(tmp string) error {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return os.WriteFile(filepath.Join(tmp, "content"), []byte("x"), 0o644)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Build(dir, fill)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int32(1), calls.Load())
	assert.True(t, Done(dir))
}

func TestBuildFillsOnce(t *testing.T) {
	c, err := Default(t.TempDir())
	require.NoError(t, err)
	dir := c.Path("kind", "key")
	calls := 0
	var tmps []string
	fill := func(tmp string) error {
		calls++
		tmps = append(tmps, tmp)
		assert.Equal(t, filepath.Dir(dir), filepath.Dir(tmp), "the temporary directory is a sibling")
		assert.NotEqual(t, dir, tmp)
		assert.False(t, Done(tmp), "not complete while filling")
		return os.WriteFile(filepath.Join(tmp, "content"), []byte("filled"), 0o644)
	}

	built, err := Build(dir, fill)
	require.NoError(t, err)
	assert.True(t, built)
	assert.Equal(t, 1, calls)
	assert.True(t, Done(dir))
	b, err := os.ReadFile(filepath.Join(dir, "content"))
	require.NoError(t, err)
	assert.Equal(t, "filled", string(b))
	assert.NoDirExists(t, tmps[0], "renamed into place")
	assert.Empty(t, siblings(t, dir))

	built, err = Build(dir, fill)
	require.NoError(t, err)
	assert.False(t, built, "a complete entry is not built again")
	assert.Equal(t, 1, calls)
}

func TestBuildFailureLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "kind", "key")
	boom := errors.New("boom")
	var tmp string
	built, err := Build(dir, func(d string) error {
		tmp = d
		require.NoError(t, os.MkdirAll(filepath.Join(d, "half", "done"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, "half", "file"), []byte("x"), 0o644))
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.True(t, built, "fill ran")
	assert.NotEmpty(t, tmp)
	assert.NoDirExists(t, tmp, "the temporary directory is removed")
	assert.NoDirExists(t, dir, "no entry")
	assert.False(t, Done(dir))
	assert.Empty(t, siblings(t, dir))

	// The next Build runs fill again.
	calls := 0
	built, err = Build(dir, func(string) error { calls++; return nil })
	require.NoError(t, err)
	assert.True(t, built)
	assert.Equal(t, 1, calls)
	assert.True(t, Done(dir))
}

func TestBuildReplacesIncompleteEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "key")
	// What an interrupted run of an older version might have left: an
	// entry without the marker.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "stale"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stale", "file"), []byte("old"), 0o644))
	require.False(t, Done(dir))

	built, err := Build(dir, func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "fresh"), []byte("new"), 0o644)
	})
	require.NoError(t, err)
	assert.True(t, built)
	assert.True(t, Done(dir))
	assert.NoDirExists(t, filepath.Join(dir, "stale"))
	assert.FileExists(t, filepath.Join(dir, "fresh"))
	assert.Empty(t, siblings(t, dir))
}

func TestBuildCannotCreateParent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	called := false
	built, err := Build(filepath.Join(file, "kind", "key"), func(string) error { called = true; return nil })
	assert.ErrorContains(t, err, "creating cache directory")
	assert.False(t, built)
	assert.False(t, called)
}

func TestKey(t *testing.T) {
	k := Key("a", "b")
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{24}$`), k)
	assert.Equal(t, k, Key("a", "b"), "deterministic")
	assert.NotEqual(t, Key("ab", "c"), Key("a", "bc"), "parts are length-prefixed")
	assert.NotEqual(t, Key("a", "b"), Key("b", "a"), "order matters")
	assert.NotEqual(t, Key("a"), Key("a", ""), "an empty part counts")
	assert.NotEqual(t, Key(), Key(""))
	assert.NotEqual(t, Key("1:a\x00"), Key("1:a\x00", ""))
	// The SHA-256 of "1:a\x00", and of nothing, cut to 24 hex digits.
	assert.Equal(t, "37faf85ba65a6d91c91526ae", Key("a"))
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8", Key())
}

func TestFileSHA256(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "abc")
	require.NoError(t, os.WriteFile(p, []byte("abc"), 0o644))
	sum, err := FileSHA256(p)
	require.NoError(t, err)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sum)

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	sum, err = FileSHA256(empty)
	require.NoError(t, err)
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", sum)

	_, err = FileSHA256(filepath.Join(dir, "absent"))
	assert.ErrorContains(t, err, "hashing")
	assert.ErrorIs(t, err, os.ErrNotExist)

	_, err = FileSHA256(dir)
	assert.Error(t, err, "a directory has no content to hash")
}
