// Package vm boots a kernel and initramfs under QEMU, through
// hugelgupf/vmtest's qemu package, and collects what the guest reports: the
// result events on the second serial port, the console on the first, with a
// splat monitor and a watchdog on the console.
package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/hugelgupf/vmtest/qemu"
	"golang.org/x/term"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
)

// Accel is a QEMU accelerator.
type Accel string

// The accelerators the harness knows.
const (
	KVM Accel = "kvm"
	TCG Accel = "tcg"
)

// Slowdown is how much longer things take under acc than under KVM; every
// timeout is multiplied by it.
func (a Accel) Slowdown() int {
	if a == TCG {
		return 4
	}
	return 1
}

// Config describes one VM.
type Config struct {
	// Machine is the guest architecture: QEMU binary, board, CPU,
	// console and result port.
	Machine   machine.Machine
	Kernel    string
	Initramfs string
	Accel     Accel
	// MemoryMB is the guest's memory.
	MemoryMB int
	// CPUs is the guest's vCPU count (SMP=; 0 means 1).
	CPUs int
	// Icount, when set, runs the guest under TCG with QEMU's instruction
	// counting (see Icount).
	Icount *Icount
	// Append are extra kernel command-line arguments.
	Append []string
	// ConsoleLog is the file the console goes to.
	ConsoleLog string
	// Echo, if set, also receives every console line.
	Echo io.Writer
	// OnLine, if set, sees every console line after the monitor, from
	// the goroutine that reads the console (KUnit's KTAP is read so).
	OnLine func(string)
	// BootTimeout is how long the runner may take to say hello.
	BootTimeout time.Duration
	// Silence is how long the guest may print nothing (console or
	// results) before the watchdog ends it.
	Silence time.Duration
	// Timeout bounds the whole VM.
	Timeout time.Duration
	// GDBPort, when set, is the local TCP port of QEMU's gdb stub; QEMU
	// then starts with the CPU stopped until a debugger continues it.
	GDBPort int
}

// NoLimit is a watchdog limit that never ends the VM (a debugger may hold
// the guest stopped for as long as it likes).
const NoLimit = time.Duration(1<<63 - 1)

// Fns turns the config into hugelgupf/vmtest qemu options. Each feature
// contributes its QEMU and kernel arguments together. resultFn, if not nil,
// adds the result channel.
func (c Config) Fns(resultFn qemu.Fn) []qemu.Fn {
	return []qemu.Fn{
		qemu.WithQEMUCommand(c.Machine.QEMU),
		qemu.WithKernel(c.Kernel),
		qemu.WithInitramfs(c.Initramfs),
		board(c.Machine),
		accel(c.Machine, c.Accel, c.Icount, c.CPUs),
		memory(c.MemoryMB, c.CPUs),
		serialConsole(c.Machine.Console),
		// -no-reboot with panic=-1: a panic ends QEMU at once.
		qemu.HaltOnKernelPanic(),
		appendKernel(c.Machine.Cmdline),
		icountCmdline(c.Machine, c.Icount),
		resultFn,
		resultPortFlag(c.Machine),
		appendKernel(c.Append),
		gdbStub(c.GDBPort),
	}
}

// gdbStub is QEMU's gdb stub on a local port, the CPU stopped at reset
// (-S) until the debugger continues it.
func gdbStub(port int) qemu.Fn {
	if port <= 0 {
		return nil
	}
	return qemu.ArbitraryArgs("-gdb", fmt.Sprintf("tcp:127.0.0.1:%d", port), "-S")
}

// board chooses the machine's board (-M), if it names one.
func board(m machine.Machine) qemu.Fn {
	if len(m.Machine) == 0 {
		return nil
	}
	return qemu.ArbitraryArgs(m.Machine...)
}

// resultPortFlag tells the runner where the result channel is when it is
// not the contract's default device.
func resultPortFlag(m machine.Machine) qemu.Fn {
	if m.ResultPort == "" || m.ResultPort == contract.DefaultResultPort {
		return nil
	}
	return qemu.WithAppendKernel(contract.ResultPortFlag + "=" + m.ResultPort)
}

// icountCmdline adds the machine's kernel arguments for instruction
// counting, when it is on.
func icountCmdline(m machine.Machine, ic *Icount) qemu.Fn {
	if ic == nil {
		return nil
	}
	return appendKernel(m.IcountCmdline)
}

