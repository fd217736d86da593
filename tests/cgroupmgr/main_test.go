// Package cgroupmgr checks, in the guest, the cgroup manager of Landlock
// eBPF rules (../shared/spec/landlock-bpf-abi.md, "Version 2: cgroup
// manager"): Landlock programs attached to cgroup v2 directories with the
// attach type BPF_CGROUP_LANDLOCK_FS through the kernel's cgroup-bpf
// machinery, the errno of each command and flag (docs/abi-v2-plan.md §6),
// which tasks they restrict, and the privilege they need.
//
// Which programs ran is recorded through array maps: each program of a
// test has a slot, and when it runs for an action on the test's marker
// file (arg1 == the marker's inode) it adds 1 to its slot of the counts
// map and stores a tick of a shared clock in its slot of the order map.
//
// The test process stays in the root cgroup, and nothing is ever attached
// to the root cgroup. The tasks under test are helper processes (this test
// binary executed again with helperEnv set) started into a cgroup of the
// test's private hierarchy (clone3 CLONE_INTO_CGROUP, SysProcAttr.
// UseCgroupFD) or moved there through cgroup.procs.
//
// Every test skips on kernels below ABI version 2 and when cgroup2 is not
// mounted at /sys/fs/cgroup, but TestABIVersionMatchesCgroupAttach, which
// runs from version 1 on.
package cgroupmgr

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// attachType is BPF_CGROUP_LANDLOCK_FS, as bpf(2) takes it.
const attachType = landlockbpf.AttachCgroupLandlockFS

// skipUnlessCgroupManager skips t unless the kernel has ABI version 2 and
// cgroup2 is mounted at /sys/fs/cgroup.
func skipUnlessCgroupManager(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessSupported(2); why != "" {
		t.Skip(why)
	}
	if why := landlockbpf.SkipUnlessCgroup2(); why != "" {
		t.Skip(why)
	}
}

// maxSlots is how many recording programs a test may have (slots 1 to
// maxSlots; slot 0 of the order map is the clock).
const maxSlots = 8

// fixture is what most tests start from: a private cgroup hierarchy, a
// marker file, and the maps its recording programs write.
type fixture struct {
	top    *landlockbpf.Cgroup
	dir    string
	marker string
	ino    uint64
	counts *ebpf.Map // slot → how many times the program ran on the marker
	order  *ebpf.Map // slot → clock tick of its last run; 0: the clock
	seq    int
}

// newFixture skips t unless the cgroup manager can be tested, and makes
// the fixture.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	skipUnlessCgroupManager(t)
	f := &fixture{dir: t.TempDir()}
	// Small file systems (the initramfs, tmpfs, sysfs) hand out small
	// inode numbers: make markers until one has a number no other file
	// the helpers touch has.
	var err error
	for i := 0; ; i++ {
		f.marker = filepath.Join(f.dir, fmt.Sprintf("marker-%d", i))
		require.NoError(t, os.WriteFile(f.marker, []byte("marker\n"), 0o666))
		f.ino, err = landlockbpf.Inode(f.marker)
		require.NoError(t, err)
		clash := sameInode(t, f.ino, f.dir)
		if clash == "" {
			break
		}
		require.Less(t, i, 64, "no marker with an inode number of its own: %s has %d", clash, f.ino)
	}
	f.counts, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: maxSlots + 1})
	require.NoError(t, err, "creating the counts map")
	t.Cleanup(func() { f.counts.Close() })
	f.order, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: maxSlots + 1})
	require.NoError(t, err, "creating the order map")
	t.Cleanup(func() { f.order.Close() })
	f.top = landlockbpf.NewCgroupHierarchy(t)
	return f
}

