// Package seccompentry checks, in the guest, the seccomp(2) entry point of
// Landlock eBPF rules (../shared/spec/landlock-bpf-abi.md, "Entry point:
// seccomp(2)"): every row of its table, the 64-rule limit, the privilege it
// needs, and the semantics of a domain: rules per thread, inherited across
// fork and execve, no effect on the parent or the siblings.
//
// A rule can never be removed, so no rule is ever appended in the test
// process itself: every scenario that appends one runs in a child process
// (privdrop.Run), on a goroutine locked to an OS thread of its own that ends
// with it (landlockbpf.OnLockedThread).
//
// Every test skips on the host and on kernels without ABI version 1. From
// version 4 on, the scenarios run again as nobody with no_new_privs
// (unpriv_test.go, landlockbpf.RunUnprivileged).
package seccompentry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// keepRoot runs a privdrop scenario in a child with the test binary's
// privileges (root, every capability).
var keepRoot = privdrop.Privs{UID: privdrop.Keep, GID: privdrop.Keep}

// skipUnlessSupported skips t unless the kernel has ABI version 1.
func skipUnlessSupported(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessSupported(1); why != "" {
		t.Skip(why)
	}
}

// loadRule loads insns as a Landlock rule, closed when t ends.
func loadRule(t *testing.T, insns asm.Instructions) *ebpf.Program {
	t.Helper()
	p, err := landlockbpf.Load(insns)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// appendFD calls seccomp(SECCOMP_APPEND_LANDLOCK_RULE, flags, &fd) and
// returns what it returned.
func appendFD(flags uintptr, fd uint32) (uintptr, error) {
	return landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, flags, unsafe.Pointer(&fd))
}

// openClose opens path read-only and closes it.
func openClose(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// writeFile creates a file in dir, readable by everyone, and returns its
// path.
func writeFile(t *testing.T, dir, name string) string {
	t.Helper()
	path := dir + "/" + name
	require.NoError(t, os.WriteFile(path, []byte(name+"\n"), 0o644))
	return path
}

// inodeOf returns the inode number of path.
func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	ino, err := landlockbpf.Inode(path)
	require.NoError(t, err)
	return ino
}

// requireDistinctInode fails t unless no file of others has the inode
// number ino: a rule of landlockbpf.DenyActionsOn(ino) must not hit the
// files a scenario needs (the test binary, /dev/null, the control files).
func requireDistinctInode(t *testing.T, ino uint64, others ...string) {
	t.Helper()
	for _, o := range others {
		require.NotEqual(t, ino, inodeOf(t, o), "%s has the inode number of the file the rule denies: the scenario cannot tell them apart", o)
	}
}

// executable returns the path of this test binary.
func executable(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return exe
}

// The helper process: this test binary, executed again with helperEnv set,
// runs the steps given as its arguments on one thread, in order, writes one
// line per step ("<step>\t<result>", the result being "ok" or an errno
// name such as "EPERM") and exits with helperOK when every step
// succeeded, helperStepFailed when one failed (e.g. a denied open), or
// helperMisuse when it could not run. The steps:
//
//	append       append the rule at fd helperRuleFD (inherited) to its domain
//	wait         read its standard input up to EOF
//	open=PATH    open PATH read-only
//	load         load an allow-all Landlock program (and close it)
//	load-debug   the same with BPF_F_LANDLOCK_DEBUG
//	userns-root  check that it is uid 0 with CAP_SYS_ADMIN and CAP_BPF in
//	             a user namespace other than the initial one (else an
//	             error that says what it is)
const (
	helperEnv    = "LANDLOCK_VMTEST_SECCOMPENTRY_HELPER"
	helperRuleFD = 3

	helperOK         = 0
	helperStepFailed = 1
	helperMisuse     = 2
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	// The main thread never exits: a goroutine that appended a rule while
	// locked to it would leave its domain behind when it ended. Keeping
	// the main goroutine on it keeps every other goroutine off it.
	runtime.LockOSThread()
	os.Exit(m.Run())
}

// helperMain runs the helper's steps.
func helperMain(steps []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// The rules belong to the thread that appends them: every step runs on
	// this one.
	runtime.LockOSThread()
	status := helperOK
	for _, step := range steps {
		var err error
		switch {
		case step == "append":
			_, err = appendFD(0, helperRuleFD)
		case step == "wait":
			_, err = io.Copy(io.Discard, stdin)
		case strings.HasPrefix(step, "open="):
			err = openClose(strings.TrimPrefix(step, "open="))
		case step == "load":
			err = loadAndClose(0)
		case step == "load-debug":
			err = loadAndClose(landlockbpf.ProgFlagDebug)
		case step == "userns-root":
			err = checkUserNSRoot()
		default:
			fmt.Fprintf(stderr, "helper: unknown step %q\n", step)
			return helperMisuse
		}
		if err != nil {
			status = helperStepFailed
		}
		fmt.Fprintf(stdout, "%s\t%s\n", step, landlockbpf.ResultName(err))
	}
	return status
}

