// Package cli is the landlock-bpf-sandbox command (bpfsandbox/cmd/
// landlock-bpf-sandbox) as a function, so that a guest test can run it:
//
//	landlock-bpf-sandbox [--rw DIR]... [--ro DIR]... [--] PROGRAM [ARGS]...
//
// runs PROGRAM with "read anything, write only beneath the --rw
// directories, mount nothing", and, with at least one --ro, "no access at
// all outside the --ro and --rw directories" (package bpfsandbox says
// exactly what the rule allows). It checks its arguments and the kernel,
// sets no_new_privs (from ABI version 4), applies the rule to its own
// thread and execve(2)s PROGRAM on that thread, which inherits both.
//
// Privilege: with ABI version 4 none; a caller without CAP_BPF needs
// kernel.unprivileged_bpf_disabled = 0, and the message of a refusal says
// so. With version 3, CAP_BPF and CAP_SYS_ADMIN (root).
//
// Exit status: PROGRAM's own once it runs; otherwise one of the Exit*
// constants.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
)

// Name is the command's name, the prefix of its messages.
const Name = "landlock-bpf-sandbox"

// Exit statuses of the command itself.
const (
	// ExitFailed: the sandbox could not be set up for another reason.
	ExitFailed = 1
	// ExitUsage: bad arguments, or a --rw/--ro directory that does not
	// exist or is not a directory.
	ExitUsage = 2
	// ExitUnsupported: the running kernel cannot do this (no Landlock
	// eBPF rules, or an ABI version below bpfsandbox.NeedABI).
	ExitUnsupported = 3
	// ExitNotPermitted: the caller may not create the map, load the rule
	// or append it (version 3: CAP_BPF, CAP_SYS_ADMIN; version 4:
	// kernel.unprivileged_bpf_disabled not 0 for a caller without
	// CAP_BPF).
	ExitNotPermitted = 4
	// ExitCannotExec: PROGRAM was found but could not be executed.
	ExitCannotExec = 126
	// ExitNotFound: PROGRAM was not found.
	ExitNotFound = 127
)

// Usage is the command's help text.
const Usage = `usage: landlock-bpf-sandbox [--rw DIR]... [--ro DIR]... [--] PROGRAM [ARGS]...

Runs PROGRAM confined by a Landlock eBPF rule (ABI version 3 or later): it
can read anything, write only beneath the --rw directories, and make no
mount-family system call (mount, umount2, move_mount, pivot_root,
fsconfig). With at least one --ro, it has no access at all outside the
--ro and --rw directories, so PROGRAM itself must be beneath one of them.
Character devices (the terminal, /dev/null) stay usable.

Privilege: with ABI version 4, none: landlock-bpf-sandbox sets
no_new_privs (PROGRAM cannot gain privileges through set-user-ID or
file capabilities), and without CAP_BPF it needs the sysctl
kernel.unprivileged_bpf_disabled = 0. With version 3, CAP_SYS_ADMIN and
CAP_BPF (root).

Exit status: PROGRAM's own; 1 the sandbox could not be set up; 2 usage
error or a missing directory; 3 the running kernel cannot do this; 4 not
permitted; 126 PROGRAM could not be executed; 127 PROGRAM not found.
`

// Options are the parsed arguments.
type Options struct {
	// RW and RO are the directories as given.
	RW, RO []string
	// Program is PROGRAM and its arguments.
	Program []string
	// Help is set by -h or --help.
	Help bool
}

// UsageError is a bad command line.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Parse parses the arguments (without the command's name).
func Parse(args []string) (Options, error) {
	var o Options
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.Program = args[i+1:]
			i = len(args)
		case a == "-h" || a == "--help" || a == "-help":
			o.Help = true
			return o, nil
		case a == "--rw" || a == "--ro":
			if i+1 >= len(args) {
				return o, &UsageError{a + " needs a directory"}
			}
			i++
			o.add(a, args[i])
		case strings.HasPrefix(a, "--rw=") || strings.HasPrefix(a, "--ro="):
			o.add(a[:4], a[5:])
		case strings.HasPrefix(a, "-"):
			return o, &UsageError{fmt.Sprintf("unknown option %s", a)}
		default:
			o.Program = args[i:]
			i = len(args)
		}
	}
	if len(o.Program) == 0 {
		return o, &UsageError{"no PROGRAM to run"}
	}
	for _, l := range []struct {
		flag string
		dirs []string
	}{{"--rw", o.RW}, {"--ro", o.RO}} {
		if len(l.dirs) > bpfsandbox.MaxFSMapEntries {
			return o, &UsageError{fmt.Sprintf("%d %s directories: at most %d", len(l.dirs), l.flag, bpfsandbox.MaxFSMapEntries)}
		}
		for _, d := range l.dirs {
			if d == "" {
				return o, &UsageError{l.flag + " needs a directory, not an empty string"}
			}
		}
	}
	return o, nil
}

func (o *Options) add(flag, dir string) {
	if flag == "--rw" {
		o.RW = append(o.RW, dir)
	} else {
		o.RO = append(o.RO, dir)
	}
}

// System is what Run does to the system, replaceable in tests.
type System struct {
	// ABIVersion asks the kernel for its Landlock eBPF ABI version.
	ABIVersion func() (int, error)
	// SetNoNewPrivs sets no_new_privs on the calling thread
	// (bpfsandbox.SetNoNewPrivs). Run calls it from ABI version 4 on.
	SetNoNewPrivs func() error
	// Apply confines the calling thread (bpfsandbox.Apply).
	Apply func(rw, ro []string) error
	// UnprivBPF reads kernel.unprivileged_bpf_disabled, for the message
	// of an EPERM from bpf(2) (version 4).
	UnprivBPF func() (string, error)
	// LookPath finds PROGRAM (exec.LookPath).
	LookPath func(file string) (string, error)
	// Exec replaces the process with PROGRAM (execve(2) on the calling
	// thread). It returns only on failure; a fake that returns nil
	// makes Run return 0.
	Exec func(path string, argv, env []string) error
}

