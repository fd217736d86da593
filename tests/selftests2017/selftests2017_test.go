// Package selftests2017 runs, against the Landlock eBPF ABI version 1,
// what the file system selftests of the 2017 Landlock RFC (v6) checked:
// a read-only rule (files, mounts, memory mappings) and a rule that denies
// opening a directory hierarchy, in the test and in a forked child.
//
// Every scenario runs in a child process of the test binary (privdrop.Run,
// keeping root: appending a rule needs CAP_SYS_ADMIN in version 1), on a
// goroutine locked to a thread of its own (landlockbpf.RunOnRuleThread),
// which appends the rule and does the operations; the results are checked
// once that thread has ended.
package selftests2017

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// helperEnv turns the test binary into the forked child of
// deny_open_for_hierarchy (see TestMain).
const helperEnv = "LANDLOCK_VMTEST_SELFTESTS2017_CHILD"

// childFD is where the forked child finds the file opened before the rule.
const childFD = 3

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "deny_open" {
		os.Exit(denyOpenChild())
	}
	os.Exit(m.Run())
}

var keepRoot = privdrop.Privs{UID: privdrop.Keep, GID: privdrop.Keep}

// content is what the files of the layout hold.
const content = "fs_read_only"

// layout is the set of files of the 2017 tests, in dir: file_created and
// dir_created, and file_ro, file_rw and file_wo, each open as its name
// says.
type layout struct {
	dir            string
	ro, rw, wo     int
	fileCreated    string
	dirCreated     string
	shouldNotExist string
}

func newLayout(dir string) (*layout, error) {
	l := &layout{
		dir: dir, ro: -1, rw: -1, wo: -1,
		fileCreated:    filepath.Join(dir, "file_created"),
		dirCreated:     filepath.Join(dir, "dir_created"),
		shouldNotExist: filepath.Join(dir, "should_not_exist"),
	}
	if err := os.WriteFile(l.fileCreated, []byte(content), 0o600); err != nil {
		return l, err
	}
	if err := os.Mkdir(l.dirCreated, 0o700); err != nil {
		return l, err
	}
	for _, f := range []struct {
		name  string
		flags int
		fd    *int
	}{
		{"file_ro", unix.O_RDONLY, &l.ro},
		{"file_rw", unix.O_RDWR, &l.rw},
		{"file_wo", unix.O_WRONLY, &l.wo},
	} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return l, err
		}
		fd, err := unix.Open(path, f.flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return l, fmt.Errorf("open %s: %w", f.name, err)
		}
		*f.fd = fd
	}
	return l, nil
}

