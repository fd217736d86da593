package hooks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// env is the world of one phase of a case: a fresh directory, the objects
// the case's setup made in it, by name, and what to undo at the end. The
// setup helpers run on the rule thread before the rule is appended; after
// the first error they do nothing, and the phase reports that error.
type env struct {
	dir  string
	path map[string]string
	ino  map[string]uint64
	fd   map[string]int
	mem  []byte
	// xattr is the name of the extended attribute of the xattr cases:
	// xattrName, or the case's own (hookCase.xattr).
	xattr string
	// xattrErr is nil when the file system of dir stores the xattr that
	// setup set, else the error it gave (EOPNOTSUPP without
	// CONFIG_TMPFS_XATTR).
	xattrErr error
	// private is set once this thread has its own mount namespace (and
	// its own root and working directory).
	private bool
	err     error
	undo    []func()
}

// xattrName is in the trusted namespace: root may use it, and the VFS
// then checks no inode permission, so that only the xattr hooks report
// an action for it.
const xattrName = "trusted.landlock_vmtest"

// errFDDropped is what recvFD returns when the kernel dropped the fd it
// was asked to pass (security_file_receive refused it).
var errFDDropped = errors.New("the fd was dropped (MSG_CTRUNC)")

func newEnv(dir string) *env {
	e := &env{
		dir:   dir,
		path:  map[string]string{},
		ino:   map[string]uint64{},
		fd:    map[string]int{},
		xattr: xattrName,
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		e.err = err
		return e
	}
	e.stat(".")
	return e
}

// p returns the path of name, relative to the phase's directory.
func (e *env) p(name string) string {
	if name == "." {
		return e.dir
	}
	return filepath.Join(e.dir, name)
}

func (e *env) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

// stat records the inode number of name (not following a symlink).
func (e *env) stat(name string) {
	if e.err != nil {
		return
	}
	var st unix.Stat_t
	if err := unix.Lstat(e.p(name), &st); err != nil {
		e.fail("stat %s: %w", name, err)
		return
	}
	e.path[name] = e.p(name)
	e.ino[name] = st.Ino
}

// file creates the regular file name with mode and content.
func (e *env) file(name string, mode os.FileMode, content string) {
	if e.err != nil {
		return
	}
	if err := os.WriteFile(e.p(name), []byte(content), mode); err != nil {
		e.fail("creating %s: %w", name, err)
		return
	}
	if err := os.Chmod(e.p(name), mode); err != nil {
		e.fail("chmod %s: %w", name, err)
		return
	}
	e.stat(name)
}

// mkdir creates the directory name.
func (e *env) mkdir(name string) {
	if e.err != nil {
		return
	}
	if err := os.Mkdir(e.p(name), 0o755); err != nil {
		e.fail("mkdir %s: %w", name, err)
		return
	}
	e.stat(name)
}

// symlink creates name pointing to target.
func (e *env) symlink(name, target string) {
	if e.err != nil {
		return
	}
	if err := os.Symlink(target, e.p(name)); err != nil {
		e.fail("symlink %s: %w", name, err)
		return
	}
	e.stat(name)
}

// open opens name with flags as e.fd[name].
func (e *env) open(name string, flags int) {
	if e.err != nil {
		return
	}
	fd, err := unix.Open(e.p(name), flags|unix.O_CLOEXEC, 0)
	if err != nil {
		e.fail("open %s: %w", name, err)
		return
	}
	e.fd[name] = fd
	e.undo = append(e.undo, func() { unix.Close(fd) })
}

// setXattr sets the test xattr on the open file name and records in
// xattrErr whether the file system supports it.
func (e *env) setXattr(name string) {
	if e.err != nil {
		return
	}
	err := unix.Fsetxattr(e.fd[name], e.xattr, []byte("1"), 0)
	switch {
	case err == nil:
	case errors.Is(err, unix.EOPNOTSUPP):
		e.xattrErr = err
	default:
		e.fail("setting %s on %s: %w", e.xattr, name, err)
	}
}

// aclAccess is the xattr that holds a file's access ACL.
const aclAccess = "system.posix_acl_access"

// aclUID is the user of the ACL_USER entry of aclXattr.
const aclUID = 4242

