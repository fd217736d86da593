package initramfs

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/u-root/mkuimage/cpio"
)

// readArchive reads every record of a newc archive (up to its first
// trailer) with its content.
func readArchive(t *testing.T, file string) ([]cpio.Record, map[string][]byte) {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(f))
	require.NoError(t, err)
	content := map[string][]byte{}
	for _, r := range recs {
		b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		require.NoError(t, err, r.Name)
		content[r.Name] = b
	}
	return recs, content
}

// checkDirsFirst checks that every record's parent directory is in the
// archive, as a directory, before the record: the kernel does not create
// missing directories when it unpacks an initramfs.
func checkDirsFirst(t *testing.T, recs []cpio.Record) {
	t.Helper()
	dirs := map[string]bool{}
	for _, r := range recs {
		if parent := path.Dir(r.Name); parent != "." {
			assert.True(t, dirs[parent], "%s comes before its directory %s", r.Name, parent)
		}
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			dirs[r.Name] = true
		}
	}
}

func byName(recs []cpio.Record) map[string]cpio.Record {
	m := map[string]cpio.Record{}
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

func names(recs []cpio.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Name)
	}
	return out
}

func writeFile(t *testing.T, p, content string, perm os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), perm))
	require.NoError(t, os.Chmod(p, perm)) // whatever the umask
}

func TestWriteTests(t *testing.T) {
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "a.test"), "\x7fELF pretend binary", 0o755)
	writeFile(t, filepath.Join(host, "data.txt"), "some data\n", 0o644)
	writeFile(t, filepath.Join(host, "secret"), "", 0o600)
	writeFile(t, filepath.Join(host, "b.test"), "another binary", 0o750)
	files := map[string]string{
		"tests/00/00-a.test":                 filepath.Join(host, "a.test"),
		"tests/00/testdata/data.txt":         filepath.Join(host, "data.txt"),
		"tests/00/testdata/deep/down/secret": filepath.Join(host, "secret"),
		"tests/01/01-b.test":                 filepath.Join(host, "b.test"),
	}
	m := &contract.Manifest{
		Binaries: []contract.Binary{
			{Package: "example.com/a", Path: "/tests/00/00-a.test", Dir: "/tests/00"},
			{Package: "example.com/b", Path: "/tests/01/01-b.test", Dir: "/tests/01"},
		},
		Timeout: contract.Duration(3 * time.Minute),
		Args:    []string{"-test.run=X"},
		Env:     map[string]string{"K": "V"},
	}
	out := filepath.Join(t.TempDir(), "tests.cpio")
	require.NoError(t, WriteTests(out, m, files))

	recs, content := readArchive(t, out)
	assert.Equal(t, []string{
		"tests",
		"tests/manifest.json",
		"tests/00",
		"tests/00/00-a.test",
		"tests/00/testdata",
		"tests/00/testdata/data.txt",
		"tests/00/testdata/deep",
		"tests/00/testdata/deep/down",
		"tests/00/testdata/deep/down/secret",
		"tests/01",
		"tests/01/01-b.test",
	}, names(recs))
	checkDirsFirst(t, recs)

	recByName := byName(recs)
	for _, d := range []string{"tests", "tests/00", "tests/00/testdata", "tests/01"} {
		assert.Equal(t, uint64(cpio.S_IFDIR), recByName[d].Mode&cpio.S_IFMT, d)
	}
	for name, perm := range map[string]uint64{
		"tests/manifest.json":                0o644,
		"tests/00/00-a.test":                 0o755,
		"tests/00/testdata/data.txt":         0o644,
		"tests/00/testdata/deep/down/secret": 0o600,
		"tests/01/01-b.test":                 0o750,
	} {
		assert.Equal(t, cpio.S_IFREG|perm, recByName[name].Mode, "mode of %s", name)
	}
	for name, hostPath := range files {
		want, err := os.ReadFile(hostPath)
		require.NoError(t, err)
		assert.Equal(t, want, content[name], name)
		assert.Equal(t, uint64(len(want)), recByName[name].FileSize, name)
	}

	// The manifest is where the runner reads it, and reads back the same.
	assert.Equal(t, strings.TrimPrefix(contract.ManifestPath, "/"), "tests/manifest.json")
	var got contract.Manifest
	require.NoError(t, json.Unmarshal(content["tests/manifest.json"], &got))
	assert.Equal(t, *m, got)
	mf := filepath.Join(t.TempDir(), "manifest.json")
	require.NoError(t, os.WriteFile(mf, content["tests/manifest.json"], 0o644))
	rm, err := contract.ReadManifest(mf)
	require.NoError(t, err)
	assert.Equal(t, *m, *rm)

	// The archive is properly ended.
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(raw[len(raw)-512:]), cpio.Trailer)
	assert.Zero(t, len(raw)%4, "newc records are 4-byte aligned")
}

