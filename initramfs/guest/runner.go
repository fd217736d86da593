// Package guest is the guest runner's logic. Init (init.go) is the whole
// run, as u-root's init starts it: it reads the kernel command line, opens
// the result channel, runs the manifest's test binaries, sends the "done"
// marker and reboots. It reaches the operating system only through a
// System (system.go; the real one is in system_linux.go), so that it runs
// on the host in tests with a fake one.
//
// Runner runs the test binaries of a manifest, as many side by side as the
// manifest's Jobs (by default, as the guest has CPUs), each with a
// per-binary timeout, all on one execution path (execute): the
// converter for the binary's kind turns what it prints into result events,
// test2json for Go test binaries (test2json.go), package ktap for
// kselftests (tap.go). With the manifest's Retry, the top-level Go tests
// that failed run again, each by itself (-test.run=^Name$), until they
// pass (retry.go).
package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// killGrace is how long after its own -test.timeout a binary is killed:
// Go's timeout panic (with every goroutine's stack) comes first.
const killGrace = 10 * time.Second

// drainGrace is how long the converter may take to read the end of the
// output after the binary ended and its process group was killed.
const drainGrace = 5 * time.Second

// Runner runs test binaries and emits events.
type Runner struct {
	// Test2JSON is the path of the test2json program.
	Test2JSON string
	// Emit sends one event to the host.
	Emit func(event.Event) error
	// Log receives one progress line per binary (the console).
	Log io.Writer
	// KselftestRoot, when set, is the directory kselftest binaries are
	// chrooted into: a tmpfs with bind mounts of /'s directories, so that
	// their root is not the initramfs's rootfs, which pivot_root(2)
	// refuses (rootfs has no parent mount). Their paths are the same
	// inside.
	KselftestRoot string
	// Started, when set, is called with each binary's PID as soon as it
	// started.
	Started func(pid int)
}

// Run runs every binary of m, in order, up to m.Jobs at once (0: as many
// as the guest has CPUs). A binary the manifest marks Alone, and exec's
// command, starts once every binary before it has ended, and the next
// starts once it ended. Every event names its binary, so that the host
// keeps each binary's events together. Run returns an error only when it
// could not emit; a binary that fails or crashes is a result, not an
// error.
func (r *Runner) Run(ctx context.Context, m *contract.Manifest) error {
	jobs := m.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	if jobs == 1 {
		for _, b := range m.Binaries {
			if err := r.runOne(ctx, m, b); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	}
	// The binaries' goroutines share the channel and the console.
	shared := *r
	shared.Emit = serialized(r.Emit)
	if r.Log != nil {
		shared.Log = &lockedWriter{w: r.Log}
	}
	return shared.runSideBySide(ctx, m, jobs)
}

// runSideBySide is Run with up to jobs binaries at once. When a binary
// could not emit (the channel broke), no binary starts after it; those
// running go on to their end as they would one after another (their own
// emits say whether the channel is gone), and Run returns the first error.
func (r *Runner) runSideBySide(ctx context.Context, m *contract.Manifest, jobs int) error {
	// stop ends the starting of binaries, not the running ones: those
	// run under ctx.
	stop, halt := context.WithCancelCause(ctx)
	defer halt(nil)
	slots := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, b := range m.Binaries {
		if b.Alone || b.Kind == contract.KindExec {
			wg.Wait()
			if stop.Err() != nil {
				break
			}
			r.logf("landlock-vmtest: %s runs alone", b.Package)
			if err := r.runOne(ctx, m, b); err != nil {
				halt(err)
			}
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-stop.Done():
		}
		if stop.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			if err := r.runOne(ctx, m, b); err != nil {
				// The channel broke: start no more.
				halt(err)
			}
		}()
	}
	wg.Wait()
	if stop.Err() != nil {
		return context.Cause(stop)
	}
	return nil
}

// serialized is emit made safe to call from several goroutines: one event
// at a time, whole.
func serialized(emit func(event.Event) error) func(event.Event) error {
	var mu sync.Mutex
	return func(ev event.Event) error {
		mu.Lock()
		defer mu.Unlock()
		return emit(ev)
	}
}

