package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/internal/fsutil"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/coverage"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/stage"
)

// The stages up to the built kernel. Each is a function of the run's
// options and the stage before's output, returning its own output and its
// stage.Result.

// tools installs what the run needs from the host (hosttools.For).
func (r *Run) tools() stage.Result {
	o := r.opts
	return stage.Do(r.log, "tools", func() (string, error) {
		needs := hosttools.For(hosttools.Request{Machine: o.Machine, DebianSource: o.KernelSrc == "", Coverage: o.Coverage, Kselftests: len(o.Kselftests) > 0, GDB: o.GDB, BTF: WantsBTF(o.ExtraConfigs)})
		pkgs, err := hosttools.Real().Ensure(needs, r.out)
		if err != nil {
			return "", &exitcode.StageError{Stage: "tools", Code: exitcode.Infra, Err: err}
		}
		if len(pkgs) > 0 {
			return "installed " + strings.Join(pkgs, " "), nil
		}
		return "all present", nil
	})
}

// WantsBTF reports whether one of the fragment files sets
// CONFIG_DEBUG_INFO_BTF=y (the BPF suites' profile does): the build then
// needs pahole.
func WantsBTF(fragments []string) bool {
	for _, f := range fragments {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(l) == "CONFIG_DEBUG_INFO_BTF=y" {
				return true
			}
		}
	}
	return false
}

// source finds the kernel tree to build.
func (r *Run) source() (*source.Tree, stage.Result) {
	return stage.Run(r.log, "source", func() (*source.Tree, string, error) {
		tree, err := Source(r.cache, r.opts.KernelSrc, r.opts.Machine)
		if err != nil {
			return nil, "", err
		}
		return tree, tree.Desc, nil
	})
}

// Source returns the kernel tree to build: the user's (KERNEL_SRC, which
// must have m's architecture) or Debian's linux-source, extracted into the
// cache.
func Source(c *cache.Cache, kernelSrc string, m machine.Machine) (*source.Tree, error) {
	if kernelSrc != "" {
		tree, err := source.Local(kernelSrc, m.SrcArch)
		if err != nil {
			return nil, &exitcode.StageError{Stage: "source", Code: exitcode.Usage, Err: err}
		}
		return tree, nil
	}
	return source.Debian(c, source.DefaultTarball)
}

// patchedTree is the patch stage's output.
type patchedTree struct {
	series *series.Series
	tree   *source.Tree
}

// patch applies the series (and, with COVERAGE=1, instruments the tree).
func (r *Run) patch(tree *source.Tree) (patchedTree, stage.Result) {
	o := r.opts
	return stage.Run(r.log, "patch", func() (patchedTree, string, error) {
		p := patchedTree{series: &series.Series{}}
		if o.Series != "" {
			s, err := series.Read(o.Series)
			if err != nil {
				return p, "", &exitcode.StageError{Stage: "patch", Code: exitcode.PatchFailed, Err: err}
			}
			p.series = s
		}
		t, err := source.Patched(r.cache, tree, p.series)
		if err != nil {
			return p, "", err
		}
		if o.Coverage {
			if t, err = r.instrument(p.series, t); err != nil {
				return p, "", err
			}
		}
		p.tree = t
		return p, fmt.Sprintf("%d patch(es) applied", len(p.series.Patches)), nil
	})
}

// configured is the config stage's output: the builder, holding the build
// directory's lock until unlock (through the build stage).
type configured struct {
	*build.Builder
	unlockFn func()
}

func (c *configured) unlock() {
	if c.Builder != nil {
		c.Release()
	}
	if c.unlockFn != nil {
		c.unlockFn()
		c.unlockFn = nil
	}
}

// config merges the fragments and configures the build (unless cached).
func (r *Run) config(ctx context.Context, p patchedTree) (*configured, stage.Result) {
	o := r.opts
	b := &configured{}
	st := stage.Do(r.log, "config", func() (string, error) {
		frags, err := r.fragments(p.series)
		if err != nil {
			return "", err
		}
		req := build.Request{Tree: p.tree, Fragments: frags, Jobs: o.Jobs, Log: r.out, Ctx: ctx, Machine: o.Machine}
		if o.Coverage {
			// The coverage report reads the .gcno files beside the
			// objects, in the content-keyed build directory.
			b.Builder = build.New(r.cache, req)
		} else {
			b.Builder = build.NewMirrored(r.cache, req)
		}
		if b.Cached() {
			return "cached", nil
		}
		// Two runs never build in one build directory at once: the
		// lock is held through the build stage.
		if b.unlockFn, err = b.Lock(); err != nil {
			return "", err
		}
		if b.Cached() {
			return "cached (built by another run meanwhile)", nil
		}
		if err := b.Configure(); err != nil {
			return "", err
		}
		note := fmt.Sprintf("%s + %d fragment(s), every symbol checked", build.Base, len(frags.Files))
		if m := b.Mirrored(); m != "" {
			note = fmt.Sprintf("%s + %d fragment(s); %s", build.Base, len(frags.Files), m)
		}
		return note, nil
	})
	return b, st
}

// build compiles the kernel (unless cached); a failed build's log is
// copied to OUT/build.log.
func (r *Run) build(b *configured) (*build.Result, stage.Result) {
	return stage.Run(r.log, "build", func() (*build.Result, string, error) {
		kernel, err := b.Compile()
		if err != nil {
			var be *build.Error
			if errors.As(err, &be) {
				_ = fsutil.CopyFile(be.Log, filepath.Join(r.opts.Out, "build.log"))
			}
			return nil, "", err
		}
		if kernel.Cached {
			return kernel, "cached: " + kernel.Release + ", no make run", nil
		}
		where := ""
		if b.Mirrored() != "" {
			where = " in the mirror"
		}
		return kernel, fmt.Sprintf("%s, %d make step(s)%s", kernel.Release, kernel.Steps, where), nil
	})
}

// fragments merges the config fragments of the run.
func (r *Run) fragments(s *series.Series) (*kconfig.Fragments, error) {
	extra := r.opts.ExtraConfigs
	if r.opts.Coverage {
		extra = append(append([]string(nil), extra...), filepath.Join(r.opts.Repo, coverage.Fragment))
	}
	return Fragments(r.opts.Configs, r.opts.Mach(), s, extra)
}

// Fragments merges the config fragments: those of configs
// (kernel/configs), then the machine's (kernel/configs/arch/<name>.config),
// then the series' own fragments (the *.config files beside a non-empty
// series file: the options the series adds only exist with it), then
// extra (CONFIG=).
func Fragments(configs string, m machine.Machine, s *series.Series, extra []string) (*kconfig.Fragments, error) {
	files, err := filepath.Glob(filepath.Join(configs, "*.config"))
	if err != nil || len(files) == 0 {
		return nil, &exitcode.StageError{Stage: "config", Code: exitcode.ConfigFailed, Err: fmt.Errorf("no *.config fragments in %s", configs)}
	}
	arch := filepath.Join(configs, m.Fragment)
	if _, err := os.Stat(arch); err != nil {
		return nil, &exitcode.StageError{Stage: "config", Code: exitcode.ConfigFailed, Err: fmt.Errorf("no %s in %s: the %s machine's fragment (console, result port) is needed", m.Fragment, configs, m.Name)}
	}
	files = append(files, arch)
	if len(s.Patches) > 0 {
		own, err := filepath.Glob(filepath.Join(s.Dir, "*.config"))
		if err != nil {
			return nil, fmt.Errorf("listing the series' config fragments: %w", err)
		}
		files = append(files, own...)
	}
	files = append(files, extra...)
	return kconfig.Merge(files...)
}
