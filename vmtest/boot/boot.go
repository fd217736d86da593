// Package boot boots a built kernel with the guest tests and decides the
// verdict: it is what run, shell, series-check's and bisect's steps call
// once they have a kernel. Its stages are accel (KVM probe or TCG),
// initramfs (finish the image Prepare started), boot (QEMU up to the
// runner's hello) and tests (up to the done marker or the VM's end).
package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/internal/fsutil"
	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kunit"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/symbolize"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/stage"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/vm"
)

// Default timeouts under KVM; the accelerator multiplies them
// (vm.Accel.Slowdown).
const (
	DefaultTimeout     = 60 * time.Second
	DefaultBootTimeout = 15 * time.Second
	DefaultSilence     = 45 * time.Second
)

// Request is one boot of a built kernel.
type Request struct {
	Kernel  *build.Result
	Machine machine.Machine
	Cache   *cache.Cache
	// Guest is the initramfs, being prepared (Prepare).
	Guest *Guest
	// Out is the output directory: the image, config, initramfs,
	// console log and repro bundle go there.
	Out string
	// Accel is "", "kvm" or "tcg" ("" probes).
	Accel string
	// Icount, when set, counts instructions for the guest's clock
	// (ICOUNT=); it needs TCG.
	Icount *vm.Icount
	// Timeout is the per-binary timeout, BootTimeout the time the runner
	// may take to start, Silence the console watchdog, VMTimeout the
	// whole VM; zero means the default for the accelerator.
	Timeout, BootTimeout, Silence, VMTimeout time.Duration
	// Slowdown multiplies the default timeouts for the kernel flavour
	// (the debug kernel's is debug.Slowdown); 0 means 1.
	Slowdown int
	MemoryMB int
	// CPUs is the guest's vCPU count (SMP=); 0 chooses by the
	// accelerator (vm.DefaultCPUs).
	CPUs int
	// KUnit is the glob of the KUnit suites the kernel runs as it boots
	// (KUNIT=, kunit.filter_glob); their results are read from the
	// console as package kunit.Package. "" leaves KUnit off
	// (kunit.enable=0).
	KUnit string
	// Cmdline are extra kernel arguments, after the harness's own.
	Cmdline []string
	// Shell boots into an interactive shell instead of the tests.
	Shell bool
	// GDB starts QEMU with its gdb stub on a free local port, the CPU
	// stopped until a debugger continues it, the kernel with nokaslr
	// and the VM without a watchdog; Boot prints the gdb command.
	GDB bool
	// Verbose echoes the console to Log's writer.
	Verbose bool
	// Coverage asks the runner for the GCOV counters after the tests.
	Coverage bool
	// OnEvent, when set, sees every guest event first and keeps those
	// it returns true for out of the test results (coverage counters).
	OnEvent func(event.Event) bool
	// Log prints and records the stages; Stdout is its writer.
	Log    *stage.Log
	Stdout io.Writer
}

// Result is what the boot gave.
type Result struct {
	Code   exitcode.Code
	Reason string
	// Report is the test report, nil when no VM ran.
	Report *results.Report
	Events []event.Event
	// Booted is true once the VM was started (the coverage report then
	// has something to read, or says why not).
	Booted bool
	// Accel is the accelerator used ("" if the boot never got there).
	Accel vm.Accel
	// Icount is the instruction counting the guest ran with, if any.
	Icount *vm.Icount
	// CPUs is the guest's vCPU count.
	CPUs             int
	FirstTestSeconds float64
	Splats           []results.Splat
}

// Failed ends a run at a stage's error, whichever stage it is (the
// build stages of run, or a boot's): it prints "<stage> failed: ..." to w
// and maps the error to its exit code by type (exitcode.Of).
func Failed(w io.Writer, st stage.Result) Result {
	msg := st.Err.Error()
	if se := (*exitcode.StageError)(nil); errors.As(st.Err, &se) && se.Stage == st.Name {
		// A StageError of this stage names it already.
		msg = se.Err.Error()
	}
	fmt.Fprintf(w, "\n%s failed: %s\n", st.Name, msg)
	return Result{Code: exitcode.Of(st.Err), Reason: fmt.Sprintf("%s: %s", st.Name, textutil.FirstLine(msg))}
}

