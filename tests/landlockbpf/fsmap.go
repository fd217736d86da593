package landlockbpf

// The map of file system paths (ABI version 3): a raw bpf(2) layer for
// BPF_MAP_TYPE_LANDLOCK_FS maps, and a recording rule that logs what
// bpf_landlock_fs_beneath answered for each run.
//
// As in cgroup.go, the raw layer calls bpf(2) directly and returns nil or
// a bare unix.Errno, so that a test can assert the exact errno.
// cilium/ebpf's Map methods rename some (its wrapMapError turns ENOENT
// into ErrKeyNotExist, EEXIST into ErrKeyExist, ENOTSUPP into
// ErrNotSupported), and its NewMap does not know map type 34. The
// attribute structs follow the members of union bpf_attr that the map
// commands read; fsmap_test.go checks their layout on the host.

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Map flags and update flags of include/uapi/linux/bpf.h.
const (
	// MapFlagRdonly is BPF_F_RDONLY: the map's fd cannot write it.
	MapFlagRdonly = unix.BPF_F_RDONLY
	// MapFlagWronly is BPF_F_WRONLY.
	MapFlagWronly = unix.BPF_F_WRONLY
	// MapFlagNUMANode is BPF_F_NUMA_NODE.
	MapFlagNUMANode = unix.BPF_F_NUMA_NODE

	// UpdateAny, UpdateNoExist and UpdateExist are BPF_ANY,
	// BPF_NOEXIST and BPF_EXIST.
	UpdateAny     = unix.BPF_ANY
	UpdateNoExist = unix.BPF_NOEXIST
	UpdateExist   = unix.BPF_EXIST
	// UpdateLock is BPF_F_LOCK.
	UpdateLock = unix.BPF_F_LOCK
)

// MapCreateAttr is union bpf_attr's "anonymous struct used by
// BPF_MAP_CREATE command".
type MapCreateAttr struct {
	MapType               uint32   // map_type
	KeySize               uint32   // key_size
	ValueSize             uint32   // value_size
	MaxEntries            uint32   // max_entries
	MapFlags              uint32   // map_flags
	InnerMapFD            uint32   // inner_map_fd
	NUMANode              uint32   // numa_node
	MapName               [16]byte // map_name
	MapIfindex            uint32   // map_ifindex
	BTFFD                 uint32   // btf_fd
	BTFKeyTypeID          uint32   // btf_key_type_id
	BTFValueTypeID        uint32   // btf_value_type_id
	BTFVmlinuxValueTypeID uint32   // btf_vmlinux_value_type_id
	MapExtra              uint64   // map_extra
	ValueTypeBTFObjFD     int32    // value_type_btf_obj_fd
	MapTokenFD            int32    // map_token_fd
}

// MapElemAttr is union bpf_attr's "anonymous struct used by
// BPF_MAP_*_ELEM commands" (also read by BPF_MAP_GET_NEXT_KEY, with
// next_key in Value, and by BPF_MAP_FREEZE, which reads map_fd only).
type MapElemAttr struct {
	MapFD uint32 // map_fd
	_     uint32
	Key   uint64 // key: a pointer
	Value uint64 // value / next_key: a pointer
	Flags uint64 // flags
}

// FSMapAttr is the MapCreateAttr of a BPF_MAP_TYPE_LANDLOCK_FS map with
// maxEntries entries and no flag.
func FSMapAttr(maxEntries uint32) MapCreateAttr {
	return MapCreateAttr{MapType: MapTypeLandlockFS, KeySize: 4, ValueSize: 4, MaxEntries: maxEntries}
}