func appendKernel(args []string) qemu.Fn {
	if len(args) == 0 {
		return nil
	}
	return qemu.WithAppendKernel(args...)
}

// accel chooses the accelerator and the CPU model. Under TCG with more
// than one vCPU, each vCPU gets a host thread of its own (MTTCG,
// thread=multi), so that the guest's CPUs run in parallel; instruction
// counting needs the single TCG thread, which runs the vCPUs in turn.
func accel(m machine.Machine, a Accel, ic *Icount, cpus int) qemu.Fn {
	return func(_ *qemu.IDAllocator, o *qemu.Options) error {
		cpu, ok := m.CPU[string(a)]
		if !ok || !m.CanUse(string(a)) {
			return fmt.Errorf("accelerator %q cannot run the %s machine (it has: %s)", a, m.Name, strings.Join(m.Accels, ", "))
		}
		if ic != nil && a != TCG {
			return fmt.Errorf("ICOUNT=%d: QEMU counts instructions only under TCG, and this run uses %s (set ACCEL=tcg, or leave ICOUNT unset)", ic.Shift, a)
		}
		arg := string(a)
		switch {
		case a == TCG && ic != nil:
			arg += ",thread=single"
		case a == TCG && cpus > 1:
			arg += ",thread=multi"
		}
		o.AppendQEMU("-accel", arg, "-cpu", cpu)
		if ic != nil {
			o.AppendQEMU("-icount", ic.Arg())
		}
		return nil
	}
}

// Icount is QEMU's instruction counting (-icount): the guest's clock
// follows the instructions it executes, 2^Shift ns for each, instead of
// the host's clock, so that a measurement in the guest gives the same
// figure whatever else the host is doing. With sleep=off, time the guest
// spends idle passes at once. It needs TCG, and a single TCG thread.
type Icount struct {
	// Shift is log2 of the nanoseconds one instruction takes.
	Shift int
}

// MaxIcountShift is the largest shift QEMU accepts.
const MaxIcountShift = 10

// ParseIcount reads the ICOUNT knob: "" for none, or a shift 0-10.
func ParseIcount(s string) (*Icount, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxIcountShift {
		return nil, fmt.Errorf("ICOUNT=%s: want the shift of QEMU's -icount, 0 to %d (an instruction takes 2^shift ns of guest time), or nothing", s, MaxIcountShift)
	}
	return &Icount{Shift: n}, nil
}

// Arg is the value of QEMU's -icount option.
func (ic Icount) Arg() string {
	return fmt.Sprintf("shift=%d,sleep=off", ic.Shift)
}

// MaxCPUs is the most vCPUs the guest kernel takes (CONFIG_NR_CPUS in
// kernel/configs/base.config).
const MaxCPUs = 64

// DefaultCPUs is the guest's vCPUs when SMP= does not say: under KVM the
// host's CPUs, under TCG one fewer (at least 1), at most limit. A TCG
// vCPU is a host thread that runs flat out, and QEMU's main loop (the
// serial ports the console and the results go through) and the harness
// need a CPU too: on a 2-CPU host, 2 vCPUs ran the suite 1.10 times
// slower than 1, and the debug kernel's twice as slow.
func DefaultCPUs(a Accel, host, limit int) int {
	n := host
	if a == TCG {
		n--
	}
	return max(1, min(n, limit))
}

// smp is QEMU's -smp value for cpus vCPUs: each a socket of its own. With
// the default topology (QEMU 7.2 makes them cores of one socket), an
// x86_64 guest without ACPI finds only the first in SeaBIOS's MP table,
// because the CPUID of TCG's CPU model says one core per package.
func smp(cpus int) string {
	if cpus <= 1 {
		return "1"
	}
	return fmt.Sprintf("%d,sockets=%d", cpus, cpus)
}

func memory(memMB, cpus int) qemu.Fn {
	return func(_ *qemu.IDAllocator, o *qemu.Options) error {
		if memMB <= 0 {
			memMB = 512
		}
		if cpus <= 0 {
			cpus = 1
		}
		o.AppendQEMU("-m", strconv.Itoa(memMB), "-smp", smp(cpus), "-nodefaults")
		return nil
	}
}

