package iouring

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// denyGetRead is the mask of the rules that deny opening the denied file.
const denyGetRead = ll.ActionGet | ll.ActionRead

// checkOpens fails t unless both files open through r, as k does it: run
// before the rule, it shows that the ring works and that the denied file
// is not denied by anything but the rule.
func checkOpens(t *testing.T, th *ruleThread, r *ring, k ringKind, f files, when string) {
	t.Helper()
	for _, path := range []string{f.denied, f.allowed} {
		res := openThrough(t, th, r, k, path)
		require.GreaterOrEqual(t, res, int32(0), "%s, IORING_OP_OPENAT of %s (%s) gives %s, want an fd", when, path, k.name, describe(res))
	}
}

// checkDenied checks, after the rule, that the denied file's open through
// r, done by k.thread, gives -EPERM in the completion, and that the
// allowed file still opens through the same ring.
func checkDenied(t *testing.T, th *ruleThread, r *ring, k ringKind, f files, setup string) {
	t.Helper()
	res := openThrough(t, th, r, k, f.denied)
	assert.Equal(t, eperm, res, "IORING_OP_OPENAT of the denied file, done by %s (%s), gives %s, want -EPERM: the rule did not apply to the io_uring work", k.thread, setup, describe(res))
	res = openThrough(t, th, r, k, f.allowed)
	assert.GreaterOrEqual(t, res, int32(0), "IORING_OP_OPENAT of the allowed file through the same ring (%s) gives %s, want an fd", k.name, describe(res))
}

// checkRuleOnThread checks that the rule denies the thread's own open of
// the denied file (openat(2)): the rule works, so a ring's escape from it
// is the ring's.
func checkRuleOnThread(t *testing.T, th *ruleThread, f files) {
	t.Helper()
	require.ErrorIs(t, th.openDirect(f.denied), unix.EPERM, "openat(2) of the denied file on the thread that appended the rule")
	require.NoError(t, th.openDirect(f.allowed), "openat(2) of the allowed file on the thread that appended the rule")
}

// TestSQPOLLRingSetUpBeforeTheRule: a thread sets up an SQPOLL ring, then
// appends a rule denying GET and READ on one file. Opening that file
// through the ring, which its SQPOLL thread does (inline, or with
// IOSQE_ASYNC through one of that thread's io-wq workers), gives -EPERM;
// another file still opens through the same ring. Both threads existed
// before the rule: a kernel that copies the rules into each task at
// creation lets them open the file.
func TestSQPOLLRingSetUpBeforeTheRule(t *testing.T) {
	skipUnlessSupported(t)
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		f := newFiles(t)
		rule := loadRule(t, ll.DenyActionsOn(f.deniedIno, denyGetRead))
		th := newRuleThread(t)
		r := newRingOn(t, th, f, sqPoll)
		sqAsync := ringKind{"SQPOLL with IOSQE_ASYNC", setupSQPoll, sqeAsync, "an io-wq worker of the ring's SQPOLL thread"}

		checkOpens(t, th, r, sqPoll, f, "before the rule")
		checkOpens(t, th, r, sqAsync, f, "before the rule")
		sqp, err := ioThreads(sqPollName(th.tid))
		require.NoError(t, err)
		require.Len(t, sqp, 1, "the SQPOLL thread of the ring thread %d set up", th.tid)
		workers, err := ioThreads(workerName(sqp[0]))
		require.NoError(t, err)
		require.NotEmpty(t, workers, "an io-wq worker of the SQPOLL thread %d, after an IOSQE_ASYNC request", sqp[0])

		th.appendRule(t, rule)
		checkRuleOnThread(t, th, f)
		checkDenied(t, th, r, sqPoll, f, "ring set up before the rule")
		checkDenied(t, th, r, sqAsync, f, "ring set up before the rule")
	})
}

// TestAsyncWorkerCreatedBeforeTheRule: a thread sets up a ring (without
// SQPOLL) and has an io-wq worker do an IOSQE_ASYNC open, then appends a
// rule denying GET and READ on one file. An IOSQE_ASYNC open of that file,
// which the same worker does (the io-wq may have one worker only, and the
// last worker stays when idle), gives -EPERM; another file still opens.
func TestAsyncWorkerCreatedBeforeTheRule(t *testing.T) {
	skipUnlessSupported(t)
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		f := newFiles(t)
		rule := loadRule(t, ll.DenyActionsOn(f.deniedIno, denyGetRead))
		th := newRuleThread(t)
		r := newRingOn(t, th, f, ioWorker)
		oneWorker(t, th, r)

		checkOpens(t, th, r, ioWorker, f, "before the rule")
		workers, err := ioThreads(workerName(th.tid))
		require.NoError(t, err)
		require.Len(t, workers, 1, "the io-wq worker of thread %d, after an IOSQE_ASYNC request", th.tid)

		th.appendRule(t, rule)
		checkRuleOnThread(t, th, f)
		checkDenied(t, th, r, ioWorker, f, "worker created before the rule")

		after, err := threadsNamed(workerName(th.tid))
		require.NoError(t, err)
		assert.Equal(t, workers, after, "the io-wq worker that did the work after the rule is the one created before it: otherwise this scenario did not test a worker from before the rule")
	})
}

