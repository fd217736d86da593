package pipeline

import (
	"errors"
	"fmt"
	"os"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// Key is one content key of a run, by the name cache-key prints it under.
type Key struct {
	Name, Value string
}

// Keys are the content keys under which a run of o finds its work in the
// cache, computed without building anything (landlock-vmtest cache-key):
// the source tree, the patched tree, the kernel build and the base
// initramfs, then "key", all of them in one, for a CI cache. step, when
// 0 or more, is a series-check step: the series' first step patches.
func Keys(o Options, step int) ([]Key, error) {
	if o.Coverage {
		return nil, errors.New("cache-key: COVERAGE=1 instruments the tree after patching; its keys are not printed")
	}
	c, err := cache.Default(o.CacheDir)
	if err != nil {
		return nil, err
	}
	m := o.Mach()
	var tree *source.Tree
	if o.KernelSrc != "" {
		if tree, err = source.Local(o.KernelSrc, m.SrcArch); err != nil {
			return nil, err
		}
	} else {
		k, err := source.DebianKey(c, source.DefaultTarball)
		if err != nil {
			return nil, fmt.Errorf("%w (make tools installs linux-source-6.12)", err)
		}
		tree = &source.Tree{Key: k}
	}
	s := &series.Series{}
	if o.Series != "" {
		split, err := os.MkdirTemp("", "landlock-vmtest-keys-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(split)
		if s, err = series.Open(o.Series, split); err != nil {
			return nil, err
		}
	}
	if step >= 0 {
		if step > len(s.Patches) {
			return nil, fmt.Errorf("cache-key --step %d: the series has %d patches", step, len(s.Patches))
		}
		s = s.Prefix(step)
	}
	patched, err := source.PatchedKey(tree, s)
	if err != nil {
		return nil, err
	}
	frags, err := Fragments(o.Configs, m, s, o.ExtraConfigs)
	if err != nil {
		return nil, err
	}
	kernel := build.Key(build.Request{Tree: &source.Tree{Key: patched}, Fragments: frags, Machine: m})
	base, err := initramfs.BaseKey(o.Repo, m.GOARCH, o.Shell)
	if err != nil {
		return nil, err
	}
	keys := []Key{{"source", tree.Key}, {"tree", patched}, {"build", kernel}, {"initramfs", base}}
	all := make([]string, 0, len(keys))
	for _, k := range keys {
		all = append(all, k.Name+"="+k.Value)
	}
	return append(keys, Key{"key", cache.Key(all...)}), nil
}
