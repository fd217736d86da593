// Package pipeline runs landlock-vmtest's stages in order (tools, source,
// patch, config, build, initramfs, boot, tests), times each, writes the
// results and decides the exit code.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/coverage"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/kselftest"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/vm"
)

// Options are the knobs of a run (the Makefile's variables).
type Options struct {
	// Repo is this repository's root.
	Repo string
	// KernelSrc is the user's kernel tree; "" means Debian's linux-source.
	KernelSrc string
	// Series is the series file ("" means none).
	Series string
	// Configs is the directory of config fragments.
	Configs string
	// ExtraConfigs are more fragment files merged after Configs.
	ExtraConfigs []string
	// Tests are the test packages (patterns, import paths, directories).
	Tests []string
	// Run is a -test.run regexp passed to every Go test binary.
	Run string
	// Count, when above 1, runs every Go test that many times
	// (-test.count), to shake out a flaky one.
	Count int
	// Kselftests are directories of the tree's tools/testing/selftests
	// to build and run in the guest (package kselftest); none when empty.
	Kselftests []string
	// Out is the output directory.
	Out string
	// CacheDir overrides the cache root.
	CacheDir string
	// Accel is "", "kvm" or "tcg" ("" probes).
	Accel string
	// Timeout is the per-binary timeout, BootTimeout the time the runner
	// may take to start, Silence the console watchdog, VMTimeout the
	// whole VM. Zero means the default for the accelerator.
	Timeout, BootTimeout, Silence, VMTimeout time.Duration
	// Jobs is make -j.
	Jobs int
	// MemoryMB is the guest memory.
	MemoryMB int
	// Verbose echoes the guest console.
	Verbose bool
	// Shell boots into an interactive shell instead of running tests.
	Shell bool
	// Cmdline are extra kernel command-line arguments (CMDLINE), appended
	// after the harness's own, so that the user's value of a parameter
	// the kernel takes the last of (lsm=, say) wins. Every boot of a run
	// gets them: the tests, make shell, and each step of series-check and
	// bisect; the repro bundle records them. The accelerator probe, which
	// only boots to the root-fs panic, does not.
	Cmdline []string
	// Coverage builds the kernel with GCOV for the code the series
	// touches and writes a coverage report in Out/coverage.
	Coverage bool
	// Stdout receives the stage lines and the summary.
	Stdout io.Writer
	// Kernel, when set, is a kernel built by the caller (series-check,
	// bisect): the tools, source, patch, config and build stages are
	// skipped and this kernel is booted. Tree is its source tree, which
	// the kselftests are built from.
	Kernel *build.Result
	Tree   *source.Tree
}

// Default timeouts under KVM; TCG multiplies them (vm.Accel.Slowdown).
const (
	defaultTimeout     = 60 * time.Second
	defaultBootTimeout = 15 * time.Second
	defaultSilence     = 45 * time.Second
)

// Run is one run of the pipeline.
type Run struct {
	acc      vm.Accel
	binaries int
	// events are the guest's events, once the VM ran.
	events []event.Event
	opts   Options
	out    io.Writer
	cache  *cache.Cache
	stages []results.Stage
	md     results.Metadata
	report results.Report
	reason string
	// cov is the coverage run (COVERAGE=1), nil otherwise.
	cov *covRun
}

// Report is the test report of the run, once Execute returned.
func (r *Run) Report() results.Report { return r.report }

// Reason says why the run ended as it did, once Execute returned.
func (r *Run) Reason() string { return r.reason }

// Accel is the accelerator the run used ("" if it never got that far).
func (r *Run) Accel() vm.Accel { return r.acc }

// New prepares a run.
func New(opts Options) *Run {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	return &Run{opts: opts, out: opts.Stdout}
}

// begin prints that a stage starts and returns the function that ends it:
// it records the stage and prints its status and time.
func (r *Run) begin(name string) func(ok bool, note string) {
	fmt.Fprintf(r.out, "==> %s\n", name)
	start := time.Now()
	return func(ok bool, note string) {
		took := time.Since(start)
		st := results.Stage{Name: name, Seconds: took.Seconds(), Status: "ok"}
		if !ok {
			st.Status = "fail"
		}
		r.stages = append(r.stages, st)
		line := fmt.Sprintf("<== %s: %s (%.1fs)", name, st.Status, took.Seconds())
		if note != "" {
			line += " " + note
		}
		fmt.Fprintln(r.out, line)
	}
}

