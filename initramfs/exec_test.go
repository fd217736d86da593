package initramfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
)

func write(t *testing.T, path, s string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(s), 0o755))
}

func TestPackCommandGoTestBinary(t *testing.T) {
	pkg, build := t.TempDir(), t.TempDir()
	bin := filepath.Join(build, "b001", "hooks.test")
	write(t, bin, "#!/bin/sh\n")
	write(t, filepath.Join(pkg, "testdata", "a", "x.txt"), "x")
	write(t, filepath.Join(pkg, "other.go"), "package p")
	write(t, filepath.Join(build, "gocoverdir", "covmeta.1"), "m")
	p, err := PackCommand(Command{Name: bin, Dir: pkg, Args: []string{
		"-test.paniconexit0", "-test.timeout=10m0s", "-test.run=.", "-test.bench=.", "-test.run=",
		"-test.gocoverdir=" + filepath.Join(build, "gocoverdir"),
		"-test.coverprofile=" + filepath.Join(build, "_cover_.out"),
		"-test.outputdir=" + pkg, "-test.cpuprofile=cpu.out",
		"-test.testlogfile=" + filepath.Join(build, "testlog.txt"),
	}})
	require.NoError(t, err)
	assert.Equal(t, contract.Binary{
		Package: "exec", Kind: contract.KindExec, Path: bin, Dir: pkg, Args: p.Binary.Args,
		Collect: []string{filepath.Join(build, "_cover_.out"), filepath.Join(pkg, "cpu.out"), filepath.Join(build, "testlog.txt")},
		Dirs:    []string{filepath.Join(build, "gocoverdir"), pkg},
	}, p.Binary)
	assert.Equal(t, map[string]string{
		strings.TrimPrefix(bin, "/"):                                          bin,
		strings.TrimPrefix(filepath.Join(pkg, "testdata/a/x.txt"), "/"):       filepath.Join(pkg, "testdata/a/x.txt"),
		strings.TrimPrefix(filepath.Join(build, "gocoverdir/covmeta.1"), "/"): filepath.Join(build, "gocoverdir/covmeta.1"),
	}, p.Files, "the binary, the package's testdata/ and the coverage directory; not the rest of the package")
}

func TestPackCommandArguments(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "in.txt"), "in")
	write(t, filepath.Join(dir, "sub", "f"), "f")
	p, err := PackCommand(Command{Name: "cat", Dir: dir, Args: []string{"in.txt", "sub", "-o=" + filepath.Join(dir, "sub/f"), "/", "/proc/self/status", "missing", ".", ".."}})
	require.NoError(t, err)
	assert.Equal(t, "cat", p.Binary.Path, "a bare name is the guest's")
	assert.ElementsMatch(t, []string{
		strings.TrimPrefix(filepath.Join(dir, "in.txt"), "/"), strings.TrimPrefix(filepath.Join(dir, "sub/f"), "/"),
	}, keys(p.Files), "relative names and -flag=value values that exist; not /, /proc, the working directory, one above it or a name that does not exist")
	assert.Equal(t, []string{filepath.Join(dir, "sub")}, p.Binary.Dirs)
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestPackCommandDynamicExecutable(t *testing.T) {
	sh, err := exec.LookPath("ls")
	require.NoError(t, err)
	sh, _ = filepath.EvalSymlinks(sh)
	if _, err := ELFMachine(sh); err != nil {
		t.Skipf("%s: %v", sh, err)
	}
	p, err := PackCommand(Command{Name: sh, Dir: t.TempDir(), LibDirs: []string{"/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"}})
	require.NoError(t, err)
	var libc, interp bool
	for g := range p.Files {
		libc = libc || strings.HasSuffix(g, "/libc.so.6")
		interp = interp || strings.Contains(g, "ld-linux")
	}
	assert.True(t, libc, "libc packed: %v", keys(p.Files))
	assert.True(t, interp, "the interpreter packed: %v", keys(p.Files))
	assert.Contains(t, strings.Join(p.Notes, "\n"), "is dynamic")
}

func TestPackCommandMissingLibraryIsAnError(t *testing.T) {
	sh, err := exec.LookPath("ls")
	require.NoError(t, err)
	_, err = PackCommand(Command{Name: sh, Dir: t.TempDir(), LibDirs: []string{t.TempDir()}})
	require.Error(t, err)
	assert.Regexp(t, `needs lib.*\.so.*, found in none of`, err.Error())
}

func TestPackCommandErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := PackCommand(Command{Name: "./nope", Dir: dir})
	assert.ErrorContains(t, err, "the command ./nope")
	_, err = PackCommand(Command{Name: dir + "/", Dir: dir})
	assert.ErrorContains(t, err, "is not a file")
	_, err = PackCommand(Command{Name: "x", Dir: "rel"})
	assert.ErrorContains(t, err, "not absolute")
}

func TestELFMachine(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	m, err := ELFMachine(self)
	require.NoError(t, err)
	assert.Equal(t, runtime.GOARCH, m)
	f := filepath.Join(t.TempDir(), "s")
	write(t, f, "#!/bin/sh\n")
	_, err = ELFMachine(f)
	assert.ErrorIs(t, err, ErrNotELF)
}
