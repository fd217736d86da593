package seccompentry

// Memory: the rules' memory comes back when the tasks holding it are gone,
// and the levels of version 4 are shared, not copied.
//
// Both tests measure in a memory cgroup (cgroup v2, CONFIG_MEMCG) of their
// own, which a privdrop child process (keepRoot) joins before it appends
// anything: the series allocates its domains and levels (rule lists below
// version 4) with GFP_KERNEL_ACCOUNT, charged to the cgroup of the task
// that allocates them, so the cgroup's memory.stat counts them and nothing
// of the rest of the guest. They read its slab_unreclaimable line: charged
// slab objects, counted per object (the object's slab size plus the
// 8-byte obj_cgroup pointer the memory controller keeps beside it), with
// neither page tables, kernel stacks and user memory nor the page-sized
// charge batches that memory.current also counts. memory.current is
// logged beside it.
//
// The statistics lag: each CPU counts its updates and adds them to the
// cgroup's pending count once it has 64 (MEMCG_CHARGE_BATCH); a read of
// memory.stat flushes the statistics only when more than 64 per CPU are
// pending (mem_cgroup_flush_stats), and the kernel flushes them all every
// 2 s (FLUSH_TIME, mm/memcontrol.c). Every read here first makes enough
// updates of its own for the read to flush, and checks that it did
// (memcgFreshStat), instead of waiting for the periodic flush. Freeing is
// deferred too: a task's struct is freed after an RCU grace period once
// it has been reaped, and a level (rule list) after another grace period,
// in a workqueue (free_level_work): the tests poll until the value is
// back under its bound (or stays the same), for up to memcgSettleTimeout,
// rather than timing anything.
//
// Forks are plain forks of the calling thread (clone with SIGCHLD, no
// execve): the child makes raw system calls only (memRawForkAppend,
// memRawForkHold), so that it allocates nothing but what the kernel does
// for the fork, the append and the exit.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

const (
	// memcgFlushInterval is FLUSH_TIME, the period of the memory
	// controller's unconditional statistics flush, with a margin: what a
	// read waits when it could not make the kernel flush.
	memcgFlushInterval = 2500 * time.Millisecond
	// memcgSettleTimeout bounds each wait for a value to settle or to
	// come back under its bound.
	memcgSettleTimeout = 10 * time.Second
	// memcgPoll is how often a value is read while waiting.
	memcgPoll = 100 * time.Millisecond
	// memcgSettleReads is how many reads in a row must agree, within
	// memcgSettleSlack, for a value to be settled.
	memcgSettleReads = 3
	// memcgSettleSlack is how much reads in a row may differ and still
	// agree: under the per-CPU byte stock of charged objects, which
	// reaches the statistics a page at a time.
	memcgSettleSlack = 512
	// memcgSlabKey is the line of memory.stat the tests measure.
	memcgSlabKey = "slab_unreclaimable"
)

// skipUnlessMemcg skips t unless cgroup v2 is mounted with the memory
// controller (CONFIG_MEMCG).
func skipUnlessMemcg(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessCgroup2(); why != "" {
		t.Skip(why)
	}
	b, err := os.ReadFile(filepath.Join(landlockbpf.CgroupRoot, "cgroup.controllers"))
	require.NoError(t, err)
	for _, c := range strings.Fields(string(b)) {
		if c == "memory" {
			return
		}
	}
	t.Skipf("cgroup v2 has no memory controller (cgroup.controllers: %q): the kernel was built without CONFIG_MEMCG", strings.TrimSpace(string(b)))
}