// aclXattr is an access ACL in the xattr format (posix_acl_xattr_header,
// version 2, then little-endian {tag, perm, id} entries, in the order the
// kernel checks): owner rw, user aclUID r, group r, mask r, other r. The
// ACL_USER and ACL_MASK entries keep it from being a mere mode, which the
// kernel would turn into a chmod instead of storing it.
func aclXattr() []byte {
	const undefinedID = 0xffffffff
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, ent := range []struct {
		tag, perm uint16
		id        uint32
	}{
		{0x01, 6, undefinedID}, // ACL_USER_OBJ
		{0x02, 4, aclUID},      // ACL_USER
		{0x04, 4, undefinedID}, // ACL_GROUP_OBJ
		{0x10, 4, undefinedID}, // ACL_MASK
		{0x20, 4, undefinedID}, // ACL_OTHER
	} {
		b = binary.LittleEndian.AppendUint16(b, ent.tag)
		b = binary.LittleEndian.AppendUint16(b, ent.perm)
		b = binary.LittleEndian.AppendUint32(b, ent.id)
	}
	return b
}

// aclFail records err of the ACL call what on name; EOPNOTSUPP means the
// file system keeps no POSIX ACLs, which the ACL cases need.
func (e *env) aclFail(what, name string, err error) {
	if errors.Is(err, unix.EOPNOTSUPP) {
		e.fail("%s(%s) on %s: %w: the file system has no POSIX ACLs; "+
			"the guest kernel needs CONFIG_TMPFS_POSIX_ACL", what, aclAccess, name, err)
		return
	}
	e.fail("%s(%s) on %s: %w", what, aclAccess, name, err)
}

// aclSupport checks, changing nothing, that the file system of name keeps
// POSIX ACLs: a file without one gives ENODATA, not EOPNOTSUPP.
func (e *env) aclSupport(name string) {
	if e.err != nil {
		return
	}
	if _, err := unix.Getxattr(e.p(name), aclAccess, nil); err != nil && !errors.Is(err, unix.ENODATA) {
		e.aclFail("getxattr", name, err)
	}
}

// setACL gives name the access ACL aclXattr.
func (e *env) setACL(name string) {
	if e.err != nil {
		return
	}
	if err := unix.Setxattr(e.p(name), aclAccess, aclXattr(), 0); err != nil {
		e.aclFail("setxattr", name, err)
	}
}

// mmap maps the open file name.
func (e *env) mmap(name string, prot, flags int) {
	if e.err != nil {
		return
	}
	mem, err := unix.Mmap(e.fd[name], 0, pageSize, prot, flags)
	if err != nil {
		e.fail("mmap %s: %w", name, err)
		return
	}
	e.mem = mem
	e.undo = append(e.undo, func() { unix.Munmap(mem) })
}

// socketpair creates a pair of connected unix datagram sockets, s0 and s1.
func (e *env) socketpair() {
	if e.err != nil {
		return
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.fail("socketpair(AF_UNIX): %w", err)
		return
	}
	e.fd["s0"], e.fd["s1"] = fds[0], fds[1]
	e.undo = append(e.undo, func() { unix.Close(fds[0]); unix.Close(fds[1]) })
}

// sendFD sends the open file name over s0 with SCM_RIGHTS.
func (e *env) sendFD(name string) {
	if e.err != nil {
		return
	}
	if err := unix.Sendmsg(e.fd["s0"], []byte("x"), unix.UnixRights(e.fd[name]), nil, 0); err != nil {
		e.fail("sendmsg(SCM_RIGHTS): %w", err)
	}
}

// pidfd opens a pidfd of this process as e.fd["pidfd"].
func (e *env) pidfd() {
	if e.err != nil {
		return
	}
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		e.fail("pidfd_open: %w", err)
		return
	}
	e.fd["pidfd"] = fd
	e.undo = append(e.undo, func() { unix.Close(fd) })
}

// privateMounts gives this thread its own mount namespace, with every
// mount private, so that its mounts stay invisible to the rest of the
// system and end with the thread. It also gives the thread its own root
// and working directory (unshare implies CLONE_FS).
func (e *env) privateMounts() {
	if e.err != nil {
		return
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		e.fail("unshare(CLONE_NEWNS): %w", err)
		return
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		e.fail("making every mount private: %w", err)
		return
	}
	e.private = true
}