func (l *layout) close() {
	for _, fd := range []int{l.ro, l.rw, l.wo} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// step is one operation of a scenario and the error it must give (nil:
// it must succeed).
type step struct {
	name string
	do   func() error
	want error
}

// outcome is what a step gave.
type outcome struct {
	step
	got error
}

// scenario is one 2017 test: setup, steps before the rule, the rule
// appended, steps under the rule; all on one rule thread.
type scenario struct {
	rule   asm.Instructions
	setup  func(l *layout) error
	before func(l *layout) []step
	under  func(l *layout) []step
}

// run runs s in dir and checks every step, on the test's goroutine once
// the rule thread has ended.
func (s scenario) run(t *testing.T, dir string) {
	t.Helper()
	prog, err := ll.Load(s.rule)
	require.NoError(t, err, "loading the rule")
	defer prog.Close()

	var (
		setupErr, appendErr error
		before, under       []outcome
	)
	ll.RunOnRuleThread(func() {
		l, err := newLayout(dir)
		defer l.close()
		if err == nil && s.setup != nil {
			err = s.setup(l)
		}
		if err != nil {
			setupErr = err
			return
		}
		if s.before != nil {
			before = runSteps(s.before(l))
		}
		if appendErr = ll.Append(prog); appendErr != nil {
			return
		}
		under = runSteps(s.under(l))
	})
	require.NoError(t, setupErr, "setting up the layout")
	checkSteps(t, "before the rule", before)
	require.NoError(t, appendErr)
	checkSteps(t, "under the rule", under)
}

func runSteps(steps []step) []outcome {
	out := make([]outcome, len(steps))
	for i, s := range steps {
		out[i] = outcome{step: s, got: s.do()}
	}
	return out
}

func checkSteps(t *testing.T, when string, outs []outcome) {
	t.Helper()
	for _, o := range outs {
		t.Logf("%s: %s: %v", when, o.name, errText(o.got))
		if o.want == nil {
			assert.NoError(t, o.got, "%s: %s must work", when, o.name)
		} else {
			assert.ErrorIs(t, o.got, o.want, "%s: %s", when, o.name)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// Operations, as error-returning functions.

func openClose(path string, flags int) func() error {
	return func() error {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	}
}

func write(fd int) func() error {
	return func() error {
		_, err := unix.Write(fd, []byte("should not be written"))
		return err
	}
}

func read(fd int) func() error {
	return func() error {
		n, err := unix.Pread(fd, make([]byte, 2), 0)
		if err == nil && n != 2 {
			return fmt.Errorf("read %d bytes, want 2", n)
		}
		return err
	}
}

func mapping(fd, prot, flags int) func() error {
	return func() error {
		mem, err := unix.Mmap(fd, 0, 1, prot, flags)
		if err != nil {
			return err
		}
		return unix.Munmap(mem)
	}
}

// readOnly is the rule of the fs_read_only tests: it denies writing,
// creating and removing, on every object.
var readOnly = ll.DenyActions(ll.ActionWrite | ll.ActionNew | ll.ActionRemove)

func TestFSReadOnly(t *testing.T) {
	if why := ll.SkipUnlessSupported(1); why != "" {
		t.Skip(why)
	}
	for _, tc := range []struct {
		name string
		s    scenario
	}{
		{"read_only_file", readOnlyFile},
		{"read_only_mount", readOnlyMount},
		{"read_only_mem", readOnlyMem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privdrop.Run(t, keepRoot, func(t *testing.T) { tc.s.run(t, t.TempDir()) })
		})
	}
}

var readOnlyFile = scenario{
	rule: readOnly,
	before: func(l *layout) []step {
		return []step{
			{"write on the read-only fd", write(l.ro), unix.EBADF},
			{"read on the write-only fd", read(l.wo), unix.EBADF},
			// The file system can make an unnamed file: EPERM under
			// the rule is the rule's, not the file system's
			// EOPNOTSUPP.
			{"open(dir, O_TMPFILE|O_RDWR)", openClose(l.dir, unix.O_TMPFILE|unix.O_EXCL|unix.O_RDWR), nil},
		}
	},
	under: func(l *layout) []step {
		return []step{
			{"open(dir, O_TMPFILE|O_RDWR)", openClose(l.dir, unix.O_TMPFILE|unix.O_EXCL|unix.O_RDWR), unix.EPERM},
			{"open(file_created, O_RDONLY)", openClose(l.fileCreated, unix.O_RDONLY), nil},
			{"open(file_created, O_RDWR)", openClose(l.fileCreated, unix.O_RDWR), unix.EPERM},
			{"open(file_created, O_WRONLY)", openClose(l.fileCreated, unix.O_WRONLY), unix.EPERM},
			{"open(should_not_exist, O_CREAT|O_EXCL)", openClose(l.shouldNotExist, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY), unix.EPERM},
			{"write on the read-only fd", write(l.ro), unix.EBADF},
			{"read on the read-only fd", read(l.ro), nil},
			{"write on the read-write fd, open before the rule", write(l.rw), unix.EPERM},
			{"read on the read-write fd", read(l.rw), nil},
			{"write on the write-only fd, open before the rule", write(l.wo), unix.EPERM},
			{"read on the write-only fd", read(l.wo), unix.EBADF},
			{"unlink(file_created)", func() error { return unix.Unlink(l.fileCreated) }, unix.EPERM},
			{"rmdir(dir_created)", func() error { return unix.Rmdir(l.dirCreated) }, unix.EPERM},
			{"stat(file_created): still there", func() error {
				var st unix.Stat_t
				return unix.Stat(l.fileCreated, &st)
			}, nil},
		}
	},
}

// readOnlyMount works in a mount namespace of the rule thread, so that
// nothing it mounts is seen by the rest of the system.
var readOnlyMount = scenario{
	rule: readOnly,
	setup: func(l *layout) error {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("making every mount private: %w", err)
		}
		if err := os.Mkdir(filepath.Join(l.dir, "mnt"), 0o700); err != nil {
			return err
		}
		return unix.Mount("tmpfs", filepath.Join(l.dir, "mnt"), "tmpfs", 0, "size=1m")
	},
	before: func(l *layout) []step {
		return []step{
			{"bind mount of dir on dir_created", func() error { return unix.Mount(l.dir, l.dirCreated, "", unix.MS_BIND, "") }, nil},
			{"umount(dir_created)", func() error { return unix.Unmount(l.dirCreated, 0) }, nil},
		}
	},
	under: func(l *layout) []step {
		return []step{
			{"bind mount of dir on dir_created", func() error { return unix.Mount(l.dir, l.dirCreated, "", unix.MS_BIND, "") }, unix.EPERM},
			{"mount of a tmpfs on dir_created", func() error { return unix.Mount("tmpfs", l.dirCreated, "tmpfs", 0, "") }, unix.EPERM},
			{"umount of the tmpfs mounted before the rule", func() error { return unix.Unmount(filepath.Join(l.dir, "mnt"), 0) }, unix.EPERM},
			{"the tmpfs is still mounted", func() error {
				var here, parent unix.Stat_t
				if err := unix.Stat(filepath.Join(l.dir, "mnt"), &here); err != nil {
					return err
				}
				if err := unix.Stat(l.dir, &parent); err != nil {
					return err
				}
				if here.Dev == parent.Dev {
					return errors.New("mnt is on the same device as its parent: unmounted")
				}
				return nil
			}, nil},
		}
	},
}

var readOnlyMem = scenario{
	rule: readOnly,
	before: func(l *layout) []step {
		return []step{
			{"mmap(PROT_READ|PROT_WRITE, MAP_SHARED)", mapping(l.rw, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED), nil},
		}
	},
	under: func(l *layout) []step {
		var shared, private []byte
		return []step{
			{"mmap(PROT_READ, MAP_SHARED)", func() (err error) {
				shared, err = unix.Mmap(l.rw, 0, 1, unix.PROT_READ, unix.MAP_SHARED)
				return err
			}, nil},
			{"mprotect(PROT_WRITE) of the shared mapping", func() error { return unix.Mprotect(shared, unix.PROT_WRITE) }, unix.EPERM},
			{"mprotect(PROT_READ|PROT_WRITE) of the shared mapping", func() error { return unix.Mprotect(shared, unix.PROT_READ|unix.PROT_WRITE) }, unix.EPERM},
			{"munmap of the shared mapping", func() error { return unix.Munmap(shared) }, nil},
			{"mmap(PROT_READ|PROT_WRITE, MAP_SHARED)", mapping(l.rw, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED), unix.EPERM},
			{"mmap(PROT_WRITE, MAP_SHARED)", mapping(l.rw, unix.PROT_WRITE, unix.MAP_SHARED), unix.EPERM},
			{"mmap(PROT_READ|PROT_WRITE, MAP_PRIVATE)", func() (err error) {
				private, err = unix.Mmap(l.rw, 0, 1, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
				if err == nil {
					private[0] = 'F' // copy on write, the file is not written
				}
				return err
			}, nil},
			{"munmap of the private mapping", func() error { return unix.Munmap(private) }, nil},
			{"mprotect(PROT_READ|PROT_WRITE) of a private mapping", func() error {
				mem, err := unix.Mmap(l.rw, 0, 1, unix.PROT_READ, unix.MAP_PRIVATE)
				if err != nil {
					return err
				}
				defer unix.Munmap(mem)
				return unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE)
			}, nil},
			{"the file was not written", func() error {
				got := make([]byte, len(content))
				if _, err := unix.Pread(l.rw, got, 0); err != nil {
					return err
				}
				if string(got) != content {
					return fmt.Errorf("the file holds %q, want %q", got, content)
				}
				return nil
			}, nil},
		}
	},
}

// denyGetOf is the rule of deny_open_for_hierarchy: version 1 has no path
// helper, so it denies GET (open, receive) of the objects whose inode
// numbers are keys of the hash map inodes, and allows the rest.
func denyGetOf(inodes *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, ll.CtxOffArg2, asm.DWord),
		asm.And.Imm(asm.R2, ll.ActionGet),
		asm.JEq.Imm(asm.R2, 0, "allow"),
		asm.LoadMem(asm.R2, asm.R1, ll.CtxOffArg1, asm.DWord),
		asm.StoreMem(asm.RFP, -8, asm.R2, asm.DWord),
		asm.LoadMapPtr(asm.R1, inodes.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	}
}

func TestFSNoOpen(t *testing.T) {
	if why := ll.SkipUnlessSupported(1); why != "" {
		t.Skip(why)
	}
	t.Run("deny_open_for_hierarchy", func(t *testing.T) {
		privdrop.Run(t, keepRoot, denyOpenForHierarchy)
	})
}

// hierarchy is the tree whose opening the rule denies, under its root.
var hierarchy = []string{".", "file_ro", "file_rw", "sub", "sub/file"}

// denyOpenForHierarchy denies opening a directory and its entries; the
// thread, then a child it forks, works in that directory.
//
// Inode numbers are unique within one file system only. The hierarchy is
// made on the file system of the working directory, which holds the test
// binary, and the scenario checks that nothing else it opens or executes
// has one of the denied numbers.
func denyOpenForHierarchy(t *testing.T) {
	cwd, err := os.Getwd()
	require.NoError(t, err)
	root, err := os.MkdirTemp(cwd, "hierarchy")
	require.NoError(t, err, "making the hierarchy next to the test binary")
	t.Cleanup(func() { os.RemoveAll(root) })
	require.NoError(t, os.Mkdir(filepath.Join(root, "sub"), 0o755))
	for _, f := range []string{"file_ro", "file_rw", "sub/file"} {
		require.NoError(t, os.WriteFile(filepath.Join(root, f), []byte(content), 0o600))
	}
	exe, err := os.Executable()
	require.NoError(t, err)

	inodes, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: uint32(len(hierarchy))})
	require.NoError(t, err)
	defer inodes.Close()
	denied := map[uint64]string{}
	for _, name := range hierarchy {
		ino, err := inode(filepath.Join(root, name))
		require.NoError(t, err)
		denied[ino] = name
		require.NoError(t, inodes.Put(ino, uint32(1)))
	}
	for _, other := range []string{filepath.Dir(root), "/", exe} {
		ino, err := inode(other)
		require.NoError(t, err)
		_, clash := denied[ino]
		require.False(t, clash, "%s has the inode number %d of %s in the hierarchy: the test would deny it too", other, ino, denied[ino])
	}
	prog, err := ll.Load(denyGetOf(inodes))
	require.NoError(t, err)
	defer prog.Close()

	var (
		setupErr, appendErr error
		before, under       []outcome
		child               bytes.Buffer
	)
	ll.RunOnRuleThread(func() {
		// This thread's own working directory: the forked child
		// inherits it, the rest of the process keeps its own.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			setupErr = fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(root); err != nil {
			setupErr = err
			return
		}
		rw, err := unix.Open("file_rw", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			setupErr = err
			return
		}
		defer unix.Close(rw)
		before = runSteps([]step{{`open(".")`, openClose(".", unix.O_RDONLY|unix.O_DIRECTORY), nil}})
		if appendErr = ll.Append(prog); appendErr != nil {
			return
		}
		under = runSteps([]step{
			{`open(".")`, openClose(".", unix.O_RDONLY|unix.O_DIRECTORY), unix.EPERM},
			{`open("file_ro")`, openClose("file_ro", unix.O_RDONLY), unix.EPERM},
			{`open("sub")`, openClose("sub", unix.O_RDONLY|unix.O_DIRECTORY), unix.EPERM},
			{`open("sub/file")`, openClose("sub/file", unix.O_RDONLY), unix.EPERM},
			{`open("..") (outside the hierarchy)`, openClose("..", unix.O_RDONLY|unix.O_DIRECTORY), nil},
			{`open("/") (outside the hierarchy)`, openClose("/", unix.O_RDONLY|unix.O_DIRECTORY), nil},
			{`stat("file_ro") (not GET)`, func() error {
				var st unix.Stat_t
				return unix.Stat("file_ro", &st)
			}, nil},
			{"mmap(PROT_READ|PROT_WRITE, MAP_SHARED) of file_rw, open before the rule",
				mapping(rw, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED), nil},
			{"the same in a forked child", func() error { return forkChild(exe, rw, &child) }, nil},
		})
	})
	require.NoError(t, setupErr)
	checkSteps(t, "before the rule", before)
	require.NoError(t, appendErr)
	checkSteps(t, "under the rule", under)
	if child.Len() > 0 {
		t.Logf("the forked child said:\n%s", child.String())
	}
}