// MapCreate calls BPF_MAP_CREATE with attr as is and returns the new
// map's fd.
func MapCreate(attr MapCreateAttr) (int, error) {
	fd, err := bpf(unix.BPF_MAP_CREATE, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

func mapElem(cmd uintptr, attr *MapElemAttr) error {
	_, err := bpf(cmd, unsafe.Pointer(attr), unsafe.Sizeof(*attr))
	return err
}

// MapUpdate writes value (for a BPF_MAP_TYPE_LANDLOCK_FS map: an fd) at
// key of the map mapFD with the update flags.
func MapUpdate(mapFD int, key, value uint32, flags uint64) error {
	attr := MapElemAttr{
		MapFD: fdAttr(mapFD),
		Key:   uint64(uintptr(unsafe.Pointer(&key))),
		Value: uint64(uintptr(unsafe.Pointer(&value))),
		Flags: flags,
	}
	err := mapElem(unix.BPF_MAP_UPDATE_ELEM, &attr)
	runtime.KeepAlive(&key)
	runtime.KeepAlive(&value)
	return err
}

// MapDelete deletes key of the map mapFD.
func MapDelete(mapFD int, key uint32) error {
	attr := MapElemAttr{MapFD: fdAttr(mapFD), Key: uint64(uintptr(unsafe.Pointer(&key)))}
	err := mapElem(unix.BPF_MAP_DELETE_ELEM, &attr)
	runtime.KeepAlive(&key)
	return err
}

// MapLookup looks key of the map mapFD up and returns the 4-byte value.
func MapLookup(mapFD int, key uint32) (uint32, error) {
	var value uint32
	attr := MapElemAttr{
		MapFD: fdAttr(mapFD),
		Key:   uint64(uintptr(unsafe.Pointer(&key))),
		Value: uint64(uintptr(unsafe.Pointer(&value))),
	}
	err := mapElem(unix.BPF_MAP_LOOKUP_ELEM, &attr)
	runtime.KeepAlive(&key)
	runtime.KeepAlive(&value)
	return value, err
}

// MapLookupAndDelete calls BPF_MAP_LOOKUP_AND_DELETE_ELEM for key of the
// map mapFD.
func MapLookupAndDelete(mapFD int, key uint32) (uint32, error) {
	var value uint32
	attr := MapElemAttr{
		MapFD: fdAttr(mapFD),
		Key:   uint64(uintptr(unsafe.Pointer(&key))),
		Value: uint64(uintptr(unsafe.Pointer(&value))),
	}
	err := mapElem(unix.BPF_MAP_LOOKUP_AND_DELETE_ELEM, &attr)
	runtime.KeepAlive(&key)
	runtime.KeepAlive(&value)
	return value, err
}

// MapGetNextKey returns the key after *key of the map mapFD, or its first
// key when key is nil.
func MapGetNextKey(mapFD int, key *uint32) (uint32, error) {
	var next uint32
	attr := MapElemAttr{MapFD: fdAttr(mapFD), Value: uint64(uintptr(unsafe.Pointer(&next)))}
	if key != nil {
		attr.Key = uint64(uintptr(unsafe.Pointer(key)))
	}
	err := mapElem(unix.BPF_MAP_GET_NEXT_KEY, &attr)
	runtime.KeepAlive(key)
	runtime.KeepAlive(&next)
	return next, err
}

// MapFreeze freezes the map mapFD (BPF_MAP_FREEZE): userland can no
// longer change it.
func MapFreeze(mapFD int) error {
	attr := MapElemAttr{MapFD: fdAttr(mapFD)}
	return mapElem(unix.BPF_MAP_FREEZE, &attr)
}

// NewFSMapFD creates a BPF_MAP_TYPE_LANDLOCK_FS map of maxEntries entries
// and returns its fd, which the caller closes.
func NewFSMapFD(maxEntries uint32) (int, error) {
	fd, err := MapCreate(FSMapAttr(maxEntries))
	if err != nil {
		return -1, fmt.Errorf("creating a BPF_MAP_TYPE_LANDLOCK_FS map of %d entries: %w", maxEntries, err)
	}
	return fd, nil
}

// SetPaths opens each path O_PATH and writes it at its index of the map
// mapFD (BPF_ANY); the fds are closed again: the map keeps its own
// reference.
func SetPaths(mapFD int, paths ...string) error {
	for i, p := range paths {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening %s: %w", p, err)
		}
		err = MapUpdate(mapFD, uint32(i), uint32(fd), UpdateAny)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("writing %s at key %d of the map: %w", p, i, err)
		}
	}
	return nil
}

