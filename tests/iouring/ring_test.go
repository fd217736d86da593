package iouring

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A minimal io_uring, from the Linux 6.12 UAPI (include/uapi/linux/io_uring.h):
// one request in flight at a time, submitted and waited for by the calling
// thread, or by the ring's SQPOLL thread with IORING_SETUP_SQPOLL.

// System calls (the same numbers on x86_64 and on every architecture with
// the generic table, arm64 included).
const (
	sysSetup    = unix.SYS_IO_URING_SETUP    // 425
	sysEnter    = unix.SYS_IO_URING_ENTER    // 426
	sysRegister = unix.SYS_IO_URING_REGISTER // 427
)

// mmap offsets.
const (
	offSQRing = 0          // IORING_OFF_SQ_RING
	offCQRing = 0x8000000  // IORING_OFF_CQ_RING
	offSQEs   = 0x10000000 // IORING_OFF_SQES
)

// io_uring_setup flags and features.
const (
	setupSQPoll    = 1 << 1 // IORING_SETUP_SQPOLL
	featSingleMmap = 1 << 0 // IORING_FEAT_SINGLE_MMAP
)

// io_uring_enter flags.
const (
	enterGetEvents = 1 << 0 // IORING_ENTER_GETEVENTS
	enterSQWakeup  = 1 << 1 // IORING_ENTER_SQ_WAKEUP
	enterExtArg    = 1 << 3 // IORING_ENTER_EXT_ARG
)

// sqNeedWakeup is IORING_SQ_NEED_WAKEUP, in the SQ ring's flags.
const sqNeedWakeup = 1 << 0

// sqeAsync is IOSQE_ASYNC: the request goes to an io-wq worker at once.
const sqeAsync = 1 << 4

// Operations (enum io_uring_op).
const (
	opNop    = 0  // IORING_OP_NOP
	opOpenat = 18 // IORING_OP_OPENAT
	opClose  = 19 // IORING_OP_CLOSE
	opRead   = 22 // IORING_OP_READ
)

// registerIOWQMaxWorkers is IORING_REGISTER_IOWQ_MAX_WORKERS.
const registerIOWQMaxWorkers = 19

const (
	sqeSize = 64 // sizeof(struct io_uring_sqe) without IORING_SETUP_SQE128
	cqeSize = 16 // sizeof(struct io_uring_cqe) without IORING_SETUP_CQE32
)

// waitTimeout bounds the wait for one completion.
const waitTimeout = 10 * time.Second

// sqringOffsets is struct io_sqring_offsets.
type sqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

// cqringOffsets is struct io_cqring_offsets.
type cqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, Resv1 uint32
	UserAddr                                                        uint64
}

// params is struct io_uring_params.
type params struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
	Resv                                                                   [3]uint32
	SQOff                                                                  sqringOffsets
	CQOff                                                                  cqringOffsets
}

// sqe is struct io_uring_sqe, with the union members these tests use.
type sqe struct {
	Opcode      uint8
	Flags       uint8
	Ioprio      uint16
	Fd          int32
	Off         uint64 // off
	Addr        uint64 // addr
	Len         uint32 // len (the mode, for openat)
	OpFlags     uint32 // open_flags, rw_flags...
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	FileIndex   uint32
	Addr3       uint64
	_           uint64
}

// cqe is struct io_uring_cqe.
type cqe struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// getEventsArg is struct io_uring_getevents_arg (IORING_ENTER_EXT_ARG).
type getEventsArg struct {
	Sigmask     uint64
	SigmaskSz   uint32
	MinWaitUsec uint32
	Ts          uint64
}

// ring is an io_uring instance and its mappings.
type ring struct {
	fd     int
	sqpoll bool
	params params

	sqMem, cqMem, sqesMem []byte
	single                bool // IORING_FEAT_SINGLE_MMAP: cqMem is sqMem

	sqHead, sqTail, sqFlags *uint32
	sqMask, sqEntries       uint32
	sqArray                 uint32 // offset of the index array in sqMem

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           uint32 // offset of the CQEs in cqMem

	seq uint64 // user_data of the last request

	// The timeout of a wait, read by the kernel: kept in the ring, on
	// the heap, so that it cannot move.
	ts  unix.Timespec
	arg getEventsArg
}

// setupError is io_uring_setup's failure.
type setupError struct{ errno unix.Errno }

func (e *setupError) Error() string { return fmt.Sprintf("io_uring_setup: %v", e.errno) }
func (e *setupError) Unwrap() error { return e.errno }

