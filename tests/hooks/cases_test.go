package hooks

import (
	"golang.org/x/sys/unix"

	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// Short names of the actions.
const (
	actExec   = ll.ActionExec
	actWrite  = ll.ActionWrite
	actRead   = ll.ActionRead
	actNew    = ll.ActionNew
	actGet    = ll.ActionGet
	actRemove = ll.ActionRemove
	actIoctl  = ll.ActionIoctl
	actLock   = ll.ActionLock
	actFcntl  = ll.ActionFcntl

	actAll = actExec | actWrite | actRead | actNew | actGet | actRemove | actIoctl | actLock | actFcntl
)

// seen is an action a rule must see during the operation: obj is the name
// of the object in env.ino ("" for none: arg1 is then 0), actions is arg2
// and cmd is syscall_cmd. The operation's system call is the case's nr. At
// least times (1 if zero) such actions must be seen, on kernels of ABI
// version since or later (any version if zero).
type seen struct {
	obj     string
	actions uint64
	cmd     uint32
	times   int
	since   int
}

// denial is a rule that denies actions (a mask) on the object obj of
// env.ino alone.
type denial struct {
	obj     string
	actions uint64
}

// limit bounds what a rule may see during the operation: no more than
// most actions of the case's system call about obj ("" for none: arg1 is
// 0) whose arg2 has a bit of the mask actions.
type limit struct {
	obj     string
	actions uint64
	most    int
}

// hookCase is one operation that triggers a hook of the table.
type hookCase struct {
	// hook is the row of the spec's hook table (the LSM hook), name
	// the operation.
	hook, name string
	// skip, if set, is why the case cannot run.
	skip string
	// since is the first ABI version that has the case (any if zero):
	// on older kernels it is skipped.
	since int
	// setup makes what op needs, on the rule thread before the rule.
	setup func(e *env)
	// op is the operation under test, one system call: nr, a unix.SYS_*
	// constant, so the number of the test binary's GOARCH. Each op is a
	// golang.org/x/sys/unix call that makes that very system call on
	// amd64 and on arm64 alike (unix.Stat is newfstatat, unix.Renameat
	// renameat, which arm64 has too, unix.FcntlInt fcntl, unix.Mmap
	// mmap), so nr holds on both.
	op func(e *env) error
	nr uintptr
	// want is what the recording rule must see; limits what it may.
	want   []seen
	limits []limit
	// none: the operation reports no action at all (no rule runs), so
	// that even a rule denying everything allows it.
	none bool
	// deny lists masks of actions: a rule that denies one of them must
	// make op fail with EPERM (or with denied, if set).
	deny   []uint64
	denied error
	// denyOn lists rules that deny actions on one object only: each
	// must make op fail as a rule of deny does.
	denyOn []denial
	// permit lists masks of actions that op does not report: a rule
	// denying one of them must allow op.
	permit []uint64
	// allowed, if set, returns the error op gives when the rules allow
	// it (the file system's own answer); nil otherwise.
	allowed func(e *env) error
	// xattr, if set, is the name of the extended attribute that the
	// setup sets and the xattr operations use (env.xattr), instead of
	// xattrName.
	xattr string
}

// unrelated is the mask of the "unrelated action" phase: the actions of
// ioctl, lock and fcntl that the case does not use.
func (c hookCase) unrelated() uint64 {
	used := uint64(0)
	for _, w := range c.want {
		used |= w.actions
	}
	for _, d := range c.deny {
		used |= d
	}
	for _, d := range c.denyOn {
		used |= d.actions
	}
	return (actIoctl | actLock | actFcntl) &^ used
}

// fionread is FIONREAD, which x/sys/unix calls TIOCINQ: for a regular
// file, the bytes left to read.
const fionread = unix.TIOCINQ

func xattrAllowed(e *env) error { return e.xattrErr }

// File setups.
func withFile(e *env)     { e.file("f", 0o644, "landlock-vmtest\n") }
func withExecFile(e *env) { e.file("f", 0o755, "#!/bin/true\n") }
func withFileFD(flags int) func(e *env) {
	return func(e *env) { withFile(e); e.open("f", flags) }
}
func withXattr(e *env) { withFile(e); e.open("f", unix.O_RDONLY); e.setXattr("f") }

var hookCases = []hookCase{
	// file_open, file_receive: GET.
	{
		hook: "file_open", name: "open_rdonly",
		setup: withFile,
		op:    func(e *env) error { return openClose(e.path["f"], unix.O_RDONLY) },
		nr:    unix.SYS_OPENAT,
		// file_open, then inode_permission(MAY_OPEN|MAY_READ); from
		// version 3, file_open again with the access the file is
		// opened for.
		want: []seen{
			{obj: "f", actions: actGet}, {obj: "f", actions: actRead | actGet},
			{obj: "f", actions: actRead, since: 3},
		},
		deny: []uint64{actGet},
	},
	{
		// Version 3: file_open's second run has the access of the
		// open, READ|WRITE for O_RDWR, with the file's inode; a rule
		// denying WRITE on the file alone denies the open.
		hook: "file_open", name: "open_rdwr_access",
		since: 3,
		setup: withFile,
		op:    func(e *env) error { return openClose(e.path["f"], unix.O_RDWR) },
		nr:    unix.SYS_OPENAT,
		want: []seen{
			{obj: "f", actions: actGet}, {obj: "f", actions: actRead | actWrite | actGet},
			{obj: "f", actions: actRead | actWrite},
		},
		deny:   []uint64{actGet, actWrite},
		denyOn: []denial{{obj: "f", actions: actWrite}},
	},
	{
		hook: "file_open", name: "open_wronly_access",
		since: 3,
		setup: withFile,
		op:    func(e *env) error { return openClose(e.path["f"], unix.O_WRONLY) },
		nr:    unix.SYS_OPENAT,
		want: []seen{
			{obj: "f", actions: actGet}, {obj: "f", actions: actWrite | actGet},
			{obj: "f", actions: actWrite},
		},
		// No run reads the file: the second run has WRITE alone.
		limits: []limit{{obj: "f", actions: actRead, most: 0}},
		deny:   []uint64{actGet, actWrite},
	},
	{
		hook: "file_receive", name: "scm_rights",
		setup: func(e *env) {
			withFileFD(unix.O_RDONLY)(e)
			e.socketpair()
			e.sendFD("f")
		},
		op:   func(e *env) error { return recvFD(e.fd["s1"]) },
		nr:   unix.SYS_RECVMSG,
		want: []seen{{obj: "f", actions: actGet}},
		deny: []uint64{actGet},
		// recvmsg(2) does not fail when the LSM refuses a passed fd:
		// scm_detach_fds() drops it and sets MSG_CTRUNC.
		denied: errFDDropped,
	},
	{
		hook: "file_receive", name: "pidfd_getfd",
		setup: func(e *env) { withFileFD(unix.O_RDONLY)(e); e.pidfd() },
		op: func(e *env) error {
			fd, err := unix.PidfdGetfd(e.fd["pidfd"], e.fd["f"], 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		},
		nr:   unix.SYS_PIDFD_GETFD,
		want: []seen{{obj: "f", actions: actGet}},
		deny: []uint64{actGet},
	},

	// inode_permission, file_permission: the MAY_* mask.
	{
		hook: "inode_permission", name: "may_exec",
		setup: func(e *env) { withExecFile(e); e.open("f", unix.O_PATH) },
		op:    func(e *env) error { return unix.Faccessat2(e.fd["f"], "", unix.X_OK, unix.AT_EMPTY_PATH) },
		nr:    unix.SYS_FACCESSAT2,
		want:  []seen{{obj: "f", actions: actExec}},
		deny:  []uint64{actExec},
	},
	{
		hook: "inode_permission", name: "may_read",
		setup: func(e *env) { withFile(e); e.open("f", unix.O_PATH) },
		op:    func(e *env) error { return unix.Faccessat2(e.fd["f"], "", unix.R_OK, unix.AT_EMPTY_PATH) },
		nr:    unix.SYS_FACCESSAT2,
		want:  []seen{{obj: "f", actions: actRead}},
		deny:  []uint64{actRead},
	},
	{
		hook: "inode_permission", name: "may_write",
		setup: func(e *env) { withFile(e); e.open("f", unix.O_PATH) },
		op:    func(e *env) error { return unix.Faccessat2(e.fd["f"], "", unix.W_OK, unix.AT_EMPTY_PATH) },
		nr:    unix.SYS_FACCESSAT2,
		want:  []seen{{obj: "f", actions: actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		hook: "inode_permission", name: "may_access_alone",
		setup: func(e *env) { withFile(e); e.open("f", unix.O_PATH) },
		op:    func(e *env) error { return unix.Faccessat2(e.fd["f"], "", unix.F_OK, unix.AT_EMPTY_PATH) },
		nr:    unix.SYS_FACCESSAT2,
		none:  true,
		// MAY_ACCESS alone is no action: not even a rule denying all
		// of them is asked.
		permit: []uint64{actAll},
	},
	{
		hook: "inode_permission", name: "may_open_append",
		setup: withFile,
		op:    func(e *env) error { return openClose(e.path["f"], unix.O_WRONLY|unix.O_APPEND) },
		nr:    unix.SYS_OPENAT,
		// MAY_OPEN|MAY_WRITE|MAY_APPEND, then file_open, and from
		// version 3 file_open's second run, with the access: WRITE.
		want: []seen{
			{obj: "f", actions: actWrite | actGet}, {obj: "f", actions: actGet},
			{obj: "f", actions: actWrite, since: 3},
		},
		deny: []uint64{actWrite, actGet},
	},
	{
		hook: "file_permission", name: "read",
		setup: withFileFD(unix.O_RDONLY),
		op: func(e *env) error {
			_, err := unix.Read(e.fd["f"], make([]byte, 4))
			return err
		},
		nr:   unix.SYS_READ,
		want: []seen{{obj: "f", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "file_permission", name: "write",
		setup: withFileFD(unix.O_WRONLY),
		op: func(e *env) error {
			_, err := unix.Write(e.fd["f"], []byte("x"))
			return err
		},
		nr:   unix.SYS_WRITE,
		want: []seen{{obj: "f", actions: actWrite}},
		deny: []uint64{actWrite},
	},
	{
		hook: "file_permission", name: "write_append",
		setup: withFileFD(unix.O_WRONLY | unix.O_APPEND),
		op: func(e *env) error {
			_, err := unix.Write(e.fd["f"], []byte("x"))
			return err
		},
		nr:   unix.SYS_WRITE,
		want: []seen{{obj: "f", actions: actWrite}},
		deny: []uint64{actWrite},
	},

	// inode_create, inode_mkdir, inode_symlink, inode_mknod: the parent
	// directory is written, the entry is new (it has no inode yet: arg1
	// is 0).
	{
		hook: "inode_create", name: "open_creat",
		op: func(e *env) error {
			return openClose(e.p("new"), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY)
		},
		nr:   unix.SYS_OPENAT,
		want: []seen{{obj: ".", actions: actWrite}, {obj: "", actions: actNew}},
		deny: []uint64{actNew},
	},
	{
		hook: "inode_mkdir", name: "mkdirat",
		op:   func(e *env) error { return unix.Mkdirat(unix.AT_FDCWD, e.p("new"), 0o755) },
		nr:   unix.SYS_MKDIRAT,
		want: []seen{{obj: ".", actions: actWrite}, {obj: "", actions: actNew}},
		deny: []uint64{actNew},
	},
	{
		hook: "inode_symlink", name: "symlinkat",
		op:   func(e *env) error { return unix.Symlinkat("target", unix.AT_FDCWD, e.p("new")) },
		nr:   unix.SYS_SYMLINKAT,
		want: []seen{{obj: ".", actions: actWrite}, {obj: "", actions: actNew}},
		deny: []uint64{actNew},
	},
	{
		hook: "inode_mknod", name: "mknodat_fifo",
		op:   func(e *env) error { return unix.Mknodat(unix.AT_FDCWD, e.p("new"), unix.S_IFIFO|0o600, 0) },
		nr:   unix.SYS_MKNODAT,
		want: []seen{{obj: ".", actions: actWrite}, {obj: "", actions: actNew}},
		deny: []uint64{actNew},
	},

	// inode_link: the old entry is read, the directory written, the new
	// entry new.
	{
		hook: "inode_link", name: "linkat",
		setup: func(e *env) { withFile(e); e.mkdir("d") },
		op: func(e *env) error {
			return unix.Linkat(unix.AT_FDCWD, e.path["f"], unix.AT_FDCWD, e.p("d/new"), 0)
		},
		nr: unix.SYS_LINKAT,
		// From version 3, the old entry also has a run with WRITE.
		want: []seen{
			{obj: "f", actions: actRead}, {obj: "d", actions: actWrite}, {obj: "", actions: actNew},
			{obj: "f", actions: actWrite, since: 3},
		},
		deny: []uint64{actRead, actNew},
	},
	{
		// Version 3: the WRITE run on the old entry is its own: a rule
		// denying WRITE on the linked file alone denies the link (in
		// versions 1 and 2 nothing writes the old entry).
		hook: "inode_link", name: "linkat_old_entry_write",
		since: 3,
		setup: func(e *env) { withFile(e); e.mkdir("d") },
		op: func(e *env) error {
			return unix.Linkat(unix.AT_FDCWD, e.path["f"], unix.AT_FDCWD, e.p("d/new"), 0)
		},
		nr:     unix.SYS_LINKAT,
		want:   []seen{{obj: "f", actions: actRead}, {obj: "f", actions: actWrite}},
		denyOn: []denial{{obj: "f", actions: actWrite}},
	},

	// inode_unlink, inode_rmdir: the directory is written, the entry
	// removed.
	{
		hook: "inode_unlink", name: "unlinkat",
		setup: func(e *env) { e.mkdir("d"); e.file("d/f", 0o644, "x") },
		op:    func(e *env) error { return unix.Unlinkat(unix.AT_FDCWD, e.path["d/f"], 0) },
		nr:    unix.SYS_UNLINKAT,
		want:  []seen{{obj: "d", actions: actWrite}, {obj: "d/f", actions: actRemove}},
		deny:  []uint64{actRemove},
	},
	{
		hook: "inode_rmdir", name: "unlinkat_removedir",
		setup: func(e *env) { e.mkdir("d"); e.mkdir("d/sub") },
		op:    func(e *env) error { return unix.Unlinkat(unix.AT_FDCWD, e.path["d/sub"], unix.AT_REMOVEDIR) },
		nr:    unix.SYS_UNLINKAT,
		want:  []seen{{obj: "d", actions: actWrite}, {obj: "d/sub", actions: actRemove}},
		deny:  []uint64{actRemove},
	},

	// inode_rename: old directory written, old entry removed, new
	// directory written, new entry new.
	{
		hook: "inode_rename", name: "renameat_new_name",
		setup: func(e *env) { e.mkdir("a"); e.mkdir("b"); e.file("a/f", 0o644, "x") },
		op: func(e *env) error {
			return unix.Renameat(unix.AT_FDCWD, e.path["a/f"], unix.AT_FDCWD, e.p("b/g"))
		},
		nr: unix.SYS_RENAMEAT,
		want: []seen{
			{obj: "a", actions: actWrite}, {obj: "a/f", actions: actRemove},
			{obj: "b", actions: actWrite}, {obj: "", actions: actNew},
		},
		deny: []uint64{actRemove, actNew},
	},
	{
		hook: "inode_rename", name: "renameat_over_existing",
		setup: func(e *env) {
			e.mkdir("a")
			e.mkdir("b")
			e.file("a/f", 0o644, "x")
			e.file("b/g", 0o644, "y")
		},
		op: func(e *env) error {
			return unix.Renameat(unix.AT_FDCWD, e.path["a/f"], unix.AT_FDCWD, e.path["b/g"])
		},
		nr: unix.SYS_RENAMEAT,
		want: []seen{
			{obj: "a", actions: actWrite}, {obj: "a/f", actions: actRemove},
			{obj: "b", actions: actWrite}, {obj: "b/g", actions: actNew},
		},
		deny: []uint64{actRemove, actNew},
	},
	{
		// The replaced entry is removed too (path_rename, before
		// inode_rename): a rule denying REMOVE on it alone denies.
		hook: "inode_rename", name: "renameat_replaces_existing",
		setup: func(e *env) {
			e.mkdir("a")
			e.mkdir("b")
			e.file("a/f", 0o644, "x")
			e.file("b/g", 0o644, "y")
		},
		op: func(e *env) error {
			return unix.Renameat(unix.AT_FDCWD, e.path["a/f"], unix.AT_FDCWD, e.path["b/g"])
		},
		nr:     unix.SYS_RENAMEAT,
		want:   []seen{{obj: "b/g", actions: actRemove}, {obj: "b/g", actions: actNew}},
		denyOn: []denial{{obj: "b/g", actions: actRemove}},
	},
	{
		// RENAME_EXCHANGE: inode_rename runs once each way, so each
		// entry is removed and new once; neither is replaced, so no
		// further REMOVE.
		hook: "inode_rename", name: "renameat2_exchange",
		setup: func(e *env) {
			e.mkdir("a")
			e.mkdir("b")
			e.file("a/f", 0o644, "x")
			e.file("b/g", 0o644, "y")
		},
		op: func(e *env) error {
			return unix.Renameat2(unix.AT_FDCWD, e.path["a/f"], unix.AT_FDCWD, e.path["b/g"], unix.RENAME_EXCHANGE)
		},
		nr: unix.SYS_RENAMEAT2,
		want: []seen{
			{obj: "a", actions: actWrite, times: 2}, {obj: "b", actions: actWrite, times: 2},
			{obj: "a/f", actions: actRemove}, {obj: "a/f", actions: actNew},
			{obj: "b/g", actions: actRemove}, {obj: "b/g", actions: actNew},
		},
		limits: []limit{{obj: "a/f", actions: actRemove, most: 1}, {obj: "b/g", actions: actRemove, most: 1}},
		deny:   []uint64{actRemove, actNew},
		denyOn: []denial{{obj: "b/g", actions: actRemove}},
	},
	{
		// RENAME_NOREPLACE onto a free name: nothing is replaced, so
		// no REMOVE on the (inode-less) target.
		hook: "inode_rename", name: "renameat2_noreplace",
		setup: func(e *env) { e.mkdir("a"); e.mkdir("b"); e.file("a/f", 0o644, "x") },
		op: func(e *env) error {
			return unix.Renameat2(unix.AT_FDCWD, e.path["a/f"], unix.AT_FDCWD, e.p("b/g"), unix.RENAME_NOREPLACE)
		},
		nr: unix.SYS_RENAMEAT2,
		want: []seen{
			{obj: "a", actions: actWrite}, {obj: "a/f", actions: actRemove},
			{obj: "b", actions: actWrite}, {obj: "", actions: actNew},
		},
		limits: []limit{{obj: "", actions: actRemove, most: 0}},
		deny:   []uint64{actRemove, actNew},
	},

	// inode_readlink, inode_follow_link, inode_getattr, inode_getxattr,
	// inode_listxattr, sb_statfs: READ.
	{
		hook: "inode_readlink", name: "readlinkat",
		setup: func(e *env) { e.symlink("l", "target") },
		op: func(e *env) error {
			_, err := unix.Readlinkat(unix.AT_FDCWD, e.path["l"], make([]byte, 64))
			return err
		},
		nr:   unix.SYS_READLINKAT,
		want: []seen{{obj: "l", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "inode_follow_link", name: "open_path_through_symlink",
		setup: func(e *env) { withFile(e); e.symlink("l", "f") },
		// O_PATH: neither may_open nor file_open run, only the walk.
		op:   func(e *env) error { return openClose(e.path["l"], unix.O_PATH) },
		nr:   unix.SYS_OPENAT,
		want: []seen{{obj: "l", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "inode_getattr", name: "stat",
		setup: withFile,
		op: func(e *env) error {
			var st unix.Stat_t
			return unix.Stat(e.path["f"], &st)
		},
		nr:   unix.SYS_NEWFSTATAT,
		want: []seen{{obj: "f", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "inode_getattr", name: "fstat",
		setup: withFileFD(unix.O_RDONLY),
		op: func(e *env) error {
			var st unix.Stat_t
			return unix.Fstat(e.fd["f"], &st)
		},
		nr:   unix.SYS_FSTAT,
		want: []seen{{obj: "f", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "inode_getxattr", name: "fgetxattr",
		setup: withXattr,
		op: func(e *env) error {
			_, err := unix.Fgetxattr(e.fd["f"], e.xattr, make([]byte, 16))
			return err
		},
		nr:      unix.SYS_FGETXATTR,
		want:    []seen{{obj: "f", actions: actRead}},
		deny:    []uint64{actRead},
		allowed: xattrAllowed,
	},
	{
		hook: "inode_listxattr", name: "flistxattr",
		setup: withXattr,
		op: func(e *env) error {
			_, err := unix.Flistxattr(e.fd["f"], make([]byte, 256))
			return err
		},
		nr:   unix.SYS_FLISTXATTR,
		want: []seen{{obj: "f", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "sb_statfs", name: "statfs",
		setup: withFile,
		op: func(e *env) error {
			var st unix.Statfs_t
			return unix.Statfs(e.path["f"], &st)
		},
		nr:   unix.SYS_STATFS,
		want: []seen{{obj: "f", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "sb_statfs", name: "fstatfs",
		setup: withFileFD(unix.O_RDONLY),
		op: func(e *env) error {
			var st unix.Statfs_t
			return unix.Fstatfs(e.fd["f"], &st)
		},
		nr:   unix.SYS_FSTATFS,
		want: []seen{{obj: "f", actions: actRead}},
		deny: []uint64{actRead},
	},

	// inode_setattr, inode_setxattr, inode_removexattr, path_truncate,
	// file_truncate: WRITE.
	{
		hook: "inode_setattr", name: "fchmod",
		setup: withFileFD(unix.O_RDONLY),
		op:    func(e *env) error { return unix.Fchmod(e.fd["f"], 0o600) },
		nr:    unix.SYS_FCHMOD,
		want:  []seen{{obj: "f", actions: actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		hook: "inode_setattr", name: "utimensat",
		setup: withFile,
		op: func(e *env) error {
			ts := []unix.Timespec{{Sec: 1, Nsec: 0}, {Sec: 2, Nsec: 0}}
			return unix.UtimesNanoAt(unix.AT_FDCWD, e.path["f"], ts, 0)
		},
		nr:   unix.SYS_UTIMENSAT,
		want: []seen{{obj: "f", actions: actWrite}},
		deny: []uint64{actWrite},
	},
	{
		hook: "inode_setxattr", name: "fsetxattr",
		setup: withXattr,
		op: func(e *env) error {
			return unix.Fsetxattr(e.fd["f"], e.xattr, []byte("2"), 0)
		},
		nr:      unix.SYS_FSETXATTR,
		want:    []seen{{obj: "f", actions: actWrite}},
		deny:    []uint64{actWrite},
		allowed: xattrAllowed,
	},
	{
		hook: "inode_removexattr", name: "fremovexattr",
		setup:   withXattr,
		op:      func(e *env) error { return unix.Fremovexattr(e.fd["f"], e.xattr) },
		nr:      unix.SYS_FREMOVEXATTR,
		want:    []seen{{obj: "f", actions: actWrite}},
		deny:    []uint64{actWrite},
		allowed: xattrAllowed,
	},
	{
		hook: "path_truncate", name: "truncate",
		setup: withFile,
		op:    func(e *env) error { return unix.Truncate(e.path["f"], 1) },
		nr:    unix.SYS_TRUNCATE,
		// inode_permission(MAY_WRITE), path_truncate, inode_setattr.
		want: []seen{{obj: "f", actions: actWrite, times: 3}},
		deny: []uint64{actWrite},
	},
	{
		hook: "file_truncate", name: "ftruncate",
		setup: withFileFD(unix.O_WRONLY),
		op:    func(e *env) error { return unix.Ftruncate(e.fd["f"], 1) },
		nr:    unix.SYS_FTRUNCATE,
		// file_truncate, inode_setattr.
		want: []seen{{obj: "f", actions: actWrite, times: 2}},
		deny: []uint64{actWrite},
	},

	// inode_set_acl, inode_remove_acl: WRITE; inode_get_acl: READ. The
	// POSIX ACL xattrs go to these hooks, not to the xattr ones. The ACL
	// has an ACL_USER entry, so that it is stored, not made a chmod.
	{
		hook: "inode_set_acl", name: "setxattr_posix_acl_access",
		setup: func(e *env) { withFile(e); e.aclSupport("f") },
		op:    func(e *env) error { return unix.Setxattr(e.path["f"], aclAccess, aclXattr(), 0) },
		nr:    unix.SYS_SETXATTR,
		want:  []seen{{obj: "f", actions: actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		hook: "inode_get_acl", name: "getxattr_posix_acl_access",
		setup: func(e *env) { withFile(e); e.setACL("f") },
		op: func(e *env) error {
			_, err := unix.Getxattr(e.path["f"], aclAccess, make([]byte, 256))
			return err
		},
		nr:   unix.SYS_GETXATTR,
		want: []seen{{obj: "f", actions: actRead}},
		deny: []uint64{actRead},
	},
	{
		hook: "inode_remove_acl", name: "removexattr_posix_acl_access",
		setup: func(e *env) { withFile(e); e.setACL("f") },
		op:    func(e *env) error { return unix.Removexattr(e.path["f"], aclAccess) },
		nr:    unix.SYS_REMOVEXATTR,
		want:  []seen{{obj: "f", actions: actWrite}},
		deny:  []uint64{actWrite},
	},

	// sb_mount, sb_remount, sb_umount, sb_pivotroot: WRITE on the mount
	// point. Each phase runs in a mount namespace of its own thread.
	{
		hook: "sb_mount", name: "mount_tmpfs",
		setup: func(e *env) { e.privateMounts(); e.mkdir("mnt") },
		op:    func(e *env) error { return unix.Mount("tmpfs", e.path["mnt"], "tmpfs", 0, "size=1m") },
		nr:    unix.SYS_MOUNT,
		want:  []seen{{obj: "mnt", actions: actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		hook: "sb_mount", name: "bind_mount",
		setup: func(e *env) { e.privateMounts(); e.mkdir("src"); e.mkdir("mnt") },
		op:    func(e *env) error { return unix.Mount(e.path["src"], e.path["mnt"], "", unix.MS_BIND, "") },
		nr:    unix.SYS_MOUNT,
		want:  []seen{{obj: "mnt", actions: actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		hook: "sb_remount", name: "remount",
		setup: func(e *env) { e.privateMounts(); e.mkdir("mnt"); e.mountTmpfs("mnt") },
		op: func(e *env) error {
			return unix.Mount("", e.path["mnt"], "", unix.MS_REMOUNT, "size=2m")
		},
		nr: unix.SYS_MOUNT,
		// sb_mount on the mount's root, then sb_remount on the same.
		want: []seen{{obj: "mnt", actions: actWrite, times: 2}},
		deny: []uint64{actWrite},
	},
	{
		// The new mount API's remount: fspick(2), then
		// fsconfig(FSCONFIG_CMD_RECONFIGURE), which reaches sb_remount
		// through reconfigure_super() and never sb_mount.
		hook: "sb_remount", name: "fspick_reconfigure",
		setup: func(e *env) {
			e.privateMounts()
			e.mkdir("mnt")
			e.mountTmpfs("mnt")
			e.pickMount("pick", "mnt")
		},
		op:   func(e *env) error { return unix.FsconfigReconfigure(e.fd["pick"]) },
		nr:   unix.SYS_FSCONFIG,
		want: []seen{{obj: "mnt", actions: actWrite}},
		deny: []uint64{actWrite},
	},
	{
		hook: "sb_umount", name: "umount2",
		setup: func(e *env) { e.privateMounts(); e.mkdir("mnt"); e.mountTmpfs("mnt") },
		op:    func(e *env) error { return unix.Unmount(e.path["mnt"], 0) },
		nr:    unix.SYS_UMOUNT2,
		want:  []seen{{obj: "mnt", actions: actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		hook: "sb_pivotroot", name: "pivot_root",
		// pivot_root needs a root that is a mount point with a parent:
		// a tmpfs this thread chroots into, with a second tmpfs in it
		// as the new root.
		setup: func(e *env) {
			e.privateMounts()
			e.mkdir("root")
			e.mountTmpfs("root")
			e.chroot("root")
			e.mkdir("new")
			e.mountTmpfs("new")
			e.mkdir("new/old")
		},
		op:   func(e *env) error { return unix.PivotRoot(e.path["new"], e.path["new/old"]) },
		nr:   unix.SYS_PIVOT_ROOT,
		want: []seen{{obj: "new/old", actions: actWrite}, {obj: "new", actions: actWrite}},
		deny: []uint64{actWrite},
	},
	// move_mount: the new mount API attaches a mount without sb_mount.
	{
		// A new tmpfs from fsopen, fsconfig and fsmount.
		hook: "move_mount", name: "fsmount_tmpfs",
		setup: func(e *env) { e.privateMounts(); e.mkdir("mnt"); e.fsmountTmpfs("fsmnt") },
		op:    moveMountOp("fsmnt", "mnt"),
		nr:    unix.SYS_MOVE_MOUNT,
		want:  []seen{{obj: "mnt", actions: actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		// A bind mount from open_tree(OPEN_TREE_CLONE).
		hook: "move_mount", name: "open_tree_clone",
		setup: func(e *env) { e.privateMounts(); e.mkdir("src"); e.mkdir("mnt"); e.cloneTree("tree", "src") },
		op:    moveMountOp("tree", "mnt"),
		nr:    unix.SYS_MOVE_MOUNT,
		want:  []seen{{obj: "mnt", actions: actWrite}},
		deny:  []uint64{actWrite},
	},

	// file_ioctl, file_ioctl_compat, file_lock, file_fcntl: the command
	// in syscall_cmd.
	{
		hook: "file_ioctl", name: "fionread",
		setup: withFileFD(unix.O_RDONLY),
		op: func(e *env) error {
			_, err := unix.IoctlGetInt(e.fd["f"], fionread)
			return err
		},
		nr:   unix.SYS_IOCTL,
		want: []seen{{obj: "f", actions: actIoctl, cmd: fionread}},
		deny: []uint64{actIoctl},
	},
	{
		hook: "file_ioctl_compat", name: "compat_ioctl",
		skip: "file_ioctl_compat runs only for ioctl(2) from 32-bit (compat) tasks: the guest test " +
			"binaries are 64-bit Go programs, the guest has no 32-bit userland, and the guest kernel " +
			"is built without 32-bit compat support (CONFIG_IA32_EMULATION on x86_64, CONFIG_COMPAT on arm64)",
	},
	{
		hook: "file_lock", name: "flock",
		setup: withFileFD(unix.O_RDONLY),
		op:    func(e *env) error { return unix.Flock(e.fd["f"], unix.LOCK_EX) },
		nr:    unix.SYS_FLOCK,
		// The spec: "with the command in syscall_cmd"; the command of
		// flock(2) is LOCK_EX. The LSM hook file_lock is given the
		// lock type (F_WRLCK) instead, which the spec does not say.
		want: []seen{{obj: "f", actions: actLock, cmd: unix.LOCK_EX}},
		deny: []uint64{actLock},
	},
	{
		hook: "file_fcntl", name: "f_getfl",
		setup: withFileFD(unix.O_RDONLY),
		op: func(e *env) error {
			_, err := unix.FcntlInt(uintptr(e.fd["f"]), unix.F_GETFL, 0)
			return err
		},
		nr:   unix.SYS_FCNTL,
		want: []seen{{obj: "f", actions: actFcntl, cmd: unix.F_GETFL}},
		deny: []uint64{actFcntl},
	},

	// mmap_file, file_mprotect: READ for every mapping of a file, EXEC
	// for PROT_EXEC, WRITE for PROT_WRITE on a shared mapping (MAP_SHARED
	// or MAP_SHARED_VALIDATE).
	{
		hook: "mmap_file", name: "read_private",
		setup: withFileFD(unix.O_RDONLY),
		op:    mmapOp("f", unix.PROT_READ, unix.MAP_PRIVATE),
		nr:    unix.SYS_MMAP,
		want:  []seen{{obj: "f", actions: actRead}},
		deny:  []uint64{actRead},
	},
	{
		hook: "mmap_file", name: "exec_private",
		setup: withFileFD(unix.O_RDONLY),
		op:    mmapOp("f", unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE),
		nr:    unix.SYS_MMAP,
		want:  []seen{{obj: "f", actions: actRead | actExec}},
		deny:  []uint64{actExec},
	},
	{
		hook: "mmap_file", name: "write_shared",
		setup: withFileFD(unix.O_RDWR),
		op:    mmapOp("f", unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED),
		nr:    unix.SYS_MMAP,
		want:  []seen{{obj: "f", actions: actRead | actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		hook: "mmap_file", name: "write_private",
		setup:  withFileFD(unix.O_RDWR),
		op:     mmapOp("f", unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE),
		nr:     unix.SYS_MMAP,
		want:   []seen{{obj: "f", actions: actRead}},
		deny:   []uint64{actRead},
		permit: []uint64{actWrite},
	},
	{
		// MAP_SHARED_VALIDATE is shared too.
		hook: "mmap_file", name: "write_shared_validate",
		setup: withFileFD(unix.O_RDWR),
		op:    mmapOp("f", unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED_VALIDATE),
		nr:    unix.SYS_MMAP,
		want:  []seen{{obj: "f", actions: actRead | actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		// Private and writable, without PROT_READ: still READ.
		hook: "mmap_file", name: "write_only_private",
		setup:  withFileFD(unix.O_RDWR),
		op:     mmapOp("f", unix.PROT_WRITE, unix.MAP_PRIVATE),
		nr:     unix.SYS_MMAP,
		want:   []seen{{obj: "f", actions: actRead}},
		deny:   []uint64{actRead},
		permit: []uint64{actWrite},
	},
	{
		// The same on a read-only fd, which a private mapping allows.
		hook: "mmap_file", name: "write_only_private_rdonly_fd",
		setup:  withFileFD(unix.O_RDONLY),
		op:     mmapOp("f", unix.PROT_WRITE, unix.MAP_PRIVATE),
		nr:     unix.SYS_MMAP,
		want:   []seen{{obj: "f", actions: actRead}},
		deny:   []uint64{actRead},
		permit: []uint64{actWrite},
	},
	{
		// PROT_EXEC without PROT_READ: READ too.
		hook: "mmap_file", name: "exec_only_private",
		setup: withFileFD(unix.O_RDONLY),
		op:    mmapOp("f", unix.PROT_EXEC, unix.MAP_PRIVATE),
		nr:    unix.SYS_MMAP,
		want:  []seen{{obj: "f", actions: actRead | actExec}},
		deny:  []uint64{actRead, actExec},
	},
	{
		// PROT_NONE: READ (mprotect or /proc/PID/mem can read it).
		hook: "mmap_file", name: "none_private",
		setup:  withFileFD(unix.O_RDONLY),
		op:     mmapOp("f", unix.PROT_NONE, unix.MAP_PRIVATE),
		nr:     unix.SYS_MMAP,
		want:   []seen{{obj: "f", actions: actRead}},
		deny:   []uint64{actRead},
		permit: []uint64{actWrite | actExec},
	},
	{
		hook: "mmap_file", name: "none_shared",
		setup:  withFileFD(unix.O_RDWR),
		op:     mmapOp("f", unix.PROT_NONE, unix.MAP_SHARED),
		nr:     unix.SYS_MMAP,
		want:   []seen{{obj: "f", actions: actRead}},
		deny:   []uint64{actRead},
		permit: []uint64{actWrite | actExec},
	},
	{
		hook: "mmap_file", name: "anonymous",
		op: func(e *env) error {
			mem, err := unix.Mmap(-1, 0, pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err == nil {
				unix.Munmap(mem)
			}
			return err
		},
		nr:     unix.SYS_MMAP,
		want:   []seen{{obj: "", actions: actRead}},
		deny:   []uint64{actRead},
		permit: []uint64{actWrite},
	},
	{
		hook: "file_mprotect", name: "write_shared",
		setup: func(e *env) { withFileFD(unix.O_RDWR)(e); e.mmap("f", unix.PROT_READ, unix.MAP_SHARED) },
		op:    func(e *env) error { return unix.Mprotect(e.mem, unix.PROT_READ|unix.PROT_WRITE) },
		nr:    unix.SYS_MPROTECT,
		want:  []seen{{obj: "f", actions: actRead | actWrite}},
		deny:  []uint64{actWrite},
	},
	{
		// A MAP_SHARED_VALIDATE mapping is VM_SHARED.
		hook: "file_mprotect", name: "write_shared_validate",
		setup: func(e *env) {
			withFileFD(unix.O_RDWR)(e)
			e.mmap("f", unix.PROT_READ, unix.MAP_SHARED_VALIDATE)
		},
		op:   func(e *env) error { return unix.Mprotect(e.mem, unix.PROT_READ|unix.PROT_WRITE) },
		nr:   unix.SYS_MPROTECT,
		want: []seen{{obj: "f", actions: actRead | actWrite}},
		deny: []uint64{actWrite},
	},
	{
		hook: "file_mprotect", name: "write_private",
		setup:  func(e *env) { withFileFD(unix.O_RDWR)(e); e.mmap("f", unix.PROT_READ, unix.MAP_PRIVATE) },
		op:     func(e *env) error { return unix.Mprotect(e.mem, unix.PROT_READ|unix.PROT_WRITE) },
		nr:     unix.SYS_MPROTECT,
		want:   []seen{{obj: "f", actions: actRead}},
		deny:   []uint64{actRead},
		permit: []uint64{actWrite},
	},
	{
		hook: "file_mprotect", name: "exec",
		setup: func(e *env) { withFileFD(unix.O_RDONLY)(e); e.mmap("f", unix.PROT_READ, unix.MAP_PRIVATE) },
		op:    func(e *env) error { return unix.Mprotect(e.mem, unix.PROT_READ|unix.PROT_EXEC) },
		nr:    unix.SYS_MPROTECT,
		want:  []seen{{obj: "f", actions: actRead | actExec}},
		deny:  []uint64{actExec},
	},
	{
		// From PROT_NONE to PROT_EXEC alone: READ too.
		hook: "file_mprotect", name: "none_to_exec",
		setup: func(e *env) { withFileFD(unix.O_RDONLY)(e); e.mmap("f", unix.PROT_NONE, unix.MAP_PRIVATE) },
		op:    func(e *env) error { return unix.Mprotect(e.mem, unix.PROT_EXEC) },
		nr:    unix.SYS_MPROTECT,
		want:  []seen{{obj: "f", actions: actRead | actExec}},
		deny:  []uint64{actRead, actExec},
	},
}

// openClose opens path with flags (creating it 0600 with O_CREAT) and
// closes it.
func openClose(path string, flags int) error {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// mmapOp maps one page of the open file name and unmaps it.
func mmapOp(name string, prot, flags int) func(e *env) error {
	return func(e *env) error {
		mem, err := unix.Mmap(e.fd[name], 0, pageSize, prot, flags)
		if err != nil {
			return err
		}
		return unix.Munmap(mem)
	}
}

// moveMountOp attaches the detached mount whose fd is e.fd[from] on the
// directory to (move_mount with MOVE_MOUNT_F_EMPTY_PATH). The mount ends
// with the phase's mount namespace.
func moveMountOp(from, to string) func(e *env) error {
	return func(e *env) error {
		return unix.MoveMount(e.fd[from], "", unix.AT_FDCWD, e.path[to], unix.MOVE_MOUNT_F_EMPTY_PATH)
	}
}