// memcgDir returns the memory cgroup of the test t: in the parent it turns
// the memory controller on for the root's children (and off again when t
// ends if it was off) and makes the cgroup; in the privdrop child it
// returns the one its parent made.
func memcgDir(t *testing.T) string {
	t.Helper()
	if privdrop.InChild() {
		return filepath.Join(landlockbpf.CgroupRoot, landlockbpf.CgroupHierarchyName(t, os.Getppid()))
	}
	control := filepath.Join(landlockbpf.CgroupRoot, "cgroup.subtree_control")
	b, err := os.ReadFile(control)
	require.NoError(t, err)
	if !strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ") {
		require.NoError(t, os.WriteFile(control, []byte("+memory\n"), 0), "turning the memory controller on in %s", control)
		// Registered before the hierarchy's cleanup, so it runs after it.
		t.Cleanup(func() {
			if err := os.WriteFile(control, []byte("-memory\n"), 0); err != nil {
				t.Logf("turning the memory controller off again in %s: %v (another cgroup uses it)", control, err)
			}
		})
	}
	cg := landlockbpf.NewCgroupHierarchyAt(t, filepath.Join(landlockbpf.CgroupRoot, landlockbpf.CgroupHierarchyName(t, os.Getpid())))
	_, err = os.Stat(filepath.Join(cg.Path, "memory.stat"))
	require.NoError(t, err, "the memory controller is on, but the test's cgroup has no memory.stat")
	return cg.Path
}

// memcgJoin moves this process (all its threads) into the cgroup dir.
func memcgJoin(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0), "joining %s", dir)
}

// memcgStats returns the lines of the cgroup dir's memory.stat.
func memcgStats(dir string) (map[string]int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return nil, err
	}
	st := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", filepath.Join(dir, "memory.stat"), sc.Text(), err)
		}
		st[k] = n
	}
	for _, k := range []string{"anon", memcgSlabKey} {
		if _, ok := st[k]; !ok {
			return nil, fmt.Errorf("%s: no %s line", filepath.Join(dir, "memory.stat"), k)
		}
	}
	return st, nil
}

// memcgFreshStat returns the line key of the cgroup dir's memory.stat,
// read after a flush of the statistics. It maps and touches enough
// anonymous pages of its own (this process is in the cgroup) that the
// updates they make, more than MEMCG_CHARGE_BATCH per CPU, have the read
// flush the statistics, and checks that they did: the "anon" line has
// grown by about those pages since the read before them (which the
// previous call's unmapping, as many updates, flushed as well). If it has
// not, it waits for the periodic flush and reads again, the pages still
// mapped. Every call maps and touches the same pages, so what they cost
// in slab (a VMA, an anon_vma and its chain) is in every value alike;
// MAP_NORESERVE (VM_NORESERVE) keeps the mapping from merging with one of
// the Go runtime's, which would make that cost differ between calls.
func memcgFreshStat(dir, key string) (int64, error) {
	before, err := memcgStats(dir)
	if err != nil {
		return 0, err
	}
	page := os.Getpagesize()
	pages := 2 * 64 * (runtime.NumCPU() + 1)
	mem, err := unix.Mmap(-1, 0, pages*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return 0, fmt.Errorf("mapping %d pages to flush the statistics: %w", pages, err)
	}
	defer unix.Munmap(mem)
	for i := 0; i < len(mem); i += page {
		mem[i] = 1
	}
	st, err := memcgStats(dir)
	if err != nil {
		return 0, err
	}
	if st["anon"]-before["anon"] < int64(pages*page/2) {
		// Not flushed (the threshold is not what this expects):
		// the periodic flush does it.
		time.Sleep(memcgFlushInterval)
		if st, err = memcgStats(dir); err != nil {
			return 0, err
		}
	}
	return st[key], nil
}

// memcgCurrent returns the cgroup dir's memory.current, -1 if it cannot
// be read (it is only logged).
func memcgCurrent(dir string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, "memory.current"))
	if err != nil {
		return -1
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return v
}

// memcgSettled returns the slab statistic of dir once memcgSettleReads
// fresh reads in a row, memcgPoll apart, agree within memcgSettleSlack
// (the deferred frees of what happened before have run), or, after
// memcgSettleTimeout, the last value read.
func memcgSettled(dir string) (int64, error) {
	v, err := memcgFreshStat(dir, memcgSlabKey)
	if err != nil {
		return 0, err
	}
	agree := 1
	for deadline := time.Now().Add(memcgSettleTimeout); agree < memcgSettleReads && time.Now().Before(deadline); {
		time.Sleep(memcgPoll)
		w, err := memcgFreshStat(dir, memcgSlabKey)
		if err != nil {
			return 0, err
		}
		if d := w - v; d <= memcgSettleSlack && d >= -memcgSettleSlack {
			agree++
		} else {
			agree = 1
		}
		v = w
	}
	return v, nil
}

