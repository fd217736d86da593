package seccompentry

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// onOtherThread runs fn on a new goroutine locked to an OS thread of its
// own, and returns that thread's id and what fn returned.
func onOtherThread(fn func() error) (tid int, err error) {
	landlockbpf.OnLockedThread(func() {
		tid = unix.Gettid()
		err = fn()
	})
	return tid, err
}

// TestDeniedOpenOnlyInTheThreadThatAppended: a rule denying every open
// (LANDLOCK_ACTION_FS_GET), appended by a thread of a child process,
// denies opens in that thread (EPERM) and nowhere else: not in another
// thread of the same process, not in the parent test process.
func TestDeniedOpenOnlyInTheThreadThatAppended(t *testing.T) {
	skipUnlessSupported(t)
	if !privdrop.Run(t, keepRoot, deniedOpenOnlyInTheThreadScenario) {
		return
	}
	exe := executable(t)
	assert.NoError(t, openClose(exe), "the parent test process opens the file a child's rule denied")
}

// deniedOpenOnlyInTheThreadScenario is the child's part of
// TestDeniedOpenOnlyInTheThreadThatAppended: the file is the test binary,
// which the parent opens afterwards.
func deniedOpenOnlyInTheThreadScenario(t *testing.T) {
	exe := executable(t)
	rule := loadRule(t, landlockbpf.DenyActions(landlockbpf.ActionGet))
	var appendErr, before, sandboxed, otherThread error
	var tid, otherTID int
	landlockbpf.OnLockedThread(func() {
		tid = unix.Gettid()
		before = openClose(exe)
		if appendErr = landlockbpf.Append(rule); appendErr != nil {
			return
		}
		sandboxed = openClose(exe)
		otherTID, otherThread = onOtherThread(func() error { return openClose(exe) })
	})
	require.NoError(t, before, "open before the rule")
	require.NoError(t, appendErr)
	assert.ErrorIs(t, sandboxed, unix.EPERM, "open in the thread that appended the rule")
	assert.NotEqual(t, tid, otherTID, "the other goroutine ran on the same thread")
	assert.NoError(t, otherThread, "open in thread %d of the same process, which appended no rule (rules are per thread)", otherTID)
	assert.NoError(t, openClose(exe), "open in the test's goroutine, once the thread with the rule has ended")
}

// TestRulesAreInherited: the children of a thread with a rule have it,
// whether forked (fork without execve) or executed (fork and execve, as
// os/exec does); other files stay open to them.
func TestRulesAreInherited(t *testing.T) {
	skipUnlessSupported(t)
	privdrop.Run(t, keepRoot, rulesAreInheritedScenario)
}

// rulesAreInheritedScenario is TestRulesAreInherited's scenario.
func rulesAreInheritedScenario(t *testing.T) {
	dir := t.TempDir()
	denied := writeFile(t, dir, "denied")
	allowed := writeFile(t, dir, "allowed")
	ino := inodeOf(t, denied)
	requireDistinctInode(t, ino, executable(t), "/dev/null", allowed)
	rule := loadRule(t, landlockbpf.DenyActionsOn(ino, landlockbpf.ActionGet))

	type outcome struct{ denied, allowed error }
	before := make([]outcome, len(openers))
	after := make([]outcome, len(openers))
	var appendErr error
	landlockbpf.OnLockedThread(func() {
		for i, o := range openers {
			before[i] = outcome{o.open(denied), o.open(allowed)}
		}
		if appendErr = landlockbpf.Append(rule); appendErr != nil {
			return
		}
		for i, o := range openers {
			after[i] = outcome{o.open(denied), o.open(allowed)}
		}
	})
	for i, o := range openers {
		require.NoError(t, before[i].denied, "before the rule, open of %s %s", denied, o.how)
		require.NoError(t, before[i].allowed, "before the rule, open of %s %s", allowed, o.how)
	}
	require.NoError(t, appendErr)
	for i, o := range openers {
		assert.ErrorIs(t, after[i].denied, unix.EPERM, "open of the denied file %s", o.how)
		assert.NoError(t, after[i].allowed, "open of another file %s", o.how)
	}
}

// TestAppendChangesNeitherParentNorSiblings: a thread S appends a rule
// denying X, then starts two children, A and B, which share S's rules. A
// appends a rule denying Y while B is running: A is denied X and Y, B and
// S only X, and so is a child S starts afterwards.
func TestAppendChangesNeitherParentNorSiblings(t *testing.T) {
	skipUnlessSupported(t)
	privdrop.Run(t, keepRoot, appendChangesNeitherParentNorSiblingsScenario)
}

// appendChangesNeitherParentNorSiblingsScenario is
// TestAppendChangesNeitherParentNorSiblings' scenario.
func appendChangesNeitherParentNorSiblingsScenario(t *testing.T) {
	dir := t.TempDir()
	x := writeFile(t, dir, "x")
	y := writeFile(t, dir, "y")
	inoX, inoY := inodeOf(t, x), inodeOf(t, y)
	requireDistinctInode(t, inoX, executable(t), "/dev/null", y)
	requireDistinctInode(t, inoY, executable(t), "/dev/null", x)
	ruleX := loadRule(t, landlockbpf.DenyActionsOn(inoX, landlockbpf.ActionGet))
	ruleY := loadRule(t, landlockbpf.DenyActionsOn(inoY, landlockbpf.ActionGet))

	var appendErr, setupErr, errA, errB, errLate, parentX, parentY error
	var resA, resB, resLate []string
	landlockbpf.OnLockedThread(func() {
		if appendErr = landlockbpf.Append(ruleX); appendErr != nil {
			return
		}
		// B runs from before A appends until after: it waits for
		// its standard input to close before it opens X and Y.
		r, w, err := os.Pipe()
		if err != nil {
			setupErr = err
			return
		}
		b, err := startHelper(nil, r, "wait", "open="+x, "open="+y)
		r.Close()
		if err != nil {
			w.Close()
			setupErr = err
			return
		}
		_, resA, errA = runHelper(ruleY, "open="+y, "append", "open="+x, "open="+y)
		w.Close()
		_, resB, errB = b.wait()
		parentX, parentY = openClose(x), openClose(y)
		_, resLate, errLate = runHelper(nil, "open="+x, "open="+y)
	})
	require.NoError(t, appendErr)
	require.NoError(t, setupErr)
	require.NoError(t, errA, "child A")
	require.NoError(t, errB, "child B")
	require.NoError(t, errLate, "child started after A")
	assert.Equal(t, []string{"ok", "ok", "EPERM", "EPERM"}, resA,
		"child A: opens Y, appends the rule denying Y, is denied X (inherited) and Y (its own)")
	assert.Equal(t, []string{"ok", "EPERM", "ok"}, resB,
		"child B, running while its sibling appended: denied X (inherited), not Y (its sibling's)")
	assert.ErrorIs(t, parentX, unix.EPERM, "the parent thread: X (its own rule)")
	assert.NoError(t, parentY, "the parent thread: Y (its child's rule)")
	assert.Equal(t, []string{"EPERM", "ok"}, resLate,
		"a child started after A appended: denied X, not Y")
}
