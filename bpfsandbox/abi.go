package bpfsandbox

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NeedABI is the Landlock eBPF ABI version this package needs: version 3
// adds BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath.
const NeedABI = 3

// The numbers of the ABI this package uses (the spec's UAPI sections).
const (
	// ProgTypeLandlock is BPF_PROG_TYPE_LANDLOCK.
	ProgTypeLandlock = 33
	// AttachLandlockFS is BPF_LANDLOCK_FS, the expected attach type of a
	// rule.
	AttachLandlockFS = 57
	// MapTypeLandlockFS is BPF_MAP_TYPE_LANDLOCK_FS (version 3).
	MapTypeLandlockFS = 34
	// FuncGetFSMode is BPF_FUNC_landlock_get_fs_mode.
	FuncGetFSMode = 212
	// FuncFSBeneath is BPF_FUNC_landlock_fs_beneath (version 3).
	FuncFSBeneath = 213

	// SeccompAppendLandlockRule is SECCOMP_APPEND_LANDLOCK_RULE.
	SeccompAppendLandlockRule = 4
	// SeccompLandlockABIVersion is SECCOMP_LANDLOCK_ABI_VERSION.
	SeccompLandlockABIVersion = 1 << 0

	// MaxFSMapEntries is the largest max_entries of a
	// BPF_MAP_TYPE_LANDLOCK_FS map.
	MaxFSMapEntries = 65536

	// CtxOffArch is the offset of arch, the AUDIT_ARCH_* value of the
	// current system call's ABI, in struct landlock_context (__u32).
	CtxOffArch = 8
	// CtxOffSyscallNr is the offset of syscall_nr, the current system
	// call's number, in struct landlock_context (__u32).
	CtxOffSyscallNr = 12
	// CtxOffArg2 is the offset of arg2, the action mask, in struct
	// landlock_context.
	CtxOffArg2 = 32

	// UnprivBPFSysctl is kernel.unprivileged_bpf_disabled: from version
	// 4, a caller without CAP_BPF may create the map and load the rule
	// when it is 0; 1 and 2 refuse them (EPERM), and 1 cannot be changed
	// until the next boot.
	UnprivBPFSysctl = "/proc/sys/kernel/unprivileged_bpf_disabled"
)

// UnprivilegedABI is the first ABI version in which the rule can be
// applied without privilege: with no_new_privs set, which the sandboxer
// does, and kernel.unprivileged_bpf_disabled = 0 for a caller without
// CAP_BPF.
const UnprivilegedABI = 4

// File system actions (LANDLOCK_ACTION_FS_*), the bits of arg2.
const (
	ActionExec   = 1 << 0
	ActionWrite  = 1 << 1
	ActionRead   = 1 << 2
	ActionNew    = 1 << 3
	ActionGet    = 1 << 4
	ActionRemove = 1 << 5
	ActionIoctl  = 1 << 6
	ActionLock   = 1 << 7
	ActionFcntl  = 1 << 8

	// WriteActions are the write-like actions: only beneath rw.
	WriteActions = ActionWrite | ActionNew | ActionRemove
)

// seccomp calls seccomp(2).
func seccomp(op, flags uintptr, args unsafe.Pointer) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, op, flags, uintptr(args))
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// ABIVersion asks the running kernel for its Landlock eBPF ABI version
// (seccomp(SECCOMP_APPEND_LANDLOCK_RULE, SECCOMP_LANDLOCK_ABI_VERSION,
// NULL), which needs no privilege). The error wraps the errno: EINVAL
// when the kernel has no Landlock eBPF rules, EOPNOTSUPP when Landlock is
// not enabled at boot, ENOSYS without seccomp(2).
func ABIVersion() (int, error) {
	v, err := seccomp(SeccompAppendLandlockRule, SeccompLandlockABIVersion, nil)
	if err != nil {
		return 0, fmt.Errorf("seccomp(SECCOMP_APPEND_LANDLOCK_RULE, SECCOMP_LANDLOCK_ABI_VERSION, NULL): %w", errnoText(err))
	}
	return int(v), nil
}

// UnsupportedError says what the running kernel lacks.
type UnsupportedError struct {
	// Version is the ABI version the kernel reported, 0 when the query
	// failed.
	Version int
	// Err is why the query failed, nil when it answered.
	Err error
}

// Error names what the kernel lacks, in one sentence without a prefix.
func (e *UnsupportedError) Error() string {
	need := fmt.Sprintf("this needs Landlock eBPF ABI version %d (BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath)", NeedABI)
	switch {
	case e.Err == nil:
		return fmt.Sprintf("the running kernel reports Landlock eBPF ABI version %d; this needs version %d (BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath)", e.Version, NeedABI)
	case errors.Is(e.Err, unix.EINVAL):
		return fmt.Sprintf("the running kernel has no Landlock eBPF rules (CONFIG_SECURITY_LANDLOCK_BPF): seccomp(2) does not know SECCOMP_APPEND_LANDLOCK_RULE (%v); %s", e.Err, need)
	case errors.Is(e.Err, unix.EOPNOTSUPP):
		return fmt.Sprintf("the running kernel has Landlock eBPF rules but Landlock is not enabled at boot (add landlock to lsm=): %v; %s", e.Err, need)
	case errors.Is(e.Err, unix.ENOSYS):
		return fmt.Sprintf("the running kernel has no seccomp(2) (%v); %s", e.Err, need)
	}
	return fmt.Sprintf("asking the running kernel for its Landlock eBPF ABI version failed: %v; %s", e.Err, need)
}

// Unwrap returns the query's error.
func (e *UnsupportedError) Unwrap() error { return e.Err }

// CheckVersion turns the answer of ABIVersion into nil when the kernel
// can run what this package builds, else an *UnsupportedError.
func CheckVersion(version int, err error) error {
	if err != nil {
		return &UnsupportedError{Err: err}
	}
	if version < NeedABI {
		return &UnsupportedError{Version: version}
	}
	return nil
}

// Check asks the running kernel whether it has Landlock eBPF ABI version
// NeedABI or later: nil if so, else an *UnsupportedError.
func Check() error {
	return CheckVersion(ABIVersion())
}

// errnoText formats err, naming its errno ("EPERM (operation not
// permitted)"), and keeps it for errors.Is and errors.As.
func errnoText(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return &namedErrno{errno: errno, name: name}
		}
	}
	return err
}

// errnoName returns " (NAME)" for the errno err wraps, or "".
func errnoName(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return " (" + name + ")"
		}
	}
	return ""
}

// namedErrno is an errno that prints its name with its text.
type namedErrno struct {
	errno unix.Errno
	name  string
}

func (e *namedErrno) Error() string { return e.name + " (" + e.errno.Error() + ")" }
func (e *namedErrno) Unwrap() error { return e.errno }