// Boot copies the kernel and its config to Out, chooses the accelerator,
// finishes the initramfs and boots.
func Boot(ctx context.Context, req Request) Result {
	k := req.Kernel
	if err := fsutil.CopyFile(k.Config, filepath.Join(req.Out, "config")); err != nil {
		return Result{Code: exitcode.Infra, Reason: err.Error()}
	}
	if err := fsutil.CopyFile(k.Image, filepath.Join(req.Out, req.Machine.ImageName)); err != nil {
		return Result{Code: exitcode.Infra, Reason: err.Error()}
	}
	acc, _ := stage.Run(req.Log, "accel", func() (vm.Accel, string, error) {
		acc, why := chooseAccel(ctx, req)
		return acc, string(acc) + ": " + why, nil
	})
	if req.CPUs <= 0 {
		req.CPUs = vm.DefaultCPUs(acc, runtime.NumCPU(), req.Machine.CPULimit(vm.MaxCPUs))
	}

	initrd := filepath.Join(req.Out, "initramfs.cpio")
	img := req.Guest.ready()
	binaries, st := stage.Run(req.Log, "initramfs", func() (int, string, error) {
		note, n, err := img.finish(initrd, k.Release, scaled(req.Timeout, DefaultTimeout, acc, req.Slowdown), req.Coverage)
		return n, note, err
	})
	if st.Err != nil {
		r := Failed(req.Stdout, st)
		r.Accel = acc
		return r
	}
	cfg := vmConfig(req, initrd, acc)
	// The repro bundle is the run without the debugger: a stub port of
	// this run's and a CPU waiting for gdb would only hang it later.
	if err := vm.WriteRepro(cfg, req.Out); err != nil {
		return Result{Code: exitcode.Infra, Reason: err.Error(), Accel: acc}
	}
	if req.GDB {
		if err := debugger(&cfg, req); err != nil {
			return Result{Code: exitcode.Infra, Reason: err.Error(), Accel: acc}
		}
	}
	if req.Shell {
		if err := vm.Shell(cfg, req.Stdout); err != nil {
			return Result{Code: exitcode.Infra, Reason: err.Error(), Accel: acc}
		}
		return Result{Code: exitcode.OK, Reason: "shell ended", Accel: acc}
	}
	cfg.Timeout = req.VMTimeout
	if req.GDB {
		cfg.Timeout = vm.NoLimit
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = vmTimeout(cfg.BootTimeout, scaled(req.Timeout, DefaultTimeout, acc, req.Slowdown), binaries, img.retries())
	}
	r := run(ctx, req, cfg, img.command())
	r.Accel, r.Icount, r.CPUs, r.Booted = acc, req.Icount, req.CPUs, true
	if len(r.Splats) > 0 {
		sym, err := symbolize.ForBuild(k.Dir, k.Config, req.Machine.CrossCompile)
		if err == nil {
			r.Splats, err = DecodeSplats(ctx, sym, r.Splats)
		}
		if err != nil {
			fmt.Fprintf(req.Stdout, "splat frames not decoded to file:line: %v\n", err)
		}
	}
	return r
}

// debugger puts QEMU's gdb stub on a free local port in cfg, lifts the
// watchdog (the debugger holds the guest for as long as it likes) and
// prints how to attach.
func debugger(cfg *vm.Config, req Request) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("GDB=1: finding a free port for QEMU's gdb stub: %w", err)
	}
	cfg.GDBPort = l.Addr().(*net.TCPAddr).Port
	l.Close()
	// Symbols at the addresses vmlinux gives them; before the user's
	// arguments, which come last.
	n := len(cfg.Append) - len(req.Cmdline)
	cfg.Append = append(cfg.Append[:n:n], append([]string{"nokaslr"}, req.Cmdline...)...)
	cfg.BootTimeout, cfg.Silence = vm.NoLimit, vm.NoLimit
	fmt.Fprintf(req.Stdout, "GDB=1: QEMU waits for a debugger on 127.0.0.1:%d, the kernel booted with nokaslr; in another terminal:\n", cfg.GDBPort)
	fmt.Fprintf(req.Stdout, "  %s\n", GDBCommand(req.Machine, req.Kernel.Dir, cfg.GDBPort))
	fmt.Fprintln(req.Stdout, "then set breakpoints and continue: the guest starts when gdb continues it, and no watchdog ends it.")
	if ok, err := symbolize.HasDebugInfo(req.Kernel.Config); err == nil && !ok {
		fmt.Fprintln(req.Stdout, "This kernel has no debug info: gdb knows its symbols (break on a function, backtraces), not its lines or types; DEBUG=1 builds one with line tables, CONFIG= a fragment with CONFIG_DEBUG_INFO_DWARF5=y for types too.")
	}
	return nil
}

