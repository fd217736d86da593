package worktree

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

const patch = `Subject: [PATCH] change a

---
diff --git a/a.c b/a.c
--- a/a.c
+++ b/a.c
@@ -1 +1 @@
-int a;
+int a = 1;
diff --git a/new.c b/new.c
new file mode 100644
--- /dev/null
+++ b/new.c
@@ -0,0 +1 @@
+int n;
`

func TestResetRenewsWhatPatchesTouched(t *testing.T) {
	base := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(base, "a.c"), []byte("int a;\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(base, "b.c"), []byte("int b;\n"), 0o644))
	// Enough of a kernel tree for source.Local.
	require.NoError(t, os.MkdirAll(filepath.Join(base, "arch/x86"), 0o755))
	for _, f := range []string{"Makefile", "Kconfig", "arch/x86/Kconfig"} {
		require.NoError(t, os.WriteFile(filepath.Join(base, f), nil, 0o644))
	}
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"a.c", "b.c"} {
		require.NoError(t, os.Chtimes(filepath.Join(base, f), old, old))
	}
	sdir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(sdir, "0001-a.patch"), []byte(patch), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(sdir, "series"), []byte("0001-a.patch\n"), 0o644))
	s, err := series.Read(filepath.Join(sdir, "series"))
	require.NoError(t, err)

	c, err := cache.Default(t.TempDir())
	require.NoError(t, err)
	tree, err := source.Local(base, "x86")
	require.NoError(t, err)
	w, err := Open(c, tree, "test")
	require.NoError(t, err)
	defer w.Close()

	require.NoError(t, w.ApplyN(s, 1))
	assert.Equal(t, 1, w.Applied())
	data, err := os.ReadFile(filepath.Join(w.Src, "a.c"))
	require.NoError(t, err)
	assert.Equal(t, "int a = 1;\n", string(data))
	assert.FileExists(t, filepath.Join(w.Src, "new.c"))

	// Back to the base: a.c has the base's content but a new time, so
	// make rebuilds it; b.c, never touched, keeps the base's time.
	require.NoError(t, w.Reset())
	assert.Equal(t, 0, w.Applied())
	data, err = os.ReadFile(filepath.Join(w.Src, "a.c"))
	require.NoError(t, err)
	assert.Equal(t, "int a;\n", string(data))
	assert.NoFileExists(t, filepath.Join(w.Src, "new.c"))
	sa, err := os.Stat(filepath.Join(w.Src, "a.c"))
	require.NoError(t, err)
	sb, err := os.Stat(filepath.Join(w.Src, "b.c"))
	require.NoError(t, err)
	assert.True(t, sa.ModTime().After(old.Add(30*time.Minute)), "a.c renewed")
	assert.WithinDuration(t, old, sb.ModTime(), time.Second, "b.c untouched")
	// The base tree itself is never written.
	bs, err := os.Stat(filepath.Join(base, "a.c"))
	require.NoError(t, err)
	assert.WithinDuration(t, old, bs.ModTime(), time.Second)
}

func TestCheckpatchTotals(t *testing.T) {
	c := CheckpatchResult{Output: "WARNING: x\n\ntotal: 1 errors, 2 warnings, 3 checks, 40 lines checked\n"}
	require.True(t, c.parse())
	assert.Equal(t, 1, c.Errors)
	assert.Equal(t, 2, c.Warnings)
	assert.Equal(t, 3, c.Checks)
	assert.Equal(t, "1E 2W 3C", c.String())
	assert.False(t, (&CheckpatchResult{Output: "no totals"}).parse())
	assert.Equal(t, "clean", CheckpatchResult{}.String())
}
