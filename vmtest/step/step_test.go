package step

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTargets(t *testing.T) {
	assert.Equal(t, []string{"fs/d_path.o", "security/landlock/bpf_hooks.o"}, targets([]string{"fs/d_path.c", "security/landlock/bpf_hooks.c"}))
}

// No C file, or no build yet: nothing is run.
func TestNothingToCheck(t *testing.T) {
	e := &Env{}
	ws, err := e.Sparse(nil, "/nonexistent/log")
	assert.NoError(t, err)
	assert.Nil(t, ws)
	ws, err = e.Sparse([]string{"a.c"}, "/nonexistent/log")
	assert.NoError(t, err)
	assert.Nil(t, ws)
	ws, err = e.Warnings([]string{"a.c"}, "/nonexistent/log")
	assert.NoError(t, err)
	assert.Nil(t, ws)
}