// GDBCommand is the gdb command that attaches to the stub on port with the
// symbols of the build in dir, and its gdb scripts when the build has them
// (CONFIG_GDB_SCRIPTS: lx-dmesg, lx-symbols, ...).
func GDBCommand(m machine.Machine, dir string, port int) string {
	gdb := hosttools.GDB(m).Command
	args := []string{gdb}
	if _, err := os.Stat(filepath.Join(dir, "vmlinux-gdb.py")); err == nil {
		args = append(args, "-iex", vm.ShellQuote("add-auto-load-safe-path "+dir))
	}
	// A build made in a mirror names the mirror's sources, which later
	// builds change: list the build's own tree instead.
	if b, err := os.ReadFile(filepath.Join(dir, build.MirrorSource)); err == nil {
		if src := strings.TrimSpace(string(b)); src != "" {
			args = append(args, "-ex", vm.ShellQuote("set substitute-path "+src+" "+filepath.Join(dir, "source")))
		}
	}
	args = append(args, "-ex", vm.ShellQuote(fmt.Sprintf("target remote 127.0.0.1:%d", port)), vm.ShellQuote(filepath.Join(dir, "vmlinux")))
	return strings.Join(args, " ")
}

// DecodeSplats returns splats, described (results.DescribeSplats), with
// their frames' source lines from sym; on error, splats as they were.
func DecodeSplats(ctx context.Context, sym *symbolize.Symbolizer, splats []results.Splat) ([]results.Splat, error) {
	ctx, cancel := context.WithTimeout(ctx, decodeTimeout)
	defer cancel()
	locs, err := sym.Decode(ctx, results.AllFrames(splats))
	if err != nil {
		return splats, err
	}
	return results.WithSources(splats, func(frame string) (results.Frame, bool) {
		l, ok := locs[frame]
		return results.Frame{Frame: l.Frame, Function: l.Function, Source: l.Source, InlinedBy: l.InlinedBy}, ok
	}), nil
}

// decodeTimeout bounds faddr2line's run over a run's splats: it took
// about 4 minutes for the 70 or so frames of the debugsplats fixture's
// reports against the debug vmlinux, here (2 cores).
const decodeTimeout = 15 * time.Minute

// vmTimeout is the whole VM's limit when VM_TIMEOUT does not set it: the
// boot, then for each binary its timeout and 30 s, once for its run and
// once more for each of the retries RETRY= allows a failed test.
func vmTimeout(boot, perBinary time.Duration, binaries, retries int) time.Duration {
	return boot + (perBinary+30*time.Second)*time.Duration(binaries*(1+retries))
}