// serialConsole puts the first serial port on QEMU's stdio (multiplexed
// with the monitor, so Ctrl-A x quits an interactive VM) and the kernel
// console (the machine's device for it) on it.
func serialConsole(dev string) qemu.Fn {
	return func(_ *qemu.IDAllocator, o *qemu.Options) error {
		o.AppendQEMU("-serial", "mon:stdio")
		o.AppendKernel("console=" + dev)
		return nil
	}
}

// resultChannel adds the result port (the machine's: a second 8250 UART
// on x86_64, a virtio console on arm64), backed by a pty whose master side
// the host reads, and returns the master. The guest runner writes
// newline-separated JSON there with hugelgupf/vmtest's guest emitter.
func resultChannel(mach machine.Machine, ptm **os.File) qemu.Fn {
	return func(alloc *qemu.IDAllocator, o *qemu.Options) error {
		m, s, err := pty.Open()
		if err != nil {
			return fmt.Errorf("result channel pty: %w", err)
		}
		if _, err := term.MakeRaw(int(s.Fd())); err != nil {
			m.Close()
			s.Close()
			return fmt.Errorf("result channel pty: %w", err)
		}
		id := alloc.ID("results")
		fd := o.AddFile(s)
		o.AppendQEMU("-chardev", fmt.Sprintf("pipe,id=%s,path=/proc/self/fd/%d", id, fd))
		o.AppendQEMU(mach.ResultArgs(id)...)
		// Once QEMU holds the slave side, close ours: then the master
		// reads EOF (EIO) when QEMU exits.
		o.Tasks = append(o.Tasks, qemu.WaitVMStarted(func(context.Context, *qemu.Notifications) error {
			return s.Close()
		}))
		*ptm = m
		return nil
	}
}

// Cmdline is the QEMU command line for c, with the result channel given
// as a placeholder file (for repro.sh and `make shell`, which read no
// results).
func (c Config) Cmdline(resultFile string) ([]string, error) {
	var fn qemu.Fn
	if resultFile != "" {
		fn = func(_ *qemu.IDAllocator, o *qemu.Options) error {
			o.AppendQEMU("-chardev", "file,id=results,path="+resultFile)
			o.AppendQEMU(c.Machine.ResultArgs("results")...)
			return nil
		}
	}
	o, err := qemu.OptionsFor(qemu.Arch(c.Machine.GOARCH), c.Fns(fn)...)
	if err != nil {
		return nil, fmt.Errorf("assembling QEMU options: %w", err)
	}
	return o.Cmdline()
}

// Outcome is what a VM run produced.
type Outcome struct {
	// Cmdline is the QEMU command line.
	Cmdline []string
	// Done is true when the runner's "done" marker arrived.
	Done bool
	// Hello is the runner's hello event, if it came.
	Hello *event.Event
	// Splats are the kernel splats on the console.
	Splats []console.Splat
	// Panicked is true when the kernel panicked.
	Panicked bool
	// Hang says why the watchdog ended the VM ("" if it did not).
	Hang string
	// QEMUError is QEMU's exit error, if any.
	QEMUError error
	// StartToFirstTest is the time from QEMU start to the first test
	// event (0 if none came).
	StartToFirstTest time.Duration
}