// sameInode returns a file a helper process touches outside its steps
// that has the inode number ino on another file system, or "": the
// recording programs judge by inode number alone (spec, "Version 1 as
// built": arg1 has no device). Those files are the test binary and every
// directory on its path, the file the Go runtime reads at start-up
// (hpage_pmd_size) and its directories, and the directories of the
// marker's own path, and /dev/null (os/exec's standard files of a child
// that a helper spawns).
func sameInode(t *testing.T, ino uint64, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	var paths []string
	for _, p := range []string{exe, "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", dir, os.DevNull} {
		for ; ; p = filepath.Dir(p) {
			paths = append(paths, p)
			if p == "/" || p == "." {
				break
			}
		}
	}
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue // not there: not read either
		}
		if st.Ino == ino {
			return p
		}
	}
	return ""
}

// reset zeroes the counts and the clock.
func (f *fixture) reset(t *testing.T) {
	t.Helper()
	for i := uint32(0); i <= maxSlots; i++ {
		require.NoError(t, f.counts.Put(i, uint64(0)))
		require.NoError(t, f.order.Put(i, uint64(0)))
	}
}

// ran returns the slots whose programs ran on the marker since reset, in
// the order of their last runs.
func (f *fixture) ran(t *testing.T) []int {
	t.Helper()
	type run struct {
		slot int
		tick uint64
	}
	var runs []run
	for i := 1; i <= maxSlots; i++ {
		var n, tick uint64
		require.NoError(t, f.counts.Lookup(uint32(i), &n))
		require.NoError(t, f.order.Lookup(uint32(i), &tick))
		if n > 0 {
			t.Logf("slot %d: %d runs on the marker, last at tick %d", i, n, tick)
			runs = append(runs, run{i, tick})
		}
	}
	slices.SortFunc(runs, func(a, b run) int { return int(a.tick) - int(b.tick) })
	slots := []int{}
	for _, r := range runs {
		slots = append(slots, r.slot)
	}
	return slots
}

// markerInsns is a Landlock program for slot that, for an action on the
// marker, counts its run, stamps the clock and denies when arg2 & deny is
// not 0; it allows every other action.
func (f *fixture) markerInsns(slot int, deny int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, landlockbpf.CtxOffArg1, asm.DWord),
		asm.LoadImm(asm.R3, int64(f.ino), asm.DWord),
		asm.JNE.Reg(asm.R2, asm.R3, "allow"),
		// counts[slot] += 1
		asm.StoreImm(asm.RFP, -4, int64(slot), asm.Word),
		asm.LoadMapPtr(asm.R1, f.counts.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "verdict"),
		asm.Mov.Imm(asm.R1, 1),
		asm.AddAtomic.Mem(asm.R0, asm.R1, asm.DWord, 0),
		// order[slot] = ++order[0]. A plain load, add and store: the
		// programs of one action run one after the other on the task's
		// thread, and the helper acts on the marker from one thread.
		// (Not asm.FetchAdd: cilium/ebpf v0.22.0's Instruction.Marshal
		// computes the imm field before it moves the atomic operation
		// there, so BPF_FETCH is lost and the source register keeps its
		// value; seen on the host kernel too.)
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, f.order.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "verdict"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R7, 1),
		asm.StoreMem(asm.R0, 0, asm.R7, asm.DWord),
		asm.StoreImm(asm.RFP, -4, int64(slot), asm.Word),
		asm.LoadMapPtr(asm.R1, f.order.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "verdict"),
		asm.StoreMem(asm.R0, 0, asm.R7, asm.DWord),
		// deny the actions of the mask
		asm.LoadMem(asm.R2, asm.R6, landlockbpf.CtxOffArg2, asm.DWord).WithSymbol("verdict"),
		asm.Mov.Imm(asm.R0, 0),
		asm.And.Imm(asm.R2, deny),
		asm.JEq.Imm(asm.R2, 0, "exit"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return().WithSymbol("exit"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	}
}

// prog loads the recording program of slot, denying the actions of deny
// on the marker; it is closed when t ends.
func (f *fixture) prog(t *testing.T, slot int, deny int32) *ebpf.Program {
	t.Helper()
	require.True(t, slot >= 1 && slot <= maxSlots, "slot %d", slot)
	return load(t, f.markerInsns(slot, deny))
}