// mountTmpfs mounts a new tmpfs on the directory name and records the
// inode number of its root under name.
func (e *env) mountTmpfs(name string) {
	if e.err != nil {
		return
	}
	if !e.private {
		e.fail("mounting on %s outside a private mount namespace", name)
		return
	}
	if err := unix.Mount("tmpfs", e.p(name), "tmpfs", 0, "size=1m"); err != nil {
		e.fail("mounting a tmpfs on %s: %w", name, err)
		return
	}
	e.stat(name)
}

// fsmountTmpfs makes a new tmpfs with the mount API (fsopen, fsconfig,
// fsmount), detached, and keeps the mount's fd as e.fd[name].
func (e *env) fsmountTmpfs(name string) {
	if e.err != nil {
		return
	}
	if !e.private {
		e.fail("a new mount outside a private mount namespace")
		return
	}
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		e.fail("fsopen(tmpfs): %w", err)
		return
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "size", "1m"); err != nil {
		e.fail("fsconfig(size=1m): %w", err)
		return
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		e.fail("fsconfig(FSCONFIG_CMD_CREATE): %w", err)
		return
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		e.fail("fsmount: %w", err)
		return
	}
	e.fd[name] = fd
	e.undo = append(e.undo, func() { unix.Close(fd) })
}

// cloneTree makes a detached bind mount of the directory dir with
// open_tree(OPEN_TREE_CLONE) and keeps its fd as e.fd[name].
func (e *env) cloneTree(name, dir string) {
	if e.err != nil {
		return
	}
	if !e.private {
		e.fail("a new mount outside a private mount namespace")
		return
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, e.p(dir), unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		e.fail("open_tree(%s, OPEN_TREE_CLONE): %w", dir, err)
		return
	}
	e.fd[name] = fd
	e.undo = append(e.undo, func() { unix.Close(fd) })
}

// pickMount opens the mount at the directory dir for reconfiguration
// with fspick(2), sets size=2m on it, and keeps the context's fd as
// e.fd[name].
func (e *env) pickMount(name, dir string) {
	if e.err != nil {
		return
	}
	fd, err := unix.Fspick(unix.AT_FDCWD, e.p(dir), unix.FSPICK_CLOEXEC)
	if err != nil {
		e.fail("fspick(%s): %w", dir, err)
		return
	}
	e.fd[name] = fd
	e.undo = append(e.undo, func() { unix.Close(fd) })
	if err := unix.FsconfigSetString(fd, "size", "2m"); err != nil {
		e.fail("fsconfig(size=2m) on the fspick context: %w", err)
	}
}

// chroot makes the directory name the root and the working directory of
// this thread; paths of later helpers are relative to it.
func (e *env) chroot(name string) {
	if e.err != nil {
		return
	}
	if !e.private {
		e.fail("chroot outside a private mount namespace would change the whole process")
		return
	}
	if err := unix.Chroot(e.p(name)); err != nil {
		e.fail("chroot %s: %w", name, err)
		return
	}
	if err := unix.Chdir("/"); err != nil {
		e.fail("chdir /: %w", err)
		return
	}
	e.dir = "/"
	e.stat(".")
}

func (e *env) close() {
	for i := len(e.undo) - 1; i >= 0; i-- {
		e.undo[i]()
	}
	e.undo = nil
}

// pageSize is the length of the mappings.
var pageSize = os.Getpagesize()

// recvFD receives one message from sock and closes the fd it carries.
// It returns errFDDropped when the message came without its fd.
func recvFD(sock int) error {
	buf := make([]byte, 8)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, flags, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return fmt.Errorf("parsing the control message: %w", err)
	}
	got := 0
	for i := range msgs {
		fds, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fmt.Errorf("parsing SCM_RIGHTS: %w", err)
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		got += len(fds)
	}
	switch {
	case got == 1:
		return nil
	case got == 0 && flags&unix.MSG_CTRUNC != 0:
		return errFDDropped
	default:
		return fmt.Errorf("received %d fds, recvmsg flags %#x", got, flags)
	}
}
