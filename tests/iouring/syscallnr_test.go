package iouring

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestSyscallNrOfRingWork: a rule that runs for io_uring work sees
// syscall_nr = __NR_io_uring_enter (426 on x86_64, and in arm64's generic
// table) and arch = the AUDIT_ARCH_* of the test binary's architecture
// (landlockbpf.AuditArch: AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64), wherever
// the work runs: inline in io_uring_enter, in
// an io-wq worker (IOSQE_ASYNC) or in the ring's SQPOLL thread (which is
// in no system call at all, and which an unpatched kernel copies from a
// thread in io_uring_setup), for a ring set up before the rule and for
// one set up after it.
//
// The rule is a HookRecorder; every action it records on the opened file
// must carry those numbers, and there must be one (else the work escaped
// the rule). The recorder's log assumes that its rule runs one action at a
// time: io_uring threads run it too, so the scenario has one request in
// flight at a time, recorded from submission to completion.
func TestSyscallNrOfRingWork(t *testing.T) {
	skipUnlessSupported(t)
	for _, k := range []ringKind{inline, ioWorker, sqPoll} {
		t.Run(k.name, func(t *testing.T) {
			for _, before := range []bool{true, false} {
				name := "ring_set_up_after_the_rule"
				if before {
					name = "ring_set_up_before_the_rule"
				}
				t.Run(name, func(t *testing.T) {
					privdrop.Run(t, keepRoot, func(t *testing.T) { syscallNrScenario(t, k, before) })
				})
			}
		})
	}
}

func syscallNrScenario(t *testing.T, k ringKind, before bool) {
	// The recorder denies nothing: the scenario opens f.denied, whose
	// inode number newFiles made sure is the file's alone.
	f := newFiles(t)
	rec, err := ll.NewHookRecorder()
	require.NoError(t, err)
	t.Cleanup(rec.Close)
	th := newRuleThread(t)

	when := "ring set up after the rule"
	var r *ring
	if before {
		when = "ring set up before the rule"
		r = newRingOn(t, th, f, k)
		if k == ioWorker {
			oneWorker(t, th, r)
		}
		// The worker, or the SQPOLL thread, does work before the rule.
		checkOpens(t, th, r, k, f, "before the rule")
	}
	th.appendRule(t, rec.Prog)
	if !before {
		r = newRingOn(t, th, f, k)
	}

	var (
		res           int32
		recs          []ll.HookRecord
		seen          int
		opErr, recErr error
	)
	th.run(func() {
		if recErr = rec.Start(); recErr != nil {
			return
		}
		res, opErr = r.openat(f.denied, k.sqe)
		recs, seen, recErr = rec.Stop()
	})
	require.NoError(t, opErr, "IORING_OP_OPENAT (%s): no completion", k.name)
	if res >= 0 {
		require.NoError(t, unix.Close(int(res)))
	}
	require.NoError(t, recErr)
	require.GreaterOrEqual(t, res, int32(0), "IORING_OP_OPENAT (%s) under a rule that allows everything gives %s", k.name, describe(res))
	t.Logf("the rule saw %d actions: %v", seen, recs)
	if seen > ll.HookRecordCap {
		t.Logf("only the first %d were kept", ll.HookRecordCap)
	}

	var onFile []ll.HookRecord
	opened := false
	for _, rc := range recs {
		if rc.Arg1 == f.deniedIno {
			onFile = append(onFile, rc)
			opened = opened || rc.Arg2&ll.ActionGet != 0
		}
	}
	require.NotEmpty(t, onFile, "the rule saw no action on the opened file (inode %d): the open, done by %s (%s), escaped the rule", f.deniedIno, k.thread, when)
	assert.True(t, opened, "no action on the opened file reports GET: the open itself was not seen (%v)", onFile)
	for _, rc := range onFile {
		what := fmt.Sprintf("action %v on the file, done by %s (%s)", rc, k.thread, when)
		assert.Equal(t, uint32(unix.SYS_IO_URING_ENTER), rc.SyscallNr, "syscall_nr of %s: want __NR_io_uring_enter", what)
		assert.Equal(t, ll.AuditArch(), rc.Arch, "arch of %s: want %s", what, ll.AuditArchName())
		assert.Equal(t, uint32(ll.EventFS), rc.Event, "event of %s", what)
		assert.Zero(t, rc.SyscallCmd, "syscall_cmd of %s", what)
	}
}
