package hooks

// Version 4, unprivileged mode: the hook table again, each case in a child
// process that is nobody with no_new_privs and no capability, and that
// loads every rule itself (the recording rule, the deny rules) after the
// drop, in the verifier's unprivileged mode (landlockbpf.RunUnprivileged).
//
// Every case of hookCases runs, in the same order and under the same name.
// Most run as they are: their setup makes its files in a directory of the
// child's own (t.TempDir, created after the drop), so nobody owns them.
// The cases whose operation needs a privilege of its own are changed by
// unprivOverrides, each with its unprivileged answer and why.

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"

	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// userXattrName is the xattr of the xattr cases unprivileged: the trusted
// namespace of xattrName needs CAP_SYS_ADMIN (xattr_permission: EPERM for
// a write, ENODATA for a read, before any hook), the user namespace only
// the file's permission bits.
const userXattrName = "user.landlock_vmtest"

// TestHookTableUnprivileged runs the hook table (unprivHookCases) as an
// unprivileged task: from version 4 on, a rule an unprivileged task
// appends sees every action the table lists, and denies it with EPERM.
func TestHookTableUnprivileged(t *testing.T) {
	ll.SkipUnlessUnprivileged(t)
	// Once for the whole table; each case's RunUnprivileged finds it set.
	ll.AllowUnprivilegedBPF(t)
	runHookTable(t, unprivHookCases(), func(t *testing.T, scenario func(t *testing.T)) {
		ll.RunUnprivileged(t, scenario)
	})
}

// unprivHookCases is hookCases with unprivOverrides applied.
func unprivHookCases() []hookCase {
	out := make([]hookCase, 0, len(hookCases))
	for _, c := range hookCases {
		if f, ok := unprivOverrides[c.hook+"/"+c.name]; ok {
			c = f(c)
		}
		out = append(out, c)
	}
	return out
}

// errCapability is what an operation that needs CAP_SYS_ADMIN gives an
// unprivileged caller when the rules allow it: may_mount()'s EPERM.
func errCapability(*env) error { return unix.EPERM }

// withUserXattr makes an xattr case use userXattrName. For user.* names
// the VFS also asks inode_permission (xattr_permission: MAY_READ for a
// get, MAY_WRITE for a set or a remove) before the xattr hook, with the
// same action on the same file: times is how many of the case's actions
// the rules then see at least (the xattr hook's own and
// inode_permission's). listxattr has no xattr_permission: 1.
func withUserXattr(times int) func(c hookCase) hookCase {
	return func(c hookCase) hookCase {
		c.xattr = userXattrName
		c.want = slices.Clone(c.want)
		for i := range c.want {
			c.want[i].times = times
		}
		return c
	}
}

// mountReachesHook is for mount(2) (new, bind, remount): path_mount() runs
// security_sb_mount() before may_mount(), so the rules see WRITE at the
// mount point as for root (the record phase checks it), and then the
// missing CAP_SYS_ADMIN gives EPERM whether they allow it or deny it.
// Nothing gets mounted. For a remount, sb_remount (in do_remount, after
// may_mount) never runs: only sb_mount's WRITE is seen.
func mountReachesHook(setup func(e *env), times int) func(c hookCase) hookCase {
	return func(c hookCase) hookCase {
		c.setup = setup
		c.want = slices.Clone(c.want)
		for i := range c.want {
			c.want[i].times = times
		}
		c.allowed = errCapability
		return c
	}
}

// refusedBeforeHooks is for the mount-family system calls that call
// may_mount() before they look any path up (fspick, pivot_root,
// move_mount, fsopen): EPERM, and no rule runs at all during them, so a
// rule denying everything changes nothing either.
func refusedBeforeHooks(setup func(e *env), op func(e *env) error, nr uintptr) func(c hookCase) hookCase {
	return func(c hookCase) hookCase {
		c.setup, c.op, c.nr = setup, op, nr
		c.want, c.limits, c.deny, c.denyOn = nil, nil, nil, nil
		c.none = true
		c.permit = []uint64{actAll}
		c.allowed = errCapability
		return c
	}
}

