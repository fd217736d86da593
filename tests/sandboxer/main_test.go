// Package sandboxer runs, in the guest, the landlock-bpf-sandbox command
// (bpfsandbox/cli) end to end on the running kernel: "read anything, write
// only beneath --rw, mount nothing", and with --ro "nothing outside --ro
// and --rw", as a process confined by it sees them, and its errors (a
// missing directory, no CAP_SYS_ADMIN below ABI version 4, a kernel
// without version 3, kernel.unprivileged_bpf_disabled not 0 for nobody
// at version 4); from version 4 also as nobody (unprivileged_test.go).
//
// How the command runs: this test binary, executed again with cliEnv=1,
// is the command (TestMain calls cli.Main with its arguments), so it
// checks, applies the rule to its own thread and execve(2)s the program,
// as the real landlock-bpf-sandbox does. The programs are /bin/sh (u-root's
// gosh in the guest's initramfs: echo and read are builtins, and it
// reports a failed redirection as "open PATH: operation not permitted")
// and this test binary again with helperEnv=1, which runs the steps given
// as its arguments and reports each one's errno.
//
// The tests that confine a process skip on the host and below ABI version
// 3 (those without privilege below 4); the usage and too-old-kernel
// checks run everywhere.
package sandboxer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox/cli"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// Environment variables that give this binary its other roles.
const (
	// cliEnv=1 makes the binary the sandboxer; it unsets the variable
	// before anything runs, so the program it executes is not one too.
	cliEnv = "LANDLOCK_VMTEST_SANDBOXER_CLI"
	// helperEnv=1 makes the binary the helper.
	helperEnv = "LANDLOCK_VMTEST_SANDBOXER_HELPER"
)

// helperMisuse is the helper's exit status when it cannot run its steps.
const helperMisuse = 99

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Unsetenv(cliEnv)
		os.Exit(cli.Main(os.Args[1:], os.Stderr))
	}
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// The helper runs its steps in order, one line each on its standard
// output ("<step>\t<result>", the result "ok" or an errno name such as
// "EPERM"), and exits 0, or with the status an exit step gives. The
// steps:
//
//	write=PATH   create or truncate PATH (O_WRONLY|O_CREAT|O_TRUNC), write a line
//	read=PATH    open PATH read-only and read it
//	mkdir=PATH   mkdir(2)
//	unlink=PATH  unlink(2)
//	stat=PATH    stat(2)
//	nnp          "ok" if no_new_privs is set, else "no_new_privs=0"
//	userns-mounts=SRC:DST:DST2
//	             in a forked child of its own, in a new user and mount
//	             namespace: bind-mount SRC on DST, move a clone of SRC
//	             (open_tree) onto DST2, create DST/escaped and
//	             DST2/escaped2; the result is each step's
//	             ("unshare:ok mount:EPERM ...", usernsMounts)
//	exit=N       exit with status N
func helperMain(steps []string, stdout, stderr io.Writer) int {
	runtime.LockOSThread()
	for _, step := range steps {
		name, arg, _ := strings.Cut(step, "=")
		var err error
		switch name {
		case "write":
			err = writeFile(arg)
		case "read":
			err = readFile(arg)
		case "mkdir":
			err = unix.Mkdir(arg, 0o755)
		case "unlink":
			err = unix.Unlink(arg)
		case "stat":
			var st unix.Stat_t
			err = unix.Stat(arg, &st)
		case "nnp":
			var v int
			v, err = unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
			if err == nil && v != 1 {
				err = fmt.Errorf("no_new_privs=%d", v)
			}
		case "userns-mounts":
			paths := strings.Split(arg, ":")
			if len(paths) != 3 {
				fmt.Fprintf(stderr, "helper: %s: want SRC:DST:DST2\n", step)
				return helperMisuse
			}
			res, err := usernsMounts(paths[0], paths[1], paths[2])
			if err != nil {
				fmt.Fprintf(stderr, "helper: %s: %v\n", step, err)
				return helperMisuse
			}
			fmt.Fprintf(stdout, "%s\t%s\n", step, res)
			continue
		case "exit":
			n, err := strconv.Atoi(arg)
			if err != nil {
				fmt.Fprintf(stderr, "helper: %s: %v\n", step, err)
				return helperMisuse
			}
			return n
		default:
			fmt.Fprintf(stderr, "helper: unknown step %q\n", step)
			return helperMisuse
		}
		fmt.Fprintf(stdout, "%s\t%s\n", step, landlockbpf.ResultName(err))
	}
	return 0
}