// run is the boot and tests stages: the VM, its events and the verdict.
func run(ctx context.Context, req Request, cfg vm.Config, command bool) Result {
	col := results.NewCollector()
	mon := console.New(col.Running)
	var ktap *console.KUnit
	if req.KUnit != "" && !req.Shell {
		ktap = console.NewKUnit(kunit.Package, req.KUnit, time.Now(), col.Add)
		cfg.OnLine = ktap.Feed
	}
	// boot ends when the runner says hello (printed as it happens);
	// tests end with the VM.
	var (
		mu        sync.Mutex
		endTests  func(error, string) stage.Result
		bootEnded bool
		// leaks are the memory leaks the guest's kmemleak reported
		// after the tests: splats like the console's.
		leaks []console.Splat
	)
	endBoot := req.Log.Begin("boot")
	outcome, err := vm.Run(ctx, cfg, mon, func(ev event.Event) {
		if req.OnEvent != nil && req.OnEvent(ev) {
			return
		}
		if ev.Kind == event.KindHello {
			mu.Lock()
			if !bootEnded {
				bootEnded = true
				endBoot(nil, fmt.Sprintf("guest runner up on %s, %s", ev.Info["release"], cpusNote(ev.Info["cpus"], cfg.CPUs)))
				endTests = req.Log.Begin("tests")
			}
			mu.Unlock()
		}
		if ev.Kind == event.KindKmemleak {
			mu.Lock()
			leaks = append(leaks, console.Leaks(ev.Text, "after the test binaries "+ev.Info["binaries"])...)
			mu.Unlock()
		}
		col.Add(ev)
	})
	mu.Lock()
	defer mu.Unlock()
	if ktap != nil {
		ktap.End(outcome != nil && outcome.Hello != nil)
	}
	if err != nil {
		// vm.Run fails only with a *vm.InfraError: the host's fault,
		// whatever the guest did. What it reported still counts.
		se := &exitcode.StageError{Stage: "boot", Code: exitcode.Infra, Err: err}
		st := stage.Result{Name: "boot", Err: se}
		switch {
		case !bootEnded:
			st = endBoot(se, "")
		case endTests != nil:
			endTests(se, "")
		}
		res := Failed(req.Stdout, st)
		if outcome != nil && outcome.Hello != nil {
			keep(&res, col, outcome)
		}
		return res
	}
	outcome.Splats = append(outcome.Splats, leaks...)
	if bootErr := outcome.Err(); bootErr != nil && !bootEnded {
		endBoot(bootErr, "the guest runner never started")
	}
	var res Result
	report := keep(&res, col, outcome)
	res.Code, res.Reason = Verdict(Seen{
		Done:     outcome.Done,
		Hello:    outcome.Hello != nil,
		Panicked: outcome.Panicked,
		Hang:     outcome.Hang,
		Splats:   outcome.Splats,
		Command:  command,
	}, report)
	if endTests != nil {
		var err error
		if res.Code != exitcode.OK {
			err = errors.New(res.Reason)
		}
		endTests(err, fmt.Sprintf("first test event %.1fs after QEMU started", outcome.StartToFirstTest.Seconds()))
	}
	return res
}

// keep puts what the guest reported (the test report, the events, the
// splats) into res.
func keep(res *Result, col *results.Collector, outcome *vm.Outcome) results.Report {
	col.Finish(outcome.Done)
	report := col.Report()
	res.Report, res.Events, res.FirstTestSeconds = &report, col.Events(), outcome.StartToFirstTest.Seconds()
	res.Splats = results.FromConsole(outcome.Splats)
	return report
}

