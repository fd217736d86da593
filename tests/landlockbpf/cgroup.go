package landlockbpf

// The cgroup manager (ABI version 2): a raw bpf(2) layer for the commands
// that attach Landlock programs to cgroups, and helpers for a private
// cgroup v2 hierarchy.
//
// The raw layer calls bpf(2) directly and returns the kernel's errno as
// is: every function returns nil or a bare unix.Errno, so that a test can
// assert the exact errno (errors.Is(err, unix.EPERM), or assert.ErrorIs).
// cilium/ebpf's link.RawAttachProgram, RawDetachProgram and QueryPrograms
// run a feature probe on any error and may then report ErrNotSupported
// instead of the errno (docs/abi-v2-plan.md §3, "Gotcha").
//
// The attribute structs follow the members of the kernel's union bpf_attr
// (include/uapi/linux/bpf.h) that each command reads; cgroup_test.go
// checks their sizes and offsets on the host.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ProgAttachAttr is the member of union bpf_attr that BPF_PROG_ATTACH and
// BPF_PROG_DETACH read ("anonymous struct used by BPF_PROG_ATTACH/DETACH
// commands").
type ProgAttachAttr struct {
	TargetFD         uint32 // target_fd / target_ifindex
	AttachBPFFD      uint32 // attach_bpf_fd
	AttachType       uint32 // attach_type
	AttachFlags      uint32 // attach_flags
	ReplaceBPFFD     uint32 // replace_bpf_fd
	RelativeFDOrID   uint32 // relative_fd / relative_id
	ExpectedRevision uint64 // expected_revision
}

// ProgQueryAttr is union bpf_attr's query member (BPF_PROG_QUERY).
type ProgQueryAttr struct {
	TargetFD        uint32 // target_fd / target_ifindex
	AttachType      uint32 // attach_type
	QueryFlags      uint32 // query_flags
	AttachFlags     uint32 // attach_flags (out)
	ProgIDs         uint64 // prog_ids: a __u32 array
	ProgCnt         uint32 // prog_cnt / count (in: capacity, out: total)
	_               uint32
	ProgAttachFlags uint64 // prog_attach_flags: a __u32 array (out)
	LinkIDs         uint64 // link_ids (not filled for cgroups)
	LinkAttachFlags uint64 // link_attach_flags
	Revision        uint64 // revision (out)
}

// LinkCreateAttr is union bpf_attr's link_create member (BPF_LINK_CREATE),
// with the cgroup part of its inner union; Rest pads it to the size of the
// whole member (its largest inner struct, uprobe_multi, takes 48 bytes).
type LinkCreateAttr struct {
	ProgFD           uint32 // prog_fd
	TargetFD         uint32 // target_fd
	AttachType       uint32 // attach_type
	Flags            uint32 // flags
	RelativeFDOrID   uint32 // cgroup.relative_fd / relative_id
	_                uint32
	ExpectedRevision uint64 // cgroup.expected_revision
	_                [32]byte
}

// LinkUpdateAttr is union bpf_attr's link_update member (BPF_LINK_UPDATE).
type LinkUpdateAttr struct {
	LinkFD    uint32 // link_fd
	NewProgFD uint32 // new_prog_fd
	Flags     uint32 // flags
	OldProgFD uint32 // old_prog_fd
}

// LinkDetachAttr is union bpf_attr's link_detach member (BPF_LINK_DETACH).
type LinkDetachAttr struct {
	LinkFD uint32 // link_fd
}

// ObjPinAttr is the member of union bpf_attr that BPF_OBJ_PIN and
// BPF_OBJ_GET read ("anonymous struct used by BPF_OBJ_* commands").
type ObjPinAttr struct {
	Pathname  uint64 // pathname
	BPFFD     uint32 // bpf_fd
	FileFlags uint32 // file_flags
	PathFD    int32  // path_fd
	_         uint32
}

// progLoadRetries is how many times bpf calls BPF_PROG_LOAD again after
// EAGAIN.
const progLoadRetries = 10

// bpf calls bpf(2) and returns its result and nil, or a bare unix.Errno.
// A BPF_PROG_LOAD that returns EAGAIN is called again, as libbpf and
// cilium/ebpf do: the verifier stops when it sees a signal pending, and
// Go's runtime sends SIGURG to preempt goroutines (more often with
// several CPUs); that is not the program's answer.
func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	for i := 0; ; i++ {
		r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
		if errno == unix.EAGAIN && cmd == unix.BPF_PROG_LOAD && i < progLoadRetries {
			continue
		}
		if errno != 0 {
			return r, errno
		}
		return r, nil
	}
}

