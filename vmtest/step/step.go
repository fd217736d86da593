// Package step builds and tests one state of a kernel tree, for the tools
// that walk a series or a history (series-check, bisect): the tree as a
// prefix of a series leaves it, built incrementally in a worktree, then
// booted with the guest tests through the pipeline.
package step

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/boot"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/stage"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/worktree"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

// Env is what every step shares: the knobs, the cache, the base tree, the
// series and the worktree.
type Env struct {
	// Opts are the run's knobs; each step gets its own Out.
	Opts   pipeline.Options
	Cache  *cache.Cache
	Base   *source.Tree
	Series *series.Series
	WT     *worktree.Worktree
	// Log receives progress lines.
	Log io.Writer
	// Src and BuildDir are the tree to build and its build directory:
	// the worktree's, or a git checkout's (NewGit).
	Src, BuildDir string
	// Applied counts the series' patches applied to Src (git mode).
	Applied int
	// accel is the accelerator the first boot chose; later steps reuse
	// it instead of probing again.
	accel string
	last  *build.Builder
}

// NewGit prepares steps on a git checkout at src built in buildDir,
// with the series (if any) applied on top by the caller.
func NewGit(opts pipeline.Options, c *cache.Cache, s *series.Series, src, buildDir string, log io.Writer) *Env {
	return &Env{Opts: opts, Cache: c, Series: s, Src: src, BuildDir: buildDir, Log: log, accel: opts.Accel,
		Base: &source.Tree{Dir: src, Key: "git:" + src, Desc: "git checkout " + src}}
}

func (e *Env) applied() int {
	if e.WT != nil {
		return e.WT.Applied()
	}
	return e.Applied
}

func (e *Env) tree() *source.Tree {
	if e.WT != nil {
		return e.WT.Tree()
	}
	// A git checkout is built as it stands: it is its own base.
	return e.Base
}

// Setup installs the host tools, finds the base tree, opens the series
// (mbox files are split into splitDir) and takes the worktree named
// worktreeName. Errors are *exitcode.StageError with their exit code.
func Setup(opts pipeline.Options, seriesPath, splitDir, worktreeName string, log io.Writer) (*Env, error) {
	needs := hosttools.For(hosttools.Request{Machine: opts.Mach(), DebianSource: opts.KernelSrc == "", Kselftests: len(opts.Kselftests) > 0, BTF: pipeline.WantsBTF(opts.ExtraConfigs)})
	if _, err := hosttools.Real().Ensure(needs, log); err != nil {
		return nil, &exitcode.StageError{Stage: "tools", Code: exitcode.Infra, Err: err}
	}
	c, err := cache.Default(opts.CacheDir)
	if err != nil {
		return nil, &exitcode.StageError{Stage: "cache", Code: exitcode.Infra, Err: err}
	}
	base, err := pipeline.Source(c, opts.KernelSrc, opts.Mach())
	if err != nil {
		return nil, &exitcode.StageError{Stage: "source", Code: exitcode.Of(err), Err: err}
	}
	s := &series.Series{}
	if seriesPath != "" {
		if s, err = series.Open(seriesPath, splitDir); err != nil {
			return nil, &exitcode.StageError{Stage: "series", Code: exitcode.Usage, Err: err}
		}
	}
	wt, err := worktree.Open(c, base, worktreeName)
	if err != nil {
		return nil, &exitcode.StageError{Stage: "worktree", Code: exitcode.Infra, Err: err}
	}
	return &Env{Opts: opts, Cache: c, Base: base, Series: s, WT: wt, Src: wt.Src, BuildDir: wt.Build, Log: log, accel: opts.Accel}, nil
}

// Close releases the worktree.
func (e *Env) Close() {
	if e.WT != nil {
		e.WT.Close()
	}
}