// memcgComesBack reads the slab statistic of dir, fresh, until it is at
// most limit, for up to memcgSettleTimeout. It returns the lowest value
// read and whether it got there.
func memcgComesBack(dir string, limit int64) (int64, bool, error) {
	lowest := int64(-1)
	for deadline := time.Now().Add(memcgSettleTimeout); ; {
		v, err := memcgFreshStat(dir, memcgSlabKey)
		if err != nil {
			return 0, false, err
		}
		if lowest < 0 || v < lowest {
			lowest = v
		}
		if v <= limit {
			return v, true, nil
		}
		if time.Now().After(deadline) {
			return lowest, false, nil
		}
		time.Sleep(memcgPoll)
	}
}

// memRawForkAppend forks the calling thread with a plain fork; the child
// appends the rule at *fd to its domain and exits with the errno it got
// (0 when the rule was appended). It returns the child's pid to the
// parent. Between the fork and its exit the child only makes raw system
// calls from this function (nosplit, no allocation), as rawForkOpen does.
//
//go:norace
//go:nosplit
func memRawForkAppend(fd *uint32) (pid int, errno syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r != 0 {
		return int(r), 0 // the parent
	}
	_, _, e = syscall.RawSyscall(unix.SYS_SECCOMP, landlockbpf.SeccompAppendLandlockRule, 0, uintptr(unsafe.Pointer(fd)))
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(e), 0, 0)
	}
}

// memRawForkHold forks the calling thread with a plain fork; the child
// appends the rule at *fd if appendRule is not 0 (and exits with the
// errno if that fails), closes its copy of the pipe's write end wfd,
// then blocks reading the pipe's read end rfd into *buf until every
// write end is closed, and exits with status 0. It returns the child's
// pid to the parent; the child only makes raw system calls from this
// function.
//
//go:norace
//go:nosplit
func memRawForkHold(fd *uint32, appendRule uintptr, rfd, wfd int, buf *byte) (pid int, errno syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r != 0 {
		return int(r), 0 // the parent
	}
	if appendRule != 0 {
		_, _, e = syscall.RawSyscall(unix.SYS_SECCOMP, landlockbpf.SeccompAppendLandlockRule, 0, uintptr(unsafe.Pointer(fd)))
		if e != 0 {
			for {
				syscall.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(e), 0, 0)
			}
		}
	}
	syscall.RawSyscall(unix.SYS_CLOSE, uintptr(wfd), 0, 0)
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(rfd), uintptr(unsafe.Pointer(buf)), 1)
		if e == 0 && n == 0 {
			break // EOF
		}
		if e != 0 && e != unix.EINTR {
			break
		}
	}
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
}

// memWait waits for the child pid and returns the errno its exit status
// names (0: it exited with status 0).
func memWait(pid int) (unix.Errno, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("waiting for the forked child %d: %w", pid, err)
		}
		break
	}
	if !ws.Exited() {
		return 0, fmt.Errorf("the forked child %d did not exit: wait status %#x", pid, uint32(ws))
	}
	return unix.Errno(ws.ExitStatus()), nil
}

// memForkAppendLoop forks n children from the calling thread, one after
// the other; each appends the rule at *fd and exits, and is reaped before
// the next is forked.
func memForkAppendLoop(n int, fd *uint32) error {
	for i := range n {
		pid, errno := memRawForkAppend(fd)
		if errno != 0 {
			return fmt.Errorf("fork %d: %w", i, errno)
		}
		e, err := memWait(pid)
		if err != nil {
			return err
		}
		if e != 0 {
			return fmt.Errorf("child %d: appending the rule: %w", i, e)
		}
	}
	return nil
}

// progGetFDByID calls BPF_PROG_GET_FD_BY_ID (CAP_SYS_ADMIN) and closes
// the fd it gets: nil while the program with that id exists, ENOENT once
// it has been freed.
func progGetFDByID(id uint32) error {
	attr := struct {
		progID, nextID, openFlags uint32
	}{progID: id}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_GET_FD_BY_ID, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return errno
	}
	return unix.Close(int(fd))
}