// loadAndClose loads an allow-all Landlock program with the prog flags
// flags and closes it.
func loadAndClose(flags uint32) error {
	p, err := landlockbpf.LoadWith(landlockbpf.Allow, landlockbpf.AttachLandlockFS, flags)
	if err != nil {
		return err
	}
	return p.Close()
}

// initialUIDMap is /proc/self/uid_map in the initial user namespace, its
// fields.
const initialUIDMap = "0 0 4294967295"

// checkUserNSRoot checks that the calling process is uid 0, with
// CAP_SYS_ADMIN and CAP_BPF effective, in a user namespace that is not the
// initial one.
func checkUserNSRoot() error {
	if uid := unix.Getuid(); uid != 0 {
		return fmt.Errorf("uid %d, not 0", uid)
	}
	st, err := privdrop.Current()
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		cap  uintptr
	}{{"CAP_SYS_ADMIN", unix.CAP_SYS_ADMIN}, {"CAP_BPF", unix.CAP_BPF}} {
		if !st.HasEffective(c.cap) {
			return fmt.Errorf("no %s in CapEff %016x", c.name, st.CapEff)
		}
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return err
	}
	if m := strings.Join(strings.Fields(string(b)), " "); m == initialUIDMap {
		return fmt.Errorf("in the initial user namespace (uid_map %q)", m)
	}
	return nil
}

// helperProc is a running helper process.
type helperProc struct {
	steps          []string
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

// startHelper starts a helper process that runs steps. It is a child of
// the calling thread: call it from the goroutine whose rules it must
// inherit. rule, if not nil, is what its "append" steps append; stdin, if
// not nil, is its standard input.
func startHelper(rule *ebpf.Program, stdin *os.File, steps ...string) (*helperProc, error) {
	return startHelperWith(nil, rule, stdin, steps...)
}

// startHelperWith is startHelper with attr, if not nil, as the helper's
// process attributes (a new user namespace, for one).
func startHelperWith(attr *syscall.SysProcAttr, rule *ebpf.Program, stdin *os.File, steps ...string) (*helperProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	h := &helperProc{steps: steps, cmd: exec.Command(exe, steps...)}
	h.cmd.SysProcAttr = attr
	h.cmd.Env = append(os.Environ(), helperEnv+"=1")
	h.cmd.Stdout = &h.stdout
	h.cmd.Stderr = &h.stderr
	if stdin != nil {
		h.cmd.Stdin = stdin
	}
	if rule != nil {
		fd, err := unix.FcntlInt(uintptr(rule.FD()), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicating the rule's fd: %w", err)
		}
		f := os.NewFile(uintptr(fd), "landlock-rule")
		defer f.Close()
		h.cmd.ExtraFiles = []*os.File{f} // fd 3 in the helper
	}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the helper %q: %w", steps, err)
	}
	return h, nil
}

// wait waits for the helper and returns its exit status and the result of
// each step.
func (h *helperProc) wait() (status int, results []string, _ error) {
	err := h.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, nil, fmt.Errorf("helper %q: %w", h.steps, err)
	}
	status = h.cmd.ProcessState.ExitCode()
	if status != helperOK && status != helperStepFailed {
		return status, nil, fmt.Errorf("helper %q failed (%v): %s%s", h.steps, h.cmd.ProcessState, h.stdout.String(), h.stderr.String())
	}
	for i, line := range strings.Split(strings.TrimSuffix(h.stdout.String(), "\n"), "\n") {
		step, res, ok := strings.Cut(line, "\t")
		if !ok || i >= len(h.steps) || step != h.steps[i] {
			return status, nil, fmt.Errorf("helper %q: unexpected output line %q:\n%s", h.steps, line, h.stdout.String())
		}
		results = append(results, res)
	}
	if len(results) != len(h.steps) {
		return status, nil, fmt.Errorf("helper %q reported %d steps, want %d:\n%s", h.steps, len(results), len(h.steps), h.stdout.String())
	}
	return status, results, nil
}

// runHelper starts a helper and waits for it.
func runHelper(rule *ebpf.Program, steps ...string) (status int, results []string, _ error) {
	h, err := startHelper(rule, nil, steps...)
	if err != nil {
		return 0, nil, err
	}
	return h.wait()
}

// execOpen opens path in a helper process started from the calling thread
// (fork and execve) and returns the errno it got, nil if it opened it.
func execOpen(path string) error {
	status, res, err := runHelper(nil, "open="+path)
	if err != nil {
		return err
	}
	switch {
	case status == helperOK && res[0] == "ok":
		return nil
	case status == helperStepFailed && res[0] != "ok":
		if errno := errnoNamed(res[0]); errno != 0 {
			return errno
		}
	}
	return fmt.Errorf("helper open of %s: exit status %d, result %q", path, status, res[0])
}

// errnoNamed returns the errno called name ("EPERM"), or 0.
func errnoNamed(name string) unix.Errno {
	for e := unix.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == name {
			return e
		}
	}
	return 0
}

// openers are the ways a test opens a file to see a thread's rules: in
// the thread, and in its children (forked, and forked and executed).
var openers = []struct {
	how  string
	open func(path string) error
}{
	{"in the thread itself", openClose},
	{"in a forked child (no execve)", forkOpen},
	{"in an executed child (fork and execve of this test binary)", execOpen},
}