// newRing sets up a ring of entries SQEs with the setup flags (with
// setupSQPoll, the thread sleeps after idleMS ms without work) and maps it.
// The caller closes it. Called on a thread, it makes that thread the
// ring's creator: the SQPOLL thread is created here, as a copy of it.
func newRing(entries, flags, idleMS uint32) (*ring, error) {
	r := &ring{fd: -1, sqpoll: flags&setupSQPoll != 0}
	r.params.Flags = flags
	r.params.SQThreadIdle = idleMS
	fd, _, errno := unix.Syscall(sysSetup, uintptr(entries), uintptr(unsafe.Pointer(&r.params)), 0)
	if errno != 0 {
		return nil, &setupError{errno}
	}
	r.fd = int(fd)
	if err := r.mapRings(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

func (r *ring) mapRings() error {
	p := &r.params
	sqSize := int(p.SQOff.Array) + int(p.SQEntries)*4
	cqSize := int(p.CQOff.CQEs) + int(p.CQEntries)*cqeSize
	r.single = p.Features&featSingleMmap != 0
	if r.single {
		sqSize = max(sqSize, cqSize)
	}
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_SHARED | unix.MAP_POPULATE
	var err error
	if r.sqMem, err = unix.Mmap(r.fd, offSQRing, sqSize, prot, flags); err != nil {
		return fmt.Errorf("mmap of the SQ ring: %w", err)
	}
	if r.single {
		r.cqMem = r.sqMem
	} else if r.cqMem, err = unix.Mmap(r.fd, offCQRing, cqSize, prot, flags); err != nil {
		return fmt.Errorf("mmap of the CQ ring: %w", err)
	}
	if r.sqesMem, err = unix.Mmap(r.fd, offSQEs, int(p.SQEntries)*sqeSize, prot, flags); err != nil {
		return fmt.Errorf("mmap of the SQEs: %w", err)
	}
	r.sqHead = word(r.sqMem, p.SQOff.Head)
	r.sqTail = word(r.sqMem, p.SQOff.Tail)
	r.sqFlags = word(r.sqMem, p.SQOff.Flags)
	r.sqMask = *word(r.sqMem, p.SQOff.RingMask)
	r.sqEntries = *word(r.sqMem, p.SQOff.RingEntries)
	r.sqArray = p.SQOff.Array
	r.cqHead = word(r.cqMem, p.CQOff.Head)
	r.cqTail = word(r.cqMem, p.CQOff.Tail)
	r.cqMask = *word(r.cqMem, p.CQOff.RingMask)
	r.cqes = p.CQOff.CQEs
	return nil
}

// word is the 32-bit word at off in a ring mapping.
func word(mem []byte, off uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[off]))
}

// close unmaps the ring and closes its fd; the kernel then ends the
// ring's SQPOLL thread. It may be called again.
func (r *ring) close() error {
	var errs []error
	unmap := func(m *[]byte) {
		if *m != nil {
			if err := unix.Munmap(*m); err != nil {
				errs = append(errs, err)
			}
			*m = nil
		}
	}
	unmap(&r.sqesMem)
	if r.single {
		r.cqMem = nil // unmapped with sqMem
	}
	unmap(&r.cqMem)
	unmap(&r.sqMem)
	if r.fd >= 0 {
		if err := unix.Close(r.fd); err != nil {
			errs = append(errs, err)
		}
		r.fd = -1
	}
	return errors.Join(errs...)
}

// enter calls io_uring_enter(2).
func (r *ring) enter(toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr) (int, error) {
	n, _, errno := unix.Syscall6(sysEnter, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete),
		uintptr(flags), uintptr(arg), argSize)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}

// submit queues s and has it consumed: by io_uring_enter on this thread,
// or by the SQPOLL thread (woken if it sleeps).
func (r *ring) submit(s *sqe) error {
	head := atomic.LoadUint32(r.sqHead)
	tail := atomic.LoadUint32(r.sqTail)
	if tail-head >= r.sqEntries {
		return fmt.Errorf("the SQ ring is full (head %d, tail %d)", head, tail)
	}
	idx := tail & r.sqMask
	*(*sqe)(unsafe.Pointer(&r.sqesMem[idx*sqeSize])) = *s
	*word(r.sqMem, r.sqArray+4*idx) = idx
	// A full barrier (Go's atomics are sequentially consistent): the
	// SQPOLL thread sets NEED_WAKEUP and then looks at the tail.
	atomic.StoreUint32(r.sqTail, tail+1)
	if r.sqpoll {
		if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
			if _, err := r.enter(0, 0, enterSQWakeup, nil, 0); err != nil {
				return fmt.Errorf("io_uring_enter(IORING_ENTER_SQ_WAKEUP): %w", err)
			}
		}
		return nil
	}
	for {
		n, err := r.enter(1, 0, 0, nil, 0)
		if errors.Is(err, unix.EINTR) && atomic.LoadUint32(r.sqHead) == tail {
			continue
		}
		if err != nil {
			return fmt.Errorf("io_uring_enter(to_submit=1): %w", err)
		}
		if n != 1 {
			return fmt.Errorf("io_uring_enter(to_submit=1) submitted %d requests", n)
		}
		return nil
	}
}