// Fragments are the config fragments for the tree with n patches of the
// series applied: none of the series' own fragments for the base tree,
// and without the symbols of the series' fragments and of CONFIG= that no
// Kconfig file of this state defines yet (a later patch or commit adds
// them). dropped names those.
func (e *Env) Fragments(n int) (f *kconfig.Fragments, dropped []string, err error) {
	all, err := pipeline.Fragments(e.Opts.Configs, e.Opts.Mach(), e.Series.Prefix(n), e.Opts.ExtraConfigs)
	if err != nil {
		return nil, nil, err
	}
	own := map[string]bool{}
	files := append([]string(nil), e.Opts.ExtraConfigs...)
	if n > 0 && len(e.Series.Patches) > 0 {
		fs, _ := filepath.Glob(filepath.Join(e.Series.Dir, "*.config"))
		files = append(files, fs...)
	}
	if len(files) == 0 {
		return all, nil, nil
	}
	for _, file := range files {
		settings, err := kconfig.ParseFile(file)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range settings {
			own[s.Symbol] = true
		}
	}
	f = all.Without(func(s kconfig.Setting) bool {
		if own[s.Symbol] && !kconfig.Defined(e.Src, s.Symbol) {
			dropped = append(dropped, "CONFIG_"+s.Symbol)
			return true
		}
		return false
	})
	return f, dropped, nil
}

// Build configures and builds the worktree as it is, incrementally in its
// build directory; the build log is copied to logPath either way.
func (e *Env) Build(ctx context.Context, logPath string) (*build.Result, error) {
	frags, dropped, err := e.Fragments(e.applied())
	if err != nil {
		return nil, err
	}
	if len(dropped) > 0 {
		fmt.Fprintf(e.Log, "  config: %s left out: no Kconfig file of this tree defines it yet\n", strings.Join(dropped, " "))
	}
	if err := os.MkdirAll(e.BuildDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating build directory: %w", err)
	}
	b := build.NewIn(e.Cache, build.Request{Tree: e.tree(), Fragments: frags, Jobs: e.Opts.Jobs, Log: e.Log, Ctx: ctx, Machine: e.Opts.Mach()}, e.BuildDir)
	e.last = b
	if err := b.Configure(); err != nil {
		copyLog(filepath.Join(e.BuildDir, "config.log"), logPath)
		return nil, err
	}
	res, err := b.Compile()
	copyLog(filepath.Join(e.BuildDir, "build.log"), logPath)
	return res, err
}

func copyLog(from, to string) {
	if data, err := os.ReadFile(from); err == nil {
		_ = os.WriteFile(to, data, 0o644)
	}
}

// Objects returns the C files among files whose objects the last build
// made (a file the config does not build has no object).
func (e *Env) Objects(files []string) []string {
	var out []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".c") {
			continue
		}
		if _, err := os.Stat(filepath.Join(e.BuildDir, strings.TrimSuffix(f, ".c")+".o")); err == nil {
			out = append(out, f)
		}
	}
	return out
}

// Warnings recompiles the C files with W=1 and returns their warnings.
func (e *Env) Warnings(files []string, logPath string) ([]build.Warning, error) {
	if len(files) == 0 || e.last == nil {
		return nil, nil
	}
	objs := targets(files)
	if err := e.last.Make(logPath, []string{"W=1"}, objs...); err != nil {
		return nil, fmt.Errorf("make W=1 %s: %w", strings.Join(objs, " "), err)
	}
	return build.Warnings(logPath, e.Src, e.BuildDir)
}

// SparseVars are make's variables for sparse on the named objects: C=2
// checks them even when they are up to date (C=1 only checks what it
// recompiles); -fdiagnostic-prefix marks sparse's lines ("sparse:
// warning:") apart from the compiler's. W=1 is the W=1 count's, run
// just before: the objects are up to date and only sparse runs.
var SparseVars = []string{"W=1", "C=2", "CHECK=sparse", "CF=-fdiagnostic-prefix"}