// stage runs fn as a named stage, printing its start and its time.
func (r *Run) stage(name string, fn func() (string, error)) error {
	end := r.begin(name)
	note, err := fn()
	end(err == nil, note)
	return err
}

// Execute runs every stage and returns the exit code. It always ends its
// output with the closing line "N passed, N failed, N skipped".
func (r *Run) Execute(ctx context.Context) exitcode.Code {
	code, reason, report := r.execute(ctx)
	if r.opts.Shell {
		return code
	}
	if report == nil {
		// Nothing booted: no result stream was expected.
		report = &results.Report{Complete: true}
	}
	// The results are written once, whichever stage the run ended in.
	if err := r.writeResults(code, reason, *report); err != nil {
		fmt.Fprintf(r.out, "writing results: %v\n", err)
		code, reason = exitcode.Infra, err.Error()
	}
	var sum bytes.Buffer
	_ = results.WriteSummary(&sum, *report)
	body, last := splitLast(sum.String())
	fmt.Fprint(r.out, body)
	for _, s := range r.md.Splats {
		fmt.Fprintf(r.out, "\nkernel splat (%s) while running %q:\n%s\n", s.Kind, s.Test, indent(s.Text))
	}
	r.printCoverage()
	fmt.Fprintf(r.out, "\nresult: %s (exit %d): %s\nresults in %s\n", code, int(code), reason, r.opts.Out)
	fmt.Fprintln(r.out, last)
	r.report, r.reason = *report, reason
	return code
}

