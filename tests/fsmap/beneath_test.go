package fsmap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// anyArg2 matches the runs of a case whatever their actions.
const anyArg2 = ^uint64(0)

// beneathCase is an operation and the run of it whose answer of
// bpf_landlock_fs_beneath the case checks: the runs of system call nr
// with arg2 (anyArg2: any) about the object obj (nil: any object) must be
// at least one, and each must have answered want.
type beneathCase struct {
	name  string
	setup func(w *world)
	// paths are the map's paths (nil: D alone).
	paths func(w *world) []string
	// flags are the helper's flags argument.
	flags int32
	// obj returns arg1 of the runs checked, the object's inode number,
	// before the operation (0: a new entry).
	obj  func(w *world) (uint64, error)
	nr   uintptr
	arg2 uint64
	op   func(w *world) error
	want int64
}

// at is the object at the path p of w.
func at(p func(w *world) string) func(w *world) (uint64, error) {
	return func(w *world) (uint64, error) { return ino(p(w)) }
}

// newEntry is arg1 of a NEW run: 0.
func newEntry(*world) (uint64, error) { return 0, nil }

// fdIno is the object of the open fd w.fd[name].
func fdIno(name string) func(w *world) (uint64, error) {
	return func(w *world) (uint64, error) {
		var st unix.Stat_t
		if err := unix.Fstat(w.fd[name], &st); err != nil {
			return 0, fmt.Errorf("fstat %s: %w", name, err)
		}
		return st.Ino, nil
	}
}

func inD(rel string) func(w *world) string {
	return func(w *world) string { return filepath.Join(w.d, rel) }
}
func inOut(rel string) func(w *world) string {
	return func(w *world) string { return filepath.Join(w.out, rel) }
}
func inRoot(rel string) func(w *world) string {
	return func(w *world) string { return filepath.Join(w.root, rel) }
}

func openWrite(p func(w *world) string) func(w *world) error {
	return func(w *world) error { return openClose(p(w), unix.O_WRONLY) }
}

// utimes sets explicit times on p: as the owner, only inode_setattr runs
// (no inode_permission(MAY_WRITE), which times of now would need).
// bindDSubdir bind-mounts D/a at root/bsub.
func bindDSubdir(w *world) {
	w.mkdirAll(filepath.Join(w.root, "bsub"))
	w.mount(filepath.Join(w.d, "a"), filepath.Join(w.root, "bsub"), "", unix.MS_BIND, "")
}

func utimes(p string) error {
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{Sec: 1}, {Sec: 2}}, unix.AT_SYMLINK_NOFOLLOW)
}

