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
