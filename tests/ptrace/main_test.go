// Package ptrace checks, in the guest, the ptrace restriction of Landlock
// eBPF rules (../shared/spec/landlock-bpf-abi.md, "Version 4"): a task may
// reach another with ptrace(2) (PTRACE_ATTACH, PTRACE_SEIZE, and
// PTRACE_TRACEME from the tracee's side) and with every other user of
// ptrace_may_access() (/proc/PID/mem and the other /proc/PID files,
// process_vm_readv(2), pidfd_getfd(2), kcmp(2), get_robust_list(2)) only
// if the other's domain is its own or nested below it; a task without a
// domain is not restricted; a task's own thread group is never refused.
//
// Rules are per thread and a Go program's goroutines move between
// threads, so every task of a case is a process of its own: this test
// binary run again as a helper, which does what the test tells it on its
// main thread, one command a line on its standard input and one reply a
// line on its standard output. The test drives a chain of helpers, each
// the child of the one before (chain_test.go): when each appends a rule
// and when it starts the next, then which operation each tries on which
// other. The test process itself never appends a rule.
//
// Every test skips on the host and on kernels below ABI version 4.
package ptrace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// Every helper command runs on the main thread, the thread whose id is
// the process's PID: the one that holds the helper's rules, that traces
// and that the others trace or read. Locking the OS thread in an init
// function keeps the main goroutine on the main thread (see
// runtime.LockOSThread); in the test process it only pins the goroutine
// that waits for the tests. Locking it before any rule is appended also
// keeps the helper's domain to that thread: the Go runtime starts the
// threads it needs later from a thread of its own, not from a locked one.
func init() { runtime.LockOSThread() }

// The helper: this test binary run with helperEnv set. Its standard input
// and output are its command and reply pipes; the pipes of the helpers
// after it in the chain, pipesEnv pairs of them (command read end, reply
// write end), are its fds 3, 4, 5... Commands (PID, ADDR in decimal or
// 0x-hexadecimal):
//
//	append           load an allow-all Landlock rule and append it: a rule's
//	                 verdict plays no part in the ptrace restriction, its
//	                 domain does
//	spawn            start the next helper of the chain, a child of the main
//	                 thread, on the first pair of pipes; reply "ok PID"
//	status           "ok uid=UID capeff=HEX no_new_privs=BOOL"
//	addr             "ok ADDR": where vmProbe is
//	attach PID       PTRACE_ATTACH; once allowed, wait for the tracee's stop
//	                 and PTRACE_DETACH
//	seize PID        PTRACE_SEIZE; once allowed, PTRACE_INTERRUPT, wait for
//	                 the stop and PTRACE_DETACH
//	mem PID          open /proc/PID/mem read-write and close it
//	cwd PID          readlink /proc/PID/cwd
//	vmread PID ADDR  process_vm_readv 8 bytes at ADDR of PID: must be vmProbe
//	getfd PID        pidfd_open(PID), then pidfd_getfd of PID's fd 0
//	kcmp PID         kcmp(self, PID, KCMP_VM)
//	robust PID       get_robust_list(PID)
//	traceme          PTRACE_TRACEME; once allowed, the helper stays traced by
//	                 its parent until the parent's untrace
//	untrace PID      stop the tracee PID (SIGSTOP), wait for the stop and
//	                 PTRACE_DETACH
//
// The reply is "ok" (with a value for some), the errno's name of the call
// under test (EPERM), or "error: ..." when anything else went wrong. At
// the end of its input the helper waits for the helper it started, and
// exits.
const (
	helperEnv = "LANDLOCK_VMTEST_PTRACE_HELPER"
	pipesEnv  = "LANDLOCK_VMTEST_PTRACE_PIPES"
)

// vmProbe is what process_vm_readv must read.
var vmProbe uint64 = 0x6b636f6c646e616c // "landlock"

// kcmpVM is KCMP_VM of enum kcmp_type (linux/kcmp.h).
const kcmpVM = 1

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// helper is the state of a helper process.
type helper struct {
	pipes int       // pairs of pipes left for the next helpers
	child *exec.Cmd // the helper it started, if any
}

// helperMain runs the helper's commands.
func helperMain(in io.Reader, out, stderr io.Writer) int {
	// A task whose credentials changed is not dumpable, and the ptrace
	// checks refuse a task that is not dumpable to a tracer without
	// CAP_SYS_PTRACE: set it, so that only the rules can refuse.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(stderr, "ptrace helper: PR_SET_DUMPABLE: %v\n", err)
		return 2
	}
	n, err := strconv.Atoi(os.Getenv(pipesEnv))
	if err != nil {
		fmt.Fprintf(stderr, "ptrace helper: %s: %v\n", pipesEnv, err)
		return 2
	}
	h := &helper{pipes: n}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fmt.Fprintln(out, h.do(strings.Fields(sc.Text())))
	}
	if h.child != nil {
		if err := h.child.Wait(); err != nil {
			fmt.Fprintf(stderr, "ptrace helper %d: the next helper, %d: %v\n", os.Getpid(), h.child.Process.Pid, err)
			return 1
		}
	}
	return 0
}

