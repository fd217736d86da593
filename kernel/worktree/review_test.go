package worktree

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
)

// testdata/checkpatch-typos.txt: the series' checkpatch.pl --strict
// --codespell --show-types on patch 0025 with three words misspelt, one
// of them in the commit message.
func TestCheckpatchSpelling(t *testing.T) {
	out, err := os.ReadFile("testdata/checkpatch-typos.txt")
	require.NoError(t, err)
	c := CheckpatchResult{Output: string(out)}
	require.True(t, c.parse())
	assert.Equal(t, 3, c.Warnings)
	assert.Equal(t, "0E 3W 0C", c.String())
	assert.Equal(t, []string{
		"commit message: 'emtpy' may be misspelled - perhaps 'empty'?",
		"include/linux/lsm_hooks.h:94: 'wich' may be misspelled - perhaps 'which'?",
		"security/security.c:663: 'swiched' may be misspelled - perhaps 'switched'?",
	}, c.Spelling)

	clean := CheckpatchResult{Output: "WARNING:LONG_LINE: line length of 101 exceeds 100 columns\n#9: FILE: a.c:3:\n\ntotal: 0 errors, 1 warnings, 0 checks, 9 lines checked\n"}
	require.True(t, clean.parse())
	assert.Empty(t, clean.Spelling)
}

// A tree whose scripts/kernel-doc prints what the real one printed
// (testdata/README.md of kernel/build).
func fakeKernelDoc(t *testing.T, output string, status int) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "scripts"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "out"), []byte(output), 0o644))
	script := "#!/bin/sh\necho \"$@\" > args\ncat out >&2\nexit " + string(rune('0'+status)) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scripts/kernel-doc"), []byte(script), 0o755))
	for _, f := range []string{"include/linux/lsm_hooks.h", "security/landlock/bpf_hooks.h", "kernel/a.c"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	return dir
}

func TestKernelDocIn(t *testing.T) {
	out, err := os.ReadFile("../build/testdata/kernel-doc-after.txt")
	require.NoError(t, err)
	dir := fakeKernelDoc(t, string(out), 0)
	log := filepath.Join(t.TempDir(), "kernel-doc.txt")
	r, err := KernelDocIn(dir, []string{"include/linux/lsm_hooks.h", "Documentation/x.rst", "kernel/gone.c", "security/landlock/bpf_hooks.h", "kernel/a.c"}, log)
	require.NoError(t, err)
	// Only the C files and headers the tree has.
	assert.Equal(t, []string{"include/linux/lsm_hooks.h", "security/landlock/bpf_hooks.h", "kernel/a.c"}, r.Files)
	args, err := os.ReadFile(filepath.Join(dir, "args"))
	require.NoError(t, err)
	assert.Equal(t, "-none -Wall include/linux/lsm_hooks.h security/landlock/bpf_hooks.h kernel/a.c\n", string(args))
	require.Len(t, r.Findings, 6)
	assert.Equal(t, "security/landlock/bpf_hooks.h", r.Findings[3].File)
	assert.FileExists(t, log)

	// Nothing to read: nothing run.
	r, err = KernelDocIn(dir, []string{"Documentation/x.rst"}, log)
	require.NoError(t, err)
	assert.Empty(t, r.Files)

	// A failure that found nothing is the tool's.
	_, err = KernelDocIn(fakeKernelDoc(t, "Can't locate Pod/Usage.pm in @INC\n", 2), []string{"kernel/a.c"}, log)
	assert.ErrorContains(t, err, "Can't locate Pod/Usage.pm")

	_, err = KernelDocIn(t.TempDir(), []string{"kernel/a.c"}, log)
	assert.ErrorIs(t, err, ErrNoKernelDoc)
}