// Run boots the VM and sends every result event to onEvent (in order) and
// every console line to mon. It returns an *InfraError when QEMU could not
// be run or failed on its own; what the guest did is in the Outcome.
func Run(ctx context.Context, c Config, mon *console.Monitor, onEvent func(event.Event)) (*Outcome, error) {
	out := &Outcome{}
	logf, err := os.Create(c.ConsoleLog)
	if err != nil {
		return nil, &InfraError{Op: "creating console log", Err: err}
	}
	var (
		activity = make(chan struct{}, 1)
		mu       sync.Mutex
		ptm      *os.File
		start    time.Time
		hello    = make(chan struct{})
	)
	touch := func() {
		select {
		case activity <- struct{}{}:
		default:
		}
	}
	lineFn := func(line string) {
		fmt.Fprintln(logf, line)
		if c.Echo != nil {
			fmt.Fprintln(c.Echo, line)
		}
		mon.Feed(line)
		if c.OnLine != nil {
			c.OnLine(line)
		}
		touch()
	}
	fns := append(c.Fns(resultChannel(c.Machine, &ptm)),
		qemu.LogSerialByLine(lineFn),
	)
	opts, err := qemu.OptionsFor(qemu.Arch(c.Machine.GOARCH), fns...)
	if err != nil {
		logf.Close()
		return nil, &InfraError{Op: "assembling QEMU options", Err: err}
	}
	out.Cmdline, _ = opts.Cmdline()

	// Read the result channel.
	start = time.Now()
	readerDone := make(chan error, 1)
	go func() {
		defer ptm.Close()
		var helloOnce sync.Once
		err := readEvents(ptm, func(ev event.Event) {
			touch()
			mu.Lock()
			if ev.Kind == event.KindHello && out.Hello == nil {
				e := ev
				out.Hello = &e
				helloOnce.Do(func() { close(hello) })
			}
			if ev.Kind == event.KindTest && out.StartToFirstTest == 0 {
				out.StartToFirstTest = time.Since(start)
			}
			mu.Unlock()
			onEvent(ev)
		}, func() {
			mu.Lock()
			out.Done = true
			mu.Unlock()
		})
		readerDone <- err
	}()

	vm, err := opts.Start(ctx)
	if err != nil {
		ptm.Close()
		logf.Close()
		return nil, &InfraError{Op: "starting QEMU", Err: err}
	}

	// hang records why the watchdog ends the VM, and ends it.
	hang := func(why string) {
		mu.Lock()
		out.Hang = why
		mu.Unlock()
		_ = vm.Kill()
	}

	// Watchdog: boot deadline, silence, and a kernel panic.
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		boot := time.NewTimer(c.BootTimeout)
		defer boot.Stop()
		silence := time.NewTimer(c.Silence)
		defer silence.Stop()
		limit := time.NewTimer(c.Timeout)
		defer limit.Stop()
		helloCh := hello
		for {
			select {
			case <-stopWatch:
				return
			case <-activity:
				if !silence.Stop() {
					select {
					case <-silence.C:
					default:
					}
				}
				silence.Reset(c.Silence)
			case <-helloCh:
				boot.Stop()
				helloCh = nil
			case <-boot.C:
				hang(fmt.Sprintf("the guest runner did not start within %s", c.BootTimeout))
				return
			case <-silence.C:
				hang(fmt.Sprintf("the guest printed nothing for %s", c.Silence))
				return
			case <-limit.C:
				hang(fmt.Sprintf("the VM ran past its %s limit", c.Timeout))
				return
			case <-mon.Fatal():
				mu.Lock()
				out.Panicked = true
				mu.Unlock()
				// panic=-1 and -no-reboot end QEMU by themselves; give
				// the panic report a moment to reach the console, then
				// make sure.
				select {
				case <-stopWatch:
				case <-time.After(3 * time.Second):
					_ = vm.Kill()
				}
				return
			}
		}
	}()

	werr := vm.Wait()
	close(stopWatch)
	<-watchDone
	rerr := <-readerDone
	logf.Close()

	mu.Lock()
	defer mu.Unlock()
	out.Splats = mon.Splats()
	for _, s := range out.Splats {
		if s.Fatal {
			out.Panicked = true
		}
	}
	if ctx.Err() != nil && out.Hang == "" && !out.Done {
		out.Hang = fmt.Sprintf("the run was interrupted: %v", ctx.Err())
	}
	if werr != nil && out.Hang == "" && !out.Panicked && ctx.Err() == nil {
		out.QEMUError = werr
	}
	if rerr != nil && out.Done {
		return out, &InfraError{Op: "reading results", Err: rerr}
	}
	if out.QEMUError != nil {
		// Under -no-reboot a guest's reboot or panic ends QEMU with
		// status 0, and the watchdog's kill is recorded as a hang: an
		// error exit is QEMU's own failure.
		return out, &InfraError{Op: "QEMU failed", Err: fmt.Errorf("%s exited: %v (see %s)", c.Machine.QEMU, out.QEMUError, c.ConsoleLog)}
	}
	return out, nil
}

// Err is the outcome's boot failure: a *BootError when the guest runner
// never started, nil otherwise.
func (o *Outcome) Err() error {
	if o.Hello != nil {
		return nil
	}
	why := "the guest runner never started"
	if o.Hang != "" {
		why = o.Hang
	}
	return &BootError{Why: why}
}
