// Package pipeline is `landlock-vmtest run` and `shell`: the stages from
// the host tools to the built kernel (stages.go), then package boot's,
// then the coverage report, chained by Execute, and the results written
// once at the end, whichever stage the run ended in.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/debug"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/boot"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/stage"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/vm"
)

// Options are the knobs of a run (the Makefile's variables).
type Options struct {
	// Repo is this repository's root.
	Repo string
	// Machine is the guest architecture (ARCH=; the zero value is
	// machine.Default).
	Machine machine.Machine
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
	// Run is a -test.run regexp passed to every Go test binary (and the
	// choice of kselftests by name).
	Run string
	// Count, when above 1, runs every Go test that many times
	// (-test.count), to shake out a flaky one.
	Count int
	// Retry, when above 0, runs each top-level Go test that failed again,
	// alone, up to that many times in the same boot (RETRY=); one that
	// then passes is reported flaky, not failed.
	Retry int
	// Kselftests are directories of the tree's tools/testing/selftests
	// to build and run in the guest (package kselftest); none when empty.
	Kselftests []string
	// Out is the output directory.
	Out string
	// CacheDir overrides the cache root.
	CacheDir string
	// Accel is "", "kvm" or "tcg" ("" probes).
	Accel string
	// Icount, when set, runs the guest with QEMU's instruction counting
	// (ICOUNT=): its clock then follows the instructions it executes, so
	// that timings in the guest repeat. It needs TCG.
	Icount *vm.Icount
	// Timeout is the per-binary timeout, BootTimeout the time the runner
	// may take to start, Silence the console watchdog, VMTimeout the
	// whole VM. Zero means the default for the accelerator.
	Timeout, BootTimeout, Silence, VMTimeout time.Duration
	// Jobs is make -j.
	Jobs int
	// MemoryMB is the guest memory.
	MemoryMB int
	// CPUs is the guest's vCPU count (SMP=; 0 chooses by the
	// accelerator, vm.DefaultCPUs); the guest runner runs that many test
	// binaries side by side.
	CPUs int
	// Verbose echoes the guest console.
	Verbose bool
	// Shell boots into an interactive shell instead of running tests.
	Shell bool
	// GDB (GDB=1) starts QEMU with its gdb stub, the CPU stopped until a
	// debugger continues it, the kernel with nokaslr and no watchdog on
	// the VM; the run prints the gdb command.
	GDB bool
	// KUnit is the glob of KUnit suites the kernel runs at boot (KUNIT=;
	// kunit.Default when unset, "" for none: kunit.enable=0, the same
	// kernel).
	KUnit string
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
	// Debug builds and boots the debug flavour (DEBUG=1): the caller
	// adds debug.Fragment to ExtraConfigs, so that every command that
	// builds (run, series-check, bisect) gets it; Debug itself scales the
	// default timeouts by debug.Slowdown and names the flavour in
	// results.json.
	Debug bool
	// Exec, when set, is the one command the guest runs instead of the
	// tests (landlock-vmtest exec).
	Exec *initramfs.Pack `json:"-"`
	// OnEvent, when set, sees every guest event as it arrives, before
	// the results; those it returns true for stay out of them (exec's
	// output).
	OnEvent func(event.Event) bool `json:"-"`
	// Stdout receives the stage lines and the summary.
	Stdout io.Writer `json:"-"`
}

// Slowdown is how many times the kernel flavour multiplies the default
// timeouts (debug.Slowdown with Debug, otherwise 1).
func (o Options) Slowdown() int {
	if o.Debug {
		return debug.Slowdown
	}
	return 1
}

// Flavour names the kernel flavour: "debug" or "" for the normal one.
func (o Options) Flavour() string {
	if o.Debug {
		return "debug"
	}
	return ""
}

// Mach is the run's machine, machine.Default when none is set.
func (o Options) Mach() machine.Machine { return machine.OrDefault(o.Machine) }

// Result is what a run ended with.
type Result struct {
	Code   exitcode.Code
	Reason string
	Report results.Report
	// Accel is the accelerator the run used ("" if it never got that
	// far).
	Accel vm.Accel
}

// Run is one run of the pipeline: its options and what its stages
// leave for the next.
type Run struct {
	opts  Options
	out   io.Writer
	log   *stage.Log
	cache *cache.Cache
	md    results.Metadata
	// cov is the coverage run (COVERAGE=1), nil otherwise.
	cov *covRun
}

