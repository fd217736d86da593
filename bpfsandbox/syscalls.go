package bpfsandbox

import "fmt"

// MountSyscall is one system call of the mount family, as a rule finds it
// in the context: the AUDIT_ARCH_* value of the system call ABI the task
// used (arch) and the number of the call in that ABI (syscall_nr).
//
// The rule denies every action of these system calls, whatever its path
// (see the package documentation): mount(2), umount2(2) (and i386's
// umount), move_mount(2), pivot_root(2) and fsconfig(2), which reaches
// the sb_remount hook with FSCONFIG_CMD_RECONFIGURE (reconfigure_super in
// fs/super.c). The other calls of the new mount API, fsopen(2),
// fsmount(2) and open_tree(2), have no hook of their own: the trees they
// make are detached, and only move_mount(2) can attach one. Nor has
// mount_setattr(2), which cannot attach anything either.
type MountSyscall struct {
	// Arch is the ABI's AUDIT_ARCH_* value.
	Arch uint32
	// Nr is the system call's number in that ABI (with x32's
	// __X32_SYSCALL_BIT, which the context keeps).
	Nr uint32
	// Name names the call and its ABI ("mount (x86_64)").
	Name string
}

// MountSyscalls are the mount-family system calls of every ABI a task of
// this architecture (GOARCH) can use: the native one and its compat ABIs
// (i386 and x32 on x86_64, AArch32 on arm64). A kernel without a compat
// ABI never reports its arch; denying its numbers costs nothing.
func MountSyscalls() []MountSyscall {
	return append([]MountSyscall(nil), mountSyscalls...)
}

// checkMountSyscalls returns an error when the rule cannot deny the
// mount-family system calls on this architecture.
func checkMountSyscalls() error {
	if len(mountSyscalls) == 0 {
		return fmt.Errorf("the mount system calls of this architecture (GOARCH=%s) are unknown to bpfsandbox, so its rule cannot deny them: only amd64 and arm64 are supported", goarch)
	}
	return nil
}