func TestWriteTestsEmpty(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tests.cpio")
	require.NoError(t, WriteTests(out, &contract.Manifest{Timeout: contract.Duration(time.Second)}, nil))
	recs, content := readArchive(t, out)
	assert.Equal(t, []string{"tests", "tests/manifest.json"}, names(recs))
	assert.JSONEq(t, `{"binaries": null, "timeout": "1s"}`, string(content["tests/manifest.json"]))
}

func TestWriteTestsErrors(t *testing.T) {
	dir := t.TempDir()
	m := &contract.Manifest{Timeout: contract.Duration(time.Second)}

	err := WriteTests(filepath.Join(dir, "a.cpio"), m, map[string]string{"tests/00/x.test": filepath.Join(dir, "absent")})
	assert.ErrorContains(t, err, "packing tests/00/x.test")
	assert.ErrorIs(t, err, os.ErrNotExist)

	err = WriteTests(filepath.Join(dir, "no-such-dir", "a.cpio"), m, nil)
	assert.ErrorContains(t, err, "creating test archive")

	// A file at the manifest's path would hide the manifest.
	writeFile(t, filepath.Join(dir, "m.json"), "{}", 0o644)
	err = WriteTests(filepath.Join(dir, "b.cpio"), m, map[string]string{"tests/manifest.json": filepath.Join(dir, "m.json")})
	assert.Error(t, err)
}

func TestConcat(t *testing.T) {
	dir := t.TempDir()
	parts := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")}
	contents := []string{"first archive\x00", "", strings.Repeat("third ", 100000)}
	for i, p := range parts {
		writeFile(t, p, contents[i], 0o644)
	}
	out := filepath.Join(dir, "initrd")
	// An older, longer initrd is replaced, not overwritten in place.
	writeFile(t, out, strings.Repeat("old ", 500000), 0o644)
	require.NoError(t, Concat(out, parts...))
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.True(t, bytes.Equal([]byte(strings.Join(contents, "")), got), "the parts end to end")

	require.NoError(t, Concat(out))
	got, err = os.ReadFile(out)
	require.NoError(t, err)
	assert.Empty(t, got)

	err = Concat(out, parts[0], filepath.Join(dir, "absent"))
	assert.ErrorContains(t, err, "assembling initramfs")
	assert.ErrorIs(t, err, os.ErrNotExist)

	assert.Error(t, Concat(filepath.Join(dir, "no-such-dir", "initrd"), parts...))
}

// Two archives end to end are what the kernel unpacks: a reader sees the
// first up to its trailer, and the second starts right after.
func TestConcatArchives(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bin"), "binary", 0o755)
	first := filepath.Join(dir, "first.cpio")
	second := filepath.Join(dir, "second.cpio")
	require.NoError(t, WriteTests(first, &contract.Manifest{Timeout: contract.Duration(time.Second)}, nil))
	require.NoError(t, WriteTests(second, &contract.Manifest{Timeout: contract.Duration(time.Minute)},
		map[string]string{"tests/00/00-x.test": filepath.Join(dir, "bin")}))
	out := filepath.Join(dir, "initrd")
	require.NoError(t, Concat(out, first, second))

	st, err := os.Stat(first)
	require.NoError(t, err)
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(io.NewSectionReader(f, st.Size(), 1<<30)))
	require.NoError(t, err)
	assert.Equal(t, []string{"tests", "tests/manifest.json", "tests/00", "tests/00/00-x.test"}, names(recs))
}
