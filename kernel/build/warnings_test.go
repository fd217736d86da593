package build

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWarningsAndNewWarnings(t *testing.T) {
	src := "/cache/worktree/x/src"
	log := `  CC      security/landlock/bpf_prog.o
/cache/worktree/x/src/security/landlock/bpf_prog.c:12:6: warning: no previous prototype for 'f' [-Wmissing-prototypes]
/cache/worktree/x/src/security/landlock/bpf_prog.c:40:13: warning: unused variable 'x' [-Wunused-variable]
/cache/worktree/x/src/security/landlock/bpf_prog.c:40:13: warning: unused variable 'x' [-Wunused-variable]
../src/kernel/seccomp.c:7: warning: 'y' defined but not used [-Wunused-function]
/cache/worktree/x/src/kernel/seccomp.c:99:1: error: expected ';' before '}' token
`
	path := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(path, []byte(log), 0o644))
	ws, err := Warnings(path, src, "/cache/worktree/x/build")
	require.NoError(t, err)
	require.Len(t, ws, 3)
	assert.Equal(t, "security/landlock/bpf_prog.c", ws[0].File)
	assert.Equal(t, 12, ws[0].Line)
	assert.Equal(t, "kernel/seccomp.c", ws[2].File)
	assert.Equal(t, "security/landlock/bpf_prog.c:40: warning: unused variable 'x' [-Wunused-variable]", ws[1].String())

	// The same warning on another line is not new; a second one is.
	before := []Warning{{File: "security/landlock/bpf_prog.c", Line: 3, Text: "unused variable 'x' [-Wunused-variable]"}}
	after := append([]Warning{}, ws...)
	after = append(after, Warning{File: "security/landlock/bpf_prog.c", Line: 90, Text: "unused variable 'x' [-Wunused-variable]"})
	nw := NewWarnings(before, after)
	require.Len(t, nw, 3)
	assert.Equal(t, "kernel/seccomp.c", nw[0].File)
	assert.Equal(t, 12, nw[1].Line)
	assert.Equal(t, 90, nw[2].Line)
	assert.Empty(t, NewWarnings(ws, ws))
}

// Real sparse output (testdata/README.md): the findings of the tree with
// the series against Debian's, by file and message whatever their lines.
func TestSparseDelta(t *testing.T) {
	src := "/cache/worktree/x/src"
	before, err := Sparse("testdata/sparse-before.log", src, "/cache/worktree/x/build")
	require.NoError(t, err)
	after, err := Sparse("testdata/sparse-after.log", src, "/cache/worktree/x/build")
	require.NoError(t, err)
	require.Len(t, before, 10)
	require.Len(t, after, 12)
	assert.Equal(t, Warning{File: "fs/d_path.c", Line: 195, Level: "warning", Text: "context imbalance in 'prepend_path' - wrong count at exit"}, before[0])
	// The lines after a finding at its place are its text; the notes
	// that name the file a header came through are no finding.
	assert.Equal(t, "kernel/seccomp.c:579: warning: incorrect type in argument 1 (different address spaces); expected struct spinlock [usertype] *lock; got struct spinlock [noderef] __rcu *", before[2].String())
	assert.Equal(t, "include/linux/bpfptr.h", before[8].File)
	for _, w := range after {
		assert.NotContains(t, w.Text, "note:")
	}

	nw := NewWarnings(before, after)
	require.Len(t, nw, 2, "%v", nw)
	assert.Equal(t, "fs/d_path.c:551: warning: context imbalance in 'path_walk_up' - different lock contexts for basic block", nw[0].String())
	assert.Equal(t, "fs/d_path.c:675: warning: context imbalance in 'dentry_walk_up' - different lock contexts for basic block", nw[1].String())

	// gcc's own lines, in the same make log, are not sparse's.
	ws, err := Warnings("testdata/sparse-after.log", src, "")
	require.NoError(t, err)
	assert.Empty(t, ws)
}

func TestSparseErrors(t *testing.T) {
	ws, err := Sparse("testdata/sparse-new-symbol.log", "/cache/worktree/x/src", "")
	require.NoError(t, err)
	require.Len(t, ws, 3)
	assert.Equal(t, "security/landlock/bpf_prog.c:109: warning: symbol 'landlock_bpf_prog_peek' was not declared. Should it be static?", ws[0].String())
	assert.Equal(t, "security/landlock/bpf_prog.c:113: error: undefined identifier '__builtin_nosuch'", ws[1].String())
	assert.Equal(t, "dereference of noderef expression", ws[2].Text)
	// An error is not the same finding as a warning with its text.
	assert.Len(t, NewWarnings([]Warning{{File: ws[1].File, Text: ws[1].Text}}, ws[1:2]), 1)
}

// Real kernel-doc -none -Wall output (testdata/README.md), read from
// the tree it ran in.
func TestKernelDocFindings(t *testing.T) {
	tree := "/cache/worktree/x/src"
	before, err := Findings("testdata/kernel-doc-before.txt", tree, tree)
	require.NoError(t, err)
	after, err := Findings("testdata/kernel-doc-after.txt", tree, tree)
	require.NoError(t, err)
	require.Len(t, before, 3)
	require.Len(t, after, 6)
	assert.Equal(t, "include/uapi/linux/seccomp.h:131: warning: missing initial short description on line: * struct seccomp_notif_addfd", before[2].String())
	nw := NewWarnings(before, after)
	var got []string
	for _, w := range nw {
		got = append(got, w.String())
	}
	assert.Equal(t, []string{
		"security/landlock/bpf_hooks.h:87: warning: Function parameter or struct member 'triggers' not described in 'landlock_bpf_domain'",
		"security/landlock/bpf_hooks.h:87: warning: Excess struct member 'trigers' description in 'landlock_bpf_domain'",
		"security/landlock/bpf_hooks.h:90: warning: missing initial short description on line: * struct landlock_bpf_task_security",
	}, got)

	_, err = Findings("testdata/nosuch.txt", tree, tree)
	assert.Error(t, err)
}

func TestWarningWithoutLine(t *testing.T) {
	w := Warning{File: "Documentation/x.rst", Level: "severe", Text: "Problems with \"include\" directive path"}
	assert.Equal(t, `Documentation/x.rst: severe: Problems with "include" directive path`, w.String())
	assert.Equal(t, Warning{File: "a.c", Text: "x"}.Key(), Warning{File: "a.c", Line: 3, Level: "warning", Text: "x"}.Key())
}
