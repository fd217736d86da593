package iouring

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestLayout checks, on any host, the Go copies of the io_uring structures
// against their sizes and offsets in the 6.12 UAPI.
func TestLayout(t *testing.T) {
	var s sqe
	assert.EqualValues(t, sqeSize, unsafe.Sizeof(s), "struct io_uring_sqe")
	for _, c := range []struct {
		field string
		got   uintptr
		want  uintptr
	}{
		{"fd", unsafe.Offsetof(s.Fd), 4},
		{"off", unsafe.Offsetof(s.Off), 8},
		{"addr", unsafe.Offsetof(s.Addr), 16},
		{"len", unsafe.Offsetof(s.Len), 24},
		{"open_flags", unsafe.Offsetof(s.OpFlags), 28},
		{"user_data", unsafe.Offsetof(s.UserData), 32},
		{"buf_index", unsafe.Offsetof(s.BufIndex), 40},
		{"personality", unsafe.Offsetof(s.Personality), 42},
		{"file_index", unsafe.Offsetof(s.FileIndex), 44},
		{"addr3", unsafe.Offsetof(s.Addr3), 48},
	} {
		assert.Equal(t, c.want, c.got, "offset of io_uring_sqe.%s", c.field)
	}
	var c cqe
	assert.EqualValues(t, cqeSize, unsafe.Sizeof(c), "struct io_uring_cqe")
	assert.EqualValues(t, 8, unsafe.Offsetof(c.Res), "offset of io_uring_cqe.res")
	var p params
	assert.EqualValues(t, 120, unsafe.Sizeof(p), "struct io_uring_params")
	assert.EqualValues(t, 40, unsafe.Offsetof(p.SQOff), "offset of io_uring_params.sq_off")
	assert.EqualValues(t, 80, unsafe.Offsetof(p.CQOff), "offset of io_uring_params.cq_off")
	assert.EqualValues(t, 40, unsafe.Sizeof(sqringOffsets{}), "struct io_sqring_offsets")
	assert.EqualValues(t, 40, unsafe.Sizeof(cqringOffsets{}), "struct io_cqring_offsets")
	assert.EqualValues(t, 24, unsafe.Sizeof(getEventsArg{}), "struct io_uring_getevents_arg")
	switch runtime.GOARCH {
	case "amd64":
		assert.EqualValues(t, 425, sysSetup, "__NR_io_uring_setup")
		assert.EqualValues(t, 426, sysEnter, "__NR_io_uring_enter")
		assert.EqualValues(t, 427, sysRegister, "__NR_io_uring_register")
		assert.EqualValues(t, 0xc000003e, unix.AUDIT_ARCH_X86_64)
	case "arm64":
		// The generic system call table: the same numbers.
		assert.EqualValues(t, 425, sysSetup, "__NR_io_uring_setup")
		assert.EqualValues(t, 426, sysEnter, "__NR_io_uring_enter")
		assert.EqualValues(t, 427, sysRegister, "__NR_io_uring_register")
		assert.EqualValues(t, 0xc00000b7, unix.AUDIT_ARCH_AARCH64)
	}
}