// load loads insns as a Landlock program (expected_attach_type
// BPF_LANDLOCK_FS, the only one the load accepts), closed when t ends.
func load(t *testing.T, insns asm.Instructions) *ebpf.Program {
	t.Helper()
	p, err := landlockbpf.Load(insns)
	require.NoError(t, err, "loading a Landlock program")
	t.Cleanup(func() { p.Close() })
	return p
}

// progID returns the id of p.
func progID(t *testing.T, p *ebpf.Program) uint32 {
	t.Helper()
	id, err := landlockbpf.ProgID(p)
	require.NoError(t, err)
	return id
}

// attach attaches p to cg with flags and fails t if the kernel refuses.
func attach(t *testing.T, cg *landlockbpf.Cgroup, p *ebpf.Program, flags uint32) {
	t.Helper()
	require.NoError(t, landlockbpf.ProgAttach(cg.FD, p.FD(), attachType, flags, 0),
		"BPF_PROG_ATTACH to %s with flags %#x", cg.Path, flags)
}

// query returns the programs attached to cg (not effective), with their
// per-program attach flags.
func query(t *testing.T, cg *landlockbpf.Cgroup) landlockbpf.QueryResult {
	t.Helper()
	res, err := landlockbpf.ProgQuery(cg.FD, attachType, 0, true)
	require.NoError(t, err, "BPF_PROG_QUERY of %s", cg.Path)
	return res
}

// effective returns the ids of cg's effective programs, in run order.
func effective(t *testing.T, cg *landlockbpf.Cgroup) []uint32 {
	t.Helper()
	res, err := landlockbpf.ProgQuery(cg.FD, attachType, unix.BPF_F_QUERY_EFFECTIVE, false)
	require.NoError(t, err, "BPF_PROG_QUERY with BPF_F_QUERY_EFFECTIVE of %s", cg.Path)
	return res.ProgIDs
}

// newLink creates a link of p on cg with link_create.flags flags and
// returns its fd as a file, closed when t ends if the test has not closed
// it (os.File.Close is once only, so a closed link's fd number, reused by
// then, is never closed again).
func newLink(t *testing.T, cg *landlockbpf.Cgroup, p *ebpf.Program, flags uint32) *os.File {
	t.Helper()
	fd, err := landlockbpf.LinkCreate(p.FD(), cg.FD, attachType, flags)
	require.NoError(t, err, "BPF_LINK_CREATE on %s", cg.Path)
	l := os.NewFile(uintptr(fd), "cgroup-link")
	t.Cleanup(func() { l.Close() })
	return l
}

// dupFile returns a duplicate of fd as a file, to give a helper
// (exec.Cmd.ExtraFiles), closed when t ends.
func dupFile(t *testing.T, fd int, name string) *os.File {
	t.Helper()
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	require.NoError(t, err, "duplicating the fd of %s", name)
	f := os.NewFile(uintptr(d), name)
	t.Cleanup(func() { f.Close() })
	return f
}

// The helper process: this test binary, executed again with helperEnv set,
// runs the steps given as its arguments on one locked thread, in order,
// and writes one line per step to its standard output ("<step>\t<result>",
// the result "ok" or an errno name such as "EPERM"). The steps:
//
//	read=PATH      open PATH read-only (and close it)
//	write=PATH     open PATH write-only
//	ioctl=PATH     open PATH read-only, ioctl(FIONREAD) on it
//	flock=PATH     open PATH read-only, flock(LOCK_SH) then LOCK_UN
//	wait           read one line from its standard input
//	append         append the Landlock rule at fd 3 to its domain
//	spawn=STEP     run STEP in a child helper (fork and execve) and report
//	               the child's result
//	link-pin=PATH  create a link of the program at fd 3 on the cgroup at
//	               fd 4 and pin it at PATH
//
// A helper started with helperExitEnv set instead exits with the errno of
// its last step (0 for "ok"), which is how spawn learns the result.
const (
	helperEnv     = "LANDLOCK_VMTEST_CGROUPMGR_HELPER"
	helperExitEnv = "LANDLOCK_VMTEST_CGROUPMGR_HELPER_EXIT"
	helperFirstFD = 3
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain(os.Args[1:], os.Getenv(helperExitEnv) == "1"))
	}
	os.Exit(m.Run())
}