// unprivOverrides change, by hook/name, the cases whose operation needs a
// privilege of its own, into their unprivileged form.
//
// The mount cases: nobody cannot have a mount namespace of its own, where
// the root cases mount: unshare(CLONE_NEWNS) needs CAP_SYS_ADMIN, and
// unshare(CLONE_NEWUSER) a single-threaded process, which a Go test
// binary is not. So the
// unprivileged mount cases work in the initial mount namespace, on plain
// directories, where no mount can succeed: each says where the missing
// CAP_SYS_ADMIN stops it, before or after the hook.
var unprivOverrides = map[string]func(c hookCase) hookCase{
	// The xattr cases: a user.* xattr instead of a trusted.* one.
	"inode_setxattr/fsetxattr":       withUserXattr(2),
	"inode_removexattr/fremovexattr": withUserXattr(2),
	"inode_getxattr/fgetxattr":       withUserXattr(2),
	"inode_listxattr/flistxattr":     withUserXattr(1),

	// mount(2): the hook runs, then EPERM (mountReachesHook).
	"sb_mount/mount_tmpfs": mountReachesHook(func(e *env) { e.mkdir("mnt") }, 1),
	"sb_mount/bind_mount":  mountReachesHook(func(e *env) { e.mkdir("src"); e.mkdir("mnt") }, 1),
	// MS_REMOUNT of a plain directory: no tmpfs can be mounted there
	// first.
	"sb_remount/remount": mountReachesHook(func(e *env) { e.mkdir("mnt") }, 1),

	// umount2(2) looks the path up first (the walk reports EXEC on the
	// directory searched, the phase's), then can_umount()'s may_mount()
	// gives EPERM: sb_umount never runs, so no WRITE on mnt. A rule
	// denying WRITE changes nothing.
	"sb_umount/umount2": func(c hookCase) hookCase {
		c.setup = func(e *env) { e.mkdir("mnt") }
		c.want = []seen{{obj: ".", actions: actExec}}
		c.limits = []limit{{obj: "mnt", actions: actWrite, most: 0}}
		c.deny, c.denyOn = nil, nil
		c.permit = []uint64{actWrite}
		c.allowed = errCapability
		return c
	},

	// fspick(2): the mount to pick cannot be made, and fspick itself
	// calls may_mount() first.
	"sb_remount/fspick_reconfigure": refusedBeforeHooks(
		func(e *env) { e.mkdir("mnt") },
		func(e *env) error {
			fd, err := unix.Fspick(unix.AT_FDCWD, e.path["mnt"], unix.FSPICK_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return err
		},
		unix.SYS_FSPICK),
	// pivot_root(2): no chroot (CAP_SYS_CHROOT) and no mounts to pivot
	// to; pivot_root calls may_mount() first.
	"sb_pivotroot/pivot_root": refusedBeforeHooks(
		func(e *env) { e.mkdir("new"); e.mkdir("new/old") },
		func(e *env) error { return unix.PivotRoot(e.path["new"], e.path["new/old"]) },
		unix.SYS_PIVOT_ROOT),
	// The new mount API: fsopen(2), the first step of the detached
	// tmpfs the root case attaches, calls may_mount() first.
	"move_mount/fsmount_tmpfs": refusedBeforeHooks(
		func(e *env) { e.mkdir("mnt") },
		func(e *env) error {
			fd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return err
		},
		unix.SYS_FSOPEN),
	// open_tree(OPEN_TREE_CLONE) calls may_mount() first too, and so
	// does move_mount(2) itself: here it is asked to move the directory
	// src (a path, not a detached mount) onto mnt.
	"move_mount/open_tree_clone": refusedBeforeHooks(
		func(e *env) { e.mkdir("src"); e.mkdir("mnt") },
		func(e *env) error {
			return unix.MoveMount(unix.AT_FDCWD, e.path["src"], unix.AT_FDCWD, e.path["mnt"], 0)
		},
		unix.SYS_MOVE_MOUNT),
}

// TestUnprivHookTableHasEveryCase checks, on the host too, that the
// unprivileged table drops no case: the same cases, in the same order,
// with the same names and skips; that every override names a case; and
// that every case whose setup makes a private mount namespace, which
// nobody cannot, or uses the trusted xattr, has an override.
func TestUnprivHookTableHasEveryCase(t *testing.T) {
	ids := map[string]bool{}
	for _, c := range hookCases {
		ids[c.hook+"/"+c.name] = true
	}
	for id := range unprivOverrides {
		assert.True(t, ids[id], "override %s names no case of hookCases", id)
	}
	unpriv := unprivHookCases()
	if !assert.Len(t, unpriv, len(hookCases)) {
		return
	}
	for i, c := range hookCases {
		u := unpriv[i]
		id := c.hook + "/" + c.name
		assert.Equal(t, id, u.hook+"/"+u.name, "case %d", i)
		assert.Equal(t, c.skip, u.skip, "%s: the skip", id)
		assert.Equal(t, c.since, u.since, "%s: the version", id)
		if c.skip != "" {
			continue
		}
		assert.NotNil(t, u.op, "%s: no operation", id)
		assert.True(t, u.none != (len(u.want) > 0), "%s: a case either reports actions (want) or none", id)
		_, overridden := unprivOverrides[id]
		if c.hook == "sb_mount" || c.hook == "sb_remount" || c.hook == "sb_umount" || c.hook == "sb_pivotroot" || c.hook == "move_mount" {
			assert.True(t, overridden, "%s: a mount case needs its unprivileged form", id)
			if assert.NotNil(t, u.allowed, "%s: the unprivileged answer", id) {
				assert.ErrorIs(t, u.allowed(nil), unix.EPERM, "%s: the unprivileged answer", id)
			}
		}
		if slices.Contains([]string{"inode_setxattr", "inode_removexattr", "inode_getxattr", "inode_listxattr"}, c.hook) {
			assert.Equal(t, userXattrName, u.xattr, "%s: an xattr case needs a user.* xattr", id)
		}
	}
}
