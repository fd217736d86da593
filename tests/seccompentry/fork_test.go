package seccompentry

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawForkOpen forks the calling thread with a plain fork (clone with
// SIGCHLD and nothing else, no execve): the child opens path and exits
// with the errno it got, 0 if it opened the file. It returns the child's
// pid to the parent.
//
// The child of a multithreaded Go program has one thread left and a
// runtime that must not run: between the fork and its exit the child only
// makes raw system calls from this function, which must therefore not grow
// its stack (nosplit), allocate, or call anything but the raw system
// calls, as the child side of syscall.forkAndExecInChild1 does.
//
//go:norace
//go:nosplit
func rawForkOpen(path *byte) (pid int, errno syscall.Errno) {
	atFDCWD := int(unix.AT_FDCWD)
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r != 0 {
		return int(r), 0 // the parent
	}
	// The child.
	_, _, e = syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)), unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(e), 0, 0)
	}
}

// forkOpen opens path in a child forked from the calling thread, without
// execve, and returns the errno the child got, nil if it opened the file.
func forkOpen(path string) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	pid, errno := rawForkOpen(p)
	if errno != 0 {
		return fmt.Errorf("fork: %w", errno)
	}
	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("waiting for the forked child %d: %w", pid, err)
	}
	if !ws.Exited() {
		return fmt.Errorf("the forked child %d did not exit: wait status %#x", pid, uint32(ws))
	}
	if ws.ExitStatus() != 0 {
		return unix.Errno(ws.ExitStatus())
	}
	return nil
}