// helperMain runs the helper's steps.
func helperMain(steps []string, exitErrno bool) int {
	// The rules of "append" belong to the thread that appends them: every
	// step runs on this one.
	runtime.LockOSThread()
	in := bufio.NewReader(os.Stdin)
	var last error
	for _, step := range steps {
		last = helperStep(step, in)
		if !exitErrno {
			fmt.Fprintf(os.Stdout, "%s\t%s\n", step, landlockbpf.ResultName(last))
		}
	}
	if exitErrno {
		var errno unix.Errno
		switch {
		case last == nil:
			return 0
		case errors.As(last, &errno) && errno < 256:
			return int(errno)
		}
		fmt.Fprintf(os.Stderr, "helper: %v\n", last)
		return 255
	}
	return 0
}

func helperStep(step string, in *bufio.Reader) error {
	name, arg, _ := strings.Cut(step, "=")
	switch name {
	case "read":
		return openClose(arg, unix.O_RDONLY)
	case "write":
		return openClose(arg, unix.O_WRONLY)
	case "ioctl":
		return withOpen(arg, func(fd int) error {
			_, err := unix.IoctlGetInt(fd, fionread)
			return err
		})
	case "flock":
		return withOpen(arg, func(fd int) error {
			if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
				return err
			}
			return unix.Flock(fd, unix.LOCK_UN)
		})
	case "wait":
		_, err := in.ReadString('\n')
		return err
	case "append":
		fd := uint32(helperFirstFD)
		_, err := landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, 0, unsafe.Pointer(&fd))
		return err
	case "spawn":
		return spawnStep(arg)
	case "link-pin":
		fd, err := landlockbpf.LinkCreate(helperFirstFD, helperFirstFD+1, attachType, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return landlockbpf.ObjPin(fd, arg)
	}
	return fmt.Errorf("unknown step %q", step)
}

// spawnStep runs step in a child helper that inherits this process's
// cgroup, and returns the errno it exited with.
func spawnStep(step string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, step)
	cmd.Env = append(os.Environ(), helperExitEnv+"=1")
	cmd.Stderr = os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee) && ee.ExitCode() > 0 && ee.ExitCode() < 255:
		return unix.Errno(ee.ExitCode())
	}
	return fmt.Errorf("spawned helper: %w", err)
}

func openClose(path string, flags int) error {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func withOpen(path string, fn func(fd int) error) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn(fd)
}

// fionread is FIONREAD, which on x86_64 and arm64 has the value of
// TIOCINQ: for a regular file, do_vfs_ioctl answers it (the bytes left to
// read) after the file_ioctl hook.
const fionread = unix.TIOCINQ

// taskTimeout bounds the wait for one line of a helper.
const taskTimeout = 30 * time.Second

// task is a running helper process.
type task struct {
	cmd    *exec.Cmd
	stdin  *os.File
	lines  chan string
	stderr string
	steps  []string
	next   int
}

