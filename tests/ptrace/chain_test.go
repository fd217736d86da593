package ptrace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A chain is a line of helper processes, each the child of the one
// before, the first one a child of the test process. The test tells each
// what to do and reads its reply (see the helper's commands in
// main_test.go): the order of everything the helpers do is the order of
// the test's commands, so no case depends on timing.
type chain struct {
	t      *testing.T
	procs  []*proc // in chain order; pid 0 until started
	first  *exec.Cmd
	stderr bytes.Buffer // the helpers' standard error, all of them
	// wantStatus, if not empty, is the status every helper must report
	// when it starts.
	wantStatus string
}

// A proc is the test's side of one helper.
type proc struct {
	role  string
	pid   int
	cmds  *os.File      // the write end of its command pipe
	reply *bufio.Reader // the read end of its reply pipe
	addr  string        // where its vmProbe is, once asked
}

// newChain starts the first helper of a chain whose helpers play roles,
// in that order, with the pipes of all of them. The helpers end with t.
func newChain(t *testing.T, wantStatus string, roles ...string) *chain {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	c := &chain{t: t, wantStatus: wantStatus}
	var theirs []*os.File // for each helper: command read end, reply write end
	for _, role := range roles {
		cmdR, cmdW, err := os.Pipe()
		require.NoError(t, err)
		replyR, replyW, err := os.Pipe()
		require.NoError(t, err)
		c.procs = append(c.procs, &proc{role: role, cmds: cmdW, reply: bufio.NewReader(replyR)})
		theirs = append(theirs, cmdR, replyW)
		t.Cleanup(func() { replyR.Close() })
	}
	c.first = exec.Command(exe)
	c.first.Env = append(os.Environ(), helperEnv+"=1", fmt.Sprintf("%s=%d", pipesEnv, len(roles)-1))
	c.first.Stdin, c.first.Stdout, c.first.Stderr = theirs[0], theirs[1], &c.stderr
	c.first.ExtraFiles = theirs[2:]
	err = c.first.Start()
	for _, f := range theirs {
		f.Close()
	}
	require.NoError(t, err, "starting the first helper")
	c.procs[0].pid = c.first.Process.Pid
	t.Cleanup(c.end)
	c.checkStatus(t, c.procs[0])
	return c
}

// end ends the helpers: each reads the end of its commands, waits for the
// helper it started and exits. After a failure, a helper may be stopped
// by a tracer that will never let it go on: they are killed first.
func (c *chain) end() {
	if c.t.Failed() {
		for _, p := range c.procs {
			if p.pid > 0 {
				unix.Kill(p.pid, unix.SIGKILL)
			}
		}
	}
	for _, p := range c.procs {
		p.cmds.Close()
	}
	err := c.first.Wait()
	if s := c.stderr.String(); s != "" {
		c.t.Logf("the helpers' standard error:\n%s", s)
	}
	if err != nil && !c.t.Failed() {
		c.t.Errorf("the first helper of the chain: %v", err)
	}
}

// proc returns the helper that plays role.
func (c *chain) proc(t *testing.T, role string) *proc {
	t.Helper()
	for _, p := range c.procs {
		if p.role == role {
			return p
		}
	}
	t.Fatalf("no helper plays %s", role)
	return nil
}

// parent returns the helper whose child p is, or nil for the first.
func (c *chain) parent(p *proc) *proc {
	for i, q := range c.procs {
		if q == p && i > 0 {
			return c.procs[i-1]
		}
	}
	return nil
}

// do sends p the command cmd and returns its reply.
func (p *proc) do(t *testing.T, cmd string) string {
	t.Helper()
	require.NotZero(t, p.pid, "%s is not started", p.role)
	_, err := fmt.Fprintln(p.cmds, cmd)
	require.NoError(t, err, "sending %q to %s (pid %d)", cmd, p.role, p.pid)
	line, err := p.reply.ReadString('\n')
	require.NoError(t, err, "the reply of %s (pid %d) to %q: did it die?", p.role, p.pid, cmd)
	return strings.TrimSuffix(line, "\n")
}

// appendRule makes p append an allow-all rule.
func (c *chain) appendRule(t *testing.T, role string) {
	t.Helper()
	p := c.proc(t, role)
	require.Equal(t, "ok", p.do(t, "append"), "%s appends an allow-all rule", role)
}

// fork makes the helper that plays role start the next one of the chain.
func (c *chain) fork(t *testing.T, role string) {
	t.Helper()
	p := c.proc(t, role)
	var next *proc
	for i, q := range c.procs {
		if q == p && i+1 < len(c.procs) {
			next = c.procs[i+1]
		}
	}
	require.NotNil(t, next, "%s is the last of the chain", role)
	r := p.do(t, "spawn")
	pid, ok := strings.CutPrefix(r, "ok ")
	require.True(t, ok, "%s starts %s: %s", role, next.role, r)
	var err error
	next.pid, err = strconv.Atoi(pid)
	require.NoError(t, err, "the pid of %s: %q", next.role, r)
	c.checkStatus(t, next)
}

// checkStatus checks the status of a helper that just started.
func (c *chain) checkStatus(t *testing.T, p *proc) {
	t.Helper()
	if c.wantStatus != "" {
		require.Equal(t, c.wantStatus, p.do(t, "status"), "%s (pid %d): uid, effective capabilities and no_new_privs", p.role, p.pid)
	}
}

// try makes tracer try the operation op on tracee and returns the errno it
// got, nil when the operation was allowed, or another error.
func (c *chain) try(t *testing.T, op operation, tracer, tracee *proc) error {
	t.Helper()
	cmd := fmt.Sprintf("%s %d", op.cmd, tracee.pid)
	if op.cmd == "vmread" {
		if tracee.addr == "" {
			r := tracee.do(t, "addr")
			addr, ok := strings.CutPrefix(r, "ok ")
			require.True(t, ok, "where vmProbe is in %s: %s", tracee.role, r)
			tracee.addr = addr
		}
		cmd += " " + tracee.addr
	}
	return replyErr(tracer.do(t, cmd))
}

// traceme makes tracee ask to be traced by its parent with PTRACE_TRACEME
// and returns the errno it got, nil when it was allowed; then its parent
// ends the tracing.
func (c *chain) traceme(t *testing.T, tracee *proc) error {
	t.Helper()
	parent := c.parent(tracee)
	require.NotNil(t, parent, "%s has no parent in the chain", tracee.role)
	err := replyErr(tracee.do(t, "traceme"))
	if err == nil {
		require.Equal(t, "ok", parent.do(t, fmt.Sprintf("untrace %d", tracee.pid)),
			"%s, tracing %s after its PTRACE_TRACEME, stops it and detaches", parent.role, tracee.role)
	}
	return err
}

// replyErr turns a helper's reply into nil ("ok..."), the errno it names,
// or an error saying what else happened.
func replyErr(reply string) error {
	if reply == "ok" || strings.HasPrefix(reply, "ok ") {
		return nil
	}
	for e := unix.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == reply {
			return e
		}
	}
	return errors.New(reply)
}