func writeFile(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, werr := unix.Write(fd, []byte("helper\n"))
	return errors.Join(werr, unix.Close(fd))
}

func readFile(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	buf := make([]byte, 64)
	_, rerr := unix.Read(fd, buf)
	return errors.Join(rerr, unix.Close(fd))
}

// skipUnlessABI3 skips t on the host and on kernels below ABI version 3.
func skipUnlessABI3(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessSupported(bpfsandbox.NeedABI); why != "" {
		t.Skip(why)
	}
}

// kernelABI returns the running kernel's Landlock eBPF ABI version; the
// caller has skipped unless it has version 3 (skipUnlessABI3).
func kernelABI(t *testing.T) int {
	t.Helper()
	v, err := bpfsandbox.ABIVersion()
	require.NoError(t, err)
	return v
}

// skipUnlessUnprivileged skips t on the host and below ABI version 4,
// where the sandboxer needs no privilege.
func skipUnlessUnprivileged(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessSupported(bpfsandbox.UnprivilegedABI); why != "" {
		t.Skip(why)
	}
}

// executable is this test binary.
func executable(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return exe
}

// sandboxed is what a run of the sandboxer left.
type sandboxed struct {
	code           int
	stdout, stderr string
}

func (s sandboxed) String() string {
	return fmt.Sprintf("exit status %d\nstdout:\n%s\nstderr:\n%s", s.code, s.stdout, s.stderr)
}

// sandbox runs the sandboxer (this binary with cliEnv=1) with args, with
// extra environment env, and returns its exit status and output. Its
// standard input is /dev/null, its output pipes.
func sandbox(t *testing.T, env []string, args ...string) sandboxed {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), executable(t), args...)
	cmd.Env = append(append(os.Environ(), cliEnv+"=1"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		require.NoError(t, err, "running the sandboxer %q", args)
	}
	s := sandboxed{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("landlock-bpf-sandbox %s: %s", strings.Join(args, " "), s)
	return s
}

// helperIn runs the helper's steps in the sandboxer with args (the
// sandboxer's options), and returns the result of each step.
func helperIn(t *testing.T, args []string, steps ...string) []string {
	t.Helper()
	argv := append(append(append([]string(nil), args...), "--", executable(t)), steps...)
	s := sandbox(t, []string{helperEnv + "=1"}, argv...)
	require.Zero(t, s.code, "the sandboxed helper: %s", s)
	return helperResults(t, s, steps)
}

// helperOutside runs the helper's steps without the sandboxer, with the
// test's privileges, and returns the result of each step.
func helperOutside(t *testing.T, steps ...string) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), executable(t), steps...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		require.NoError(t, err, "starting the helper %q", steps)
	}
	s := sandboxed{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	t.Logf("helper %s, outside the sandbox: %s", strings.Join(steps, " "), s)
	require.NoError(t, err, "the helper outside the sandbox: %s", s)
	return helperResults(t, s, steps)
}

// helperResults parses the helper's report of steps.
func helperResults(t *testing.T, s sandboxed, steps []string) []string {
	t.Helper()
	var res []string
	for i, line := range strings.Split(strings.TrimSuffix(s.stdout, "\n"), "\n") {
		step, r, ok := strings.Cut(line, "\t")
		require.True(t, ok && i < len(steps) && step == steps[i], "unexpected line %q of the helper: %s", line, s)
		res = append(res, r)
	}
	require.Len(t, res, len(steps), "the helper's report: %s", s)
	return res
}