// wait returns the next completion, waiting for it at most waitTimeout.
func (r *ring) wait() (cqe, error) {
	deadline := time.Now().Add(waitTimeout)
	for {
		head := atomic.LoadUint32(r.cqHead)
		if head != atomic.LoadUint32(r.cqTail) {
			c := *(*cqe)(unsafe.Pointer(&r.cqMem[r.cqes+(head&r.cqMask)*cqeSize]))
			atomic.StoreUint32(r.cqHead, head+1)
			return c, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return cqe{}, fmt.Errorf("no completion within %v", waitTimeout)
		}
		r.ts = unix.NsecToTimespec(left.Nanoseconds())
		r.arg = getEventsArg{Ts: uint64(uintptr(unsafe.Pointer(&r.ts)))}
		_, err := r.enter(0, 1, enterGetEvents|enterExtArg, unsafe.Pointer(&r.arg), unsafe.Sizeof(r.arg))
		switch {
		case err == nil, errors.Is(err, unix.EINTR), errors.Is(err, unix.ETIME):
		default:
			return cqe{}, fmt.Errorf("io_uring_enter(IORING_ENTER_GETEVENTS): %w", err)
		}
	}
}

// do submits s, waits for its completion and returns its res: a result,
// or a negative errno. The memory s points to must stay pinned until do
// returns.
func (r *ring) do(s sqe) (int32, error) {
	r.seq++
	s.UserData = r.seq
	if err := r.submit(&s); err != nil {
		return 0, err
	}
	c, err := r.wait()
	if err != nil {
		return 0, err
	}
	if c.UserData != s.UserData {
		return 0, fmt.Errorf("a completion for request %d came, request %d is the only one in flight", c.UserData, s.UserData)
	}
	return c.Res, nil
}

// nop does IORING_OP_NOP.
func (r *ring) nop(flags uint8) (int32, error) {
	return r.do(sqe{Opcode: opNop, Flags: flags})
}

// openat does IORING_OP_OPENAT of path, read-only, with the SQE flags
// flags; res is the new fd.
func (r *ring) openat(path string, flags uint8) (int32, error) {
	name, err := unix.ByteSliceFromString(path)
	if err != nil {
		return 0, err
	}
	var pin runtime.Pinner
	pin.Pin(&name[0])
	defer pin.Unpin()
	return r.do(sqe{
		Opcode:  opOpenat,
		Flags:   flags,
		Fd:      unix.AT_FDCWD,
		Addr:    uint64(uintptr(unsafe.Pointer(&name[0]))),
		OpFlags: unix.O_RDONLY | unix.O_CLOEXEC,
	})
}

// read does IORING_OP_READ of up to size bytes at offset 0 of fd, with the
// SQE flags flags; res is the byte count, and data what was read.
func (r *ring) read(fd int, size int, flags uint8) (res int32, data []byte, err error) {
	buf := make([]byte, size)
	var pin runtime.Pinner
	pin.Pin(&buf[0])
	defer pin.Unpin()
	res, err = r.do(sqe{
		Opcode: opRead,
		Flags:  flags,
		Fd:     int32(fd),
		Off:    0,
		Addr:   uint64(uintptr(unsafe.Pointer(&buf[0]))),
		Len:    uint32(size),
	})
	if err == nil && res > 0 {
		data = buf[:res]
	}
	return res, data, err
}

// closeFD does IORING_OP_CLOSE of fd.
func (r *ring) closeFD(fd int, flags uint8) (int32, error) {
	return r.do(sqe{Opcode: opClose, Flags: flags, Fd: int32(fd)})
}

// maxWorkers sets, with IORING_REGISTER_IOWQ_MAX_WORKERS, how many bound
// and unbound io-wq workers the io-wq of the calling thread (of the SQPOLL
// thread, for an SQPOLL ring) may have.
func (r *ring) maxWorkers(bound, unbound uint32) error {
	counts := new([2]uint32)
	counts[0], counts[1] = bound, unbound
	_, _, errno := unix.Syscall6(sysRegister, uintptr(r.fd), registerIOWQMaxWorkers,
		uintptr(unsafe.Pointer(counts)), 2, 0, 0)
	if errno != 0 {
		return fmt.Errorf("io_uring_register(IORING_REGISTER_IOWQ_MAX_WORKERS): %w", errno)
	}
	return nil
}

// inode returns the inode number of the ring's file.
func (r *ring) inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(r.fd, &st); err != nil {
		return 0, fmt.Errorf("fstat of the ring: %w", err)
	}
	return st.Ino, nil
}
