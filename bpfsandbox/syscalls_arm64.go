package bpfsandbox

import "golang.org/x/sys/unix"

const goarch = "arm64"

// The numbers: scripts/syscall.tbl (arm64's native table) and
// arch/arm64/tools/syscall_32.tbl (AArch32 compat, EABI: it has no
// umount) of Linux 6.12.
var mountSyscalls = []MountSyscall{
	{unix.AUDIT_ARCH_AARCH64, unix.SYS_MOUNT, "mount (aarch64)"},
	{unix.AUDIT_ARCH_AARCH64, unix.SYS_UMOUNT2, "umount2 (aarch64)"},
	{unix.AUDIT_ARCH_AARCH64, unix.SYS_MOVE_MOUNT, "move_mount (aarch64)"},
	{unix.AUDIT_ARCH_AARCH64, unix.SYS_PIVOT_ROOT, "pivot_root (aarch64)"},
	{unix.AUDIT_ARCH_AARCH64, unix.SYS_FSCONFIG, "fsconfig (aarch64)"},
	{unix.AUDIT_ARCH_ARM, 21, "mount (arm)"},
	{unix.AUDIT_ARCH_ARM, 52, "umount2 (arm)"},
	{unix.AUDIT_ARCH_ARM, 429, "move_mount (arm)"},
	{unix.AUDIT_ARCH_ARM, 218, "pivot_root (arm)"},
	{unix.AUDIT_ARCH_ARM, 431, "fsconfig (arm)"},
}
