// Package bpfsandbox confines a process with Landlock eBPF rules, ABI
// version 3 or later of this project's patch series
// (../shared/spec/landlock-bpf-abi.md in the project's shared files):
// "read anything, write only beneath these directories, mount nothing",
// and optionally "and touch nothing outside these other ones". From
// version 4 it needs no privilege.
//
// # The pieces
//
// FSMap is a BPF_MAP_TYPE_LANDLOCK_FS map (type 34): an array whose values
// are open file descriptors when written, kept by the kernel as the paths
// they name. Rule builds the program that asks bpf_landlock_fs_beneath
// (helper 213) whether the object of the current action is at or beneath
// one of a map's paths. Apply does everything at once for the calling
// thread: the maps, frozen, the rule, loaded as a BPF_PROG_TYPE_LANDLOCK
// program (type 33, expected attach type BPF_LANDLOCK_FS, 57), and
// appended to the thread's domain with seccomp(SECCOMP_APPEND_LANDLOCK_RULE).
// ABIVersion and Check ask the kernel whether it can do this.
//
// # What the rule allows and denies
//
// Rule(rw, ro) runs once for every object of every file system action (the
// spec's hook table) and returns 0 to allow, 1 to deny (the action fails
// with EPERM):
//
//   - Every action of a mount-family system call is denied, whatever its
//     object: mount(2) (bind, move, remount, new superblocks, propagation
//     changes), umount2(2), move_mount(2), pivot_root(2) and fsconfig(2)
//     (its FSCONFIG_CMD_RECONFIGURE reaches the sb_remount hook). The rule
//     tells them apart by the context's arch (the AUDIT_ARCH_* value of
//     the system call's ABI) and syscall_nr, for the native ABI and the
//     compat ones (MountSyscalls: x86_64, x32 and i386 on amd64; aarch64
//     and AArch32 on arm64). A mount's hook reports WRITE at the mount
//     point, so without this a mount point beneath an rw directory would
//     be allowed, and a process that can mount (CAP_SYS_ADMIN, or, in
//     version 4, any process in a user and mount namespace of its own,
//     unshare(CLONE_NEWUSER|CLONE_NEWNS)) could bind-mount any directory
//     beneath an rw one and write through the new names. fsopen(2),
//     fsmount(2) and open_tree(2) have no hook of their own (the trees
//     they make are detached, and only move_mount(2) attaches one), nor
//     has mount_setattr(2), which attaches nothing: they are not denied.
//     The path walks of these calls run the rule too (path-less runs), so
//     they fail with EPERM at the first of them.
//   - Character devices (bpf_landlock_get_fs_mode says S_IFCHR) are always
//     allowed, so that writing to the terminal, /dev/null and /dev/tty
//     keeps working: file_permission judges every write(2), also through
//     the descriptors a process inherited before the rule.
//   - A write-like action (WRITE, NEW or REMOVE in the action mask) is
//     denied exactly when bpf_landlock_fs_beneath(ctx, rw, 0) answers 0:
//     the object (for NEW, the directory the entry is made in) is not at
//     or beneath any rw directory.
//   - Any other action (READ, EXEC, GET, IOCTL, LOCK, FCNTL) is allowed
//     when ro is nil: "read anything". With ro, it is denied exactly when
//     both bpf_landlock_fs_beneath(ctx, ro, 0) and (ctx, rw, 0) answer 0:
//     "no access outside the ro and rw directories".
//
// An answer of -ENOENT allows. The kernel gives it for the runs of an
// action that have no path to judge: inode_permission (inode only: path
// walks, may_open, faccessat), anonymous memory, and objects on internal
// file systems (pipes, sockets, anonymous inodes, memfd, nsfs, pidfs). A
// path-less run never comes alone: the open, write, create, unlink or mmap
// it belongs to also runs the rule with the path (file_open,
// file_permission, the path_* hooks, mmap_file), and that run decides. So
// a write to a pipe is allowed, a directory outside the ro directories can
// still be walked through (its MAY_EXEC run is path-less) but not listed
// or opened, and no write-like action outside rw gets through.
// IOCTL, LOCK and FCNTL are not write-like: a terminal's TCGETS works.
//
// What the rule cannot stop (the spec and the series' documentation say
// more): O_TMPFILE outside rw opens, though nothing can be written to it
// or linked; IOCTLs on writable descriptors are not judged; mounts made
// before the rule (by another process, or in a mount namespace the
// process shares) stay where they are.
//
// # Threads
//
// Landlock eBPF rules belong to the thread that appends them (no version
// has TSYNC), as does no_new_privs, and are inherited across fork, clone and execve. Go runs
// goroutines on several threads, so a caller of Apply locks its goroutine
// to its thread (runtime.LockOSThread) first and does what must be
// confined on that thread; a sandboxer applies the rule and then execve(2)s
// its target on the same thread, as package cli does.
//
// # Privilege
//
// In version 3, creating the map and loading the program need CAP_BPF and
// appending the rule needs CAP_SYS_ADMIN (in the initial user namespace).
// From version 4 (UnprivilegedABI), appending needs no_new_privs on the
// appending thread or CAP_SYS_ADMIN (SetNoNewPrivs sets the flag; package
// cli sets it before every append from version 4, so that the program it
// executes never gains privileges), and a caller without CAP_BPF may
// create the map and load the rule when kernel.unprivileged_bpf_disabled
// (UnprivBPFSysctl) is 0: with 1 or 2, bpf(2) refuses them with EPERM
// (a *BPFError). Distributions ship 2; 1 cannot be undone until the next
// boot. The verifier then runs in its unprivileged mode, which the rule
// passes (no stack, no loops, no pointer stored or compared).
package bpfsandbox
