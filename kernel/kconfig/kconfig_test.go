package kconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader("# comment\nCONFIG_A=y\n\n# CONFIG_B is not set\nCONFIG_LSM=\"landlock\"\nCONFIG_N=64\n"), "f")
	require.NoError(t, err)
	assert.Equal(t, []Setting{
		{Symbol: "A", Value: "y", Source: "f:2"},
		{Symbol: "B", Value: "n", Source: "f:4"},
		{Symbol: "LSM", Value: `"landlock"`, Source: "f:5"},
		{Symbol: "N", Value: "64", Source: "f:6"},
	}, got)
	assert.Equal(t, "# CONFIG_B is not set", got[1].Line())
	assert.Equal(t, `CONFIG_LSM="landlock"`, got[2].Line())

	_, err = Parse(strings.NewReader("CONFIG_A=y\nA=y\n"), "bad")
	assert.ErrorContains(t, err, "bad:2")
}

func TestMergeConflict(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a.config", "CONFIG_NET=y\nCONFIG_BPF=y\n")
	b := write(t, dir, "b.config", "CONFIG_BPF=y\n# CONFIG_NET is not set\n")
	_, err := Merge(a, b)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "NET", ce.First.Symbol)
	assert.Equal(t, a+":1", ce.First.Source)
	assert.Equal(t, b+":2", ce.Second.Source)
	assert.Contains(t, err.Error(), "CONFIG_NET is set two ways")
}

func TestMergeSameValueTwiceAndHash(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "b.config", "CONFIG_BPF=y\nCONFIG_NET=y\n")
	write(t, dir, "a.config", "# base\nCONFIG_NET=y\n")
	f, err := Dir(dir)
	require.NoError(t, err)
	assert.Equal(t, "CONFIG_NET=y\nCONFIG_BPF=y\n", f.Text())

	h := f.Hash()
	write(t, dir, "a.config", "# base, reworded comment\nCONFIG_NET=y\n")
	f2, err := Dir(dir)
	require.NoError(t, err)
	assert.Equal(t, h, f2.Hash(), "comments do not change the hash")

	write(t, dir, "c.config", "CONFIG_X=m\n")
	f3, err := Dir(dir)
	require.NoError(t, err)
	assert.NotEqual(t, h, f3.Hash())

	_, err = Dir(t.TempDir())
	assert.ErrorContains(t, err, "no *.config fragments")
}

func TestCheckNamesWhatDidNotStick(t *testing.T) {
	src := t.TempDir()
	write(t, src, "lib/Kconfig.debug", `menu "x"
config LKDTM
	tristate "Linux Kernel Dump Test Tool Module"
	depends on DEBUG_FS
	depends on BLOCK
	help
	  depends on NOT_THIS
config OTHER
	bool "other"
endmenu
`)
	write(t, src, "security/Kconfig", "config SECURITY_PATH\n\tbool\n")
	write(t, src, "init/Kconfig", "config PROMPTED\n\tbool \"p\"\n")

	dir := t.TempDir()
	frag := write(t, dir, "f.config", "CONFIG_LKDTM=y\nCONFIG_NET=y\nCONFIG_SECURITY_PATH=y\nCONFIG_PROMPTED=y\nCONFIG_GONE=y\n# CONFIG_OFF is not set\nCONFIG_LSM=\"landlock\"\n")
	f, err := Merge(frag)
	require.NoError(t, err)

	final := "CONFIG_NET=y\n# CONFIG_LKDTM is not set\nCONFIG_LSM=\"landlock,yama\"\nCONFIG_OFF=y\n"
	err = f.Check(strings.NewReader(final), src)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	byName := map[string]Missing{}
	for _, m := range me.Missing {
		byName[m.Symbol] = m
	}
	require.Len(t, byName, 6, "%v", err)
	assert.Equal(t, "n", byName["LKDTM"].Got)
	assert.Equal(t, "unsatisfied dependency? depends on DEBUG_FS && BLOCK (lib/Kconfig.debug:2)", byName["LKDTM"].Why)
	assert.Contains(t, byName["SECURITY_PATH"].Why, "no prompt")
	assert.Contains(t, byName["PROMPTED"].Why, "init/Kconfig:1")
	assert.Equal(t, "not defined in any Kconfig file of this tree", byName["GONE"].Why)
	assert.Equal(t, "y", byName["OFF"].Got)
	assert.Equal(t, `"landlock,yama"`, byName["LSM"].Got)
	assert.Contains(t, err.Error(), "missing: CONFIG_LKDTM: requested y ("+frag+":1), got n")
	_, net := byName["NET"]
	assert.False(t, net)

	ok, err := Merge(write(t, dir, "ok.config", "CONFIG_NET=y\n# CONFIG_LKDTM is not set\n"))
	require.NoError(t, err)
	assert.NoError(t, ok.Check(strings.NewReader(final), ""))
}