// lockedWriter is a writer that several goroutines share, one write at a
// time (the console's progress lines stay whole).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, format+"\n", args...)
	}
}

func (r *Runner) runOne(ctx context.Context, m *contract.Manifest, b contract.Binary) error {
	timeout := time.Duration(m.Timeout)
	var tapArgs []string
	if b.Kind == contract.KindKselftest && m.Run != "" && b.Harness {
		args, err := r.selectTAP(ctx, m, b)
		if err != nil {
			// Run it whole, and say why: a listing that cannot be read
			// must not hide the binary's results.
			r.logf("landlock-vmtest: %s: choosing tests by RUN: %v; running all of them", b.Package, err)
		} else if len(args) == 0 {
			r.logf("landlock-vmtest: %s: no test matches RUN=%s; not run", b.Package, m.Run)
			return nil
		}
		tapArgs = args
	}
	r.logf("landlock-vmtest: running %s (timeout %s)", b.Package, timeout)
	if err := r.Emit(event.Event{Kind: event.KindBinaryStart, Time: time.Now(), Binary: b.Package}); err != nil {
		return err
	}
	start := time.Now()
	exit := event.Exit{Code: -1}
	var (
		j   job
		err error
	)
	if b.Dir != "" {
		err = os.MkdirAll(b.Dir, 0o755)
	}
	if err != nil {
		// The initramfs has only the directories of its files: a
		// package with no testdata/ of its own, run at its place in
		// its module, has none there.
		err = fmt.Errorf("making the binary's directory: %w", err)
	} else {
		j, err = r.job(m, b, tapArgs)
	}
	if err == nil {
		exit, err = r.execute(ctx, m, b, j)
	}
	if err != nil {
		r.logf("landlock-vmtest: %s: %v", b.Package, err)
		if eerr := r.Emit(event.Event{Kind: event.KindError, Time: time.Now(), Binary: b.Package, Error: err.Error()}); eerr != nil {
			return eerr
		}
	}
	exit.Seconds = time.Since(start).Seconds()
	r.logf("landlock-vmtest: %s ended: %s", b.Package, describe(exit))
	if eerr := r.Emit(event.Event{Kind: event.KindBinaryEnd, Time: time.Now(), Binary: b.Package, Exit: &exit}); eerr != nil {
		return eerr
	}
	if err != nil {
		return nil
	}
	if b.Kind == contract.KindExec {
		return r.sendFiles(b, b.Collect)
	}
	return r.retry(ctx, m, b, j.tally, exit)
}

func describe(e event.Exit) string {
	switch {
	case e.TimedOut:
		return fmt.Sprintf("timed out after %.1fs", e.Seconds)
	case e.Signal != "":
		return fmt.Sprintf("killed by signal %s after %.1fs", e.Signal, e.Seconds)
	default:
		return fmt.Sprintf("exit status %d after %.1fs", e.Code, e.Seconds)
	}
}

// A job is how one test binary runs: what execute needs beyond the binary
// and the manifest. Runner.job makes it by the binary's kind.
type job struct {
	// args are the binary's arguments.
	args []string
	// root, when set, is the directory the binary is chrooted into.
	root string
	// limit is how long the binary may run before the runner kills its
	// process group.
	limit time.Duration
	// what names the binary in the error when it cannot start.
	what string
	// conv turns the binary's output into test events.
	conv converter
	// tally, for a Go test binary, counts its tests' results as conv
	// forwards them (RETRY= reruns the failed ones).
	tally *tally
}

// A converter turns the output of one kind of test binary into test
// events. execute calls start before it starts the binary, drain once the
// binary ended (or never started) and its process group was killed, and
// finish if the binary ran.
type converter interface {
	// start begins reading the binary's output (stdout and stderr
	// together) from out, the read end of a pipe, which is the
	// converter's from then on, even when start fails.
	start(out *os.File) error
	// drain waits for the end of the output, at most grace (a leftover
	// that left the process group may still hold the pipe), then stops
	// reading.
	drain(grace time.Duration)
	// finish ends the conversion and returns its first problem; it may
	// amend how the binary ended.
	finish(exit *event.Exit) error
}