// New prepares a run.
func New(opts Options) *Run {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	opts.Machine = opts.Mach()
	return &Run{opts: opts, out: opts.Stdout, log: stage.NewLog(opts.Stdout), md: results.Metadata{Machine: opts.Machine.Name, Flavour: opts.Flavour()}}
}

// Execute runs every stage and returns how the run ended. It always ends
// its output with the closing line "N passed, N failed, N skipped".
func (r *Run) Execute(ctx context.Context) Result {
	res := r.execute(ctx)
	if r.opts.Shell {
		return Result{Code: res.Code, Reason: res.Reason, Accel: res.Accel}
	}
	res, report := boot.Finish(r.out, r.opts.Out, r.md, r.log, res, r.printCoverage)
	return Result{Code: res.Code, Reason: res.Reason, Report: report, Accel: res.Accel}
}

// execute chains the stages; the first that fails ends the run.
func (r *Run) execute(ctx context.Context) boot.Result {
	o := r.opts
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return boot.Result{Code: exitcode.Infra, Reason: fmt.Sprintf("creating %s: %v", o.Out, err)}
	}
	c, err := cache.Default(o.CacheDir)
	if err != nil {
		return boot.Result{Code: exitcode.Infra, Reason: err.Error()}
	}
	r.cache = c

	if st := r.tools(); st.Err != nil {
		return boot.Failed(r.out, st)
	}
	tree, st := r.source()
	if st.Err != nil {
		return boot.Failed(r.out, st)
	}
	patched, st := r.patch(tree)
	if st.Err != nil {
		return boot.Failed(r.out, st)
	}
	r.md.Series = patched.series.Names()

	// The initramfs does not depend on the kernel: prepare it meanwhile.
	guest := boot.Prepare(ctx, GuestRequest(r.opts, r.cache, patched.tree))
	defer guest.Close()

	b, st := r.config(ctx, patched)
	defer b.unlock()
	if st.Err != nil {
		return boot.Failed(r.out, st)
	}
	kernel, st := r.build(b)
	if st.Err != nil {
		return boot.Failed(r.out, st)
	}
	b.unlock()
	r.md.KernelRelease = kernel.Release
	r.md.ConfigHash = kernel.ConfigHash

	res := boot.Boot(ctx, r.bootRequest(kernel, guest))
	if res.Booted {
		res.Code, res.Reason = r.coverageReport(ctx, kernel, res.Code, res.Reason)
	}
	return res
}

// GuestRequest is the initramfs of o's knobs, the kselftests built from
// tree (nil when there are none), as run and the steps of series-check and
// bisect prepare it.
func GuestRequest(o Options, c *cache.Cache, tree *source.Tree) boot.GuestRequest {
	return boot.GuestRequest{
		Repo: o.Repo, Cache: c, Machine: o.Mach(),
		Tests: o.Tests, Run: o.Run, Count: o.Count, Retry: o.Retry,
		Kselftests: o.Kselftests, Tree: tree, Jobs: o.Jobs, Shell: o.Shell,
		Flavour: o.Flavour(), Exec: o.Exec,
	}
}

// bootRequest is the boot of kernel with this run's knobs.
func (r *Run) bootRequest(kernel *build.Result, guest *boot.Guest) boot.Request {
	o := r.opts
	req := BootRequest(o, r.cache, kernel, guest, r.log)
	req.OnEvent = func(ev event.Event) bool {
		if o.OnEvent != nil && o.OnEvent(ev) {
			return true
		}
		return r.takeCoverage(ev)
	}
	req.Coverage = o.Coverage
	return req
}

// BootRequest is the boot of kernel with o's knobs, the way run, shell,
// and the steps of series-check and bisect boot.
func BootRequest(o Options, c *cache.Cache, kernel *build.Result, guest *boot.Guest, log *stage.Log) boot.Request {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	mem := o.MemoryMB
	if mem == 0 && o.Debug {
		mem = debug.MemoryMB
	}
	return boot.Request{
		Kernel: kernel, Machine: o.Mach(), Cache: c, Guest: guest, Out: o.Out,
		Accel: o.Accel, Icount: o.Icount, Timeout: o.Timeout, BootTimeout: o.BootTimeout, Silence: o.Silence, VMTimeout: o.VMTimeout,
		Slowdown: o.Slowdown(), MemoryMB: mem, CPUs: o.CPUs, KUnit: o.KUnit, Cmdline: o.Cmdline, Shell: o.Shell, GDB: o.GDB, Verbose: o.Verbose,
		Log: log, Stdout: o.Stdout,
	}
}
