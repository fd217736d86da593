package seccompentry

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestPlumbing checks the ways the scenarios open files in child
// processes, with no rule: it runs anywhere, the host included.
func TestPlumbing(t *testing.T) {
	dir := t.TempDir()
	exists := writeFile(t, dir, "exists")
	missing := dir + "/missing"

	for _, o := range []struct {
		how  string
		open func(string) error
	}{
		{"fork", forkOpen},
		{"exec", execOpen},
	} {
		t.Run(o.how, func(t *testing.T) {
			assert.NoError(t, o.open(exists))
			assert.ErrorIs(t, o.open(missing), unix.ENOENT)
		})
	}

	t.Run("helper_steps", func(t *testing.T) {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		h, err := startHelper(nil, r, "open="+exists, "wait", "open="+missing)
		r.Close()
		require.NoError(t, err)
		_, err = w.WriteString("anything")
		require.NoError(t, err)
		require.NoError(t, w.Close())
		status, res, err := h.wait()
		require.NoError(t, err)
		assert.Equal(t, helperStepFailed, status)
		assert.Equal(t, []string{"ok", "ok", "ENOENT"}, res)

		status, res, err = runHelper(nil, "open="+exists)
		require.NoError(t, err)
		assert.Equal(t, helperOK, status)
		assert.Equal(t, []string{"ok"}, res)
	})

	t.Run("helper_misuse", func(t *testing.T) {
		status, _, err := runHelper(nil, "no-such-step")
		assert.Equal(t, helperMisuse, status)
		assert.ErrorContains(t, err, `unknown step "no-such-step"`)
	})
}