// TestReadThroughRingOnFDOpenedBeforeTheRule: files opened (os.Open)
// before a rule that denies READ on one of them; IORING_OP_READ of that
// fd through a ring set up before the rule gives -EPERM, whether the
// ring's SQPOLL thread reads or an io-wq worker created before the rule
// does (IOSQE_ASYNC); the other file still reads through the same ring.
func TestReadThroughRingOnFDOpenedBeforeTheRule(t *testing.T) {
	skipUnlessSupported(t)
	for _, k := range []ringKind{sqPoll, ioWorker} {
		t.Run(k.name, func(t *testing.T) {
			privdrop.Run(t, keepRoot, func(t *testing.T) { readScenario(t, k) })
		})
	}
}

func readScenario(t *testing.T, k ringKind) {
	f := newFiles(t)
	rule := loadRule(t, ll.DenyActionsOn(f.deniedIno, ll.ActionRead))
	denied, err := os.Open(f.denied)
	require.NoError(t, err)
	t.Cleanup(func() { denied.Close() })
	allowed, err := os.Open(f.allowed)
	require.NoError(t, err)
	t.Cleanup(func() { allowed.Close() })
	deniedFD, allowedFD := int(denied.Fd()), int(allowed.Fd())

	th := newRuleThread(t)
	r := newRingOn(t, th, f, k)
	var workersBefore []int
	if k == ioWorker {
		oneWorker(t, th, r)
	}
	for _, c := range []struct {
		fd   int
		want string
	}{{deniedFD, deniedContent}, {allowedFD, allowedContent}} {
		res, data := readThrough(t, th, r, k, c.fd)
		require.Equal(t, int32(len(c.want)), res, "before the rule, IORING_OP_READ of fd %d (%s) gives %s", c.fd, k.name, describe(res))
		require.Equal(t, c.want, data)
	}
	if k == ioWorker {
		workersBefore, err = ioThreads(workerName(th.tid))
		require.NoError(t, err)
		require.Len(t, workersBefore, 1, "the io-wq worker of thread %d, after IOSQE_ASYNC requests", th.tid)
	}

	th.appendRule(t, rule)
	var direct error
	th.run(func() { _, direct = unix.Pread(deniedFD, make([]byte, 64), 0) })
	require.ErrorIs(t, direct, unix.EPERM, "pread(2) of the denied file on the thread that appended the rule")

	res, data := readThrough(t, th, r, k, deniedFD)
	assert.Equal(t, eperm, res, "IORING_OP_READ of the denied file's fd, opened before the rule, done by %s (ring set up before the rule), gives %s (read %q), want -EPERM", k.thread, describe(res), data)
	res, data = readThrough(t, th, r, k, allowedFD)
	assert.Equal(t, int32(len(allowedContent)), res, "IORING_OP_READ of the allowed file through the same ring (%s) gives %s", k.name, describe(res))
	assert.Equal(t, allowedContent, data)

	if k == ioWorker {
		after, err := threadsNamed(workerName(th.tid))
		require.NoError(t, err)
		assert.Equal(t, workersBefore, after, "the io-wq worker that did the work after the rule is the one created before it")
	}
}

// TestRingCreatedAfterTheRule: a ring that a thread sets up after its rule
// is restricted as well, whether its SQPOLL thread or an io-wq worker
// (IOSQE_ASYNC, the thread's first) does the work.
func TestRingCreatedAfterTheRule(t *testing.T) {
	skipUnlessSupported(t)
	for _, k := range []ringKind{sqPoll, ioWorker} {
		t.Run(k.name, func(t *testing.T) {
			privdrop.Run(t, keepRoot, func(t *testing.T) {
				f := newFiles(t)
				rule := loadRule(t, ll.DenyActionsOn(f.deniedIno, denyGetRead))
				th := newRuleThread(t)
				// No ring before the rule: the thread's own opens show
				// that the files open at all.
				require.NoError(t, th.openDirect(f.denied), "openat(2) of the denied file before the rule")
				require.NoError(t, th.openDirect(f.allowed), "openat(2) of the allowed file before the rule")
				th.appendRule(t, rule)
				checkRuleOnThread(t, th, f)

				r := newRingOn(t, th, f, k)
				checkDenied(t, th, r, k, f, "ring set up after the rule")
			})
		})
	}
}