var beneathCases = []beneathCase{
	{
		// open(O_RDONLY) of D: file_open's second run, READ.
		name: "D_itself", obj: at(inD(".")), nr: unix.SYS_OPENAT, arg2: ll.ActionRead,
		op:   func(w *world) error { return openClose(w.d, unix.O_RDONLY|unix.O_DIRECTORY) },
		want: 1,
	},
	{
		name: "D_f", obj: at(inD("f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("f")), want: 1,
	},
	{
		name: "D_a_b_c_f", obj: at(inD("a/b/c/f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("a/b/c/f")), want: 1,
	},
	{
		name: "parent_of_D", obj: at(inRoot("x")), nr: unix.SYS_OPENAT, arg2: ll.ActionRead,
		op:   func(w *world) error { return openClose(filepath.Join(w.root, "x"), unix.O_RDONLY|unix.O_DIRECTORY) },
		want: 0,
	},
	{
		// /X/dd is not beneath /X/d, whatever its name starts with.
		name: "sibling_dd", obj: at(inRoot("x/dd/f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inRoot("x/dd/f")), want: 0,
	},
	{
		name: "D_dotdot_xf", obj: at(inRoot("x/xf")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("../xf")), want: 0,
	},
	{
		name: "symlink_in_D_to_outside_followed",
		setup: func(w *world) {
			w.do("symlink", func() error { return os.Symlink(filepath.Join(w.out, "f"), filepath.Join(w.d, "lo")) })
		},
		obj: at(inOut("f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("lo")), want: 0,
	},
	{
		// The link itself, removed: dir + entry, the entry in D.
		name: "symlink_in_D_itself_unlinked",
		setup: func(w *world) {
			w.do("symlink", func() error { return os.Symlink(filepath.Join(w.out, "f"), filepath.Join(w.d, "lo")) })
		},
		obj: at(inD("lo")), nr: unix.SYS_UNLINKAT, arg2: ll.ActionRemove,
		op:   func(w *world) error { return unix.Unlinkat(unix.AT_FDCWD, filepath.Join(w.d, "lo"), 0) },
		want: 1,
	},
	{
		name: "symlink_outside_into_D_followed",
		setup: func(w *world) {
			w.do("symlink", func() error { return os.Symlink(filepath.Join(w.d, "f"), filepath.Join(w.out, "li")) })
		},
		obj: at(inD("f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inOut("li")), want: 1,
	},
	{
		name: "bind_mount_of_D",
		setup: func(w *world) {
			w.mkdirAll(filepath.Join(w.root, "bind"))
			w.mount(w.d, filepath.Join(w.root, "bind"), "", unix.MS_BIND, "")
		},
		obj: at(inRoot("bind/f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inRoot("bind/f")), want: 1,
	},
	{
		// A bind mount of a subdirectory of D elsewhere: the path
		// used does not go through D.
		name: "bind_mount_of_D_subdir_open", setup: bindDSubdir,
		obj: at(inRoot("bsub/b/c/f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inRoot("bsub/b/c/f")), want: 0,
	},
	{
		// The same object through a hook that has no mount: one of
		// its paths in the namespace goes through D (documented).
		name: "bind_mount_of_D_subdir_utimensat", setup: bindDSubdir,
		obj: at(inRoot("bsub/b/c/f")), nr: unix.SYS_UTIMENSAT, arg2: ll.ActionWrite,
		op:   func(w *world) error { return utimes(filepath.Join(w.root, "bsub", "b", "c", "f")) },
		want: 1,
	},
	{
		// A tmpfs mounted on D before D is put in the map: the entry
		// is the tmpfs's root, which is what D names now.
		name: "tmpfs_on_D_then_map",
		setup: func(w *world) {
			w.mount("tmpfs", w.d, "tmpfs", 0, "size=1m")
			w.file(filepath.Join(w.d, "x"))
		},
		obj: at(inD("x")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("x")), want: 1,
	},
	{
		name: "bind_mount_into_D",
		setup: func(w *world) {
			w.mkdirAll(filepath.Join(w.root, "other"))
			w.file(filepath.Join(w.root, "other", "x"))
			w.mkdirAll(filepath.Join(w.d, "m"))
			w.mount(filepath.Join(w.root, "other"), filepath.Join(w.d, "m"), "", unix.MS_BIND, "")
		},
		obj: at(inD("m/x")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("m/x")), want: 1,
	},
	{
		name: "tmpfs_in_D_open", setup: tmpfsInD,
		obj: at(inD("t/x")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("t/x")), want: 1,
	},
	{
		// inode_setattr has the dentry only: the helper walks up
		// through the mounts of the inner tmpfs in the task's
		// namespace, the one at D/t here.
		name: "tmpfs_in_D_utimensat", setup: tmpfsInD,
		obj: at(inD("t/x")), nr: unix.SYS_UTIMENSAT, arg2: ll.ActionWrite,
		op:   func(w *world) error { return utimes(filepath.Join(w.d, "t", "x")) },
		want: 1,
	},
	{
		// The same, for a bind mount of another directory into D.
		name: "bind_mount_into_D_utimensat",
		setup: func(w *world) {
			w.mkdirAll(filepath.Join(w.root, "other"))
			w.file(filepath.Join(w.root, "other", "x"))
			w.mkdirAll(filepath.Join(w.d, "m"))
			w.mount(filepath.Join(w.root, "other"), filepath.Join(w.d, "m"), "", unix.MS_BIND, "")
		},
		obj: at(inD("m/x")), nr: unix.SYS_UTIMENSAT, arg2: ll.ActionWrite,
		op:   func(w *world) error { return utimes(filepath.Join(w.d, "m", "x")) },
		want: 1,
	},
	{
		// An object outside D that is not mounted into D.
		name: "outside_utimensat",
		setup: func(w *world) {
			w.file(filepath.Join(w.out, "u"))
		},
		obj: at(inOut("u")), nr: unix.SYS_UTIMENSAT, arg2: ll.ActionWrite,
		op:   func(w *world) error { return utimes(filepath.Join(w.out, "u")) },
		want: 0,
	},
	{
		name: "hard_link_outside_of_D_f",
		setup: func(w *world) {
			w.do("link", func() error { return os.Link(filepath.Join(w.d, "f"), filepath.Join(w.out, "L")) })
		},
		obj: at(inOut("L")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inOut("L")), want: 0,
	},
	{
		name: "renamed_out_of_D_fd_kept",
		setup: func(w *world) {
			w.file(filepath.Join(w.d, "r"))
			w.open(filepath.Join(w.d, "r"), unix.O_WRONLY)
			w.fd["r"] = w.fd[filepath.Join(w.d, "r")]
			w.do("rename", func() error { return os.Rename(filepath.Join(w.d, "r"), filepath.Join(w.out, "r")) })
		},
		obj: fdIno("r"), nr: unix.SYS_WRITE, arg2: ll.ActionWrite,
		op: func(w *world) error {
			_, err := unix.Write(w.fd["r"], []byte("w"))
			return err
		},
		want: 0,
	},
	{
		name: "renamed_into_D_fd_kept",
		setup: func(w *world) {
			w.file(filepath.Join(w.out, "s"))
			w.open(filepath.Join(w.out, "s"), unix.O_WRONLY)
			w.fd["s"] = w.fd[filepath.Join(w.out, "s")]
			w.do("rename", func() error { return os.Rename(filepath.Join(w.out, "s"), filepath.Join(w.d, "s")) })
		},
		obj: fdIno("s"), nr: unix.SYS_WRITE, arg2: ll.ActionWrite,
		op: func(w *world) error {
			_, err := unix.Write(w.fd["s"], []byte("w"))
			return err
		},
		want: 1,
	},
	{
		// A detached clone of D: the walk ends at its root, D's inode.
		name: "open_tree_clone_of_D",
		setup: func(w *world) {
			w.do("open_tree(OPEN_TREE_CLONE)", func() error {
				fd, err := unix.OpenTree(unix.AT_FDCWD, w.d, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
				if err != nil {
					return err
				}
				w.fd["tree"] = fd
				w.undo = append(w.undo, func() { unix.Close(fd) })
				return nil
			})
		},
		obj: at(inD("f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: func(w *world) error {
			fd, err := unix.Openat(w.fd["tree"], "f", unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			return unix.Close(fd)
		},
		want: 1,
	},
	{
		// The NEW run is judged by the parent directory.
		name: "mkdir_in_D", obj: newEntry, nr: unix.SYS_MKDIRAT, arg2: ll.ActionNew,
		op:   func(w *world) error { return unix.Mkdir(filepath.Join(w.d, "n"), 0o755) },
		want: 1,
	},
	{
		name: "mkdir_outside", obj: newEntry, nr: unix.SYS_MKDIRAT, arg2: ll.ActionNew,
		op:   func(w *world) error { return unix.Mkdir(filepath.Join(w.out, "n"), 0o755) },
		want: 0,
	},
	{
		name: "pipe_write",
		setup: func(w *world) {
			w.do("pipe", func() error {
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
					return err
				}
				w.fd["pipe"] = p[1]
				w.undo = append(w.undo, func() { unix.Close(p[0]); unix.Close(p[1]) })
				return nil
			})
		},
		obj: fdIno("pipe"), nr: unix.SYS_WRITE, arg2: ll.ActionWrite,
		op: func(w *world) error {
			_, err := unix.Write(w.fd["pipe"], []byte("w"))
			return err
		},
		want: enoent,
	},
	{
		name: "anonymous_shared_mmap", obj: newEntry, nr: unix.SYS_MMAP, arg2: anyArg2,
		op: func(w *world) error {
			mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
			if err != nil {
				return err
			}
			return unix.Munmap(mem)
		},
		want: enoent,
	},
	{
		// inode_permission has the inode only.
		name: "faccessat_w_ok", obj: at(inD("f")), nr: unix.SYS_FACCESSAT2, arg2: ll.ActionWrite,
		op:   func(w *world) error { return unix.Faccessat2(unix.AT_FDCWD, filepath.Join(w.d, "f"), unix.W_OK, 0) },
		want: enoent,
	},
	{
		name: "empty_map", paths: func(*world) []string { return nil },
		obj: at(inD("f")), nr: unix.SYS_OPENAT, arg2: ll.ActionWrite,
		op: openWrite(inD("f")), want: 0,
	},
	{
		// Flags other than 0: -EINVAL for every run, at run time.
		name: "flags_1", flags: 1, nr: unix.SYS_OPENAT, arg2: anyArg2,
		op: openWrite(inD("f")), want: einval,
	},
}

// tmpfsInD mounts a tmpfs at D/t with a file x.
func tmpfsInD(w *world) {
	w.mkdirAll(filepath.Join(w.d, "t"))
	w.mount("tmpfs", filepath.Join(w.d, "t"), "tmpfs", 0, "size=1m")
	w.file(filepath.Join(w.d, "t", "x"))
}

// recorded is what a recorded case brings back from its thread.
type recorded struct {
	setupErr error
	obj      uint64
	opErr    error
	recs     []ll.FSBeneathRecord
	seen     int
}

// runRecorded runs c on a new thread with a world at base: the setup,
// the map, the recorder appended as the thread's rule, the operation.
func runRecorded(base string, c beneathCase) (r recorded) {
	ll.RunOnRuleThread(func() {
		w := newWorld(base)
		defer w.close()
		if c.setup != nil {
			c.setup(w)
		}
		if w.err == nil && c.obj != nil {
			r.obj, w.err = c.obj(w)
		}
		paths := []string{w.d}
		if c.paths != nil {
			paths = c.paths(w)
		}
		if w.err == nil {
			r.setupErr = recordOp(w, paths, c.flags, c.op, &r)
			return
		}
		r.setupErr = w.err
	})
	return r
}

// recordOp makes the map and the recorder, appends it and runs op.
func recordOp(w *world, paths []string, flags int32, op func(w *world) error, r *recorded) error {
	mapFD, err := ll.NewFSMapFD(8)
	if err != nil {
		return err
	}
	defer unix.Close(mapFD)
	if err := ll.SetPaths(mapFD, paths...); err != nil {
		return err
	}
	rec, err := ll.NewFSBeneathRecorder(mapFD, flags)
	if err != nil {
		return err
	}
	defer rec.Close()
	if err := ll.Append(rec.Prog); err != nil {
		return err
	}
	if err := rec.Start(); err != nil {
		return err
	}
	r.opErr = op(w)
	r.recs, r.seen, err = rec.Stop()
	return err
}

// check asserts the answers of the case's runs.
func (r recorded) check(t *testing.T, c beneathCase) {
	t.Helper()
	var log strings.Builder
	for i, rec := range r.recs {
		fmt.Fprintf(&log, "\n  %2d %v", i, rec)
	}
	t.Logf("%d runs (object inode %d):%s", r.seen, r.obj, log.String())
	require.LessOrEqual(t, r.seen, ll.FSBeneathRecordCap, "more runs than the recorder keeps")
	n := 0
	for _, rec := range r.recs {
		if uintptr(rec.SyscallNr) != c.nr || c.arg2 != anyArg2 && rec.Arg2 != c.arg2 || c.obj != nil && rec.Arg1 != r.obj {
			continue
		}
		n++
		assert.Equal(t, c.want, rec.Ret, "bpf_landlock_fs_beneath for the run %v", rec)
	}
	assert.Positive(t, n, "no run of system call %d with arg2 %#x about inode %d", c.nr, c.arg2, r.obj)
}

// TestFSBeneath checks, object by object, what bpf_landlock_fs_beneath
// answers for the map {D}: the run of the operation that has the object's
// path (open(O_WRONLY): file_open's second run, WRITE, unless said).
func TestFSBeneath(t *testing.T) {
	skipUnlessV3(t)
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		for _, c := range beneathCases {
			t.Run(c.name, func(t *testing.T) {
				r := runRecorded(t.TempDir(), c)
				require.NoError(t, r.setupErr, "setup, map and recorder")
				require.NoError(t, r.opErr, "the operation, under a rule that allows everything")
				r.check(t, c)
			})
		}
	})
}
