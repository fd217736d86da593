// Package fsmap checks, in the guest, version 3 of the Landlock eBPF ABI
// (../shared/spec/landlock-bpf-abi.md, "Version 3"; docs/abi-v3-plan.md
// §6): the map of file system paths BPF_MAP_TYPE_LANDLOCK_FS (its
// commands' errnos, the references it keeps), the helper
// bpf_landlock_fs_beneath (its answer for each kind of object, recorded
// run by run with landlockbpf.FSBeneathRecorder), and the canonical rule
// "read anything, write only beneath D" (bpfsandbox.Rule) against every
// write-like action, as a task's rule and as a cgroup program.
//
// Every test skips below ABI version 3. The tests that append rules run
// in a child process of the test binary that keeps root (privdrop.Run),
// and do each case on a thread of its own (landlockbpf.RunOnRuleThread)
// that first gets its own mount namespace, with every mount private, and
// a fresh tmpfs (xattrs and POSIX ACLs, CONFIG_TMPFS_XATTR and
// CONFIG_TMPFS_POSIX_ACL) on which the case builds its world. The rule,
// the mounts and the namespace end with the thread.
package fsmap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// keepRoot runs the scenarios as root with every capability: appending a
// rule needs CAP_SYS_ADMIN in version 3, creating the map CAP_BPF, and
// the mounts CAP_SYS_ADMIN.
var keepRoot = privdrop.Privs{UID: privdrop.Keep, GID: privdrop.Keep}

// skipUnlessV3 skips t below ABI version 3.
func skipUnlessV3(t *testing.T) {
	t.Helper()
	if why := ll.SkipUnlessSupported(3); why != "" {
		t.Skip(why)
	}
}

// enoent and einval are what bpf_landlock_fs_beneath returns for "no
// object a path can be found for" and for flags other than 0.
const (
	enoent = -int64(unix.ENOENT)
	einval = -int64(unix.EINVAL)
)

// world is the file system of one case, on a tmpfs of its own mounted at
// root in the case thread's mount namespace:
//
//	root/x/d           D, the directory of the map
//	root/x/d/f         a file of D ("landlock\n"), with the xattr user.x
//	root/x/d/e         an empty directory
//	root/x/d/a/b/c/f   a file deep in D
//	root/x/d/l         a symbolic link to "f"
//	root/x/dd/f        the sibling of D, whose name starts like D's
//	root/x/xf          a file of D's parent
//	root/out           the same as D (f, e, a/b/c/f, l), outside D
type world struct {
	root, d, out string
	// fd are the fds the case opened before the rule, by path.
	fd map[string]int
	// mem are the mappings the case made before the rule, by path.
	mem  map[string][]byte
	undo []func()
	err  error
}

const fileContent = "landlock\n"

// newWorld makes this thread's mount namespace private, mounts a tmpfs at
// base and makes the world there. It runs on the case's rule thread.
func newWorld(base string) *world {
	w := &world{
		root: base, d: filepath.Join(base, "x", "d"), out: filepath.Join(base, "out"),
		fd: map[string]int{}, mem: map[string][]byte{},
	}
	w.do("unshare(CLONE_NEWNS)", func() error { return unix.Unshare(unix.CLONE_NEWNS) })
	w.do("making every mount private", func() error {
		return unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
	})
	w.do("mounting the case's tmpfs", func() error { return unix.Mount("tmpfs", base, "tmpfs", 0, "size=16m") })
	for _, dir := range []string{w.d, w.out} {
		w.mkdirAll(filepath.Join(dir, "a", "b", "c"))
		w.mkdirAll(filepath.Join(dir, "e"))
		w.file(filepath.Join(dir, "f"))
		w.file(filepath.Join(dir, "a", "b", "c", "f"))
		w.do("symlink", func() error { return os.Symlink("f", filepath.Join(dir, "l")) })
		w.do("setxattr user.x", func() error {
			return unix.Setxattr(filepath.Join(dir, "f"), "user.x", []byte("1"), 0)
		})
	}
	w.mkdirAll(filepath.Join(base, "x", "dd"))
	w.file(filepath.Join(base, "x", "dd", "f"))
	w.file(filepath.Join(base, "x", "xf"))
	return w
}

// do runs fn unless an earlier step failed, and keeps its error.
func (w *world) do(what string, fn func() error) {
	if w.err != nil {
		return
	}
	if err := fn(); err != nil {
		w.err = fmt.Errorf("%s: %w", what, err)
	}
}

func (w *world) mkdirAll(p string) {
	w.do("mkdir "+p, func() error { return os.MkdirAll(p, 0o755) })
}

func (w *world) file(p string) {
	w.do("creating "+p, func() error { return os.WriteFile(p, []byte(fileContent), 0o644) })
}

// open opens p with flags before the rule, as w.fd[p].
func (w *world) open(p string, flags int) {
	w.do("open "+p, func() error {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		w.fd[p] = fd
		w.undo = append(w.undo, func() { unix.Close(fd) })
		return nil
	})
}

// mmap maps one page of the open file p before the rule, as w.mem[p].
func (w *world) mmap(p string, prot, flags int) {
	w.do("mmap "+p, func() error {
		mem, err := unix.Mmap(w.fd[p], 0, os.Getpagesize(), prot, flags)
		if err != nil {
			return err
		}
		w.mem[p] = mem
		w.undo = append(w.undo, func() { unix.Munmap(mem) })
		return nil
	})
}

// mount mounts as mount(2) does, in the case's namespace.
func (w *world) mount(src, target, fstype string, flags uintptr, data string) {
	w.do(fmt.Sprintf("mount %s on %s", src, target), func() error {
		return unix.Mount(src, target, fstype, flags, data)
	})
}

func (w *world) close() {
	for i := len(w.undo) - 1; i >= 0; i-- {
		w.undo[i]()
	}
	w.undo = nil
}

// ino returns the inode number of p (not following a final symlink).
func ino(p string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return 0, fmt.Errorf("lstat %s: %w", p, err)
	}
	return st.Ino, nil
}

// openClose opens p with flags (creating it 0644 with O_CREAT) and closes
// it again.
func openClose(p string, flags int) error {
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// writeFile opens p write-only and writes to it.
func writeFile(p string) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Write(fd, []byte("w"))
	return err
}

// newFSMap creates a map of paths of n entries with paths at keys 0, 1,
// ..., closed when t ends.
func newFSMap(t *testing.T, n uint32, paths ...string) int {
	t.Helper()
	fd, err := ll.NewFSMapFD(n)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, ll.SetPaths(fd, paths...))
	return fd
}

// errName names an error for assertion messages: "ok" or the errno.
func errName(err error) string { return ll.ResultName(err) }

// isErrno reports whether err is the errno want (nil for success).
func isErrno(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}