// The fork/append/exit loop of TestForkAppendExitFreesMemory.
const (
	// memLoopWarmup iterations run before the first measurement: the
	// caches, the Go runtime's threads and the child process's own
	// allocations reach their steady state.
	memLoopWarmup = 100
	// memLoopIterations children are forked, append a rule and exit.
	memLoopIterations = 2000
	// memLoopBound is how far above its value before the loop the slab
	// statistic may stay once the loop's memory has been freed: 24 KiB,
	// 12 bytes per iteration. Each iteration allocates, charged to the
	// cgroup, at least one domain (struct landlock_bpf_domain, 24 bytes
	// from version 5, 16 before: kmalloc-32, 40 bytes with the obj_cgroup
	// pointer, or kmalloc-16, 24) and one level of one rule (struct
	// landlock_bpf_level, 104 bytes from version 5, plus a rule, one or
	// two chain pointers and the rule's triggers: kmalloc-192, 200 bytes;
	// below version 4 a rule list of one or two rules, kmalloc-96 or
	// -128), and the child's task struct, mm, VMAs, files and credentials
	// besides. A leak of the smallest of them in every iteration is 2000 x
	// 24 = 47 KiB, of a level 266 KiB or more; a level leaked in one
	// iteration of 11 is over the bound. What stays within it and is not a leak: the per-CPU byte
	// stock of charged objects that has not reached the statistics
	// (under a page per CPU), a VMA merged or not (memcgFreshStat), and
	// objects of the test process's own that outlive the loop: a thread
	// the Go runtime makes during it is allowed for on top, at
	// memThreadCost each. A leaked reference on the rule itself costs no
	// memory here (every child appends the same program), so the test
	// also checks that the program is freed once its fd is closed.
	memLoopBound = 24 << 10
	// memThreadCost bounds what a thread costs in slab (its task struct,
	// pid and what comes with them).
	memThreadCost = 16 << 10
)

// memThreads returns how many threads this process has.
func memThreads() int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	return len(tasks)
}

// TestForkAppendExitFreesMemory: memLoopIterations children, forked one
// after the other, each append a rule and exit; once they are reaped and
// the deferred frees have run, the memory cgroup's slab statistic is back
// within memLoopBound of its value before the loop, plus memThreadCost for
// each thread the process gained meanwhile (see memLoopBound for why),
// and the program every child appended is freed once the last fd
// and domain holding it are gone. Two cases: the forking thread has no
// domain (each child's append makes its domain and a root level), or one
// rule (each child inherits its level and appends on top: a level of its
// own in version 4, a copy of the list one rule longer below). From ABI
// version 1: leaks matter at every version.
func TestForkAppendExitFreesMemory(t *testing.T) {
	skipUnlessSupported(t)
	skipUnlessMemcg(t)
	for _, tc := range []struct {
		name    string
		inherit bool
	}{{"no_domain", false}, {"inherited_domain", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := memcgDir(t)
			privdrop.Run(t, keepRoot, func(t *testing.T) {
				memcgJoin(t, dir)
				forkAppendExitScenario(t, dir, tc.inherit)
			})
		})
	}
}

