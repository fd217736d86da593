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

// TestCgroupProgramJudgesRingWork (version 2): a process sets up an
// SQPOLL ring and a plain ring whose io-wq worker has done an IOSQE_ASYNC
// open, then moves itself (cgroup.procs) into a cgroup, and a Landlock
// program that denies GET and READ on one file is attached to that cgroup.
// The work io_uring does for the process, by the SQPOLL thread, by its
// io-wq worker and by the plain ring's io-wq worker, all created before
// the move and the attach, gives -EPERM for that file and still opens
// another; once the program is detached, the file opens through the same
// rings again. (Moving a whole process moves its io_uring threads with it:
// they are threads of the process.)
func TestCgroupProgramJudgesRingWork(t *testing.T) {
	skipUnlessSupported(t)
	if why := ll.SkipUnlessSupported(2); why != "" {
		t.Skip(why)
	}
	if why := ll.SkipUnlessCgroup2(); why != "" {
		t.Skip(why)
	}
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		f := newFiles(t)
		prog := loadRule(t, ll.DenyActionsOn(f.deniedIno, denyGetRead))
		cg := ll.NewCgroupHierarchy(t)
		// Cleanups run last first: the process leaves the cgroup
		// before NewCgroupHierarchy's cleanup removes it. The program
		// judges the denied file only, so the write to the root
		// cgroup's cgroup.procs is allowed.
		t.Cleanup(func() {
			root := ll.Cgroup{Path: ll.CgroupRoot}
			if err := root.AddProc(os.Getpid()); err != nil {
				t.Errorf("moving the test process back to %s: %v", ll.CgroupRoot, err)
			}
		})

		th := newRuleThread(t)
		sq := newRingOn(t, th, f, sqPoll)
		plain := newRingOn(t, th, f, ioWorker)
		oneWorker(t, th, plain)
		sqAsync := ringKind{"SQPOLL with IOSQE_ASYNC", setupSQPoll, sqeAsync, "an io-wq worker of the ring's SQPOLL thread"}
		kinds := []struct {
			r *ring
			k ringKind
		}{{sq, sqPoll}, {sq, sqAsync}, {plain, ioWorker}}
		for _, c := range kinds {
			checkOpens(t, th, c.r, c.k, f, "before the move")
		}
		workers, err := ioThreads(workerName(th.tid))
		require.NoError(t, err)
		require.Len(t, workers, 1, "the io-wq worker of thread %d, after an IOSQE_ASYNC request", th.tid)

		require.NoError(t, cg.AddProc(os.Getpid()), "moving the test process into %s", cg.Path)
		require.NoError(t, ll.ProgAttach(cg.FD, prog.FD(), ll.AttachCgroupLandlockFS, unix.BPF_F_ALLOW_MULTI, 0),
			"attaching the program to %s", cg.Path)
		require.ErrorIs(t, th.openDirect(f.denied), unix.EPERM, "openat(2) of the denied file by a thread of the process in the cgroup")
		require.NoError(t, th.openDirect(f.allowed), "openat(2) of the allowed file")
		for _, c := range kinds {
			checkDenied(t, th, c.r, c.k, f, "threads created before the move and the attach")
		}
		after, err := threadsNamed(workerName(th.tid))
		require.NoError(t, err)
		assert.Equal(t, workers, after, "the plain ring's io-wq worker after the attach is the one created before the move")

		require.NoError(t, ll.ProgDetach(cg.FD, prog.FD(), ll.AttachCgroupLandlockFS, 0), "detaching the program")
		for _, c := range kinds {
			checkOpens(t, th, c.r, c.k, f, "after the detach")
		}
	})
}