// do runs one command and returns its reply.
func (h *helper) do(args []string) string {
	if len(args) == 0 {
		return "error: empty command"
	}
	pid := func(i int) (int, error) {
		if len(args) <= i {
			return 0, errors.New("missing argument")
		}
		v, err := strconv.ParseInt(args[i], 0, 64)
		return int(v), err
	}
	var err error
	switch args[0] {
	case "append":
		err = appendAllowAll()
	case "spawn":
		var p int
		if p, err = h.spawn(); err == nil {
			return fmt.Sprintf("ok %d", p)
		}
		return "error: " + err.Error()
	case "status":
		st, err := privdrop.Current()
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprintf("ok uid=%d capeff=%#x no_new_privs=%t", st.UID[1], st.CapEff, st.NoNewPrivs)
	case "addr":
		return fmt.Sprintf("ok %#x", uintptr(unsafe.Pointer(&vmProbe)))
	case "traceme":
		err = traceme()
	default:
		op, ok := tracerOps[args[0]]
		if !ok {
			return fmt.Sprintf("error: unknown command %q", args[0])
		}
		var target, addr int
		if target, err = pid(1); err != nil {
			return fmt.Sprintf("error: %q: %v", args, err)
		}
		if args[0] == "vmread" {
			if addr, err = pid(2); err != nil {
				return fmt.Sprintf("error: %q: %v", args, err)
			}
		}
		err = op(target, uintptr(addr))
	}
	return reply(err)
}

// reply names the outcome of a command: "ok", the errno's name when the
// call under test failed, or "error: ..." (a wrapped errno is not the
// call under test's).
func reply(err error) string {
	if err == nil {
		return "ok"
	}
	if errno, ok := err.(unix.Errno); ok && unix.ErrnoName(errno) != "" {
		return unix.ErrnoName(errno)
	}
	return "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
}

// appendAllowAll loads an allow-all rule and appends it to the calling
// thread's domain.
func appendAllowAll() error {
	p, err := landlockbpf.Load(landlockbpf.Allow)
	if err != nil {
		return fmt.Errorf("%v", err)
	}
	defer p.Close()
	if err := landlockbpf.Append(p); err != nil {
		return fmt.Errorf("%v", err)
	}
	return nil
}

// spawn starts the next helper of the chain from the calling (main)
// thread, on the first pair of pipes, and hands it the others.
func (h *helper) spawn() (int, error) {
	if h.child != nil || h.pipes < 1 {
		return 0, fmt.Errorf("no pipes for another helper (%d pairs left, started one: %v)", h.pipes, h.child != nil)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	files := make([]*os.File, 2*h.pipes)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), fmt.Sprintf("pipe-%d", i))
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", pipesEnv, h.pipes-1))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], os.Stderr
	cmd.ExtraFiles = files[2:]
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	h.child, h.pipes = cmd, 0
	return cmd.Process.Pid, nil
}

// tracerOps are the commands that reach another task, by name.
var tracerOps = map[string]func(pid int, addr uintptr) error{
	"attach": func(pid int, _ uintptr) error { return attach(pid) },
	"seize":  func(pid int, _ uintptr) error { return seize(pid) },
	"mem": func(pid int, _ uintptr) error {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/mem", pid), unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	},
	"cwd": func(pid int, _ uintptr) error {
		_, err := unix.Readlink(fmt.Sprintf("/proc/%d/cwd", pid), make([]byte, unix.PathMax))
		return err
	},
	"vmread":  vmRead,
	"getfd":   func(pid int, _ uintptr) error { return getFD(pid, 0, 0) },
	"kcmp":    func(pid int, _ uintptr) error { return kcmp(unix.Getpid(), pid) },
	"robust":  func(pid int, _ uintptr) error { return getRobustList(pid) },
	"untrace": func(pid int, _ uintptr) error { return untrace(pid) },
}

// attach attaches to pid with PTRACE_ATTACH and, once attached, waits for
// the stop of its SIGSTOP and detaches, the SIGSTOP dropped.
func attach(pid int) error {
	if err := unix.PtraceAttach(pid); err != nil {
		return err
	}
	if err := waitStop(pid, isSignalStop(unix.SIGSTOP)); err != nil {
		return fmt.Errorf("attached, but %v", err)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fmt.Errorf("attached, but PTRACE_DETACH: %v", err)
	}
	return nil
}

// seize attaches to pid with PTRACE_SEIZE and, once attached, stops it
// with PTRACE_INTERRUPT (PTRACE_DETACH needs a stopped tracee) and
// detaches.
func seize(pid int) error {
	if err := unix.PtraceSeize(pid); err != nil {
		return err
	}
	if err := unix.PtraceInterrupt(pid); err != nil {
		return fmt.Errorf("seized, but PTRACE_INTERRUPT: %v", err)
	}
	if err := waitStop(pid, isEventStop); err != nil {
		return fmt.Errorf("seized, but %v", err)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fmt.Errorf("seized, but PTRACE_DETACH: %v", err)
	}
	return nil
}

// traceme makes the calling thread a tracee of its parent.
func traceme() error {
	if _, _, e := unix.Syscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0); e != 0 {
		return e
	}
	return nil
}

