// Package guest is the guest runner's logic: it runs the test binaries
// listed in a manifest one after another, each under test2json and with a
// per-binary timeout, and turns what they print into result events. The
// operating-system side (mounts, the result channel, power-off) stays in
// the runner's main package, so this package runs on the host in tests.
package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// killGrace is how long after its own -test.timeout a binary is killed:
// Go's timeout panic (with every goroutine's stack) comes first.
const killGrace = 10 * time.Second

// drainGrace is how long test2json may take to finish after the binary
// ended and its process group was killed.
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
}

// Run runs every binary of m in order. It returns an error only when it
// could not emit; a binary that fails or crashes is a result, not an error.
func (r *Runner) Run(ctx context.Context, m *contract.Manifest) error {
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
	var (
		exit event.Exit
		err  error
	)
	switch b.Kind {
	case contract.KindGoTest:
		exit, err = r.execute(ctx, m, b, timeout)
	case contract.KindKselftest:
		exit, err = r.executeTAP(ctx, m, b, timeout, tapArgs...)
	default:
		exit, err = event.Exit{Code: -1}, fmt.Errorf("unknown kind of test binary %q", b.Kind)
	}
	if err != nil {
		r.logf("landlock-vmtest: %s: %v", b.Package, err)
		if eerr := r.Emit(event.Event{Kind: event.KindError, Time: time.Now(), Binary: b.Package, Error: err.Error()}); eerr != nil {
			return eerr
		}
	}
	exit.Seconds = time.Since(start).Seconds()
	r.logf("landlock-vmtest: %s ended: %s", b.Package, describe(exit))
	return r.Emit(event.Event{Kind: event.KindBinaryEnd, Time: time.Now(), Binary: b.Package, Exit: &exit})
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

// execute runs the binary with its output piped through test2json.
func (r *Runner) execute(ctx context.Context, m *contract.Manifest, b contract.Binary, timeout time.Duration) (event.Exit, error) {
	exit := event.Exit{Code: -1}
	ctx, cancel := context.WithTimeout(ctx, timeout+killGrace)
	defer cancel()

	args := append([]string{"-test.v=test2json", "-test.timeout=" + timeout.String()}, m.Args...)
	cmd := exec.CommandContext(ctx, b.Path, args...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), contract.GuestEnv+"=1")
	for k, v := range m.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// The binary and whatever it forks get their own process group, so the
	// timeout kills them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

	pr, pw, err := os.Pipe()
	if err != nil {
		return exit, fmt.Errorf("creating pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw

	conv := exec.Command(r.Test2JSON, "-t", "-p", b.Package)
	conv.Stdin = pr
	convOut, err := conv.StdoutPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return exit, fmt.Errorf("test2json pipe: %w", err)
	}
	conv.Stderr = r.Log
	if err := conv.Start(); err != nil {
		pr.Close()
		pw.Close()
		return exit, fmt.Errorf("starting test2json: %w", err)
	}
	pr.Close()

	var (
		wg       sync.WaitGroup
		emitErr  error
		timedOut bool
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		timedOut, emitErr = r.forward(convOut, b.Package)
	}()

	startErr := cmd.Start()
	pw.Close()
	if startErr == nil {
		// The exit status is described by exit below.
		_ = cmd.Wait()
		// Whatever the binary left running in its process group would
		// keep test2json's input open: end it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A leftover that left the process group may still hold the pipe:
	// give test2json a moment to drain, then stop it.
	drained := make(chan struct{})
	go func() {
		wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(drainGrace):
		_ = conv.Process.Kill()
		<-drained
	}
	convErr := conv.Wait()

	if startErr != nil {
		return exit, fmt.Errorf("starting test binary: %w", startErr)
	}
	exit.TimedOut = timedOut || errors.Is(ctx.Err(), context.DeadlineExceeded)
	exit.Code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Signal = ws.Signal().String()
	}
	if emitErr != nil {
		return exit, emitErr
	}
	if convErr != nil {
		return exit, fmt.Errorf("test2json: %w", convErr)
	}
	return exit, nil
}

// forward turns test2json's output lines into test events. It reports
// whether Go's own test timeout fired.
func (r *Runner) forward(out io.Reader, pkg string) (bool, error) {
	var (
		firstErr error
		timedOut bool
	)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var te event.TestEvent
		if err := json.Unmarshal(sc.Bytes(), &te); err != nil {
			te = event.TestEvent{Time: time.Now(), Action: "output", Package: pkg, Output: sc.Text() + "\n"}
		}
		if te.Action == "output" && strings.HasPrefix(te.Output, "panic: test timed out after") {
			timedOut = true
		}
		if firstErr == nil {
			firstErr = r.Emit(event.Event{Kind: event.KindTest, Time: time.Now(), Binary: pkg, Test: &te})
		}
	}
	if err := sc.Err(); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("reading test2json output: %w", err)
	}
	return timedOut, firstErr
}