// testdata/docutils-*.txt: docutils 0.19 (Debian's python3-docutils) on
// the series' Documentation/userspace-api/index.rst before patch 0005,
// on it and landlock-bpf.rst after it, and on testdata/mistakes.rst.
func TestParseDocutils(t *testing.T) {
	read := func(name string) []build.Warning {
		b, err := os.ReadFile("testdata/" + name)
		require.NoError(t, err)
		return ParseDocutils(string(b))
	}
	// Sphinx's toctree and only, the kernel's kernel-doc: none of the
	// patch's business.
	assert.Empty(t, read("docutils-0005-before.txt"))
	assert.Empty(t, read("docutils-0005-after.txt"))

	var got []string
	for _, w := range read("docutils-mistakes.txt") {
		got = append(got, w.String())
	}
	f := "Documentation/userspace-api/mistakes.rst"
	assert.Equal(t, []string{
		f + ":8: warning: Title underline too short.",
		f + `:16: error: Unknown directive type "kernel-dco".`,
		f + ":26: warning: Inline emphasis start-string without end-string.",
		f + ":29: warning: Block quote ends without a blank line; unexpected unindent.",
		f + `:36: severe: Problems with "include" directive path: InputError: [Errno 2] No such file or directory: 'Documentation/nosuch.rst'.`,
		f + `:10: error: Unknown target name: "the missing target".`,
	}, got)

	assert.Equal(t, []build.Warning{{File: "a.rst", Level: "error", Text: "x"}}, ParseDocutils("a.rst:: (ERROR/3) x\n"), "a message with no line")
}

func TestSphinxOnly(t *testing.T) {
	for _, m := range []string{
		`Unknown directive type "kernel-doc".`,
		`Unknown directive type "toctree".`,
		`Unknown directive type "c:function".`,
		`Unknown directive type "flat-table".`,
		`Unknown interpreted text role "c:func".`,
		`Unknown interpreted text role "ref".`,
		`Unknown interpreted text role "manpage".`,
		`Undefined substitution referenced: "version".`,
	} {
		assert.True(t, SphinxOnly(m), m)
	}
	for _, m := range []string{
		`Unknown directive type "kernel-dco".`,
		`Unknown interpreted text role "c:".`,
		`Unknown interpreted text role "xyz:func".`,
		`Undefined substitution referenced: "landlock".`,
		"Title underline too short.",
	} {
		assert.False(t, SphinxOnly(m), m)
	}
}

func TestDocutilsIn(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "Documentation"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Documentation/a.rst"), nil, 0o644))
	out, err := os.ReadFile("testdata/docutils-mistakes.txt")
	require.NoError(t, err)
	fake := filepath.Join(t.TempDir(), "docutils")
	require.NoError(t, os.WriteFile(fake+".out", out, 0o644))
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\ncat "+fake+".out >&2\necho stdout\n"), 0o755))
	log := filepath.Join(t.TempDir(), "docutils.txt")
	r, err := DocutilsIn(dir, fake, []string{"Documentation/a.rst", "Documentation/gone.rst", "a.c"}, log)
	require.NoError(t, err)
	assert.Equal(t, []string{"Documentation/a.rst"}, r.Files)
	assert.Len(t, r.Findings, 6)
	b, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Contains(t, string(b), "$ "+fake+" --writer=null --report=2 --halt=5 Documentation/a.rst\n")
	assert.Contains(t, string(b), `Unknown directive type "kernel-doc"`, "the log has every message")
	assert.NotContains(t, string(b), "stdout")

	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'ModuleNotFoundError: docutils' >&2\nexit 1\n"), 0o755))
	_, err = DocutilsIn(dir, fake, []string{"Documentation/a.rst"}, log)
	assert.ErrorContains(t, err, "ModuleNotFoundError: docutils")
}

// The real docutils, where the host has it: testdata/mistakes.rst gives
// what testdata/docutils-mistakes.txt has.
func TestDocutilsReal(t *testing.T) {
	command, err := exec.LookPath("docutils")
	if err != nil {
		t.Skip("no docutils (Debian's python3-docutils) on this host")
	}
	dir := t.TempDir()
	f := "Documentation/userspace-api/mistakes.rst"
	src, err := os.ReadFile("testdata/mistakes.rst")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, f), src, 0o644))
	r, err := DocutilsIn(dir, command, []string{f}, filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	want, err := os.ReadFile("testdata/docutils-mistakes.txt")
	require.NoError(t, err)
	assert.Equal(t, ParseDocutils(string(want)), r.Findings)
}