func forkAppendExitScenario(t *testing.T, dir string, inherit bool) {
	prog, err := landlockbpf.Load(landlockbpf.Allow)
	require.NoError(t, err)
	id, err := landlockbpf.ProgID(prog)
	if err != nil {
		prog.Close()
		require.NoError(t, err)
	}
	fd := new(uint32)
	*fd = uint32(prog.FD())

	// Everything is measured on the forking thread while it lives, so
	// that its own task and domain are counted before and after alike.
	var before, after, current0, current1 int64
	var threads0, threads1 int
	var bound int64
	var back bool
	var warmErr, loopErr, statErr, appendErr error
	var took time.Duration
	landlockbpf.OnLockedThread(func() {
		if inherit {
			if appendErr = landlockbpf.Append(prog); appendErr != nil {
				return
			}
		}
		if warmErr = memForkAppendLoop(memLoopWarmup, fd); warmErr != nil {
			return
		}
		if before, statErr = memcgSettled(dir); statErr != nil {
			return
		}
		current0, threads0 = memcgCurrent(dir), memThreads()
		start := time.Now()
		if loopErr = memForkAppendLoop(memLoopIterations, fd); loopErr != nil {
			return
		}
		took = time.Since(start)
		bound = memLoopBound
		if threads1 = memThreads(); threads1 > threads0 {
			bound += int64(threads1-threads0) * memThreadCost
		}
		after, back, statErr = memcgComesBack(dir, before+bound)
		current1 = memcgCurrent(dir)
	})
	require.NoError(t, appendErr, "the forking thread's own rule")
	require.NoError(t, warmErr, "the warm-up loop")
	require.NoError(t, loopErr, "the loop")
	require.NoError(t, statErr)
	t.Logf("%d forks, appends and exits in %v; %s: %d bytes before the loop, %d after (%+d); memory.current %d, then %d; threads %d, then %d",
		memLoopIterations, took, memcgSlabKey, before, after, after-before, current0, current1, threads0, threads1)
	assert.True(t, back, "%s did not come back within %d bytes of %d in %v after the loop (%d bytes, and %d for each of the %d threads the process gained): lowest %d (%+d, %.1f bytes per iteration): something the loop allocated is not freed",
		memcgSlabKey, bound, before, memcgSettleTimeout, memLoopBound, memThreadCost, max(threads1-threads0, 0), after, after-before, float64(after-before)/memLoopIterations)

	// The thread has ended, and with it its domain (inherited_domain). No
	// level or domain kept a reference on the program: with its fd
	// closed it goes.
	require.NoError(t, prog.Close())
	var idErr error
	for deadline := time.Now().Add(memcgSettleTimeout); ; time.Sleep(memcgPoll) {
		idErr = progGetFDByID(id)
		if errors.Is(idErr, unix.ENOENT) || time.Now().After(deadline) {
			break
		}
	}
	assert.ErrorIs(t, idErr, unix.ENOENT, "program %d still exists %v after its fd was closed and the tasks that appended it ended: a reference on it is left (a level or rule list not freed)", id, memcgSettleTimeout)
}

// The children of TestLevelsSharedNotCopied.
const (
	// memSharedChildren children are alive at once in each batch.
	memSharedChildren = 500
	// memCopySize is what a copy of a 64-rule domain would cost each
	// child: struct landlock_bpf_level is 88 bytes, plus 64 rule pointers
	// and one chain pointer, 608 bytes, in kmalloc-1k (a version-3 rule
	// list of 64 rules, 576 bytes, too).
	memCopySize = 1024
	// memSharedAttempts bounds the measurements: one whose process
	// changed its mappings in between (which changes what each fork
	// costs) is taken again.
	memSharedAttempts = 3
)