// chooseAccel is the accelerator: forced by ACCEL, or probed.
func chooseAccel(ctx context.Context, req Request) (vm.Accel, string) {
	switch {
	case req.Accel == "kvm":
		return vm.KVM, "forced by ACCEL=kvm"
	case req.Accel == "tcg":
		return vm.TCG, "forced by ACCEL=tcg"
	case req.Icount != nil:
		return vm.TCG, fmt.Sprintf("ICOUNT=%d counts instructions, which only TCG does (no KVM probe)", req.Icount.Shift)
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	qv, _ := exec.Command(req.Machine.QEMU, "--version").Output()
	p := vm.Probe{
		Machine:   req.Machine,
		Kernel:    req.Kernel.Image,
		Timeout:   4 * time.Second,
		CacheFile: req.Cache.Path("probe", cache.Key(req.Kernel.Key, string(qv), string(bootID))),
	}
	return p.Run(ctx)
}

// scaled is v, or when v is unset the default def scaled by the
// accelerator's slowdown and the kernel flavour's (flavour, 0 for 1).
func scaled(v, def time.Duration, a vm.Accel, flavour int) time.Duration {
	if v > 0 {
		return v
	}
	return def * time.Duration(a.Slowdown()*max(flavour, 1))
}

// The guest's memory when MEM= does not say: DefaultMemoryMB, or more when
// the initramfs needs it. The kernel unpacks the archive into its rootfs
// with the archive still in memory, so both must fit beside the kernel
// and what the tests use: twice the archive and kernelReserveMB.
const (
	DefaultMemoryMB = 512
	kernelReserveMB = 256
)

// perCPUMB is how much more memory the guest gets for each vCPU past the
// first, up to memoryCPUs of them: each runs a test binary of its own
// (SMP=). Past memoryCPUs, a suite has seldom more binaries to run at
// once, and a big host's CPUs must not ask QEMU for its memory.
const (
	perCPUMB   = 256
	memoryCPUs = 8
)

// memoryFor is mem, or when it is 0 the memory the initramfs at initrd
// needs with cpus binaries side by side (DefaultMemoryMB at least, and
// perCPUMB more for each CPU past the first), in steps of 128 MiB.
func memoryFor(mem int, initrd string, cpus int) int {
	if mem > 0 {
		return mem
	}
	extra := perCPUMB * (min(max(cpus, 1), memoryCPUs) - 1)
	st, err := os.Stat(initrd)
	if err != nil {
		return DefaultMemoryMB + extra
	}
	need := int(2*st.Size()>>20) + kernelReserveMB + extra
	if need <= DefaultMemoryMB+extra {
		return DefaultMemoryMB + extra
	}
	return (need + 127) / 128 * 128
}

// VMConfig is the VM of req with initramfs initrd under acc.
func vmConfig(req Request, initrd string, acc vm.Accel) vm.Config {
	cfg := vm.Config{
		Machine:     req.Machine,
		Kernel:      filepath.Join(req.Out, req.Machine.ImageName),
		Initramfs:   initrd,
		Accel:       acc,
		Icount:      req.Icount,
		MemoryMB:    memoryFor(req.MemoryMB, initrd, req.CPUs),
		CPUs:        req.CPUs,
		ConsoleLog:  filepath.Join(req.Out, "console.log"),
		BootTimeout: scaled(req.BootTimeout, DefaultBootTimeout, acc, req.Slowdown),
		Silence:     scaled(req.Silence, DefaultSilence, acc, req.Slowdown),
	}
	if req.Shell {
		cfg.Append = append(cfg.Append, contract.ShellFlag)
	}
	cfg.Append = append(cfg.Append, kunit.Cmdline(req.KUnit)...)
	// The user's arguments last: for most parameters, lsm= among them,
	// the kernel keeps the last value it is given.
	cfg.Append = append(cfg.Append, req.Cmdline...)
	if req.Verbose {
		cfg.Echo = req.Stdout
	}
	return cfg
}

// Finish records res in md (with the stages log kept), writes
// results.json and junit.xml in out and prints the end of the run to w;
// more, if set, adds to the summary (the coverage). A failure to write
// the results makes the run an infrastructure failure. It returns the
// result as finished and the report (an empty complete one when nothing
// booted).
func Finish(w io.Writer, out string, md results.Metadata, log *stage.Log, res Result, more func(io.Writer)) (Result, results.Report) {
	report := results.Report{Complete: true} // nothing booted: no stream was expected
	if res.Report != nil {
		report = *res.Report
	}
	md.Stages = log.Stages()
	md.Accelerator = string(res.Accel)
	if res.Icount != nil {
		md.IcountShift = &res.Icount.Shift
	}
	md.CPUs = res.CPUs
	md.FirstTestSeconds = res.FirstTestSeconds
	md.Splats = res.Splats
	md.ExitCode, md.ExitReason = int(res.Code), res.Reason
	if err := results.WriteFiles(out, md, report, res.Events); err != nil {
		fmt.Fprintf(w, "writing results: %v\n", err)
		res.Code, res.Reason = exitcode.Infra, err.Error()
		md.ExitCode, md.ExitReason = int(res.Code), res.Reason
	}
	results.PrintEnd(w, md, report, out, more)
	return res, report
}

// cpusNote says how many CPUs the guest runner found (its hello's "cpus"),
// and whether that is fewer than the vCPUs QEMU was given: a kernel
// without SMP, or one that did not find them, runs the suite on fewer.
func cpusNote(got string, want int) string {
	n, err := strconv.Atoi(got)
	switch {
	case err != nil:
		return "CPUs unknown"
	case n < want:
		return fmt.Sprintf("%d CPU(s) of the %d vCPUs QEMU has: the guest kernel did not bring up the others (CONFIG_SMP? CONFIG_NR_CPUS?)", n, want)
	case n == 1:
		return "1 CPU"
	}
	return fmt.Sprintf("%d CPUs", n)
}
