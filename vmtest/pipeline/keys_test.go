package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keyMap(t *testing.T, o Options, step int) map[string]string {
	t.Helper()
	keys, err := Keys(o, step)
	require.NoError(t, err)
	m := map[string]string{}
	for _, k := range keys {
		m[k.Name] = k.Value
	}
	require.Len(t, m, 5)
	return m
}

func TestKeys(t *testing.T) {
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	src := t.TempDir()
	for _, f := range []string{"Makefile", "Kconfig", "arch/x86/Kconfig"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(src, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, f), []byte(f), 0o644))
	}
	o := Options{Repo: repo, KernelSrc: src, Series: filepath.Join(repo, "patches/series"), Configs: filepath.Join(repo, "kernel/configs"), CacheDir: t.TempDir()}

	all := keyMap(t, o, -1)
	assert.Contains(t, all["tree"], "patched:")
	base := keyMap(t, o, 0)
	assert.Equal(t, base["source"], base["tree"], "step 0 is the tree unpatched")
	assert.Equal(t, all["source"], base["source"])
	assert.NotEqual(t, all["build"], base["build"])
	assert.NotEqual(t, keyMap(t, o, 1)["build"], keyMap(t, o, 2)["build"])
	assert.Equal(t, all, keyMap(t, o, -1), "the same inputs, the same keys")

	extra := filepath.Join(t.TempDir(), "x.config")
	require.NoError(t, os.WriteFile(extra, []byte("CONFIG_KPROBES=y\n"), 0o644))
	o2 := o
	o2.ExtraConfigs = []string{extra}
	more := keyMap(t, o2, -1)
	assert.Equal(t, all["tree"], more["tree"])
	assert.NotEqual(t, all["build"], more["build"], "CONFIG= is in the build's key")
	assert.NotEqual(t, all["key"], more["key"])

	_, err = Keys(o, 1000)
	assert.ErrorContains(t, err, "the series has")
	o.Coverage = true
	_, err = Keys(o, -1)
	assert.ErrorContains(t, err, "COVERAGE=1")
}
