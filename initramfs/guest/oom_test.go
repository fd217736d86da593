package guest

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The runner makes itself the OOM killer's last choice before the tests,
// and each binary an ordinary choice again as soon as it started.
func TestInitKeepsTheRunnerFromTheOOMKiller(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("true")
	require.NoError(t, err)
	// cat stands in for test2json: the binary prints nothing to convert.
	cat, err := exec.LookPath("cat")
	require.NoError(t, err)
	sys := &fakeSystem{}
	m := fmt.Sprintf(`{"binaries": [{"package": "example.com/t", "path": %q, "dir": "/"}], "timeout": "1m"}`, bin)
	logged, _, err := initRun(t, sys, m, func(in *Init) { in.Test2JSON = cat })
	require.NoError(t, err, "logged:\n%s", logged)
	sys.mu.Lock()
	defer sys.mu.Unlock()
	require.Len(t, sys.oom, 2, "logged:\n%s", logged)
	assert.Equal(t, "0 -1000", sys.oom[0])
	assert.Regexp(t, `^[1-9]\d* 0$`, sys.oom[1])
}