// TestRingPlumbing checks the raw ring itself, with no rule, wherever
// io_uring works (the host too): each kind of ring runs NOP, OPENAT, READ
// and CLOSE and reports errors as negative errnos, and the io_uring
// threads the scenarios look for exist under the names they expect.
func TestRingPlumbing(t *testing.T) {
	probe, err := newRing(1, 0, 0)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("io_uring is not available here: %v", err)
	}
	require.NoError(t, err)
	require.NoError(t, probe.close())
	require.NoError(t, probe.close(), "a second close does nothing")

	for _, k := range []ringKind{inline, ioWorker, sqPoll} {
		t.Run(k.name, func(t *testing.T) {
			f := newFiles(t)
			th := newRuleThread(t)
			r := newRingOn(t, th, f, k)
			var err error
			if k == ioWorker {
				oneWorker(t, th, r)
			}
			for i := 0; i < 2*ringEntries+3; i++ { // around both rings more than once
				var res int32
				th.run(func() { res, err = r.nop(k.sqe) })
				require.NoError(t, err)
				require.Equal(t, int32(0), res, "NOP %d", i)
			}

			var fd int32
			th.run(func() { fd, err = r.openat(f.allowed, k.sqe) })
			require.NoError(t, err)
			require.GreaterOrEqual(t, fd, int32(0), "OPENAT gives %s", describe(fd))
			res, data := readThrough(t, th, r, k, int(fd))
			assert.Equal(t, int32(len(allowedContent)), res, "READ gives %s", describe(res))
			assert.Equal(t, allowedContent, data)
			th.run(func() { res, err = r.closeFD(int(fd), k.sqe) })
			require.NoError(t, err)
			assert.Equal(t, int32(0), res, "CLOSE gives %s", describe(res))
			_, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			assert.ErrorIs(t, err, unix.EBADF, "the fd is closed")

			missing := openThrough(t, th, r, k, filepath.Join(f.dir, "missing"))
			assert.Equal(t, -int32(unix.ENOENT), missing, "OPENAT of a missing file gives %s", describe(missing))
			res, _ = readThrough(t, th, r, k, -1)
			assert.Equal(t, -int32(unix.EBADF), res, "READ of fd -1 gives %s", describe(res))

			switch k {
			case ioWorker:
				w, err := ioThreads(workerName(th.tid))
				require.NoError(t, err)
				// One bound worker (NOP, OPENAT, READ of a regular
				// file) and one unbound one (READ of fd -1, or of any
				// fd on kernels that queue it before looking its file
				// up), at most one of each.
				assert.NotEmpty(t, w, "the io-wq workers of thread %d", th.tid)
				assert.LessOrEqual(t, len(w), 2, "the io-wq workers of thread %d: one of each kind at most", th.tid)
			case sqPoll:
				sqp, err := ioThreads(sqPollName(th.tid))
				require.NoError(t, err)
				assert.Len(t, sqp, 1, "the SQPOLL thread of the ring thread %d set up", th.tid)
			}
		})
	}

	t.Run("SQPOLL_wakeup", func(t *testing.T) {
		f := newFiles(t)
		th := newRuleThread(t)
		var (
			r   *ring
			err error
		)
		th.run(func() { r, err = newRing(ringEntries, setupSQPoll, 10) })
		require.NoError(t, err)
		t.Cleanup(func() { r.close() })
		deadline := time.Now().Add(5 * time.Second)
		for atomic.LoadUint32(r.sqFlags)&sqNeedWakeup == 0 {
			require.True(t, time.Now().Before(deadline), "the SQPOLL thread never set IORING_SQ_NEED_WAKEUP after 10 ms without work")
			time.Sleep(10 * time.Millisecond)
		}
		res := openThrough(t, th, r, sqPoll, f.allowed)
		assert.GreaterOrEqual(t, res, int32(0), "OPENAT through a sleeping SQPOLL thread gives %s", describe(res))
	})

	t.Run("closed_ring_ends_its_SQPOLL_thread", func(t *testing.T) {
		th := newRuleThread(t)
		var (
			r   *ring
			err error
		)
		th.run(func() { r, err = newRing(ringEntries, setupSQPoll, sqIdleMS) })
		require.NoError(t, err)
		sqp, err := ioThreads(sqPollName(th.tid))
		require.NoError(t, err)
		require.Len(t, sqp, 1)
		require.NoError(t, r.close())
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := os.Stat(filepath.Join("/proc/self/task", strconv.Itoa(sqp[0])))
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			require.True(t, time.Now().Before(deadline), "the SQPOLL thread %d still runs 5 s after its ring was closed", sqp[0])
			time.Sleep(10 * time.Millisecond)
		}
	})
}
