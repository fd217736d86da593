package guest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest/ktap"
)

// ksftSkip is the exit status by which a kselftest binary says that it
// skipped (tools/testing/selftests/kselftest.h, KSFT_SKIP).
const ksftSkip = 4

// executeTAP runs a kselftest binary in its directory, with args (none,
// or the -r arguments of selectTAP), and converts its TAP output (stdout
// and stderr together: the harness prints results on stdout and
// diagnostics on stderr, line-buffered both) into test events. The binary and its process group are killed when it
// runs past timeout.
func (r *Runner) executeTAP(ctx context.Context, m *contract.Manifest, b contract.Binary, timeout time.Duration, args ...string) (event.Exit, error) {
	exit := event.Exit{Code: -1}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := r.kselftestCommand(ctx, m, b, args...)

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

// kselftestCommand is the command that runs kselftest binary b with args:
// in its directory, chrooted into the kselftest root, in a process group
// of its own that a cancelled ctx kills.
func (r *Runner) kselftestCommand(ctx context.Context, m *contract.Manifest, b contract.Binary, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, b.Path, args...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), contract.GuestEnv+"=1")
	for k, v := range m.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Chroot: r.KselftestRoot}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// listTimeout bounds a kselftest binary's -l.
const listTimeout = 30 * time.Second

// selectTAP lists the tests of harness binary b (-l, which runs none) and
// returns a -r argument for each one whose name m.Run matches: none when
// no test matches.
func (r *Runner) selectTAP(ctx context.Context, m *contract.Manifest, b contract.Binary) ([]string, error) {
	re, err := regexp.Compile(m.Run)
	if err != nil {
		return nil, fmt.Errorf("RUN=%s: %w", m.Run, err)
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := r.kselftestCommand(ctx, m, b, "-l")
	cmd.Stdout, cmd.Stderr = &out, &out
	// -l exits with KSFT_SKIP; what counts is the listing.
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		return nil, fmt.Errorf("listing the tests: %w", err)
	}
	names, err := ktap.ListedTests(out.String())
	if err != nil {
		return nil, err
	}
	var args []string
	for _, n := range names {
		if re.MatchString(n) {
			args = append(args, "-r", n)
		}
	}
	return args, nil
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