// fdAttr turns an fd into an attribute field. A negative fd (closed or
// "none" in a test) becomes a huge number, which the kernel looks up as
// an fd that is not open.
func fdAttr(fd int) uint32 { return uint32(fd) }

// ProgAttachWith calls BPF_PROG_ATTACH with attr as is.
func ProgAttachWith(attr ProgAttachAttr) error {
	_, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// ProgAttach attaches the program progFD to the cgroup (or other target)
// target with attachType and flags (BPF_F_ALLOW_OVERRIDE, ...);
// replaceFD is the replace_bpf_fd that BPF_F_REPLACE names (0 without it).
func ProgAttach(target, progFD int, attachType, flags uint32, replaceFD int) error {
	return ProgAttachWith(ProgAttachAttr{
		TargetFD:     fdAttr(target),
		AttachBPFFD:  fdAttr(progFD),
		AttachType:   attachType,
		AttachFlags:  flags,
		ReplaceBPFFD: fdAttr(replaceFD),
	})
}

// ProgDetachWith calls BPF_PROG_DETACH with attr as is.
func ProgDetachWith(attr ProgAttachAttr) error {
	_, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// ProgDetach detaches the program progFD, attached with attachType, from
// target. flags is attach_flags, which the kernel wants 0 for cgroups.
func ProgDetach(target, progFD int, attachType, flags uint32) error {
	return ProgDetachWith(ProgAttachAttr{
		TargetFD:    fdAttr(target),
		AttachBPFFD: fdAttr(progFD),
		AttachType:  attachType,
		AttachFlags: flags,
	})
}

// QueryResult is what BPF_PROG_QUERY returned.
type QueryResult struct {
	// AttachFlags is attach_flags: the cgroup's flags for the attach
	// type (0 for an effective query).
	AttachFlags uint32
	// Count is prog_cnt as the kernel wrote it: how many programs there
	// are, which may be more than ProgIDs holds.
	Count uint32
	// ProgIDs are the ids the kernel copied, in its order.
	ProgIDs []uint32
	// ProgAttachFlags are the per-program attach flags, when asked for.
	ProgAttachFlags []uint32
	// Revision is the attach type's revision on the target (0 for an
	// effective query).
	Revision uint64
}

// ProgQueryCap calls BPF_PROG_QUERY on target for attachType with
// queryFlags (BPF_F_QUERY_EFFECTIVE) and room for capacity program ids
// (and as many per-program attach flags if withProgAttachFlags). It
// returns what the kernel wrote even when it fails (ENOSPC fills the
// room and sets Count).
func ProgQueryCap(target int, attachType, queryFlags uint32, capacity int, withProgAttachFlags bool) (QueryResult, error) {
	ids := make([]uint32, capacity)
	var flags []uint32
	attr := ProgQueryAttr{
		TargetFD:   fdAttr(target),
		AttachType: attachType,
		QueryFlags: queryFlags,
		ProgCnt:    uint32(capacity),
	}
	if capacity > 0 {
		attr.ProgIDs = uint64(uintptr(unsafe.Pointer(&ids[0])))
	}
	if withProgAttachFlags {
		// Non-NULL even with no room: the kernel tests the pointer.
		flags = make([]uint32, max(capacity, 1))
		attr.ProgAttachFlags = uint64(uintptr(unsafe.Pointer(&flags[0])))
	}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	n := min(int(attr.ProgCnt), capacity)
	res := QueryResult{
		AttachFlags: attr.AttachFlags,
		Count:       attr.ProgCnt,
		ProgIDs:     ids[:n],
		Revision:    attr.Revision,
	}
	if withProgAttachFlags {
		res.ProgAttachFlags = flags[:n]
	}
	return res, err
}

// ProgQuery queries all the programs of target for attachType: once for
// the count, then with room for them.
func ProgQuery(target int, attachType, queryFlags uint32, withProgAttachFlags bool) (QueryResult, error) {
	res, err := ProgQueryCap(target, attachType, queryFlags, 0, false)
	if err != nil {
		return res, err
	}
	if res.Count == 0 {
		if withProgAttachFlags {
			res.ProgAttachFlags = []uint32{}
		}
		res.ProgIDs = []uint32{}
		return res, nil
	}
	return ProgQueryCap(target, attachType, queryFlags, int(res.Count), withProgAttachFlags)
}

// LinkCreateWith calls BPF_LINK_CREATE with attr as is and returns the
// new link's fd.
func LinkCreateWith(attr LinkCreateAttr) (int, error) {
	fd, err := bpf(unix.BPF_LINK_CREATE, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// LinkCreate creates a link of the program progFD on target with
// attachType and link_create.flags flags, and returns its fd.
func LinkCreate(progFD, target int, attachType, flags uint32) (int, error) {
	return LinkCreateWith(LinkCreateAttr{
		ProgFD:     fdAttr(progFD),
		TargetFD:   fdAttr(target),
		AttachType: attachType,
		Flags:      flags,
	})
}

// LinkUpdate replaces the program of the link linkFD with newProg;
// oldProg is the expected current program with BPF_F_REPLACE in flags (0
// without it).
func LinkUpdate(linkFD, newProg, oldProg int, flags uint32) error {
	attr := LinkUpdateAttr{
		LinkFD:    fdAttr(linkFD),
		NewProgFD: fdAttr(newProg),
		Flags:     flags,
		OldProgFD: fdAttr(oldProg),
	}
	_, err := bpf(unix.BPF_LINK_UPDATE, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// LinkDetach detaches the link linkFD from its target (the fd stays open).
func LinkDetach(linkFD int) error {
	attr := LinkDetachAttr{LinkFD: fdAttr(linkFD)}
	_, err := bpf(unix.BPF_LINK_DETACH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// ObjPin pins the BPF object fd (a link, a program) at path on a bpffs.
func ObjPin(fd int, path string) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	attr := ObjPinAttr{Pathname: uint64(uintptr(unsafe.Pointer(p))), BPFFD: fdAttr(fd)}
	_, err = bpf(unix.BPF_OBJ_PIN, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

// ObjGet opens the BPF object pinned at path and returns a new fd for it.
func ObjGet(path string) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	attr := ObjPinAttr{Pathname: uint64(uintptr(unsafe.Pointer(p)))}
	fd, err := bpf(unix.BPF_OBJ_GET, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// CgroupRoot is where the guest's runner mounts cgroup v2.
const CgroupRoot = "/sys/fs/cgroup"

// Cgroup2Mounted reports whether CgroupRoot is a cgroup v2 file system
// (CGROUP2_SUPER_MAGIC): u-root puts a tmpfs there, which the runner
// mounts cgroup2 over (docs/abi-v2-plan.md §5).
func Cgroup2Mounted() (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(CgroupRoot, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("statfs %s: %w", CgroupRoot, err)
	}
	return uint32(st.Type) == unix.CGROUP2_SUPER_MAGIC, nil
}

// SkipUnlessCgroup2 returns why tests that need cgroup v2 at CgroupRoot
// cannot run, or "" when they can.
func SkipUnlessCgroup2() string {
	ok, err := Cgroup2Mounted()
	if err != nil {
		return err.Error()
	}
	if !ok {
		return fmt.Sprintf("cgroup2 is not mounted at %s (the guest runner mounts it; CONFIG_CGROUPS?)", CgroupRoot)
	}
	return ""
}

// HasCgroupAttachType reports whether the running kernel knows the attach
// type BPF_CGROUP_LANDLOCK_FS. As root it attaches an allow-all Landlock
// program with that type to a file that is not a cgroup directory:
// bpf_prog_attach (kernel/bpf/syscall.c) gives EINVAL for an attach type
// it has no program type for, before it looks at the target, and a known
// cgroup attach type reaches cgroup_get_from_fd, which gives EBADF for
// anything but a cgroup directory. Nothing is ever attached.
func HasCgroupAttachType() (bool, error) {
	prog, err := Load(Allow)
	if err != nil {
		return false, err
	}
	defer prog.Close()
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = ProgAttach(int(f.Fd()), prog.FD(), AttachCgroupLandlockFS, 0, 0)
	switch {
	case errors.Is(err, unix.EBADF):
		return true, nil
	case errors.Is(err, unix.EINVAL):
		return false, nil
	case err == nil:
		return false, errors.New("BPF_PROG_ATTACH of a Landlock program to a regular file succeeded")
	}
	return false, fmt.Errorf("BPF_PROG_ATTACH with attach type %d to a regular file: %w (want EBADF or EINVAL)", AttachCgroupLandlockFS, err)
}

// Cgroup is a cgroup v2 directory and an fd of it (opened O_RDONLY |
// O_DIRECTORY, the fd bpf(2) takes as a target).
type Cgroup struct {
	Path string
	FD   int
}

// Procs is the path of the cgroup's cgroup.procs.
func (c *Cgroup) Procs() string { return filepath.Join(c.Path, "cgroup.procs") }

// AddProc moves the process pid (all its threads) into the cgroup.
func (c *Cgroup) AddProc(pid int) error {
	return os.WriteFile(c.Procs(), []byte(strconv.Itoa(pid)+"\n"), 0)
}

// OpenCgroup opens the cgroup directory path; the fd is closed when t
// ends. The directory is not removed.
func OpenCgroup(t testing.TB, path string) *Cgroup {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening the cgroup %s: %v", path, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &Cgroup{Path: path, FD: fd}
}

// Mkdir makes the child cgroup name of c and opens it. It is removed by
// the cleanup of the hierarchy c belongs to (NewCgroupHierarchy).
func (c *Cgroup) Mkdir(t testing.TB, name string) *Cgroup {
	t.Helper()
	path := filepath.Join(c.Path, name)
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatalf("making the cgroup %s: %v", path, err)
	}
	return OpenCgroup(t, path)
}

var hierarchySeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// CgroupHierarchyName returns a name for a private hierarchy of the test
// t made by the process pid: unique among the tests of all the processes
// running, and the same in a privdrop child, which passes its parent's
// pid (os.Getppid) to find the directory its parent made.
func CgroupHierarchyName(t testing.TB, pid int) string {
	name := unsafeName.ReplaceAllString(t.Name(), "_")
	if len(name) > 100 {
		name = name[:100]
	}
	return fmt.Sprintf("landlock-vmtest-%d-%s", pid, name)
}

// NewCgroupHierarchy makes a private cgroup directory for t under
// CgroupRoot, named CgroupHierarchyName(t, os.Getpid()) plus a sequence
// number. When t ends, its cleanup removes every cgroup below it, deepest
// first, then itself; it moves no process: the test must have ended (and
// waited for) the processes it put there, else rmdir fails with EBUSY and
// so does the test. Programs still attached go with the cgroups
// (cgroup_bpf_release, asynchronously).
func NewCgroupHierarchy(t testing.TB) *Cgroup {
	t.Helper()
	name := fmt.Sprintf("%s-%d", CgroupHierarchyName(t, os.Getpid()), hierarchySeq.Add(1))
	return NewCgroupHierarchyAt(t, filepath.Join(CgroupRoot, name))
}

// NewCgroupHierarchyAt is NewCgroupHierarchy with the path of the top
// directory given; it must not exist.
func NewCgroupHierarchyAt(t testing.TB, path string) *Cgroup {
	t.Helper()
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatalf("making the test's cgroup %s: %v", path, err)
	}
	// Registered before OpenCgroup's cleanup, so it runs after it (and
	// after those of every cgroup made below): fds are closed first.
	t.Cleanup(func() {
		if err := RemoveCgroupTree(path); err != nil {
			t.Errorf("removing the test's cgroups: %v", err)
		}
	})
	return OpenCgroup(t, path)
}

// rmdirBusyWait bounds how long RemoveCgroupTree retries a cgroup that
// is still busy: a reaped child leaves its cgroup at release_task, which
// can trail wait(2) by a moment.
const rmdirBusyWait = 2 * time.Second

// RemoveCgroupTree removes the cgroup directory path and every cgroup
// below it, deepest first. It moves no process.
func RemoveCgroupTree(path string) error {
	entries, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := RemoveCgroupTree(filepath.Join(path, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	deadline := time.Now().Add(rmdirBusyWait)
	for {
		err = unix.Rmdir(path)
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		procs, _ := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		errs = append(errs, fmt.Errorf("rmdir %s: %w (cgroup.procs: %q)", path, err, procs))
	}
	return errors.Join(errs...)
}

// ProgID returns the id of prog (what BPF_PROG_QUERY lists).
func ProgID(prog *ebpf.Program) (uint32, error) {
	info, err := prog.Info()
	if err != nil {
		return 0, err
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("the kernel gives no program id")
	}
	return uint32(id), nil
}
