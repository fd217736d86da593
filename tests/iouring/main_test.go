// Package iouring shows, in the guest, that io_uring work done for a task
// is checked against the task's Landlock eBPF rules
// (../shared/spec/landlock-bpf-abi.md, "Version 1 as built"): the work of
// its SQPOLL thread and of its io-wq workers, whenever they were created,
// before or after the rule was appended.
//
// io_uring's threads are tasks that the kernel copies (create_io_thread)
// from the task that sets a ring up (the SQPOLL thread) or that owns the
// io-wq (its workers). A kernel that keeps a copy of the rules in every
// task lets a ring set up before a rule escape it; the series makes
// io_uring threads share the rules of their task instead. Each scenario
// sets up the io_uring side, appends a rule that denies GET and READ (or
// READ alone) on one file, "denied", and then checks that the work done
// through the ring is denied with -EPERM in the completion, while another
// file of the same directory, "allowed", still opens and reads through the
// same ring, and that the denied file opened through it before the rule.
//
// As in the other guest packages, every scenario runs in a child process
// (privdrop.Run, keeping root) and appends its rule on a goroutine locked
// to an OS thread of its own (landlockbpf.OnLockedThread), which ends with
// the scenario; the rings are closed and unmapped in t.Cleanup, which ends
// their SQPOLL threads.
//
// Every test skips on the host, on kernels without ABI version 1, and on
// kernels without io_uring (CONFIG_IO_URING; the guest kernel should have
// it, so that skip is a configuration bug).
package iouring

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// keepRoot runs a scenario in a child process with the test binary's
// privileges: appending a rule needs CAP_SYS_ADMIN in version 1.
var keepRoot = privdrop.Privs{UID: privdrop.Keep, GID: privdrop.Keep}

// ringEntries is the size of every ring's SQ (the CQ has twice as many).
const ringEntries = 8

// sqIdleMS is how long an SQPOLL thread polls before it sleeps.
const sqIdleMS = 100

// skipUnlessSupported skips t unless the kernel has ABI version 1 and
// io_uring.
func skipUnlessSupported(t *testing.T) {
	t.Helper()
	if why := ll.SkipUnlessSupported(1); why != "" {
		t.Skip(why)
	}
	r, err := newRing(1, 0, 0)
	skipIfNoIOUring(t, err)
	require.NoError(t, err, "setting up a probe ring")
	require.NoError(t, r.close())
}

// skipIfNoIOUring skips t if err says that the kernel has no io_uring, and
// fails it if io_uring is there but disabled.
func skipIfNoIOUring(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("io_uring_setup gives ENOSYS: the kernel has no CONFIG_IO_URING " +
			"(the guest kernel's configuration must set CONFIG_IO_URING=y: this skip is a configuration bug)")
	}
	var se *setupError
	if errors.As(err, &se) && se.errno == unix.EPERM {
		t.Fatalf("io_uring_setup gives EPERM as root, without any rule: io_uring is disabled "+
			"(sysctl kernel.io_uring_disabled=%s)", sysctlIOUringDisabled())
	}
}

func sysctlIOUringDisabled() string {
	b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return strings.TrimSpace(string(b))
}

