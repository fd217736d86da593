package landlockbpf

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// HookRecordCap is how many actions a HookRecorder keeps between Start and
// Stop; it counts the others without keeping them.
const HookRecordCap = 64

// hookRecordSize is the size of a HookRecord in the log map.
const hookRecordSize = 32

// hookRecordStopped, as the next free slot of the log, makes the rule keep
// nothing: it is far beyond HookRecordCap and never wraps.
const hookRecordStopped = 1 << 62

// HookRecord is what a recording rule saw of one action: the fields of
// struct landlock_context after status, in the same order.
type HookRecord struct {
	Arch       uint32
	SyscallNr  uint32
	SyscallCmd uint32
	Event      uint32
	Arg1       uint64
	Arg2       uint64
}

// String describes r for test logs.
func (r HookRecord) String() string {
	return fmt.Sprintf("{nr=%d cmd=%#x arch=%#x event=%d arg1=%d arg2=%#x}",
		r.SyscallNr, r.SyscallCmd, r.Arch, r.Event, r.Arg1, r.Arg2)
}

// HookRecorder is a rule that allows everything and, between Start and
// Stop, logs every action it runs on into an array map.
//
// The rule keeps the index of the next free slot in a one-entry control
// map. Rules run on the thread that does the action, one at a time, so the
// index needs no atomic update. Stop reads the index, then sets it to a
// value beyond the log, so that the rule keeps nothing more.
type HookRecorder struct {
	recorder[HookRecord]
}

// NewHookRecorder creates the maps and loads the recording rule, stopped.
func NewHookRecorder() (*HookRecorder, error) {
	rec, err := newRecorder[HookRecord](hookRecordSize, HookRecordCap, func(ctlFD, logFD int) asm.Instructions {
		return HookRecorderInsns(ctlFD, logFD)
	})
	if err != nil {
		return nil, err
	}
	return &HookRecorder{rec}, nil
}

// recorder is what the recording rules share: the rule, its control map
// (one __u64: the next free slot of the log, or hookRecordStopped) and
// its log (an array of capacity records of type T).
type recorder[T any] struct {
	// Prog is the rule, to append with Append or attach to a cgroup.
	Prog     *ebpf.Program
	ctl      *ebpf.Map
	log      *ebpf.Map
	capacity int
}

// newRecorder creates the maps (records of recordSize bytes), then loads
// the rule that insns makes for their fds, stopped.
func newRecorder[T any](recordSize, capacity uint32, insns func(ctlFD, logFD int) asm.Instructions) (recorder[T], error) {
	r := recorder[T]{capacity: int(capacity)}
	var err error
	r.ctl, err = ebpf.NewMap(&ebpf.MapSpec{
		Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1,
	})
	if err != nil {
		return r, fmt.Errorf("creating the recorder's control map: %w", err)
	}
	r.log, err = ebpf.NewMap(&ebpf.MapSpec{
		Type: ebpf.Array, KeySize: 4, ValueSize: recordSize, MaxEntries: capacity,
	})
	if err != nil {
		r.ctl.Close()
		return r, fmt.Errorf("creating the recorder's log map: %w", err)
	}
	if err := r.setNext(hookRecordStopped); err != nil {
		r.Close()
		return r, err
	}
	r.Prog, err = Load(insns(r.ctl.FD(), r.log.FD()))
	if err != nil {
		r.Close()
		return r, err
	}
	return r, nil
}

// nextSlotInsns is the start of a recording rule: the context to R6, then
// idx = ctl[0]++ in R7 (R8 = idx + 1), and a jump to "allow" when there is
// no control slot or idx is past capacity.
func nextSlotInsns(ctlFD int, capacity int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, ctlFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord),
		asm.Mov.Reg(asm.R8, asm.R7),
		asm.Add.Imm(asm.R8, 1),
		asm.StoreMem(asm.R0, 0, asm.R8, asm.DWord),
		asm.JGE.Imm(asm.R7, capacity, "allow"),
	}
}

func (r *recorder[T]) setNext(v uint64) error {
	if err := r.ctl.Put(uint32(0), v); err != nil {
		return fmt.Errorf("setting the recorder's next slot: %w", err)
	}
	return nil
}

// Start empties the log and starts recording.
func (r *recorder[T]) Start() error {
	return r.setNext(0)
}

// Stop stops recording and returns the records kept (at most the log's
// capacity) and how many runs the rule saw since Start.
func (r *recorder[T]) Stop() ([]T, int, error) {
	var n uint64
	if err := r.ctl.Lookup(uint32(0), &n); err != nil {
		return nil, 0, fmt.Errorf("reading the recorder's next slot: %w", err)
	}
	if err := r.setNext(hookRecordStopped); err != nil {
		return nil, 0, err
	}
	if n >= hookRecordStopped {
		return nil, 0, errors.New("the recorder was not started")
	}
	recs := make([]T, min(n, uint64(r.capacity)))
	for i := range recs {
		if err := r.log.Lookup(uint32(i), &recs[i]); err != nil {
			return nil, 0, fmt.Errorf("reading record %d: %w", i, err)
		}
	}
	return recs, int(n), nil
}

// Close releases the rule and the maps (a thread that appended the rule
// keeps it, and the rule its maps).
func (r *recorder[T]) Close() {
	if r.Prog != nil {
		r.Prog.Close()
	}
	r.ctl.Close()
	r.log.Close()
}

// HookRecorderInsns is the recording rule for the control map ctlFD (array,
// one __u64: the next free slot) and the log map logFD (array of
// HookRecordCap HookRecords). It always returns 0.
func HookRecorderInsns(ctlFD, logFD int) asm.Instructions {
	// if idx < HookRecordCap: log[idx] = *ctx without status
	return append(nextSlotInsns(ctlFD, HookRecordCap),
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, logFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.LoadMem(asm.R1, asm.R6, CtxOffArch, asm.Word),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, CtxOffSyscallNr, asm.Word),
		asm.StoreMem(asm.R0, 4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, CtxOffSyscallCmd, asm.Word),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, CtxOffEvent, asm.Word),
		asm.StoreMem(asm.R0, 12, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, CtxOffArg1, asm.DWord),
		asm.StoreMem(asm.R0, 16, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, CtxOffArg2, asm.DWord),
		asm.StoreMem(asm.R0, 24, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	)
}

// RunOnRuleThread runs fn on a new goroutine locked to its OS thread and
// waits for it. The goroutine never unlocks the thread, so Go ends the
// thread when fn returns: the rules fn appends die with it, and no other
// goroutine (the test's, its cleanups, the runtime's) ever runs under them.
// Threads the runtime starts meanwhile come from its template thread and
// have no rules; processes fn forks (os/exec) inherit them.
//
// fn must not call t.FailNow (require) or write test output while a rule
// may deny it: it hands its results back to the caller instead. A panic in
// fn is raised again on the caller's goroutine.
func RunOnRuleThread(fn func()) {
	var (
		panicked bool
		value    any
	)
	spareThreads(spareThreadCount)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer func() {
			if p := recover(); p != nil {
				panicked, value = true, p
			}
		}()
		fn()
	}()
	<-done
	if panicked {
		panic(value)
	}
}
