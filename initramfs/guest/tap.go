package guest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest/ktap"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/event"
)

// ksftSkip is the exit status by which a kselftest binary says that it
// skipped (tools/testing/selftests/kselftest.h, KSFT_SKIP).
const ksftSkip = 4

// executeTAP runs a kselftest binary in its directory, with no arguments,
// and converts its TAP output (stdout and stderr together: the harness
// prints results on stdout and diagnostics on stderr, line-buffered both)
// into test events. The binary and its process group are killed when it
// runs past timeout.
func (r *Runner) executeTAP(ctx context.Context, m *Manifest, b Binary, timeout time.Duration) (event.Exit, error) {
	exit := event.Exit{Code: -1}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, b.Path)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), GuestEnv+"=1")
	for k, v := range m.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Chroot: r.KselftestRoot}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

	pr, pw, err := os.Pipe()
	if err != nil {
		return exit, fmt.Errorf("creating pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw

	conv := ktap.New(b.Package, func(te event.TestEvent) error {
		return r.Emit(event.Event{Kind: event.KindTest, Time: time.Now(), Binary: b.Package, Test: &te})
	}, nil)
	readDone := make(chan error, 1)
	go func() { readDone <- feed(pr, conv) }()

	startErr := cmd.Start()
	pw.Close()
	if startErr == nil {
		_ = cmd.Wait()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A leftover outside the process group may hold the pipe open.
	var readErr error
	select {
	case readErr = <-readDone:
	case <-time.After(drainGrace):
		pr.Close()
		readErr = <-readDone
	}
	pr.Close()
	if startErr != nil {
		return exit, fmt.Errorf("starting kselftest binary: %w", startErr)
	}

	exit.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	exit.Code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Signal = ws.Signal().String()
	}
	if exit.Code == ksftSkip {
		// Go binaries have no such status; the skip is in the TAP output.
		r.logf("landlock-vmtest: %s exited with KSFT_SKIP (%d): counted as exit status 0", b.Package, ksftSkip)
		exit.Code = 0
	}
	sum, endErr := conv.End()
	r.logf("landlock-vmtest: %s: TAP plan %d, %d passed, %d failed, %d skipped", b.Package, sum.Planned, sum.Passed, sum.Failed, sum.Skipped)
	if readErr != nil {
		return exit, readErr
	}
	return exit, endErr
}

// feed passes r's lines to conv until EOF. A read error after the pipe
// was closed for draining is the end, not a failure.
func feed(r io.Reader, conv *ktap.Converter) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var emitErr error
	for sc.Scan() {
		if err := conv.Line(sc.Text()); err != nil && emitErr == nil {
			emitErr = err
		}
	}
	if emitErr != nil {
		return emitErr
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("reading kselftest output: %w", err)
	}
	return nil
}