// startTask starts a helper that runs steps, in the cgroup cg (nil: the
// test process's own, the root cgroup), with files as its fds 3, 4, ...
// Its standard input and output are pipes whose inode numbers differ
// from the marker's, its standard error a file next to the marker. It is
// killed, if still running, when t ends.
func (f *fixture) startTask(t *testing.T, cg *landlockbpf.Cgroup, files []*os.File, steps ...string) *task {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	inR, inW := f.pipe(t)
	outR, outW := f.pipe(t)
	f.seq++
	errPath := filepath.Join(f.dir, "stderr-"+strconv.Itoa(f.seq))
	errFile, err := os.Create(errPath)
	require.NoError(t, err)
	defer errFile.Close()

	tk := &task{cmd: exec.Command(exe, steps...), stdin: inW, lines: make(chan string, len(steps)+1), stderr: errPath, steps: steps}
	tk.cmd.Env = append(os.Environ(), helperEnv+"=1")
	tk.cmd.Stdin, tk.cmd.Stdout, tk.cmd.Stderr = inR, outW, errFile
	tk.cmd.ExtraFiles = files
	if cg != nil {
		tk.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD}
	}
	err = tk.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		require.NoError(t, err, "starting the helper %q", steps)
	}
	go func() {
		defer close(tk.lines)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			tk.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		tk.stdin.Close()
		if tk.cmd.ProcessState == nil {
			tk.cmd.Process.Kill()
			tk.cmd.Wait()
		}
	})
	return tk
}

// pipe makes a pipe whose inode number is not the marker's: a program
// that judges the marker by inode number would judge the helper's
// reports too.
func (f *fixture) pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	for range 8 {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		var st unix.Stat_t
		require.NoError(t, unix.Fstat(int(r.Fd()), &st))
		if st.Ino != f.ino {
			return r, w
		}
		r.Close()
		w.Close()
	}
	t.Fatal("every pipe made has the marker's inode number")
	return nil, nil
}

// result returns the result of the helper's next step.
func (tk *task) result(t *testing.T) string {
	t.Helper()
	require.Less(t, tk.next, len(tk.steps), "the helper has no more steps")
	step := tk.steps[tk.next]
	select {
	case line, ok := <-tk.lines:
		if !ok {
			tk.cmd.Wait()
			b, _ := os.ReadFile(tk.stderr)
			t.Fatalf("the helper %q ended before reporting step %q (%v): %s", tk.steps, step, tk.cmd.ProcessState, b)
		}
		got, res, _ := strings.Cut(line, "\t")
		require.Equal(t, step, got, "the helper's line %q", line)
		tk.next++
		return res
	case <-time.After(taskTimeout):
		t.Fatalf("the helper %q did not report step %q within %v", tk.steps, step, taskTimeout)
	}
	return ""
}

// resume lets a helper blocked in a "wait" step go on.
func (tk *task) resume(t *testing.T) {
	t.Helper()
	_, err := io.WriteString(tk.stdin, "\n")
	require.NoError(t, err, "resuming the helper")
}

// finish closes the helper's input, returns the results of the steps not
// read yet, and waits for it to exit with status 0.
func (tk *task) finish(t *testing.T) []string {
	t.Helper()
	tk.stdin.Close()
	var res []string
	for tk.next < len(tk.steps) {
		res = append(res, tk.result(t))
	}
	err := tk.cmd.Wait()
	b, _ := os.ReadFile(tk.stderr)
	require.NoError(t, err, "the helper %q: %s", tk.steps, b)
	return res
}

// run runs a helper with steps in cg to its end and returns the result of
// each step.
func (f *fixture) run(t *testing.T, cg *landlockbpf.Cgroup, steps ...string) []string {
	t.Helper()
	return f.startTask(t, cg, nil, steps...).finish(t)
}

// readWrite are the steps that show a deny-WRITE program: reading the
// marker, then opening it for writing.
func (f *fixture) readWrite() []string {
	return []string{"read=" + f.marker, "write=" + f.marker}
}

// Results of readWrite.
var (
	bothAllowed = []string{"ok", "ok"}
	writeDenied = []string{"ok", "EPERM"}
)

// cgroupOf returns the cgroup v2 path of the process pid
// (/proc/PID/cgroup's "0::" line).
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	t.Fatalf("no cgroup v2 line in /proc/%d/cgroup: %q", pid, b)
	return ""
}

// relCgroup returns the path of cg as /proc/PID/cgroup shows it.
func relCgroup(cg *landlockbpf.Cgroup) string {
	return strings.TrimPrefix(cg.Path, landlockbpf.CgroupRoot)
}
