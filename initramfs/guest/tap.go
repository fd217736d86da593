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
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest/ktap"
)

// ksftSkip is the exit status by which a kselftest binary says that it
// skipped (tools/testing/selftests/kselftest.h, KSFT_SKIP).
const ksftSkip = 4

// tapConverter is the converter of kselftest binaries: package ktap turns
// their TAP output (stdout and stderr together: the harness prints results
// on stdout and diagnostics on stderr, line-buffered both) into test
// events. A KSFT_SKIP exit status counts as 0.
type tapConverter struct {
	r   *Runner
	pkg string

	conv    *ktap.Converter
	out     *os.File
	done    chan error // feed's result
	readErr error
}

func (c *tapConverter) start(out *os.File) error {
	c.out = out
	c.conv = ktap.New(c.pkg, func(te event.TestEvent) error {
		return c.r.Emit(event.Event{Kind: event.KindTest, Time: time.Now(), Binary: c.pkg, Test: &te})
	}, nil)
	c.done = make(chan error, 1)
	go func() { c.done <- feed(out, c.conv) }()
	return nil
}

func (c *tapConverter) drain(grace time.Duration) {
	select {
	case c.readErr = <-c.done:
	case <-time.After(grace):
		c.out.Close()
		c.readErr = <-c.done
	}
	c.out.Close()
}

func (c *tapConverter) finish(exit *event.Exit) error {
	if exit.Code == ksftSkip {
		// Go binaries have no such status; the skip is in the TAP output.
		c.r.logf("landlock-vmtest: %s exited with KSFT_SKIP (%d): counted as exit status 0", c.pkg, ksftSkip)
		exit.Code = 0
	}
	sum, endErr := c.conv.End()
	c.r.logf("landlock-vmtest: %s: TAP plan %d, %d passed, %d failed, %d skipped", c.pkg, sum.Planned, sum.Passed, sum.Failed, sum.Skipped)
	if c.readErr != nil {
		return c.readErr
	}
	return endErr
}

// kselftestCommand is the command that runs kselftest binary b with args:
// in its directory, chrooted into the kselftest root, in a process group
// of its own that a cancelled ctx kills.
func (r *Runner) kselftestCommand(ctx context.Context, m *contract.Manifest, b contract.Binary, args ...string) *exec.Cmd {
	return command(ctx, m, b, r.KselftestRoot, args...)
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