func splitLast(s string) (string, string) {
	s = strings.TrimRight(s, "\n")
	i := strings.LastIndexByte(s, '\n')
	if i < 0 {
		return "", s
	}
	return s[:i+1], s[i+1:]
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

func (r *Run) fail(stage string, err error) (exitcode.Code, string, *results.Report) {
	code := Classify(stage, err)
	msg := err.Error()
	// A exitcode.StageError of this stage names it already.
	if se := (*exitcode.StageError)(nil); errors.As(err, &se) && se.Stage == stage {
		msg = se.Err.Error()
	}
	fmt.Fprintf(r.out, "\n%s failed: %s\n", stage, msg)
	return code, fmt.Sprintf("%s: %s", stage, firstLine(msg)), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func (r *Run) execute(ctx context.Context) (exitcode.Code, string, *results.Report) {
	o := r.opts
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return exitcode.Infra, fmt.Sprintf("creating %s: %v", o.Out, err), nil
	}
	c, err := cache.Default(o.CacheDir)
	if err != nil {
		return exitcode.Infra, err.Error(), nil
	}
	r.cache = c
	if o.Kernel != nil {
		return r.bootBuilt(ctx, o.Kernel)
	}

	// tools
	if err := r.stage("tools", func() (string, error) {
		needs := hosttools.Needs(o.KernelSrc == "")
		if o.Coverage {
			needs = append(needs, hosttools.CoverageNeeds()...)
		}
		if len(o.Kselftests) > 0 {
			needs = append(needs, kselftest.Needs()...)
		}
		pkgs, err := hosttools.Real().Ensure(needs, r.out)
		if err != nil {
			return "", &exitcode.StageError{Stage: "tools", Code: exitcode.Infra, Err: err}
		}
		if len(pkgs) > 0 {
			return "installed " + strings.Join(pkgs, " "), nil
		}
		return "all present", nil
	}); err != nil {
		return r.fail("tools", err)
	}

	// source
	var tree *source.Tree
	if err := r.stage("source", func() (string, error) {
		var err error
		if tree, err = Source(c, o.KernelSrc); err != nil {
			return "", err
		}
		return tree.Desc, nil
	}); err != nil {
		return r.fail("source", err)
	}

	// patch
	s := &series.Series{}
	if err := r.stage("patch", func() (string, error) {
		if o.Series != "" {
			var err error
			s, err = series.Read(o.Series)
			if err != nil {
				return "", &exitcode.StageError{Stage: "patch", Code: exitcode.PatchFailed, Err: err}
			}
		}
		t, err := source.Patched(c, tree, s)
		if err != nil {
			return "", err
		}
		tree = t
		if o.Coverage {
			if tree, err = r.instrument(s, tree); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d patch(es) applied", len(s.Patches)), nil
	}); err != nil {
		return r.fail("patch", err)
	}
	r.md.Series = s.Names()

	// The initramfs does not depend on the kernel: prepare it meanwhile.
	prepCh := r.prepareInitramfs(ctx, tree)
	var (
		prepOnce sync.Once
		prep     prepared
	)
	waitPrep := func() prepared {
		prepOnce.Do(func() { prep = <-prepCh })
		return prep
	}
	defer func() {
		if p := waitPrep(); p.work != "" {
			os.RemoveAll(p.work)
		}
	}()

	// config
	var (
		b           *build.Builder
		unlockBuild = func() {}
	)
	defer func() { unlockBuild() }()
	if err := r.stage("config", func() (string, error) {
		frags, err := r.fragments(s)
		if err != nil {
			return "", err
		}
		b = build.New(c, build.Request{Tree: tree, Fragments: frags, Jobs: o.Jobs, Log: r.out, Ctx: ctx})
		if b.Cached() {
			return "cached", nil
		}
		// Two runs never build in one build directory at once: the
		// lock is held through the build stage.
		if unlockBuild, err = b.Lock(); err != nil {
			return "", err
		}
		if b.Cached() {
			return "cached (built by another run meanwhile)", nil
		}
		return fmt.Sprintf("%s + %d fragment(s), every symbol checked", build.Base, len(frags.Files)), b.Configure()
	}); err != nil {
		return r.fail("config", err)
	}

	// build
	var kernel *build.Result
	if err := r.stage("build", func() (string, error) {
		var err error
		kernel, err = b.Compile()
		if err != nil {
			var be *build.Error
			if errors.As(err, &be) {
				_ = copyFile(be.Log, filepath.Join(o.Out, "build.log"))
			}
			return "", err
		}
		if kernel.Cached {
			return "cached: " + kernel.Release + ", no make run", nil
		}
		return kernel.Release, nil
	}); err != nil {
		return r.fail("build", err)
	}
	unlockBuild()
	unlockBuild = func() {}
	return r.bootKernel(ctx, kernel, waitPrep)
}

// bootBuilt boots a kernel the caller built: only the initramfs is
// prepared here.
func (r *Run) bootBuilt(ctx context.Context, kernel *build.Result) (exitcode.Code, string, *results.Report) {
	prepCh := r.prepareInitramfs(ctx, r.opts.Tree)
	p := <-prepCh
	defer func() {
		if p.work != "" {
			os.RemoveAll(p.work)
		}
	}()
	return r.bootKernel(ctx, kernel, func() prepared { return p })
}

// bootKernel copies the kernel and its config to OUT, chooses the
// accelerator, finishes the initramfs and boots.
func (r *Run) bootKernel(ctx context.Context, kernel *build.Result, waitPrep func() prepared) (exitcode.Code, string, *results.Report) {
	o := r.opts
	r.md.KernelRelease = kernel.Release
	r.md.ConfigHash = kernel.ConfigHash
	if err := copyFile(kernel.Config, filepath.Join(o.Out, "config")); err != nil {
		return exitcode.Infra, err.Error(), nil
	}
	if err := copyFile(kernel.Image, filepath.Join(o.Out, "bzImage")); err != nil {
		return exitcode.Infra, err.Error(), nil
	}

	_ = r.stage("accel", func() (string, error) {
		var why string
		r.acc, why = r.accel(ctx, kernel)
		return string(r.acc) + ": " + why, nil
	})
	r.md.Accelerator = string(r.acc)

	// initramfs
	initrd := filepath.Join(o.Out, "initramfs.cpio")
	p := waitPrep()
	if err := r.stage("initramfs", func() (string, error) {
		return r.initramfs(p, initrd, kernel.Release)
	}); err != nil {
		return r.fail("initramfs", err)
	}

	code, reason, report := r.boot(ctx, kernel, initrd)
	code, reason = r.coverageReport(ctx, kernel, code, reason)
	return code, reason, report
}

// Source returns the kernel tree to build: the user's (KERNEL_SRC) or
// Debian's linux-source, extracted into the cache.
func Source(c *cache.Cache, kernelSrc string) (*source.Tree, error) {
	if kernelSrc != "" {
		tree, err := source.Local(kernelSrc)
		if err != nil {
			return nil, &exitcode.StageError{Stage: "source", Code: exitcode.Usage, Err: err}
		}
		return tree, nil
	}
	return source.Debian(c, source.DefaultTarball)
}

// fragments merges the config fragments of the run.
func (r *Run) fragments(s *series.Series) (*kconfig.Fragments, error) {
	extra := r.opts.ExtraConfigs
	if r.opts.Coverage {
		extra = append(append([]string(nil), extra...), filepath.Join(r.opts.Repo, coverage.Fragment))
	}
	return Fragments(r.opts.Configs, s, extra)
}

// Fragments merges the config fragments: those of configs
// (kernel/configs), then the series' own fragments (the *.config files
// beside a non-empty series file: the options the series adds only exist
// with it), then extra (CONFIG=).
func Fragments(configs string, s *series.Series, extra []string) (*kconfig.Fragments, error) {
	files, err := filepath.Glob(filepath.Join(configs, "*.config"))
	if err != nil || len(files) == 0 {
		return nil, &exitcode.StageError{Stage: "config", Code: exitcode.ConfigFailed, Err: fmt.Errorf("no *.config fragments in %s", configs)}
	}
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

// prepared is the part of the initramfs that does not depend on the
// kernel: the base image and the compiled test binaries.
type prepared struct {
	base     string
	built    bool
	manifest *contract.Manifest
	files    map[string]string
	work     string
	took     time.Duration
	err      error
}

// prepareInitramfs builds the base image and the test binaries in the
// background, alongside the kernel build, which rarely keeps both CPUs
// busy (configuration, linking, compression).
func (r *Run) prepareInitramfs(ctx context.Context, tree *source.Tree) <-chan prepared {
	ch := make(chan prepared, 1)
	go func() {
		start := time.Now()
		p := r.prepare(ctx, tree)
		p.took = time.Since(start)
		ch <- p
	}()
	return ch
}

func (r *Run) prepare(ctx context.Context, tree *source.Tree) prepared {
	o := r.opts
	var p prepared
	p.base, p.built, p.err = initramfs.Base(r.cache, o.Repo, o.Shell)
	if p.err != nil {
		p.err = &exitcode.StageError{Stage: "initramfs", Code: exitcode.Infra, Err: p.err}
		return p
	}
	pkgs, err := initramfs.ListTestPackages(o.Repo, o.Tests)
	if err != nil {
		p.err = &exitcode.StageError{Stage: "initramfs", Code: exitcode.TestsFailed, Err: err}
		return p
	}
	p.work, err = os.MkdirTemp("", "landlock-vmtest-tests-")
	if err != nil {
		p.err = &exitcode.StageError{Stage: "initramfs", Code: exitcode.Infra, Err: err}
		return p
	}
	var args []string
	if o.Run != "" {
		args = append(args, "-test.run="+o.Run)
	}
	if o.Count > 1 {
		args = append(args, "-test.count="+strconv.Itoa(o.Count))
	}
	p.manifest, p.files, err = initramfs.Tests(p.work, pkgs, contract.Manifest{Args: args, Run: o.Run})
	if err != nil {
		p.err = &exitcode.StageError{Stage: "initramfs", Code: exitcode.TestsFailed, Err: err}
		return p
	}
	if len(o.Kselftests) > 0 {
		if tree == nil {
			p.err = &exitcode.StageError{Stage: "initramfs", Code: exitcode.Infra, Err: errors.New("kselftests: no source tree to build them from")}
			return p
		}
		ks, err := kselftest.Build(ctx, r.cache, kselftest.Request{Tree: tree.Dir, TreeKey: tree.Key, Dirs: o.Kselftests, Jobs: o.Jobs})
		if err == nil {
			err = ks.Add(p.manifest, p.files)
		}
		var missing *kselftest.MissingDirError
		switch {
		case errors.As(err, &missing):
			p.err = &exitcode.StageError{Stage: "initramfs", Code: exitcode.Usage, Err: err}
		case err != nil:
			p.err = &exitcode.StageError{Stage: "initramfs", Code: exitcode.TestsFailed, Err: err}
		}
	}
	return p
}

// initramfs finishes the initramfs: the manifest (whose timeout depends on
// the accelerator, and whose environment names the kernel) and the test
// layer, appended to the base image.
func (r *Run) initramfs(p prepared, initrd, release string) (string, error) {
	if p.err != nil {
		return "", p.err
	}
	m := p.manifest
	m.Timeout = contract.Duration(scaled(r.opts.Timeout, defaultTimeout, r.acc))
	m.Env = map[string]string{contract.ReleaseEnv: release}
	m.Coverage = r.opts.Coverage
	layer := filepath.Join(p.work, "tests.cpio")
	if err := initramfs.WriteTests(layer, m, p.files); err != nil {
		return "", &exitcode.StageError{Stage: "initramfs", Code: exitcode.Infra, Err: err}
	}
	if err := initramfs.Concat(initrd, p.base, layer); err != nil {
		return "", &exitcode.StageError{Stage: "initramfs", Code: exitcode.Infra, Err: err}
	}
	how := "base cached"
	if p.built {
		how = "base built"
	}
	r.binaries = len(m.Binaries)
	return fmt.Sprintf("%s, %d test binaries (Go and kselftest); prepared alongside the kernel in %.1fs", how, len(m.Binaries), p.took.Seconds()), nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copying %s: %w", from, err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	return out.Close()
}

// accel chooses the accelerator: forced by ACCEL, or probed.
func (r *Run) accel(ctx context.Context, kernel *build.Result) (vm.Accel, string) {
	switch r.opts.Accel {
	case "kvm":
		return vm.KVM, "forced by ACCEL=kvm"
	case "tcg":
		return vm.TCG, "forced by ACCEL=tcg"
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	qv, _ := exec.Command("qemu-system-x86_64", "--version").Output()
	p := vm.Probe{
		QEMU:      "qemu-system-x86_64",
		Kernel:    kernel.Image,
		Timeout:   4 * time.Second,
		CacheFile: r.cache.Path("probe", cache.Key(kernel.Key, string(qv), string(bootID))),
	}
	return p.Run(ctx)
}

func scaled(v, def time.Duration, a vm.Accel) time.Duration {
	if v > 0 {
		return v
	}
	return def * time.Duration(a.Slowdown())
}

func (r *Run) vmConfig(kernel *build.Result, initrd string, acc vm.Accel) vm.Config {
	o := r.opts
	cfg := vm.Config{
		QEMU:        "qemu-system-x86_64",
		Kernel:      filepath.Join(o.Out, "bzImage"),
		Initramfs:   initrd,
		Accel:       acc,
		MemoryMB:    o.MemoryMB,
		ConsoleLog:  filepath.Join(o.Out, "console.log"),
		BootTimeout: scaled(o.BootTimeout, defaultBootTimeout, acc),
		Silence:     scaled(o.Silence, defaultSilence, acc),
	}
	if o.Shell {
		cfg.Append = append(cfg.Append, "landlock_vmtest.shell")
	}
	// The user's arguments last: for most parameters, lsm= among them,
	// the kernel keeps the last value it is given.
	cfg.Append = append(cfg.Append, o.Cmdline...)
	if o.Verbose {
		cfg.Echo = r.out
	}
	return cfg
}

func (r *Run) boot(ctx context.Context, kernel *build.Result, initrd string) (exitcode.Code, string, *results.Report) {
	o := r.opts
	acc := r.acc
	cfg := r.vmConfig(kernel, initrd, acc)
	if err := r.writeRepro(cfg); err != nil {
		return exitcode.Infra, err.Error(), nil
	}
	if o.Shell {
		return r.shell(cfg)
	}
	cfg.Timeout = o.VMTimeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = cfg.BootTimeout + (scaled(o.Timeout, defaultTimeout, acc)+30*time.Second)*time.Duration(r.binaries)
	}

	col := results.NewCollector()
	mon := console.New(col.Running)
	// boot ends when the runner says hello (printed as it happens);
	// tests end with the VM.
	var (
		mu        sync.Mutex
		endTests  func(bool, string)
		bootEnded bool
	)
	endBoot := r.begin("boot")
	outcome, err := vm.Run(ctx, cfg, mon, func(ev event.Event) {
		if r.takeCoverage(ev) {
			return
		}
		if ev.Kind == event.KindHello {
			mu.Lock()
			if !bootEnded {
				bootEnded = true
				endBoot(true, "guest runner up on "+ev.Info["release"])
				endTests = r.begin("tests")
			}
			mu.Unlock()
		}
		col.Add(ev)
	})
	mu.Lock()
	defer mu.Unlock()
	if err == nil && outcome.QEMUFailedToStart(cfg.ConsoleLog) {
		err = fmt.Errorf("QEMU failed: %v (see %s)", outcome.QEMUError, cfg.ConsoleLog)
	}
	if err != nil {
		if !bootEnded {
			endBoot(false, "")
		}
		return r.fail("boot", &exitcode.StageError{Stage: "boot", Code: exitcode.Infra, Err: err})
	}
	if !bootEnded {
		endBoot(false, "the guest runner never started")
	}
	r.md.FirstTestSeconds = outcome.StartToFirstTest.Seconds()

	col.Finish(outcome.Done)
	report := col.Report()
	for _, s := range outcome.Splats {
		r.md.Splats = append(r.md.Splats, results.Splat{Kind: string(s.Kind), Test: s.Test, Text: s.Text})
	}
	code, reason := Verdict(Guest{
		Done:     outcome.Done,
		Hello:    outcome.Hello != nil,
		Panicked: outcome.Panicked,
		Hang:     outcome.Hang,
		Splats:   outcome.Splats,
	}, report)
	if endTests != nil {
		endTests(code == exitcode.OK, fmt.Sprintf("first test event %.1fs after QEMU started", outcome.StartToFirstTest.Seconds()))
	}
	r.events = col.Events()
	return code, reason, &report
}

// writeResults writes results.json and junit.xml in OUT.
func (r *Run) writeResults(code exitcode.Code, reason string, report results.Report) error {
	r.md.Stages = r.stages
	r.md.ExitCode, r.md.ExitReason = int(code), reason
	events := r.events
	var js, ju bytes.Buffer
	if err := results.WriteJSON(&js, r.md, report, events); err != nil {
		return err
	}
	if err := results.WriteJUnit(&ju, report); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.opts.Out, "results.json"), js.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing results.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(r.opts.Out, "junit.xml"), ju.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing junit.xml: %w", err)
	}
	return nil
}

// writeRepro writes repro.sh, which boots the same VM again from the
// files in the output directory.
func (r *Run) writeRepro(cfg vm.Config) error {
	out, err := filepath.Abs(r.opts.Out)
	if err != nil {
		return err
	}
	cfg.Kernel = filepath.Join(out, "bzImage")
	cfg.Initramfs = filepath.Join(out, filepath.Base(cfg.Initramfs))
	args, err := cfg.Cmdline(filepath.Join(out, "repro-results.jsonl"))
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Boots the VM of this run again. The console is on stdio (Ctrl-A x quits);\n# the guest's result events go to repro-results.jsonl.\n")
	b.WriteString("# Add landlock_vmtest.shell to -append for a shell instead of the tests.\nexec")
	for _, a := range args {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	if err := os.WriteFile(filepath.Join(out, "repro.sh"), []byte(b.String()), 0o755); err != nil {
		return fmt.Errorf("writing repro.sh: %w", err)
	}
	// The bundle also names the exact QEMU command and the kernel
	// command line on their own, for bug reports.
	quoted := make([]string, len(args))
	cmdline := ""
	for i, a := range args {
		quoted[i] = shellQuote(a)
		if i > 0 && args[i-1] == "-append" {
			cmdline = a
		}
	}
	if err := os.WriteFile(filepath.Join(out, "qemu-command"), []byte(strings.Join(quoted, " ")+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing qemu-command: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "kernel-cmdline"), []byte(cmdline+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing kernel-cmdline: %w", err)
	}
	return nil
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c == '-' || c == '_' || c == '.' || c == '/' || c == ':' || c == '=' || c == ',' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shell boots the VM with the terminal attached.
func (r *Run) shell(cfg vm.Config) (exitcode.Code, string, *results.Report) {
	args, err := cfg.Cmdline(os.DevNull)
	if err != nil {
		return exitcode.Infra, err.Error(), nil
	}
	fmt.Fprintf(r.out, "booting a shell (Ctrl-A x quits QEMU)\n%s\n", strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return exitcode.Infra, fmt.Sprintf("QEMU: %v", err), nil
	}
	return exitcode.OK, "shell ended", nil
}
