package bpfsandbox

import "golang.org/x/sys/unix"

const goarch = "amd64"

// x32SyscallBit is __X32_SYSCALL_BIT: x32 tasks use the x86_64 numbers
// with this bit set, and AUDIT_ARCH_X86_64 (syscall_get_arch).
const x32SyscallBit = 0x40000000

// The numbers: arch/x86/entry/syscalls/syscall_64.tbl (x86_64, and x32
// for the "common" entries) and syscall_32.tbl (i386) of Linux 6.12.
var mountSyscalls = []MountSyscall{
	{unix.AUDIT_ARCH_X86_64, unix.SYS_MOUNT, "mount (x86_64)"},
	{unix.AUDIT_ARCH_X86_64, unix.SYS_UMOUNT2, "umount2 (x86_64)"},
	{unix.AUDIT_ARCH_X86_64, unix.SYS_MOVE_MOUNT, "move_mount (x86_64)"},
	{unix.AUDIT_ARCH_X86_64, unix.SYS_PIVOT_ROOT, "pivot_root (x86_64)"},
	{unix.AUDIT_ARCH_X86_64, unix.SYS_FSCONFIG, "fsconfig (x86_64)"},
	{unix.AUDIT_ARCH_X86_64, x32SyscallBit | unix.SYS_MOUNT, "mount (x32)"},
	{unix.AUDIT_ARCH_X86_64, x32SyscallBit | unix.SYS_UMOUNT2, "umount2 (x32)"},
	{unix.AUDIT_ARCH_X86_64, x32SyscallBit | unix.SYS_MOVE_MOUNT, "move_mount (x32)"},
	{unix.AUDIT_ARCH_X86_64, x32SyscallBit | unix.SYS_PIVOT_ROOT, "pivot_root (x32)"},
	{unix.AUDIT_ARCH_X86_64, x32SyscallBit | unix.SYS_FSCONFIG, "fsconfig (x32)"},
	{unix.AUDIT_ARCH_I386, 21, "mount (i386)"},
	{unix.AUDIT_ARCH_I386, 22, "umount (i386)"},
	{unix.AUDIT_ARCH_I386, 52, "umount2 (i386)"},
	{unix.AUDIT_ARCH_I386, 429, "move_mount (i386)"},
	{unix.AUDIT_ARCH_I386, 217, "pivot_root (i386)"},
	{unix.AUDIT_ARCH_I386, 431, "fsconfig (i386)"},
}