// Sparse runs sparse on the C files (make SparseVars) and returns its
// warnings and errors. Run it after Warnings on the same files.
func (e *Env) Sparse(files []string, logPath string) ([]build.Warning, error) {
	if len(files) == 0 || e.last == nil {
		return nil, nil
	}
	objs := targets(files)
	if err := e.last.Make(logPath, SparseVars, objs...); err != nil {
		return nil, fmt.Errorf("make %s %s: %w", strings.Join(SparseVars, " "), strings.Join(objs, " "), err)
	}
	return build.Sparse(logPath, e.Src, e.BuildDir)
}

// targets are the objects of C files.
func targets(files []string) []string {
	objs := make([]string, len(files))
	for i, f := range files {
		objs[i] = strings.TrimSuffix(f, ".c") + ".o"
	}
	return objs
}

// Outcome is what booting a step's kernel gave.
type Outcome struct {
	Code   exitcode.Code
	Reason string
	Report results.Report
	// Splats are the kernel's reports, described (title, fingerprint).
	Splats []results.Splat
}

// Test boots kernel with the guest tests (boot.Boot, as run does),
// writing the step's results to out and the boot's lines to out/run.log.
// run, when set, replaces the -test.run regexp.
func (e *Env) Test(ctx context.Context, kernel *build.Result, out, run string) Outcome {
	opts := e.Opts
	var tree *source.Tree
	if len(opts.Kselftests) > 0 {
		key, err := uapiKey(e.Src, opts.Mach())
		if err != nil {
			return Outcome{Code: exitcode.Infra, Reason: err.Error()}
		}
		tree = &source.Tree{Dir: e.Src, Key: key, Desc: e.tree().Desc}
	}
	opts.Out = out
	opts.Accel = e.accel
	if run != "" {
		opts.Run = run
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return Outcome{Code: exitcode.Infra, Reason: err.Error()}
	}
	log, err := os.Create(filepath.Join(out, "run.log"))
	if err != nil {
		return Outcome{Code: exitcode.Infra, Reason: err.Error()}
	}
	defer log.Close()
	opts.Stdout = log
	guest := boot.Prepare(ctx, pipeline.GuestRequest(opts, e.Cache, tree))
	defer guest.Close()
	stages := stage.NewLog(log)
	res := boot.Boot(ctx, pipeline.BootRequest(opts, e.Cache, kernel, guest, stages))
	md := results.Metadata{Machine: opts.Mach().Name, KernelRelease: kernel.Release, ConfigHash: kernel.ConfigHash, Series: e.Series.Prefix(e.applied()).Names()}
	res, report := boot.Finish(log, out, md, stages, res, nil)
	if e.accel == "" && res.Accel != "" {
		e.accel = string(res.Accel)
	}
	return Outcome{Code: res.Code, Reason: res.Reason, Report: report, Splats: results.DescribeSplats(res.Splats)}
}

// Statuses maps "package test" to the test's status, for comparing steps.
func Statuses(r results.Report) map[string]results.Status {
	m := map[string]results.Status{}
	for _, p := range r.Packages {
		for _, t := range p.Tests {
			m[p.Name+" "+t.Name] = t.Status
		}
	}
	return m
}

// uapiKey identifies what the kselftests are built against: the UAPI
// headers of the tree (they install them with make headers and include
// nothing else of it), so that a prefix that leaves the headers alone
// reuses the selftests of the step before.
func uapiKey(src string, m machine.Machine) (string, error) {
	parts := []string{"uapi-v1"}
	if m.Name != machine.Default {
		parts = append(parts, m.Name)
	}
	for _, dir := range []string{"include/uapi", m.UAPIDir, "scripts/headers_install.sh", "scripts/unifdef.c"} {
		err := filepath.WalkDir(filepath.Join(src, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			sum, err := cache.FileSHA256(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			parts = append(parts, rel, sum)
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("hashing the UAPI headers: %w", err)
		}
	}
	return cache.Key(parts...), nil
}