// forkChild runs the test binary as the forked child of
// deny_open_for_hierarchy (denyOpenChild), from the calling thread, so
// that the child inherits its rules and its working directory, with the
// file rw as fd childFD.
func forkChild(exe string, rw int, out *bytes.Buffer) error {
	dup, err := unix.FcntlInt(uintptr(rw), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("dup: %w", err)
	}
	f := os.NewFile(uintptr(dup), "file_rw")
	defer f.Close()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=deny_open")
	cmd.ExtraFiles = []*os.File{f}
	// Not /dev/null, which os/exec would open: its inode number, on
	// another file system, might be one of the denied ones.
	cmd.Stdin = strings.NewReader("")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the forked child: %w: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// inode returns the inode number of path, the arg1 rules see for it.
func inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}

// denyOpenChild is the forked child of deny_open_for_hierarchy: it exits
// with 0 if opening its working directory is denied with EPERM and mapping
// the file open before the rule (fd childFD) works, 1 otherwise.
func denyOpenChild() int {
	var problems []string
	if fd, err := unix.Open(".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		unix.Close(fd)
		problems = append(problems, `open(".") works in the child`)
	} else if !errors.Is(err, unix.EPERM) {
		problems = append(problems, fmt.Sprintf(`open("."): %v, want EPERM`, err))
	}
	if mem, err := unix.Mmap(childFD, 0, 1, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		problems = append(problems, fmt.Sprintf("mmap of file_rw: %v", err))
	} else {
		unix.Munmap(mem)
	}
	if len(problems) > 0 {
		fmt.Fprintln(os.Stderr, strings.Join(problems, "\n"))
		return 1
	}
	fmt.Println(`open(".") denied with EPERM, mmap of file_rw works`)
	return 0
}
