package sandboxer

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// The steps of usernsMounts, in the order its child takes them.
var usernsSteps = []string{"unshare", "mount", "open_tree", "move_mount", "create", "create2"}

// notRun marks a step of the child that was not reached.
const notRun = ^uint32(0)

// usernsArgs is what rawForkUsernsMounts's child needs, all prepared
// before the fork: it may not allocate.
type usernsArgs struct {
	src, dst, dst2, file, file2, empty *byte
	// report holds the errno of each step of usernsSteps (0: it
	// succeeded, notRun: not reached); the child writes it to reportFD.
	report   [6]uint32
	reportFD int
}

// rawForkUsernsMounts forks the calling thread with a plain fork (clone
// with SIGCHLD, no execve). The child, a single thread, so that unshare
// accepts CLONE_NEWUSER, and one that keeps the full capabilities a new
// user namespace gives (an execve as an unmapped uid would drop them):
//
//  1. unshare(CLONE_NEWUSER|CLONE_NEWNS): CAP_SYS_ADMIN over a mount
//     namespace of its own;
//  2. mount(src, dst, NULL, MS_BIND, NULL);
//  3. open_tree(AT_FDCWD, src, OPEN_TREE_CLONE), a detached copy of src;
//  4. move_mount of that copy onto dst2;
//  5. creates file (beneath dst) and
//  6. file2 (beneath dst2): through the mounts if they were made, in the
//     directories themselves if not;
//
// then writes each step's errno to a.reportFD and exits. It returns the
// child's pid to the parent. Between the fork and its exit the child only
// makes raw system calls from this function, as rawForkOpen in
// tests/seccompentry does (nosplit, no allocation, no call but the raw
// system calls).
//
//go:norace
//go:nosplit
func rawForkUsernsMounts(a *usernsArgs) (pid int, errno syscall.Errno) {
	atFDCWD := int(unix.AT_FDCWD)
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r != 0 {
		return int(r), 0 // the parent
	}
	// The child.
	_, _, e = syscall.RawSyscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER|unix.CLONE_NEWNS, 0, 0)
	a.report[0] = uint32(e)
	if e == 0 {
		_, _, e = syscall.RawSyscall6(unix.SYS_MOUNT, uintptr(unsafe.Pointer(a.src)), uintptr(unsafe.Pointer(a.dst)), 0, unix.MS_BIND, 0, 0)
		a.report[1] = uint32(e)
		tree, _, e := syscall.RawSyscall(unix.SYS_OPEN_TREE, uintptr(atFDCWD), uintptr(unsafe.Pointer(a.src)), unix.OPEN_TREE_CLONE|unix.O_CLOEXEC)
		a.report[2] = uint32(e)
		if e == 0 {
			_, _, e = syscall.RawSyscall6(unix.SYS_MOVE_MOUNT, tree, uintptr(unsafe.Pointer(a.empty)), uintptr(atFDCWD), uintptr(unsafe.Pointer(a.dst2)), unix.MOVE_MOUNT_F_EMPTY_PATH, 0)
			a.report[3] = uint32(e)
		}
		fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(a.file)), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644, 0, 0)
		a.report[4] = uint32(e)
		if e == 0 {
			syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		}
		fd, _, e = syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(a.file2)), unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644, 0, 0)
		a.report[5] = uint32(e)
		if e == 0 {
			syscall.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		}
	}
	syscall.RawSyscall(unix.SYS_WRITE, uintptr(a.reportFD), uintptr(unsafe.Pointer(&a.report[0])), unsafe.Sizeof(a.report))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
}

// usernsMounts runs the child of rawForkUsernsMounts with src, dst, dst2
// and the files dst/escaped and dst2/escaped2, and returns its report:
// "unshare:ok mount:EPERM ..." (landlockbpf.ResultName of each errno,
// "not-run" for a step not reached).
func usernsMounts(src, dst, dst2 string) (string, error) {
	a := &usernsArgs{}
	for _, p := range []struct {
		to   **byte
		path string
	}{{&a.src, src}, {&a.dst, dst}, {&a.dst2, dst2}, {&a.file, dst + "/escaped"}, {&a.file2, dst2 + "/escaped2"}, {&a.empty, ""}} {
		b, err := unix.BytePtrFromString(p.path)
		if err != nil {
			return "", err
		}
		*p.to = b
	}
	for i := range a.report {
		a.report[i] = notRun
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return "", fmt.Errorf("pipe: %w", err)
	}
	defer unix.Close(fds[0])
	a.reportFD = fds[1]
	pid, errno := rawForkUsernsMounts(a)
	unix.Close(fds[1])
	if errno != 0 {
		return "", fmt.Errorf("fork: %w", errno)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("waiting for the forked child %d: %w", pid, err)
		}
		break
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return "", fmt.Errorf("the forked child %d: wait status %#x", pid, uint32(ws))
	}
	buf := make([]byte, unsafe.Sizeof(a.report))
	n, err := unix.Read(fds[0], buf)
	if err != nil || n != len(buf) {
		return "", fmt.Errorf("reading the child's report: %d bytes, %v", n, err)
	}
	var out []string
	for i, step := range usernsSteps {
		e := binary.NativeEndian.Uint32(buf[4*i:])
		res := "not-run"
		switch {
		case e == 0:
			res = "ok"
		case e != notRun:
			res = landlockbpf.ResultName(unix.Errno(e))
		}
		out = append(out, step+":"+res)
	}
	return strings.Join(out, " "), nil
}