// job chooses how binary b runs by its kind: a Go test binary under
// test2json with -test.timeout and m's Args, killed killGrace after its
// own timeout; a kselftest binary with tapArgs (none: all its tests), in
// the kselftest root, its TAP output converted by package ktap, killed at
// the timeout.
func (r *Runner) job(m *contract.Manifest, b contract.Binary, tapArgs []string) (job, error) {
	timeout := time.Duration(m.Timeout)
	switch b.Kind {
	case contract.KindGoTest:
		return r.goJob(m, b, m.Args, &tally{}), nil
	case contract.KindExec:
		return r.execJob(m, b)
	case contract.KindKselftest:
		return job{
			args:  tapArgs,
			root:  r.KselftestRoot,
			limit: timeout,
			what:  "kselftest binary",
			conv:  &tapConverter{r: r, pkg: b.Package},
		}, nil
	}
	return job{}, fmt.Errorf("unknown kind of test binary %q", b.Kind)
}

// goJob is how Go test binary b runs with args (the manifest's, or a
// rerun's): under test2json with -test.timeout, killed killGrace after
// it, its tests' results counted in t.
func (r *Runner) goJob(m *contract.Manifest, b contract.Binary, args []string, t *tally) job {
	timeout := time.Duration(m.Timeout)
	return job{
		args:  append([]string{"-test.v=test2json", "-test.timeout=" + timeout.String()}, args...),
		limit: timeout + killGrace,
		what:  "test binary",
		conv:  &test2jsonConverter{r: r, pkg: b.Package, tally: t},
		tally: t,
	}
}

// execute runs binary b as j says, its output (stdout and stderr on one
// pipe) read by j's converter, and says how it ended. The binary and its
// process group are killed when it runs past j.limit, and whatever it
// left running in the group when it ends.
func (r *Runner) execute(ctx context.Context, m *contract.Manifest, b contract.Binary, j job) (event.Exit, error) {
	exit := event.Exit{Code: -1}
	ctx, cancel := context.WithTimeout(ctx, j.limit)
	defer cancel()

	cmd := command(ctx, m, b, j.root, j.args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		return exit, fmt.Errorf("creating pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := j.conv.start(pr); err != nil {
		pw.Close()
		return exit, err
	}
	if s, ok := j.conv.(splitter); ok {
		epr, epw, err := os.Pipe()
		if err != nil {
			pw.Close()
			j.conv.drain(0)
			return exit, fmt.Errorf("creating pipe: %w", err)
		}
		defer epw.Close()
		cmd.Stderr = epw
		if err := s.startStderr(epr); err != nil {
			pw.Close()
			j.conv.drain(0)
			return exit, err
		}
	}

	startErr := cmd.Start()
	pw.Close()
	if w, ok := cmd.Stderr.(*os.File); ok && w != pw {
		// Only the binary holds the write ends now.
		w.Close()
	}
	if startErr == nil && r.Started != nil {
		r.Started(cmd.Process.Pid)
	}
	if startErr == nil {
		// The exit status is described by exit below.
		_ = cmd.Wait()
		// Whatever the binary left running in its process group would
		// keep the pipe open: end it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	j.conv.drain(drainGrace)
	if startErr != nil {
		return exit, fmt.Errorf("starting %s: %w", j.what, startErr)
	}

	exit.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	exit.Code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Signal = ws.Signal().String()
	}
	return exit, j.conv.finish(&exit)
}

// command is the command that runs binary b with args: in its directory,
// with the guest marker and m's environment, chrooted into root when it is
// set, in a process group of its own (so that the timeout kills whatever
// it forks too) that a cancelled ctx kills.
func command(ctx context.Context, m *contract.Manifest, b contract.Binary, root string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.Path, args...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), contract.GuestEnv+"=1")
	for k, v := range m.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Chroot: root}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}
