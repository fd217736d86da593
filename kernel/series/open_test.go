package series

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const cover = `From git@z Thu Jan  1 00:00:00 1970
Subject: [PATCH v2 0/2] landlock: fixture series
From: Fixture <fixture@landlock-vmtest.invalid>

The cover letter has no diff and is left out.
`

// writeMbox writes the good fixture's patches as one mbox, in the order
// given, after a cover letter.
func writeMbox(t *testing.T, order ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(cover)
	for _, name := range order {
		data, err := os.ReadFile(filepath.Join("testdata/good", name))
		require.NoError(t, err)
		b.Write(data)
	}
	path := filepath.Join(t.TempDir(), "series.mbx")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

func TestOpenMboxSplitsPatchesInNumberOrder(t *testing.T) {
	mbox := writeMbox(t,
		"0002-landlock-fixture-change-the-boot-message.patch",
		"0001-landlock-fixture-add-a-line-to-the-Kconfig-help.patch")
	dir := filepath.Join(t.TempDir(), "split")
	s, err := Open(mbox, dir)
	require.NoError(t, err)
	require.Len(t, s.Patches, 2)
	assert.Equal(t, "landlock: fixture: add a line to the Kconfig help", s.Patches[0].Subject)
	assert.Equal(t, "landlock: fixture: change the boot message", s.Patches[1].Subject)
	assert.Equal(t, "0001-landlock-fixture-add-a-line-to-the-Kconfig-help.patch", s.Patches[0].Name)
	orig, err := os.ReadFile("testdata/good/0001-landlock-fixture-add-a-line-to-the-Kconfig-help.patch")
	require.NoError(t, err)
	split, err := os.ReadFile(s.Patches[0].Path)
	require.NoError(t, err)
	assert.Equal(t, strings.TrimRight(string(orig), "\n"), strings.TrimRight(string(split), "\n"))
	// The split directory is itself a series.
	again, err := Open(dir, "")
	require.NoError(t, err)
	assert.Equal(t, s.Names(), again.Names())
}

func TestOpenMboxWithoutPatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cover.mbx")
	require.NoError(t, os.WriteFile(path, []byte(cover), 0o644))
	_, err := Open(path, filepath.Join(t.TempDir(), "split"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "none of them has a diff")
}

func TestOpenDirectoryWithoutSeriesFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{
		"0001-landlock-fixture-add-a-line-to-the-Kconfig-help.patch",
		"0002-landlock-fixture-change-the-boot-message.patch",
	} {
		data, err := os.ReadFile(filepath.Join("testdata/good", n))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), data, 0o644))
	}
	s, err := Open(dir, "")
	require.NoError(t, err)
	require.Len(t, s.Patches, 2)
	assert.Equal(t, "landlock: fixture: change the boot message", s.Patches[1].Subject)

	_, err = Open(t.TempDir(), "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no series file and no *.patch files")
}

func TestOpenSeriesFileAndDirectoryWithSeriesFile(t *testing.T) {
	a, err := Open("testdata/good/series", "")
	require.NoError(t, err)
	b, err := Open("testdata/good", "")
	require.NoError(t, err)
	assert.Equal(t, a.Names(), b.Names())
}

func TestDiffFiles(t *testing.T) {
	diff := `Subject: x
---
 a | 1 +
diff --git a/kernel/seccomp.c b/kernel/seccomp.c
--- a/kernel/seccomp.c
+++ b/kernel/seccomp.c
@@ -1 +1 @@
-old
+new
diff --git a/security/landlock/new.c b/security/landlock/new.c
new file mode 100644
--- /dev/null
+++ b/security/landlock/new.c
@@ -0,0 +1 @@
+x
diff --git a/gone.c b/gone.c
--- a/gone.c
+++ /dev/null
@@ -1 +0,0 @@
-x
`
	assert.Equal(t, []string{"kernel/seccomp.c", "security/landlock/new.c", "gone.c"}, DiffFiles(diff))
}

func TestSlug(t *testing.T) {
	assert.Equal(t, "seccomp-landlock-append-rules", slug("[PATCH v3 2/5] seccomp,landlock: append rules"))
	assert.Equal(t, "patch", slug("[PATCH] ***"))
}

func TestPrefix(t *testing.T) {
	s, err := Read("testdata/good/series")
	require.NoError(t, err)
	assert.Len(t, s.Prefix(1).Patches, 1)
	assert.Len(t, s.Prefix(9).Patches, 2)
	assert.Empty(t, s.Prefix(0).Patches)
}