// OS is the real system.
var OS = System{
	ABIVersion:    bpfsandbox.ABIVersion,
	SetNoNewPrivs: bpfsandbox.SetNoNewPrivs,
	Apply:         bpfsandbox.Apply,
	UnprivBPF:     readUnprivBPF,
	LookPath:      exec.LookPath,
	Exec:          unix.Exec,
}

// readUnprivBPF reads kernel.unprivileged_bpf_disabled.
func readUnprivBPF() (string, error) {
	b, err := os.ReadFile(bpfsandbox.UnprivBPFSysctl)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// Main runs the command with args (without the command's name), printing
// its errors on stderr. On success it does not return: the process
// becomes PROGRAM. Otherwise it returns the exit status.
func Main(args []string, stderr io.Writer) int {
	return Run(args, stderr, OS)
}

// Run is Main with sys doing the work. It locks the calling goroutine to
// its OS thread and leaves it locked: once the rule is applied, the
// thread is confined for good.
func Run(args []string, stderr io.Writer, sys System) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, Name+": "+format+"\n", a...)
		return code
	}
	o, err := Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n%s", Name, err, Usage)
		return ExitUsage
	}
	if o.Help {
		fmt.Fprint(stderr, Usage)
		return 0
	}
	rw, err := directories("--rw", o.RW)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	ro, err := directories("--ro", o.RO)
	if err != nil {
		return fail(ExitUsage, "%v", err)
	}
	version, err := sys.ABIVersion()
	if err := bpfsandbox.CheckVersion(version, err); err != nil {
		return fail(ExitUnsupported, "%v", err)
	}
	// Found before the rule: with --ro, PATH's directories may be out of
	// reach afterwards.
	path, err := sys.LookPath(o.Program[0])
	if err != nil {
		return fail(ExitNotFound, "%s: %v", o.Program[0], err)
	}

	// The rule is the thread's, and so is no_new_privs: set both and
	// execve on this one.
	runtime.LockOSThread()
	if version >= bpfsandbox.UnprivilegedABI {
		if err := sys.SetNoNewPrivs(); err != nil {
			return fail(ExitFailed, "setting no_new_privs: %v", err)
		}
	}
	if err := sys.Apply(rw, ro); err != nil {
		var ue *bpfsandbox.UnsupportedError
		switch {
		case errors.Is(err, unix.EPERM):
			return fail(ExitNotPermitted, "%s", notPermitted(version, err, sys))
		case errors.As(err, &ue):
			return fail(ExitUnsupported, "%v", err)
		}
		return fail(ExitFailed, "setting up the sandbox: %v", err)
	}
	if err := sys.Exec(path, o.Program, os.Environ()); err != nil {
		hint := ""
		if len(ro) > 0 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
			hint = " (with --ro, PROGRAM must be beneath a --ro or --rw directory)"
		}
		code := ExitCannotExec
		if errors.Is(err, unix.ENOENT) {
			code = ExitNotFound
		}
		return fail(code, "executing %s: %v%s", path, err, hint)
	}
	return 0
}

// notPermitted says why Apply's EPERM err happened and what to do, for a
// kernel of ABI version version.
func notPermitted(version int, err error, sys System) string {
	if version < bpfsandbox.UnprivilegedABI {
		return fmt.Sprintf("not permitted: %v; in Landlock eBPF ABI version %d, creating the map and loading the rule need CAP_BPF and appending the rule needs CAP_SYS_ADMIN (run as root)", err, version)
	}
	var be *bpfsandbox.BPFError
	if !errors.As(err, &be) {
		return fmt.Sprintf("not permitted: %v; in Landlock eBPF ABI version %d, appending the rule needs no_new_privs (which %s set) or CAP_SYS_ADMIN", err, version, Name)
	}
	const sysctl = "kernel.unprivileged_bpf_disabled"
	v, rerr := sys.UnprivBPF()
	switch {
	case rerr != nil:
		return fmt.Sprintf("not permitted: %v; without CAP_BPF, creating the map and loading the rule need the sysctl %s = 0 (reading it: %v): as root, sysctl -w %s=0", err, sysctl, rerr, sysctl)
	case v == "0":
		return fmt.Sprintf("not permitted: %v (the sysctl %s is 0 already: something else refused it)", err, sysctl)
	case v == "1":
		return fmt.Sprintf("not permitted: %v; without CAP_BPF, creating the map and loading the rule need the sysctl %s = 0, and it is 1, which cannot be changed until the next boot: boot with sysctl.%s=0 on the kernel command line, or run as root", err, sysctl, sysctl)
	}
	return fmt.Sprintf("not permitted: %v; without CAP_BPF, creating the map and loading the rule need the sysctl %s = 0 (it is %s): as root, sysctl -w %s=0", err, sysctl, v, sysctl)
}

// directories checks that every dir exists and is a directory, and
// returns them absolute and clean.
func directories(flag string, dirs []string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		fi, err := os.Stat(d)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%s %s: no such directory", flag, d)
		case err != nil:
			return nil, fmt.Errorf("%s %s: %w", flag, d, err)
		case !fi.IsDir():
			return nil, fmt.Errorf("%s %s: not a directory", flag, d)
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, d, err)
		}
		out = append(out, abs)
	}
	return out, nil
}
