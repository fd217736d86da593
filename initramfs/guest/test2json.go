package guest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// test2jsonConverter is the converter of Go test binaries: their
// -test.v=test2json output goes through the test2json program, whose JSON
// lines forward turns into test events.
type test2jsonConverter struct {
	r   *Runner
	pkg string
	// tally, when set, counts the tests' results.
	tally *tally

	cmd      *exec.Cmd
	done     chan struct{} // closed when forward has read test2json's output to its end
	timedOut bool          // Go's own test timeout fired
	emitErr  error
	waitErr  error
}

func (c *test2jsonConverter) start(out *os.File) error {
	defer out.Close() // test2json has its own copy
	c.cmd = exec.Command(c.r.Test2JSON, "-t", "-p", c.pkg)
	c.cmd.Stdin = out
	events, err := c.cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("test2json pipe: %w", err)
	}
	c.cmd.Stderr = c.r.Log
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("starting test2json: %w", err)
	}
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		c.timedOut, c.emitErr = c.r.forward(events, c.pkg, c.tally)
	}()
	return nil
}

func (c *test2jsonConverter) drain(grace time.Duration) {
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.waitErr = c.cmd.Wait()
}

func (c *test2jsonConverter) finish(exit *event.Exit) error {
	exit.TimedOut = exit.TimedOut || c.timedOut
	if c.emitErr != nil {
		return c.emitErr
	}
	if c.waitErr != nil {
		return fmt.Errorf("test2json: %w", c.waitErr)
	}
	return nil
}

// forward turns test2json's output lines into test events, counting the
// tests' results in t when it is set. It reports whether Go's own test
// timeout fired.
func (r *Runner) forward(out io.Reader, pkg string, t *tally) (bool, error) {
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
		if t != nil {
			t.add(te)
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
