package pipeline

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/internal/e2e"
)

// TestSeriesWithOptionOffIsCachedOnce checks, on the host, the series
// TestE2ESeriesWithTheOptionOff builds: its own fragment unsets
// CONFIG_SECURITY_LANDLOCK_BPF with no conflict (where a CONFIG= fragment
// doing the same conflicts with the series' landlock-bpf.config), the
// config check holds the kernel to "is not set", the patches are ours (the
// patched tree is shared with make vmtest), and two scratch copies give
// the same build key, other than the default one: the kernel is built
// once and found in the cache by the next run.
func TestSeriesWithOptionOffIsCachedOnce(t *testing.T) {
	repo := e2e.Repo(t)
	configs := filepath.Join(repo, "kernel", "configs")
	ours, err := series.Read(filepath.Join(repo, "patches", "series"))
	require.NoError(t, err)
	oursHash, err := ours.Hash()
	require.NoError(t, err)
	tree := &source.Tree{Key: "patched:test"}
	def, err := Fragments(configs, x86(t), ours, nil)
	require.NoError(t, err)
	defKey := build.Key(build.Request{Tree: tree, Fragments: def})
	const sym = "SECURITY_LANDLOCK_BPF"
	require.Equal(t, "CONFIG_"+sym, e2e.LandlockBPFOption)

	var keys []string
	for range 2 {
		s, err := series.Read(e2e.SeriesWithOptionOff(t))
		require.NoError(t, err)
		assert.Equal(t, ours.Names(), s.Names())
		h, err := s.Hash()
		require.NoError(t, err)
		assert.Equal(t, oursHash, h, "the patches are ours, byte for byte")

		f, err := Fragments(configs, x86(t), s, nil)
		require.NoError(t, err, "the scratch series' fragment replaces landlock-bpf.config, it does not conflict with it")
		var got []kconfig.Setting
		for _, st := range f.Settings {
			if st.Symbol == sym {
				got = append(got, st)
			}
		}
		require.Len(t, got, 1)
		assert.Equal(t, "n", got[0].Value)
		assert.True(t, strings.HasPrefix(got[0].Source, s.Dir+string(filepath.Separator)), got[0].Source)
		assert.Contains(t, f.Text(), "# CONFIG_"+sym+" is not set\n")

		// The check after olddefconfig: not set, or absent, is what was
		// asked; =y did not stick.
		only := f.Without(func(st kconfig.Setting) bool { return st.Symbol != sym })
		assert.NoError(t, only.Check(strings.NewReader("CONFIG_SECURITY_LANDLOCK=y\n# CONFIG_"+sym+" is not set\n"), ""))
		assert.NoError(t, only.Check(strings.NewReader("CONFIG_SECURITY_LANDLOCK=y\n"), ""))
		var me *kconfig.MissingError
		require.ErrorAs(t, only.Check(strings.NewReader("CONFIG_"+sym+"=y\n"), ""), &me)
		assert.Equal(t, "y", me.Missing[0].Got)

		// The same fragment given as CONFIG= is refused.
		_, err = Fragments(configs, x86(t), ours, []string{filepath.Join(s.Dir, "landlock-bpf.config")})
		var ce *kconfig.ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, sym, ce.First.Symbol)

		keys = append(keys, build.Key(build.Request{Tree: tree, Fragments: f}))
	}
	assert.Equal(t, keys[0], keys[1], "a second run finds the kernel the first one built")
	assert.NotEqual(t, defKey, keys[0], "the kernel without the option is a build of its own")
}

func x86(t *testing.T) machine.Machine {
	t.Helper()
	m, err := machine.ByName("x86_64")
	require.NoError(t, err)
	return m
}