// TestLevelsSharedNotCopied: from ABI version 4 a level is shared by the
// tasks that inherit it, never copied. A thread with a 64-rule domain (one
// level, about 1 KiB, memCopySize) forks memSharedChildren children that
// stay alive; the memory cgroup's slab statistic grows by what the same
// number of children of a thread without a domain cost, plus, per child,
// far less than a copy:
//
//   - inherit: the children append nothing; each holds the level through a
//     domain of its own (kmalloc-32, 40 bytes with the obj_cgroup pointer,
//     from version 5; kmalloc-16, 24 bytes, before). Bound: an eighth of a
//     copy per child (128 bytes);
//   - append_one: the thread has 63 rules and each child appends one, on
//     a level of its own on top of the shared one (a one-rule level of
//     depth 2 with its triggers, kmalloc-192, 200 bytes from version 5,
//     and the domain: 240 bytes; measured on arm64: +232 per child); a
//     copy would be the 64 rules (1 KiB) and the domain. Bound: three
//     eighths of a copy per child (384 bytes).
//
// The baseline children (a thread without a domain) are forked from the
// same process just before, in the same state, so that what a fork costs
// (task, mm, VMAs, files) cancels out; a measurement during which the
// process's mappings changed is taken again.
func TestLevelsSharedNotCopied(t *testing.T) {
	if why := landlockbpf.SkipUnlessSupported(4); why != "" {
		t.Skip(why)
	}
	skipUnlessMemcg(t)
	for _, tc := range []struct {
		name       string
		rules      int  // the forking thread's
		childRule  bool // each child appends one more
		perChildAt int64
	}{
		{"inherit", landlockbpf.MaxRules, false, memCopySize / 8},
		{"append_one", landlockbpf.MaxRules - 1, true, memCopySize * 3 / 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := memcgDir(t)
			privdrop.Run(t, keepRoot, func(t *testing.T) {
				memcgJoin(t, dir)
				var m sharedMeasure
				for attempt := 1; attempt <= memSharedAttempts; attempt++ {
					m = measureShared(t, dir, tc.rules, tc.childRule)
					t.Logf("attempt %d: %s", attempt, m)
					if m.stable {
						break
					}
				}
				require.True(t, m.stable, "the process's mappings changed during each of %d measurements", memSharedAttempts)
				extra := m.domain - m.base
				// A thread the runtime started or ended in
				// between is in one batch's growth.
				bound := int64(memSharedChildren)*tc.perChildAt + int64(abs(m.threads[1]-m.threads[0]))*memThreadCost
				assert.Less(t, extra, bound,
					"%d children of a %d-rule domain (each appending one more: %v) cost %d bytes of slab more than as many children without a domain (%.0f per child): want under %d (%d per child); %d copies of the domain would be %d",
					memSharedChildren, tc.rules, tc.childRule, extra, float64(extra)/memSharedChildren, bound, tc.perChildAt, memSharedChildren, memSharedChildren*memCopySize)
			})
		})
	}
}

// sharedMeasure is one measurement of TestLevelsSharedNotCopied: the slab
// growth of a batch of children without a domain (base) and of one with
// (domain).
type sharedMeasure struct {
	base, domain int64
	current      [3]int64 // memory.current before, after the base batch, after the domain batch
	threads      [2]int   // the process's threads before and after
	stable       bool     // the process's mappings stayed the same
	why          string   // when not stable
}

func (m sharedMeasure) String() string {
	s := fmt.Sprintf("%d children without a domain: %+d bytes of slab; with: %+d (%+.0f per child); memory.current %d, %d, %d",
		memSharedChildren, m.base, m.domain, float64(m.domain-m.base)/memSharedChildren, m.current[0], m.current[1], m.current[2])
	s += fmt.Sprintf("; threads %d, then %d", m.threads[0], m.threads[1])
	if !m.stable {
		s += "; not stable: " + m.why
	}
	return s
}

// memProcShape returns what makes a fork of this process cost what it
// does: its mappings, and how many of them have anonymous pages. A
// mapping that takes its first anonymous page gets an anon_vma, and from
// then on each fork copies an anon_vma, its chains and the mapping's page
// table (about 250 bytes of slab and a page per child): the Go runtime's
// heap or a stack doing so between two batches of children shows in
// their difference although the number of mappings stayed the same. (Its
// threads, which the Go runtime starts and ends as it likes, are counted
// apart: see sharedMeasure.threads.)
func memProcShape() (string, error) {
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return "", err
	}
	var mappings, anon int
	for _, line := range bytes.Split(smaps, []byte("\n")) {
		f := bytes.Fields(line)
		switch {
		case len(f) == 0:
		case len(f) >= 2 && bytes.IndexByte(f[0], '-') > 0 && !bytes.HasSuffix(f[0], []byte(":")):
			// An address range: a mapping's first line.
			mappings++
		case string(f[0]) == "Anonymous:" && len(f) >= 2 && string(f[1]) != "0":
			anon++
		}
	}
	return fmt.Sprintf("%d mappings, %d of them with anonymous pages", mappings, anon), nil
}

// memHolders is a thread that forks a batch of children that stay alive.
type memHolders struct {
	fork    chan struct{} // closed: fork the children
	forked  chan error    // the forks' outcome
	release chan struct{} // closed: the thread may end (before or after forking)
	started bool          // fork is closed
	done    bool          // forked has been received: pids is complete
	pids    []int
}

