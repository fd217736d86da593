package bpfsandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpf(2) commands used here.
const (
	bpfMapCreate     = 0  // BPF_MAP_CREATE
	bpfMapUpdateElem = 2  // BPF_MAP_UPDATE_ELEM
	bpfMapFreeze     = 22 // BPF_MAP_FREEZE
)

// mapCreateAttr is the part of union bpf_attr that BPF_MAP_CREATE reads,
// up to map_name (the kernel zero-checks what follows our size).
type mapCreateAttr struct {
	mapType    uint32
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	mapFlags   uint32
	innerMapFD uint32
	numaNode   uint32
	mapName    [unix.BPF_OBJ_NAME_LEN]byte
}

// mapElemAttr is union bpf_attr for BPF_MAP_UPDATE_ELEM.
type mapElemAttr struct {
	mapFD uint32
	_     uint32
	key   uint64
	value uint64
	flags uint64
}

// mapFDAttr is union bpf_attr for BPF_MAP_FREEZE.
type mapFDAttr struct {
	mapFD uint32
}

// BPFError is an error of bpf(2) (creating or filling a map, loading the
// rule), as against one of seccomp(2) (appending it): from version 4, an
// EPERM here, for a caller without CAP_BPF, comes from
// kernel.unprivileged_bpf_disabled (UnprivBPFSysctl) not being 0. Its
// text is the wrapped error's.
type BPFError struct{ Err error }

func (e *BPFError) Error() string { return e.Err.Error() }

// Unwrap returns the error of bpf(2).
func (e *BPFError) Unwrap() error { return e.Err }

func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// FSMap is a BPF_MAP_TYPE_LANDLOCK_FS map: up to 64 paths that a rule
// asks bpf_landlock_fs_beneath about. The kernel keeps each path (mount
// and dentry) the fd written at a key names; the fd itself can be closed
// afterwards.
type FSMap struct {
	fd         int
	maxEntries int
	next       uint32 // the key Add writes next
	paths      []string
}

// NewFSMap creates a BPF_MAP_TYPE_LANDLOCK_FS map of maxEntries keys
// (1 to MaxFSMapEntries). Creating it needs CAP_BPF in version 3; from
// version 4, without CAP_BPF, kernel.unprivileged_bpf_disabled = 0.
func NewFSMap(maxEntries int) (*FSMap, error) {
	if maxEntries < 1 || maxEntries > MaxFSMapEntries {
		return nil, fmt.Errorf("BPF_MAP_TYPE_LANDLOCK_FS map: %d entries: want 1 to %d", maxEntries, MaxFSMapEntries)
	}
	attr := mapCreateAttr{
		mapType:    MapTypeLandlockFS,
		keySize:    4,
		valueSize:  4,
		maxEntries: uint32(maxEntries),
	}
	copy(attr.mapName[:], "landlock_fs")
	fd, err := bpf(bpfMapCreate, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return nil, &BPFError{fmt.Errorf("creating a BPF_MAP_TYPE_LANDLOCK_FS map (type %d, %d entries) with bpf(BPF_MAP_CREATE): %w", MapTypeLandlockFS, maxEntries, errnoText(err))}
	}
	return &FSMap{fd: int(fd), maxEntries: maxEntries}, nil
}

// Add opens path (O_PATH, so any file or directory the caller can reach
// will do, without read permission), writes its fd at the next key Add
// has not used yet (0, 1, ...; keys written with Set are not skipped)
// and closes the fd.
func (m *FSMap) Add(path string) error {
	if int(m.next) >= m.maxEntries {
		return fmt.Errorf("BPF_MAP_TYPE_LANDLOCK_FS map: adding %s: the map is full (%d entries)", path, m.maxEntries)
	}
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("BPF_MAP_TYPE_LANDLOCK_FS map: opening %s: %w", path, errnoText(err))
	}
	defer unix.Close(fd)
	if err := m.Set(m.next, fd); err != nil {
		return fmt.Errorf("adding %s: %w", path, err)
	}
	m.next++
	m.paths = append(m.paths, path)
	return nil
}

// Set writes fd at key (BPF_MAP_UPDATE_ELEM): the kernel takes the path
// fd names. An O_PATH fd is enough; a closed one gives EBADF, a pipe, a
// socket, an anonymous inode or a bpffs file EINVAL, a frozen map EPERM.
func (m *FSMap) Set(key uint32, fd int) error {
	k, v := key, uint32(fd)
	attr := mapElemAttr{
		mapFD: uint32(m.fd),
		key:   uint64(uintptr(unsafe.Pointer(&k))),
		value: uint64(uintptr(unsafe.Pointer(&v))),
	}
	_, err := bpf(bpfMapUpdateElem, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(&k)
	runtime.KeepAlive(&v)
	if err != nil {
		return &BPFError{fmt.Errorf("BPF_MAP_TYPE_LANDLOCK_FS map %d: bpf(BPF_MAP_UPDATE_ELEM) key %d, fd %d: %w", m.fd, key, fd, errnoText(err))}
	}
	return nil
}

// FD is the map's file descriptor, -1 once closed.
func (m *FSMap) FD() int { return m.fd }

// Paths are the paths Add wrote, in key order.
func (m *FSMap) Paths() []string { return append([]string(nil), m.paths...) }

// Freeze makes the map read-only for userland (BPF_MAP_FREEZE): every
// later update or delete fails with EPERM.
func (m *FSMap) Freeze() error {
	attr := mapFDAttr{mapFD: uint32(m.fd)}
	if _, err := bpf(bpfMapFreeze, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return &BPFError{fmt.Errorf("BPF_MAP_TYPE_LANDLOCK_FS map %d: bpf(BPF_MAP_FREEZE): %w", m.fd, errnoText(err))}
	}
	return nil
}

// Close closes the map's fd. A program loaded with the map keeps it.
func (m *FSMap) Close() error {
	if m == nil || m.fd < 0 {
		return nil
	}
	err := unix.Close(m.fd)
	m.fd = -1
	if err != nil {
		return fmt.Errorf("closing the BPF_MAP_TYPE_LANDLOCK_FS map: %w", errnoText(err))
	}
	return nil
}