// untrace ends the tracing of pid, a tracee of the calling thread that may
// be running: it stops it with SIGSTOP, waits for the stop and detaches,
// the SIGSTOP dropped.
func untrace(pid int) error {
	if err := unix.Tgkill(pid, pid, unix.SIGSTOP); err != nil {
		return fmt.Errorf("tgkill(%d, SIGSTOP): %v", pid, err)
	}
	if err := waitStop(pid, isSignalStop(unix.SIGSTOP)); err != nil {
		return fmt.Errorf("%v", err)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fmt.Errorf("PTRACE_DETACH: %v", err)
	}
	return nil
}

// isSignalStop is the signal-delivery stop of sig.
func isSignalStop(sig unix.Signal) func(unix.WaitStatus) bool {
	return func(ws unix.WaitStatus) bool { return ws.StopSignal() == sig && ptraceEvent(ws) == 0 }
}

// isEventStop is the stop of PTRACE_INTERRUPT (PTRACE_EVENT_STOP).
func isEventStop(ws unix.WaitStatus) bool { return ptraceEvent(ws) == unix.PTRACE_EVENT_STOP }

// ptraceEvent is the PTRACE_EVENT_* of a stop, 0 for a signal-delivery
// stop.
func ptraceEvent(ws unix.WaitStatus) int { return int(uint32(ws) >> 16) }

// waitStop waits until the tracee pid is in the stop want describes. A
// stop for another signal that reached the tracee first (one of the Go
// runtime's, say) is let through: the tracee gets its signal and goes on.
func waitStop(pid int, want func(unix.WaitStatus) bool) error {
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
			if err == unix.EINTR {
				continue
			}
			return fmt.Errorf("waiting for the tracee %d: %v", pid, err)
		}
		if !ws.Stopped() {
			return fmt.Errorf("the tracee %d ended: wait status %#x", pid, uint32(ws))
		}
		if want(ws) {
			return nil
		}
		sig := 0
		if ptraceEvent(ws) == 0 {
			sig = int(ws.StopSignal())
		}
		// A task attached with PTRACE_ATTACH while its execve(2)
		// was still running gets a SIGTRAP when the exec is done
		// (exec.Cmd.Start returns once the exec has closed the
		// close-on-exec pipe, before that): it is ptrace's, not the
		// tracee's, and passing it on kills the new program.
		if sig == int(unix.SIGTRAP) {
			sig = 0
		}
		if err := unix.PtraceCont(pid, sig); err != nil {
			return fmt.Errorf("letting the tracee %d go on after the stop %#x: %v", pid, uint32(ws), err)
		}
	}
}

// vmRead reads 8 bytes at addr in pid with process_vm_readv(2): they must
// be vmProbe.
func vmRead(pid int, addr uintptr) error {
	var got uint64
	local := []unix.Iovec{{Base: (*byte)(unsafe.Pointer(&got))}}
	local[0].SetLen(int(unsafe.Sizeof(got)))
	remote := []unix.RemoteIovec{{Base: addr, Len: int(unsafe.Sizeof(got))}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	if err != nil {
		return err
	}
	if n != int(unsafe.Sizeof(got)) || got != vmProbe {
		return fmt.Errorf("process_vm_readv read %d bytes, %#x, want %#x", n, got, vmProbe)
	}
	return nil
}

// getFD takes a copy of the fd targetFD of pid with pidfd_getfd(2), through
// a pidfd opened with pidfdFlags (unix.PIDFD_THREAD for a thread), and
// closes it.
func getFD(pid, targetFD, pidfdFlags int) error {
	pidfd, err := unix.PidfdOpen(pid, pidfdFlags)
	if err != nil {
		return fmt.Errorf("pidfd_open(%d): %v", pid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, targetFD, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// kcmp compares the address spaces of pid1 and pid2 with kcmp(2); it
// returns only whether the call was allowed.
func kcmp(pid1, pid2 int) error {
	if _, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), kcmpVM, 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

// getRobustList asks for the robust futex list of pid.
func getRobustList(pid int) error {
	var head, size uintptr
	if _, _, e := unix.Syscall(unix.SYS_GET_ROBUST_LIST, uintptr(pid), uintptr(unsafe.Pointer(&head)), uintptr(unsafe.Pointer(&size))); e != 0 {
		return e
	}
	return nil
}