// startHolders starts a goroutine locked to a thread of its own that
// appends rules rules (the program at *fd), then, when h.fork is closed,
// forks memSharedChildren children, each appending one more rule if
// childRule, that block on the pipe (rfd, wfd) until its write ends are
// closed. The thread is made and its rules appended before startHolders
// returns (the error of the appends).
func startHolders(fd *uint32, rules int, childRule bool, rfd, wfd int) (*memHolders, error) {
	h := &memHolders{fork: make(chan struct{}), forked: make(chan error, 1), release: make(chan struct{})}
	ready := make(chan error, 1)
	buf := new(byte)
	var appendChild uintptr
	if childRule {
		appendChild = 1
	}
	go landlockbpf.OnLockedThread(func() {
		for i := range rules {
			if _, err := appendFD(0, *fd); err != nil {
				ready <- fmt.Errorf("the holder thread's rule %d: %w", i+1, err)
				return
			}
		}
		ready <- nil
		select {
		case <-h.fork:
		case <-h.release:
			return
		}
		var err error
		// Allocated before the first fork: growing it would
		// change the process's memory between the forks.
		pids := make([]int, 0, memSharedChildren)
		for range memSharedChildren {
			pid, errno := memRawForkHold(fd, appendChild, rfd, wfd, buf)
			if errno != 0 {
				err = fmt.Errorf("fork: %w", errno)
				break
			}
			pids = append(pids, pid)
		}
		h.pids = pids
		h.forked <- err
		<-h.release
	})
	return h, <-ready
}

// startForks lets h fork its children and waits until it has.
func (h *memHolders) startForks() error {
	h.started = true
	close(h.fork)
	err := <-h.forked
	h.done = true
	return err
}

// measureShared takes one measurement for TestLevelsSharedNotCopied: a
// thread without a domain and one with rules rules are made first; then,
// with a settled value before each, the first forks its batch, then the
// second. All the children are ended and reaped before it returns.
func measureShared(t *testing.T, dir string, rules int, childRule bool) sharedMeasure {
	t.Helper()
	prog, err := landlockbpf.Load(landlockbpf.Allow)
	require.NoError(t, err)
	defer prog.Close()
	fd := new(uint32)
	*fd = uint32(prog.FD())
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
	rfd, wfd := p[0], p[1]
	var holders []*memHolders
	// Ends the children (EOF on the pipe once the last write end is
	// closed) and reaps them, then lets the threads end.
	defer func() {
		unix.Close(wfd)
		for _, h := range holders {
			if h.started && !h.done {
				<-h.forked
				h.done = true
			}
			for _, pid := range h.pids {
				e, err := memWait(pid)
				assert.NoError(t, err)
				assert.Zero(t, e, "a child of a thread with %d rules: exit status (the errno of its append)", rules)
			}
			close(h.release)
		}
		unix.Close(rfd)
	}()

	base, err := startHolders(fd, 0, false, rfd, wfd)
	holders = append(holders, base)
	require.NoError(t, err)
	withDomain, err := startHolders(fd, rules, childRule, rfd, wfd)
	holders = append(holders, withDomain)
	require.NoError(t, err)

	var m sharedMeasure
	shape0, err := memProcShape()
	require.NoError(t, err)
	m.threads[0] = memThreads()
	s0, err := memcgSettled(dir)
	require.NoError(t, err)
	m.current[0] = memcgCurrent(dir)
	require.NoError(t, base.startForks(), "forking the children without a domain")
	s1, err := memcgSettled(dir)
	require.NoError(t, err)
	m.current[1] = memcgCurrent(dir)
	require.NoError(t, withDomain.startForks(), "forking the children of the thread with %d rules", rules)
	s2, err := memcgSettled(dir)
	require.NoError(t, err)
	m.current[2] = memcgCurrent(dir)
	shape1, err := memProcShape()
	require.NoError(t, err)
	m.threads[1] = memThreads()

	m.base, m.domain = s1-s0, s2-s1
	m.stable = shape0 == shape1
	if !m.stable {
		m.why = fmt.Sprintf("%s before, %s after", shape0, shape1)
	}
	return m
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