// loadRule loads insns as a Landlock rule, closed when t ends.
func loadRule(t *testing.T, insns asm.Instructions) *ebpf.Program {
	t.Helper()
	p, err := ll.Load(insns)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// files is the directory of a scenario: "denied", the file its rule is
// about, and "allowed", another file next to it.
type files struct {
	dir, denied, allowed string
	deniedIno            uint64
}

// Contents of the two files.
const (
	deniedContent  = "denied\n"
	allowedContent = "allowed\n"
)

func newFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	f := files{dir: dir, denied: filepath.Join(dir, "denied"), allowed: filepath.Join(dir, "allowed")}
	require.NoError(t, os.WriteFile(f.denied, []byte(deniedContent), 0o644))
	require.NoError(t, os.WriteFile(f.allowed, []byte(allowedContent), 0o644))
	var err error
	f.deniedIno, err = ll.Inode(f.denied)
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	// The rule denies by inode number alone: nothing else the rule thread
	// touches may have the denied file's (the path walk reports every
	// directory above the files).
	others := []string{f.allowed, exe, "/dev/null"}
	for d := dir; ; d = filepath.Dir(d) {
		others = append(others, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for _, o := range others {
		ino, err := ll.Inode(o)
		require.NoError(t, err)
		require.NotEqual(t, f.deniedIno, ino, "%s has the inode number of the file the rule denies: the scenario cannot tell them apart", o)
	}
	return f
}

// ruleThread is a goroutine locked to an OS thread of its own
// (landlockbpf.OnLockedThread) that runs the functions given to run, one
// at a time, so that the test goroutine can check each step with require.
// The thread ends when t does, and its rules with it.
type ruleThread struct {
	tid  int
	work chan func()
	done chan struct{}
}

func newRuleThread(t *testing.T) *ruleThread {
	th := &ruleThread{work: make(chan func()), done: make(chan struct{})}
	tid := make(chan int)
	go func() {
		defer close(th.done)
		ll.OnLockedThread(func() {
			tid <- unix.Gettid()
			for fn := range th.work {
				fn()
			}
		})
	}()
	th.tid = <-tid
	t.Cleanup(func() {
		close(th.work)
		<-th.done
	})
	return th
}

// run runs fn on the thread and waits for it. fn must not call t.FailNow.
func (th *ruleThread) run(fn func()) {
	done := make(chan struct{})
	th.work <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// appendRule appends rule to the thread's domain.
func (th *ruleThread) appendRule(t *testing.T, rule *ebpf.Program) {
	t.Helper()
	var err error
	th.run(func() { err = ll.Append(rule) })
	require.NoError(t, err, "appending the rule on thread %d (its io_uring threads must not prevent it)", th.tid)
}

// openDirect opens path read-only with openat(2) on the thread, and
// closes it.
func (th *ruleThread) openDirect(path string) error {
	var err error
	th.run(func() {
		var fd int
		if fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
		}
	})
	return err
}

// ringKind is how the work of a ring is done.
type ringKind struct {
	name  string
	setup uint32 // io_uring_setup flags
	sqe   uint8  // SQE flags
	// thread names the io_uring thread that does the work, for messages.
	thread string
}

var (
	// inline: io_uring_enter runs the request on the thread itself
	// (punting it to an io-wq worker only if it would block).
	inline = ringKind{"inline", 0, 0, "the thread itself, in io_uring_enter"}
	// ioWorker: IOSQE_ASYNC sends the request to one of the io-wq
	// workers of the thread.
	ioWorker = ringKind{"IOSQE_ASYNC", 0, sqeAsync, "an io-wq worker of the thread"}
	// sqPoll: the ring's SQPOLL thread takes the request and runs it.
	sqPoll = ringKind{"SQPOLL", setupSQPoll, 0, "the ring's SQPOLL thread"}
)

// newRingOn sets up a ring of kind k on th (th is its creator), closed and
// unmapped when t ends. Nothing of the scenario's may have its inode
// number either: on a thread with the rule, mmap(2) of the ring reports
// it.
func newRingOn(t *testing.T, th *ruleThread, f files, k ringKind) *ring {
	t.Helper()
	var (
		r   *ring
		err error
	)
	th.run(func() { r, err = newRing(ringEntries, k.setup, sqIdleMS) })
	skipIfNoIOUring(t, err)
	require.NoError(t, err, "setting up a %s ring", k.name)
	t.Cleanup(func() {
		if err := r.close(); err != nil {
			t.Errorf("closing the %s ring: %v", k.name, err)
		}
	})
	ino, err := r.inode()
	require.NoError(t, err)
	require.NotEqual(t, f.deniedIno, ino, "the ring's file has the inode number of the file the rule denies")
	return r
}

// oneWorker lets the io-wq of th have one bound worker and one unbound
// worker at most (IOSQE_ASYNC sends OPENAT to a bound one; READ goes to a
// bound one when its file is regular and known when it is queued, as in
// Debian's 6.12, and to an unbound one otherwise): a request after the
// rule then runs on the worker of its kind created before the rule, as
// long as that worker lives, and the last worker of each kind stays when
// idle (io-wq.c, io_wq_worker).
func oneWorker(t *testing.T, th *ruleThread, r *ring) {
	t.Helper()
	var err error
	th.run(func() { err = r.maxWorkers(1, 1) })
	require.NoError(t, err)
}

// openThrough does IORING_OP_OPENAT of path through r from th, with the
// SQE flags of k, and returns the completion's res; an fd it opened is
// closed again (by the test goroutine, which has no rule).
func openThrough(t *testing.T, th *ruleThread, r *ring, k ringKind, path string) int32 {
	t.Helper()
	var (
		res int32
		err error
	)
	th.run(func() { res, err = r.openat(path, k.sqe) })
	require.NoError(t, err, "IORING_OP_OPENAT of %s (%s): no completion", path, k.name)
	if res >= 0 {
		require.NoError(t, unix.Close(int(res)))
	}
	return res
}

// readThrough does IORING_OP_READ of fd through r from th, with the SQE
// flags of k, and returns the completion's res and the bytes read.
func readThrough(t *testing.T, th *ruleThread, r *ring, k ringKind, fd int) (int32, string) {
	t.Helper()
	var (
		res  int32
		data []byte
		err  error
	)
	th.run(func() { res, data, err = r.read(fd, 64, k.sqe) })
	require.NoError(t, err, "IORING_OP_READ of fd %d (%s): no completion", fd, k.name)
	return res, string(data)
}

// describe says what a completion's res is: an fd or count, or an errno.
func describe(res int32) string {
	if res >= 0 {
		return strconv.Itoa(int(res))
	}
	e := unix.Errno(-res)
	if name := unix.ErrnoName(e); name != "" {
		return fmt.Sprintf("-%s (%v)", name, e)
	}
	return strconv.Itoa(int(res))
}

// eperm is the res of a request that a rule denied.
const eperm = -int32(unix.EPERM)

// ioThreads returns the ids of this process's threads called name
// (io_uring names its threads iou-sqp-<tid> and iou-wrk-<tid>, after the
// task they belong to), waiting up to a second for one to appear (a new
// io_uring thread names itself once it runs). Call it from the test
// goroutine, not from a rule thread.
func ioThreads(name string) ([]int, error) {
	deadline := time.Now().Add(time.Second)
	for {
		tids, err := threadsNamed(name)
		if err != nil || len(tids) > 0 || time.Now().After(deadline) {
			return tids, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func threadsNamed(name string) ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc/self/task", e.Name(), "comm"))
		if err != nil {
			continue // the thread has ended
		}
		if strings.TrimSuffix(string(comm), "\n") == name {
			tids = append(tids, tid)
		}
	}
	sort.Ints(tids)
	return tids, nil
}

// workerName and sqPollName are the names of the io-wq workers and of the
// SQPOLL threads of the task tid (TASK_COMM_LEN keeps 15 bytes: enough
// for a 7-digit tid).
func workerName(tid int) string { return fmt.Sprintf("iou-wrk-%d", tid) }
func sqPollName(tid int) string { return fmt.Sprintf("iou-sqp-%d", tid) }