// FSBeneathCall is a call of bpf_landlock_fs_beneath(ctx, map, flags): the
// instructions that put the arguments in R1-R3 (the context from ctx),
// then the call; R0 holds the answer.
func FSBeneathCall(ctx asm.Register, mapFD int, flags int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, ctx),
		asm.LoadMapPtr(asm.R2, mapFD),
		asm.Mov.Imm(asm.R3, flags),
		asm.BuiltinFunc(FuncFSBeneath).Call(),
	}
}

// FSBeneathRecordCap is how many runs an FSBeneathRecorder keeps between
// Start and Stop; it counts the others without keeping them.
const FSBeneathRecordCap = 64

// fsBeneathRecordSize is the size of an FSBeneathRecord in the log map.
const fsBeneathRecordSize = 32

// FSBeneathRecord is one run of a rule under an FSBeneathRecorder: the
// system call, the object and actions of the context, and what
// bpf_landlock_fs_beneath answered for the run (1, 0, or a negative
// errno such as -ENOENT).
type FSBeneathRecord struct {
	SyscallNr uint32
	_         uint32
	Arg1      uint64
	Arg2      uint64
	Ret       int64
}

// String describes r for test logs.
func (r FSBeneathRecord) String() string {
	return fmt.Sprintf("{nr=%d arg1=%d arg2=%#x beneath=%d}", r.SyscallNr, r.Arg1, r.Arg2, r.Ret)
}

// FSBeneathRecorder is a rule that allows everything and, between Start
// and Stop, calls bpf_landlock_fs_beneath(ctx, map, flags) for every run
// and logs the answer with the run's arg1 and arg2, as HookRecorder does
// for the context.
type FSBeneathRecorder struct {
	recorder[FSBeneathRecord]
}

// NewFSBeneathRecorder creates the recorder's maps and loads its rule,
// stopped, asking about the BPF_MAP_TYPE_LANDLOCK_FS map fsMapFD with
// flags (0 but to test the helper's refusal of others).
func NewFSBeneathRecorder(fsMapFD int, flags int32) (*FSBeneathRecorder, error) {
	rec, err := newRecorder[FSBeneathRecord](fsBeneathRecordSize, FSBeneathRecordCap, func(ctlFD, logFD int) asm.Instructions {
		return FSBeneathRecorderInsns(ctlFD, logFD, fsMapFD, flags)
	})
	if err != nil {
		return nil, err
	}
	return &FSBeneathRecorder{rec}, nil
}

// FSBeneathRecorderInsns is the recording rule for the control map ctlFD
// (array, one __u64: the next free slot), the log map logFD (array of
// FSBeneathRecordCap FSBeneathRecords) and the map of paths fsMapFD. It
// always returns 0.
func FSBeneathRecorderInsns(ctlFD, logFD, fsMapFD int, flags int32) asm.Instructions {
	insns := nextSlotInsns(ctlFD, FSBeneathRecordCap)
	// r8 = fs_beneath(ctx, map, flags)
	insns = append(insns, FSBeneathCall(asm.R6, fsMapFD, flags)...)
	insns = append(insns,
		asm.Mov.Reg(asm.R8, asm.R0),
		// log[idx] = {syscall_nr, arg1, arg2, r8}
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, logFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.LoadMem(asm.R1, asm.R6, CtxOffSyscallNr, asm.Word),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, CtxOffArg1, asm.DWord),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, CtxOffArg2, asm.DWord),
		asm.StoreMem(asm.R0, 16, asm.R1, asm.DWord),
		asm.StoreMem(asm.R0, 24, asm.R8, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	)
	return insns
}
