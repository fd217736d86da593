package bpffuzz

// The cgroup part (ABI version 2): random BPF_PROG_ATTACH, BPF_PROG_DETACH,
// BPF_PROG_QUERY, BPF_LINK_CREATE, BPF_LINK_UPDATE and BPF_LINK_DETACH
// calls around BPF_CGROUP_LANDLOCK_FS, on scratch cgroups of a private
// subtree of /sys/fs/cgroup that never hold a process (so a program that
// denies, attached there, judges nobody). Never the root cgroup, nor the
// fuzzer's: every fd the fuzzer did not open is vetted before it is used
// as an argument (vet).
//
// Every call must return success or an errno of cgroupAllowed. Where the
// syscall and cgroup-bpf code decide the outcome before any state matters
// (unknown flags, an fd of the wrong kind, attach types 57 and 59, attr
// sizes), or where the fuzzer knows the state (its own links), expect
// gives the outcome exactly, as the seccomp part does with the spec's
// table; the lines of 6.12's kernel/bpf/syscall.c and kernel/bpf/cgroup.c
// it follows are named there, and docs/abi-v2-plan.md §6 has the table.

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// cgroupRoot is where the runner mounts cgroup2 in the guest.
const cgroupRoot = landlockbpf.CgroupRoot

// Attach, link and query flags (include/uapi/linux/bpf.h).
const (
	flagAllowOverride = 1 << 0
	flagAllowMulti    = 1 << 1
	flagReplace       = 1 << 2
	flagBefore        = 1 << 3
	flagAfter         = 1 << 4
	flagID            = 1 << 5
	flagPreorder      = 1 << 6
	flagLink          = 1 << 13

	// cgroupAttachMask is what BPF_PROG_ATTACH takes for a cgroup
	// program type: BPF_F_ATTACH_MASK_BASE | BPF_F_ATTACH_MASK_MPROG.
	cgroupAttachMask = 0x7f | flagLink
	// linkAttachMask is BPF_F_LINK_ATTACH_MASK, what a cgroup link takes.
	linkAttachMask = flagID | flagBefore | flagAfter | flagPreorder | flagLink

	queryEffective = 1 << 0 // BPF_F_QUERY_EFFECTIVE
)

// Attach types with a meaning of their own here.
const (
	attachCgroupLandlock = landlockbpf.AttachCgroupLandlockFS
	// attachPastLast is the first attach type past
	// BPF_CGROUP_LANDLOCK_FS: __MAX_BPF_ATTACH_TYPE from version 2 on.
	attachPastLast = landlockbpf.AttachCgroupLandlockFS + 1
	// attachStructOps is BPF_STRUCT_OPS, whose BPF_LINK_CREATE takes a
	// map, not a program.
	attachStructOps = 44
)

// cgroupBPFTypes612 are the attach types that 6.12 hands to cgroup-bpf
// (to_cgroup_bpf_attach_type, bpf_prog_query's cgroup cases). A random
// attach type outside them and outside 57..59 goes to another subsystem
// (sockmap, lirc, netns, struct_ops), whose errnos are allowed too
// (cgroupOtherAllowed).
var cgroupBPFTypes612 = []uint32{0, 1, 2, 3, 6, 8, 9, 10, 11, 12, 13, 14, 15, 18, 19, 20, 21, 22, 29, 30, 31, 32, 34, 43, 49, 50, 51, 52, 53}

// ifindexTypes are the attach types whose target is a network device's
// ifindex, not an fd: BPF_TCX_INGRESS/EGRESS, BPF_NETKIT_PRIMARY/PEER. The
// fuzzer never draws them: BPF_PROG_DETACH without a program would detach
// from whatever device has the fd's number as its ifindex.
var ifindexTypes = []uint32{46, 47, 54, 55}

// attachFlagBits are the flags the cgroup part draws from: bits 0-6 and
// BPF_F_LINK.
var attachFlagBits = []uint32{flagAllowOverride, flagAllowMulti, flagReplace, flagBefore, flagAfter, flagID, flagPreorder, flagLink}

// cgroupAllowed are the errnos the cgroup commands may return, with why.
var cgroupAllowed = map[unix.Errno]string{
	unix.EINVAL:  "invalid attribute or flag combination, or an fd of the wrong kind",
	unix.EBADF:   "an fd that is not open, or a target that is not a cgroup v2 directory",
	unix.EPERM:   "the cgroup's or an ancestor's flags forbid it, or BPF_F_REPLACE names another program",
	unix.ENOENT:  "a removed cgroup, nothing to detach, or no such anchor",
	unix.E2BIG:   "64 programs on the cgroup, or an attr longer than a page",
	unix.ENOSPC:  "prog_cnt smaller than the programs",
	unix.ESTALE:  "expected_revision is not the cgroup's",
	unix.ENOLINK: "the link was detached",
	unix.EFAULT:  "a bad pointer",
	unix.ENOMEM:  "out of memory",
}

// cgroupOtherAllowed are the errnos allowed besides, for random attach
// types that another subsystem answers for (and counted as "other:").
var cgroupOtherAllowed = map[unix.Errno]string{
	unix.ENODEV:     "no such device (lirc)",
	unix.EOPNOTSUPP: "not a sockmap (sockmap)",
	enotsupp:        "not supported",
}

// maxLinks bounds the links the fuzzer holds; past it, it closes one.
const maxLinks = 48

// queryBufLen is the length of the query part's output buffers; prog_cnt
// never exceeds it when the pointers are valid.
const queryBufLen = 256

// queryCuts are the sizes a truncated BPF_PROG_QUERY attr may have: the
// ends of its fields, so that the kernel never reads part of a pointer.
var queryCuts = []uintptr{0, 4, 8, 12, 16, 24, 28, 32, 40, 48, 56}

// Bad pointers for the query part: page zero, and an address that is not
// a user address on amd64 or arm64. The kernel cannot write to either,
// which it could to a random address of the fuzzer's own.
var badPointers = []uint64{16, 1 << 63}

// fdKind is what an fd is, to the fuzzer.
type fdKind int

const (
	fdClosed        fdKind = iota
	fdOther                // open, not the fuzzer's, vetted: no BPF object, no cgroup
	fdMap                  // an array map
	fdSocketFilter         // a program of another type
	fdPipe                 // a pipe
	fdLandlockAllow        // a Landlock program that allows everything
	fdLandlockDeny         // a Landlock program that denies everything
	fdCgroup               // a scratch cgroup directory
	fdCgroupGone           // the directory of a removed scratch cgroup
	fdProcs                // a scratch cgroup's cgroup.procs
	fdFile                 // a regular file
	fdLink                 // a cgroup link of the fuzzer's
)

var fdKindNames = map[fdKind]string{
	fdClosed: "closed", fdOther: "other open fd", fdMap: "array map", fdSocketFilter: "socket filter",
	fdPipe: "pipe", fdLandlockAllow: "landlock allow", fdLandlockDeny: "landlock deny",
	fdCgroup: "scratch cgroup", fdCgroupGone: "removed cgroup", fdProcs: "cgroup.procs",
	fdFile: "regular file", fdLink: "cgroup link",
}

func (k fdKind) String() string { return fdKindNames[k] }

// landlock says k is a Landlock program.
func (k fdKind) landlock() bool { return k == fdLandlockAllow || k == fdLandlockDeny }

// prog says k is a BPF program.
func (k fdKind) prog() bool { return k.landlock() || k == fdSocketFilter }

// cgLink is a link the fuzzer created.
type cgLink struct {
	fd uint32
	// prog is the kind of program the link runs now; exact is false for
	// a link that should not exist (made by a call that had to fail),
	// whose state the fuzzer does not follow.
	prog     fdKind
	exact    bool
	detached bool
}

// cgroupSkip returns why the cgroup part cannot run here, or "".
func cgroupSkip() string {
	v, err := landlockbpf.KernelABIVersion()
	if err != nil {
		return fmt.Sprintf("Landlock eBPF ABI version query: %v", err)
	}
	if v < 2 {
		return fmt.Sprintf("the kernel reports Landlock eBPF ABI version %d; cgroup programs (BPF_CGROUP_LANDLOCK_FS) come with version 2", v)
	}
	return landlockbpf.SkipUnlessCgroup2()
}

// cgFuzz is the cgroup part's state: its objects, the fds it knows, its
// links.
type cgFuzz struct {
	g  *gen
	fx *fixtures

	root    string   // the private subtree, itself a scratch cgroup
	dirs    []string // the scratch cgroups, parents before children
	dirFDs  []uint32
	goneFD  uint32
	procsFD uint32
	fileFD  uint32
	denyFD  uint32
	closed  uint32 // an fd number that is not open
	ownFDs  []int  // closed at teardown
	allowID uint32
	denyID  uint32

	kinds    map[uint32]fdKind
	dirNames map[uint32]string
	links    []*cgLink
	huge     uintptr // an attr size past a page

	ids, idFlags []uint32 // the query's output buffers
	// started is set, by the test's goroutine, once fuzzCgroup runs.
	started bool
}

// newCgFuzz creates the scratch cgroups (the subtree, a, a/b, c) and the
// other targets, and registers a best-effort teardown for a test that
// ends before the part's own (teardown).
func newCgFuzz(t *testing.T, g *gen, fx *fixtures) *cgFuzz {
	t.Helper()
	f := &cgFuzz{
		g: g, fx: fx,
		kinds:    map[uint32]fdKind{},
		dirNames: map[uint32]string{},
		huge:     uintptr(os.Getpagesize()) + 1,
		ids:      make([]uint32, queryBufLen),
		idFlags:  make([]uint32, queryBufLen),
	}
	root, err := os.MkdirTemp(cgroupRoot, "bpffuzz-")
	require.NoError(t, err, "creating the fuzzer's cgroup subtree")
	f.root = root
	f.dirs = []string{root}
	t.Cleanup(func() {
		// Only a setup that failed: once started, the part's goroutine
		// tears down, and one that hangs (which fails the test) may
		// hold the cgroup lock that rmdir would wait for.
		if !f.started {
			f.teardown(newReport())
		}
	})
	for _, d := range []string{"a", "a/b", "c"} {
		p := filepath.Join(root, d)
		require.NoError(t, os.Mkdir(p, 0o755), "creating a scratch cgroup")
		f.dirs = append(f.dirs, p)
	}
	open := func(path string, flags int, kind fdKind) uint32 {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
		require.NoError(t, err, "opening %s", path)
		f.ownFDs = append(f.ownFDs, fd)
		f.kinds[uint32(fd)] = kind
		return uint32(fd)
	}
	for _, d := range f.dirs {
		fd := open(d, unix.O_RDONLY|unix.O_DIRECTORY, fdCgroup)
		f.dirFDs = append(f.dirFDs, fd)
		rel, _ := filepath.Rel(cgroupRoot, d)
		f.dirNames[fd] = rel
	}
	f.procsFD = open(filepath.Join(root, "a", "cgroup.procs"), unix.O_RDONLY, fdProcs)
	f.fileFD = open(filepath.Join(t.TempDir(), "file"), unix.O_RDWR|unix.O_CREAT, fdFile)
	// A cgroup removed while its directory is open: cgroup_get_from_fd
	// gives ENOENT (css_tryget_online_from_dir, kernel/cgroup/cgroup.c).
	gone := filepath.Join(root, "gone")
	require.NoError(t, os.Mkdir(gone, 0o755), "creating a scratch cgroup")
	f.goneFD = open(gone, unix.O_RDONLY|unix.O_DIRECTORY, fdCgroupGone)
	require.NoError(t, unix.Rmdir(gone), "removing a scratch cgroup")

	fd, errno := loadRetry(&loadInput{Insns: []insn{movImm(0, 1), exit()}, License: []byte("GPL\x00"), Attach: landlockbpf.AttachLandlockFS})
	require.Zero(t, errno, "loading the deny rule: %v", errno)
	f.ownFDs = append(f.ownFDs, fd)
	f.denyFD = uint32(fd)
	f.kinds[f.denyFD] = fdLandlockDeny
	f.kinds[uint32(fx.ruleFD)] = fdLandlockAllow
	f.kinds[uint32(fx.otherFD)] = fdSocketFilter
	f.kinds[uint32(fx.mapFD)] = fdMap
	f.kinds[uint32(fx.pipe[0])] = fdPipe
	f.kinds[uint32(fx.pipe[1])] = fdPipe
	var e unix.Errno
	f.allowID, e = progID(fx.ruleFD)
	require.Zero(t, e, "the allow rule's id: %v", e)
	f.denyID, e = progID(fd)
	require.Zero(t, e, "the deny rule's id: %v", e)

	// A closed fd that nothing reuses soon: a number well above the
	// fuzzer's.
	for f.closed = 777; fdOpen(f.closed); f.closed++ {
	}
	return f
}

// kind says what fd is now.
func (f *cgFuzz) kind(fd uint32) fdKind {
	if k, ok := f.kinds[fd]; ok {
		return k
	}
	if fdOpen(fd) {
		return fdOther
	}
	return fdClosed
}

// describe names fd and what it is, for a report.
func (f *cgFuzz) describe(fd uint32) string {
	k := f.kind(fd)
	if n, ok := f.dirNames[fd]; ok {
		return fmt.Sprintf("%d (%s %s)", fd, k, n)
	}
	return fmt.Sprintf("%d (%s)", fd, k)
}

// vet returns fd if the fuzzer may pass it: one of its own, a closed one,
// or an open one that is neither a BPF object (a program, map or link of
// someone else's) nor a cgroup file (the root cgroup's, the fuzzer's own).
// Otherwise it returns a closed fd.
func (f *cgFuzz) vet(fd uint32) uint32 {
	if _, ok := f.kinds[fd]; ok || !fdOpen(fd) {
		return fd
	}
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || strings.HasPrefix(target, "anon_inode:bpf") {
		return f.closed
	}
	var st unix.Statfs_t
	if unix.Fstatfs(int(fd), &st) != nil || uint32(st.Type) == unix.CGROUP2_SUPER_MAGIC || uint32(st.Type) == unix.CGROUP_SUPER_MAGIC {
		return f.closed
	}
	return fd
}

// link returns the fuzzer's link of fd, or nil.
func (f *cgFuzz) link(fd uint32) *cgLink {
	if f.kinds[fd] != fdLink {
		return nil
	}
	for _, l := range f.links {
		if l.fd == fd {
			return l
		}
	}
	return nil
}

// randomFD draws any fd, mostly a small one (the fuzzer's are small).
func (f *cgFuzz) randomFD() uint32 {
	if f.g.chance(0.7) {
		return f.vet(uint32(f.g.r.IntN(64)))
	}
	return f.vet(f.g.r.Uint32())
}

// progFD draws a program fd.
func (f *cgFuzz) progFD() uint32 {
	switch f.g.r.IntN(10) {
	case 0, 1, 2:
		return uint32(f.fx.ruleFD)
	case 3, 4:
		return f.denyFD
	case 5:
		return uint32(f.fx.otherFD)
	case 6:
		return uint32(f.fx.mapFD)
	case 7:
		return f.closed
	default:
		return f.randomFD()
	}
}

// targetFD draws a target: mostly a scratch cgroup.
func (f *cgFuzz) targetFD() uint32 {
	switch r := f.g.r.IntN(12); {
	case r < 6:
		return pick(f.g, f.dirFDs)
	case r == 6:
		return f.procsFD
	case r == 7:
		return f.fileFD
	case r == 8:
		return f.closed
	case r == 9:
		return f.goneFD
	default:
		return f.randomFD()
	}
}

// linkFD draws a link fd: mostly one of the fuzzer's links.
func (f *cgFuzz) linkFD() uint32 {
	if len(f.links) > 0 && f.g.chance(0.8) {
		return pick(f.g, f.links).fd
	}
	switch f.g.r.IntN(4) {
	case 0:
		return f.closed
	case 1:
		return uint32(f.fx.ruleFD) // a program, not a link
	case 2:
		return pick(f.g, f.dirFDs)
	default:
		return f.randomFD()
	}
}

// relativeFD draws relative_fd (or relative_id): mostly 0.
func (f *cgFuzz) relativeFD() uint32 {
	switch f.g.r.IntN(10) {
	case 0:
		return f.progFD()
	case 1:
		if len(f.links) > 0 {
			return pick(f.g, f.links).fd
		}
		return f.randomFD()
	case 2:
		return uint32(f.g.r.IntN(64)) // as an id, with BPF_F_ID
	default:
		return 0
	}
}

// revision draws expected_revision: mostly 0 (none expected).
func (f *cgFuzz) revision() uint64 {
	switch f.g.r.IntN(10) {
	case 0, 1:
		return uint64(1 + f.g.r.IntN(8))
	case 2:
		return f.g.r.Uint64()
	default:
		return 0
	}
}

// attachType draws an attach type: BPF_CGROUP_LANDLOCK_FS, BPF_LANDLOCK_FS,
// the first past the last, or any other but the ifindex ones.
func (f *cgFuzz) attachType() uint32 {
	for {
		var t uint32
		switch f.g.r.IntN(10) {
		case 0, 1, 2, 3, 4:
			t = attachCgroupLandlock
		case 5:
			t = landlockbpf.AttachLandlockFS
		case 6:
			t = attachPastLast
		case 7, 8:
			t = uint32(f.g.r.IntN(64))
		default:
			t = f.g.r.Uint32()
		}
		if !slices.Contains(ifindexTypes, t) {
			return t
		}
	}
}

// attachFlags draws attach (or link) flags: none, one or a few of bits
// 0-6 and 13, another bit, or anything.
func (f *cgFuzz) attachFlags() uint32 {
	switch f.g.r.IntN(10) {
	case 0, 1, 2:
		return 0
	case 3, 4, 5:
		return pick(f.g, attachFlagBits)
	case 6, 7:
		var fl uint32
		for range 2 + f.g.r.IntN(2) {
			fl |= pick(f.g, attachFlagBits)
		}
		return fl
	case 8:
		return 1 << f.g.r.IntN(32)
	default:
		return f.g.r.Uint32()
	}
}

// fewFlags draws flags of a command that knows one: none, it, another
// bit, or anything.
func (f *cgFuzz) fewFlags(known uint32) uint32 {
	switch f.g.r.IntN(10) {
	case 0, 1, 2, 3, 4:
		return 0
	case 5, 6, 7:
		return known
	case 8:
		return 1 << f.g.r.IntN(32)
	default:
		return f.g.r.Uint32()
	}
}

// cgCall is one bpf(2) call of the cgroup part.
type cgCall struct {
	cmd  int
	buf  attrBuf
	size uintptr
	// natural is the size up to the end of the command's last field.
	natural uintptr
	// tail says the word after the last field is not zero (and passed).
	tail bool
	// ptrs says how the query's pointers were drawn.
	ptrs string
}

// effective returns the attr as the kernel reads it: the first size
// bytes, the rest zero.
func (c *cgCall) effective() *attrBuf {
	var e attrBuf
	if c.size <= uintptr(len(e.bytes())) {
		copy(e.bytes(), c.buf.bytes()[:c.size])
	}
	return &e
}

// draw draws a call; the command's fields go into c.buf, then its size.
func (f *cgFuzz) draw() *cgCall {
	c := &cgCall{}
	switch r := f.g.r.IntN(20); {
	case r < 5:
		c.cmd, c.natural = bpfProgAttach, 32
		*c.buf.attach() = progAttachAttr{
			TargetFD: f.targetFD(), AttachBPFFD: f.progFD(), AttachType: f.attachType(),
			AttachFlags: f.attachFlags(), RelativeFDOrID: f.relativeFD(), ExpectedRevision: f.revision(),
		}
		if f.g.chance(0.5) {
			c.buf.attach().ReplaceBPFFD = f.progFD()
		}
	case r < 8:
		c.cmd, c.natural = bpfProgDetach, 32
		a := progAttachAttr{TargetFD: f.targetFD(), AttachType: f.attachType(), ExpectedRevision: f.revision()}
		if f.g.chance(0.8) {
			a.AttachBPFFD = f.progFD()
		}
		if f.g.chance(0.1) {
			a.AttachFlags = f.attachFlags()
		}
		if f.g.chance(0.1) {
			a.RelativeFDOrID = f.relativeFD()
		}
		*c.buf.attach() = a
	case r < 12:
		c.cmd, c.natural = bpfProgQuery, 64
		q := progQueryAttr{TargetFD: f.targetFD(), AttachType: f.attachType(), QueryFlags: f.fewFlags(queryEffective)}
		switch f.g.r.IntN(4) {
		case 0:
			q.ProgCnt, c.ptrs = uint32(f.g.r.IntN(4)), "prog_ids=NULL"
		case 1:
			q.ProgIDs, q.ProgCnt = uint64(pick(f.g, badPointers)), f.g.r.Uint32()
			c.ptrs = fmt.Sprintf("prog_ids=%#x (bad)", q.ProgIDs)
		default:
			q.ProgIDs, q.ProgCnt = addr(f.ids), uint32(f.g.r.IntN(queryBufLen+1))
			c.ptrs = fmt.Sprintf("prog_ids=buf[%d]", queryBufLen)
		}
		switch r := f.g.r.IntN(10); {
		case r < 2 && q.ProgIDs == addr(f.ids):
			q.ProgAttachFlags = addr(f.idFlags)
			c.ptrs += fmt.Sprintf(" prog_attach_flags=buf[%d]", queryBufLen)
		case r < 3:
			q.ProgAttachFlags = pick(f.g, badPointers)
			c.ptrs += fmt.Sprintf(" prog_attach_flags=%#x (bad)", q.ProgAttachFlags)
		}
		if f.g.chance(0.1) {
			// Not read by cgroup-bpf (nor by the other subsystems the
			// fuzzer reaches, the ifindex ones being left out).
			q.LinkIDs, q.LinkAttachFlags = pick(f.g, badPointers), pick(f.g, badPointers)
			c.ptrs += fmt.Sprintf(" link_ids=%#x link_attach_flags=%#x (bad)", q.LinkIDs, q.LinkAttachFlags)
		}
		if f.g.chance(0.1) {
			q.AttachFlags, q.Revision = f.g.r.Uint32(), f.g.r.Uint64() // outputs
		}
		*c.buf.query() = q
	case r < 16:
		c.cmd, c.natural = bpfLinkCreate, 60
		l := linkCreateAttr{
			ProgFD: f.progFD(), TargetFD: f.targetFD(), AttachType: f.attachType(),
			Flags: f.attachFlags(), RelativeFD: f.relativeFD(), ExpectedRevision: f.revision(),
		}
		if f.g.chance(0.1) {
			for i := range l.Other {
				l.Other[i] = f.g.r.Uint32()
			}
		}
		*c.buf.create() = l
	case r < 19:
		c.cmd, c.natural = bpfLinkUpdate, 16
		u := linkUpdateAttr{LinkFD: f.linkFD(), NewProgFD: f.progFD(), Flags: f.fewFlags(flagReplace)}
		if u.Flags&flagReplace != 0 || f.g.chance(0.1) {
			u.OldProgFD = f.progFD()
		}
		*c.buf.update() = u
	default:
		c.cmd, c.natural = bpfLinkDetach, 4
		*c.buf.detach() = linkDetachAttr{LinkFD: f.linkFD()}
	}
	switch r := f.g.r.IntN(20); {
	case r < 16:
		c.size = c.natural
	case r == 16:
		// The word after the last field, not zero: CHECK_ATTR.
		c.size, c.tail = c.natural+8, true
		binary.NativeEndian.PutUint64(c.buf.bytes()[c.natural:], f.g.r.Uint64()|1)
	case r == 17:
		c.size = f.huge
	default:
		// Truncated: the kernel reads zeros for the rest; the buffer
		// keeps the drawn fields, which it must not read. Not when that
		// makes an ifindex attach type of the first bytes of another.
		c.size = uintptr(f.g.r.IntN(int(c.natural)))
		if c.cmd == bpfProgQuery {
			// Never inside a pointer: the low bytes of a buffer's
			// address can be another address of the fuzzer's.
			c.size = pick(f.g, queryCuts)
		}
		if slices.Contains(ifindexTypes, c.attachType()) {
			c.size = c.natural
		}
	}
	return c
}

// attachType returns the attach type the kernel reads, for the commands
// that have one (0 for the others).
func (c *cgCall) attachType() uint32 {
	e := c.effective()
	switch c.cmd {
	case bpfProgAttach, bpfProgDetach:
		return e.attach().AttachType
	case bpfProgQuery:
		return e.query().AttachType
	case bpfLinkCreate:
		return e.create().AttachType
	}
	return 0
}

// addr is the address of s's first element, as a bpf_attr pointer.
func addr(s []uint32) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(s)))) }

// String prints c as the kernel reads it, fds with what they are.
func (f *cgFuzz) callString(c *cgCall) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s size=%d", bpfCmdNames[c.cmd], c.size)
	switch {
	case c.size == f.huge:
		b.WriteString(" (past a page)")
		return b.String()
	case c.tail:
		b.WriteString(" (a non-zero word after the last field)")
	case c.size < c.natural:
		fmt.Fprintf(&b, " (truncated: fields beyond byte %d are zero)", c.size)
	}
	e := c.effective()
	switch c.cmd {
	case bpfProgAttach, bpfProgDetach:
		a := e.attach()
		fmt.Fprintf(&b, " target_fd=%s attach_bpf_fd=%s attach_type=%d attach_flags=%#x replace_bpf_fd=%s relative_fd=%d expected_revision=%d",
			f.describe(a.TargetFD), f.describe(a.AttachBPFFD), a.AttachType, a.AttachFlags, f.describe(a.ReplaceBPFFD), a.RelativeFDOrID, a.ExpectedRevision)
	case bpfProgQuery:
		q := e.query()
		fmt.Fprintf(&b, " target_fd=%s attach_type=%d query_flags=%#x prog_cnt=%d %s", f.describe(q.TargetFD), q.AttachType, q.QueryFlags, q.ProgCnt, c.ptrs)
	case bpfLinkCreate:
		l := e.create()
		fmt.Fprintf(&b, " prog_fd=%s target_fd=%s attach_type=%d flags=%#x relative_fd=%d expected_revision=%d other=%#x",
			f.describe(l.ProgFD), f.describe(l.TargetFD), l.AttachType, l.Flags, l.RelativeFD, l.ExpectedRevision, l.Other)
	case bpfLinkUpdate:
		u := e.update()
		fmt.Fprintf(&b, " link_fd=%s new_prog_fd=%s flags=%#x old_prog_fd=%s", f.describe(u.LinkFD), f.describe(u.NewProgFD), u.Flags, f.describe(u.OldProgFD))
	case bpfLinkDetach:
		fmt.Fprintf(&b, " link_fd=%s", f.describe(e.detach().LinkFD))
	}
	return b.String()
}

// outcome is what a call must end with.
type outcome struct {
	// want: one of these (0 is success); nil: success or any errno of
	// cgroupAllowed.
	want []unix.Errno
	why  string
	// other: the call goes to another subsystem, whose errnos
	// (cgroupOtherAllowed) are allowed too.
	other bool
}

func exactly(why string, want ...unix.Errno) outcome { return outcome{want: want, why: why} }

// progGet is bpf_prog_get's (and bpf_prog_get_type's) answer for an fd
// of kind k: EBADF if not open, EINVAL if not a program (syscall.c
// __bpf_prog_get).
func progGet(k fdKind) unix.Errno {
	switch {
	case k == fdClosed:
		return unix.EBADF
	case !k.prog():
		return unix.EINVAL
	}
	return 0
}

// landlockProgGet is bpf_prog_get_type(fd, BPF_PROG_TYPE_LANDLOCK): also
// EINVAL for a program of another type.
func landlockProgGet(k fdKind) unix.Errno {
	if k == fdClosed {
		return unix.EBADF
	}
	if !k.landlock() {
		return unix.EINVAL
	}
	return 0
}

// cgroupGet is cgroup_get_from_fd's answer: EBADF for anything but a
// cgroup v2 directory (closed, a file, cgroup.procs, a pipe, a BPF
// object: kernel/cgroup/cgroup.c css_tryget_online_from_dir,
// cgroup_v1v2_get_from_fd), ENOENT for a removed cgroup.
func cgroupGet(k fdKind) unix.Errno {
	switch k {
	case fdCgroup:
		return 0
	case fdCgroupGone:
		return unix.ENOENT
	}
	return unix.EBADF
}

// linkGet is bpf_link_get_from_fd's answer.
func linkGet(k fdKind) unix.Errno {
	switch k {
	case fdClosed:
		return unix.EBADF
	case fdLink:
		return 0
	}
	return unix.EINVAL
}

// otherSubsystem says a call with attach type t is answered neither by
// cgroup-bpf nor by the series (57..59).
func otherSubsystem(t uint32) bool {
	return (t < landlockbpf.AttachLandlockFS || t > attachPastLast) && !slices.Contains(cgroupBPFTypes612, t)
}

// expect returns what c must end with, from the attr the kernel reads
// and the fds' kinds now. The checks are in the kernel's order.
func (f *cgFuzz) expect(c *cgCall) outcome {
	// __sys_bpf: bpf_check_uarg_tail_zero.
	if c.size == f.huge {
		return exactly("attr size past a page", unix.E2BIG)
	}
	// CHECK_ATTR, first in every command (after bpf_prog_query's
	// bpf_net_capable, which root passes).
	if c.tail {
		return exactly("a non-zero byte after the command's last field (CHECK_ATTR)", unix.EINVAL)
	}
	e := c.effective()
	switch c.cmd {
	case bpfProgAttach:
		return f.expectAttach(e.attach())
	case bpfProgDetach:
		return f.expectDetach(e.attach())
	case bpfProgQuery:
		return f.expectQuery(e.query())
	case bpfLinkCreate:
		return f.expectCreate(e.create())
	case bpfLinkUpdate:
		return f.expectUpdate(e.update())
	default:
		return f.expectLinkDetach(e.detach())
	}
}

// expectAttach follows bpf_prog_attach and cgroup_bpf_prog_attach.
func (f *cgFuzz) expectAttach(a *progAttachAttr) outcome {
	prog := f.kind(a.AttachBPFFD)
	switch {
	case a.AttachType == landlockbpf.AttachLandlockFS || a.AttachType == attachPastLast:
		// attach_type_to_prog_type gives BPF_PROG_TYPE_UNSPEC.
		return exactly("attach type with no program type for PROG_ATTACH", unix.EINVAL)
	case a.AttachType != attachCgroupLandlock:
		// Another attach type: its flag check, then
		// bpf_prog_get_type for its program type, which none of the
		// fuzzer's programs has (a Landlock one only has 58's).
		if prog == fdClosed {
			return exactly("another attach type; the program fd is not open", unix.EINVAL, unix.EBADF)
		}
		return exactly("another attach type, which none of the fuzzer's programs fits", unix.EINVAL)
	case a.AttachFlags&^cgroupAttachMask != 0:
		return exactly("attach_flags outside BPF_F_ATTACH_MASK_BASE|MPROG", unix.EINVAL)
	}
	if e := landlockProgGet(prog); e != 0 {
		return exactly("attach_bpf_fd is not a Landlock program", e)
	}
	if e := cgroupGet(f.kind(a.TargetFD)); e != 0 {
		return exactly("the target is not a live cgroup v2 directory", e)
	}
	multi, replace := a.AttachFlags&flagAllowMulti != 0, a.AttachFlags&flagReplace != 0
	if multi && replace {
		if e := landlockProgGet(f.kind(a.ReplaceBPFFD)); e != 0 {
			return exactly("BPF_F_REPLACE: replace_bpf_fd is not a Landlock program", e)
		}
	}
	// __cgroup_bpf_attach's combinations, before any state.
	switch {
	case multi && a.AttachFlags&flagAllowOverride != 0:
		return exactly("BPF_F_ALLOW_OVERRIDE with BPF_F_ALLOW_MULTI", unix.EINVAL)
	case replace && !multi:
		return exactly("BPF_F_REPLACE without BPF_F_ALLOW_MULTI", unix.EINVAL)
	case replace && a.AttachFlags&(flagBefore|flagAfter) != 0:
		return exactly("BPF_F_REPLACE with BPF_F_BEFORE or BPF_F_AFTER", unix.EINVAL)
	}
	return outcome{why: "depends on what the cgroup and its ancestors hold"}
}

// expectDetach follows bpf_prog_detach and cgroup_bpf_prog_detach: the
// program fd is looked up but its errors are ignored (legacy detach).
func (f *cgFuzz) expectDetach(a *progAttachAttr) outcome {
	switch {
	case a.AttachType == landlockbpf.AttachLandlockFS || a.AttachType == attachPastLast:
		return exactly("attach type with no program type for PROG_DETACH", unix.EINVAL)
	case a.AttachType != attachCgroupLandlock:
		return outcome{why: "another attach type", other: otherSubsystem(a.AttachType)}
	case a.AttachFlags != 0 || a.RelativeFDOrID != 0:
		return exactly("attach_flags or relative_fd in a cgroup PROG_DETACH", unix.EINVAL)
	}
	if e := cgroupGet(f.kind(a.TargetFD)); e != 0 {
		return exactly("the target is not a live cgroup v2 directory", e)
	}
	return outcome{why: "depends on what the cgroup holds"}
}

// expectQuery follows bpf_prog_query and __cgroup_bpf_query.
func (f *cgFuzz) expectQuery(q *progQueryAttr) outcome {
	switch {
	case q.QueryFlags&^queryEffective != 0:
		return exactly("query_flags outside BPF_F_QUERY_EFFECTIVE", unix.EINVAL)
	case q.AttachType == landlockbpf.AttachLandlockFS || q.AttachType == attachPastLast:
		return exactly("attach type that PROG_QUERY does not know", unix.EINVAL)
	case q.AttachType != attachCgroupLandlock:
		return outcome{why: "another attach type", other: otherSubsystem(q.AttachType)}
	}
	if e := cgroupGet(f.kind(q.TargetFD)); e != 0 {
		return exactly("the target is not a live cgroup v2 directory", e)
	}
	switch {
	case q.QueryFlags&queryEffective != 0 && q.ProgAttachFlags != 0:
		return exactly("prog_attach_flags in an effective query", unix.EINVAL)
	case q.ProgCnt == 0 || q.ProgIDs == 0:
		// Only attach_flags, prog_cnt, revision are written, into the
		// attr itself.
		return exactly("a count-only query", 0)
	}
	return outcome{why: "depends on how many programs there are"}
}

// expectCreate follows link_create and cgroup_bpf_link_attach.
func (f *cgFuzz) expectCreate(l *linkCreateAttr) outcome {
	if l.AttachType == attachStructOps {
		return outcome{why: "BPF_STRUCT_OPS takes a map", other: true}
	}
	prog := f.kind(l.ProgFD)
	if e := progGet(prog); e != 0 {
		return exactly("prog_fd is not a program", e)
	}
	switch {
	case l.AttachType != attachCgroupLandlock:
		// bpf_prog_attach_check_attach_type: a Landlock program fits
		// 58 only, a socket filter none.
		return exactly("the program does not fit the attach type", unix.EINVAL)
	case !prog.landlock():
		return exactly("a socket filter for BPF_CGROUP_LANDLOCK_FS", unix.EINVAL)
	case l.Flags&^linkAttachMask != 0:
		return exactly("flags outside BPF_F_LINK_ATTACH_MASK", unix.EINVAL)
	}
	if e := cgroupGet(f.kind(l.TargetFD)); e != 0 {
		return exactly("the target is not a live cgroup v2 directory", e)
	}
	return outcome{why: "depends on what the cgroup and its ancestors hold"}
}

// expectUpdate follows link_update and cgroup_bpf_replace: the fuzzer
// knows its links, so the outcome is exact.
func (f *cgFuzz) expectUpdate(u *linkUpdateAttr) outcome {
	if u.Flags&^flagReplace != 0 {
		return exactly("flags outside BPF_F_REPLACE", unix.EINVAL)
	}
	if e := linkGet(f.kind(u.LinkFD)); e != 0 {
		return exactly("link_fd is not a link", e)
	}
	newProg := f.kind(u.NewProgFD)
	if e := progGet(newProg); e != 0 {
		return exactly("new_prog_fd is not a program", e)
	}
	replace, old := u.Flags&flagReplace != 0, f.kind(u.OldProgFD)
	if replace {
		if e := progGet(old); e != 0 {
			return exactly("BPF_F_REPLACE: old_prog_fd is not a program", e)
		}
	} else if u.OldProgFD != 0 {
		return exactly("old_prog_fd without BPF_F_REPLACE", unix.EINVAL)
	}
	l := f.link(u.LinkFD)
	switch {
	case !l.exact:
		return outcome{why: "a link that should not exist"}
	case l.detached:
		return exactly("the link was detached", unix.ENOLINK)
	case replace && old != l.prog:
		return exactly(fmt.Sprintf("BPF_F_REPLACE names a %s, the link runs a %s", old, l.prog), unix.EPERM)
	case !newProg.landlock():
		return exactly("a socket filter for a Landlock link", unix.EINVAL)
	}
	return exactly("replaces the link's program", 0)
}

// expectLinkDetach follows link_detach and bpf_cgroup_link_detach, which
// succeeds also on a detached link.
func (f *cgFuzz) expectLinkDetach(d *linkDetachAttr) outcome {
	if e := linkGet(f.kind(d.LinkFD)); e != 0 {
		return exactly("link_fd is not a link", e)
	}
	if !f.link(d.LinkFD).exact {
		return outcome{why: "a link that should not exist"}
	}
	return exactly("detaches the link (again)", 0)
}

// call makes c, described by desc, checks its outcome and follows what
// it changed.
func (f *cgFuzz) call(c *cgCall, desc string, rep *report) {
	o := f.expect(c)
	// The kernel writes the query's prog_cnt back: keep what was asked.
	asked := c.effective().query().ProgCnt
	r, errno := bpfAttr(c.cmd, &c.buf, c.size)
	cmd := bpfCmdNames[c.cmd]
	name := errnoName(errno)
	rep.CgroupCalls++
	if o.want != nil {
		rep.CgroupExact++
	}
	_, allowed := cgroupAllowed[errno]
	if _, ok := cgroupOtherAllowed[errno]; ok && o.other {
		allowed, name = true, "other:"+name
	}
	if rep.Cgroup[cmd] == nil {
		rep.Cgroup[cmd] = counts{}
	}
	rep.Cgroup[cmd][name]++

	switch {
	case o.want != nil && !slices.Contains(o.want, errno):
		wants := make([]string, len(o.want))
		for i, w := range o.want {
			wants[i] = errnoName(w)
		}
		rep.violate("bpf(%s) = %s: want %s (%s)", desc, name, strings.Join(wants, " or "), o.why)
	case errno != 0 && !allowed:
		rep.violate("bpf(%s) = %s (%d), not an allowed errno (%s)", desc, name, int(errno), o.why)
	}
	if errno != 0 {
		return
	}
	e := c.effective()
	switch c.cmd {
	case bpfLinkCreate:
		// A new link: follow it, even one that should not exist, so
		// that teardown closes it.
		l := e.create()
		k := f.kind(l.ProgFD)
		nl := &cgLink{fd: uint32(r), prog: k, exact: l.AttachType == attachCgroupLandlock && k.landlock()}
		f.links = append(f.links, nl)
		f.kinds[nl.fd] = fdLink
	case bpfLinkUpdate:
		u := e.update()
		if l := f.link(u.LinkFD); l != nil {
			l.prog = f.kind(u.NewProgFD)
		}
	case bpfLinkDetach:
		if l := f.link(e.detach().LinkFD); l != nil {
			l.detached = true
		}
	case bpfProgQuery:
		f.checkQueryIDs(c, asked, desc, rep)
	}
}

// checkQueryIDs checks what a successful query of a scratch cgroup's own
// programs listed: only the fuzzer's two Landlock programs can be
// attached there. asked is the prog_cnt the call passed: the kernel
// writes at most that many IDs (none for 0, when it only counts) and then
// replaces prog_cnt with the number of programs attached.
func (f *cgFuzz) checkQueryIDs(c *cgCall, asked uint32, desc string, rep *report) {
	q := c.effective().query()
	if q.AttachType != attachCgroupLandlock || q.QueryFlags&queryEffective != 0 || q.ProgIDs != addr(f.ids) || f.kind(q.TargetFD) != fdCgroup {
		return
	}
	n := min(c.buf.query().ProgCnt, asked, queryBufLen)
	for _, id := range f.ids[:n] {
		if id != f.allowID && id != f.denyID {
			rep.violate("bpf(%s) lists program id %d, not one of the fuzzer's (%d, %d)", desc, id, f.allowID, f.denyID)
		}
	}
}

// closeLink closes one of the fuzzer's links (which detaches it, before
// close(2) returns).
func (f *cgFuzz) closeLink(rep *report) {
	i := f.g.r.IntN(len(f.links))
	l := f.links[i]
	unix.Close(int(l.fd))
	delete(f.kinds, l.fd)
	f.links = slices.Delete(f.links, i, i+1)
	rep.CgroupCloses++
}

// fuzzCgroup runs the cgroup part until deadline, then tears down. It
// does not touch t.
func fuzzCgroup(f *cgFuzz, deadline time.Time, inflight *atomic.Pointer[string]) *report {
	rep := newReport()
	for i := 0; time.Now().Before(deadline); i++ {
		if len(f.links) >= maxLinks || len(f.links) > 0 && f.g.chance(0.03) {
			f.closeLink(rep)
			continue
		}
		c := f.draw()
		desc := f.callString(c)
		what := fmt.Sprintf("cgroup call %d: bpf(%s)", i, desc)
		inflight.Store(&what)
		start := time.Now()
		f.call(c, desc, rep)
		rep.timed(time.Since(start), func() string { return what })
	}
	desc := "cgroup part teardown"
	inflight.Store(&desc)
	f.teardown(rep)
	return rep
}

// teardown closes the links, detaches every program left on the scratch
// cgroups, checks that none is left, removes the cgroups and closes the
// fuzzer's fds. What goes wrong is a violation.
func (f *cgFuzz) teardown(rep *report) {
	for _, l := range f.links {
		unix.Close(int(l.fd))
		delete(f.kinds, l.fd)
	}
	f.links = nil
	for i := len(f.dirFDs) - 1; i >= 0; i-- {
		fd, name := f.dirFDs[i], f.dirNames[f.dirFDs[i]]
		// Each detach removes one program: the one named (ALLOW_MULTI)
		// or the only one (no flag, ALLOW_OVERRIDE, whatever fd).
		for range 2*landlockbpf.MaxRules + 2 {
			n, errno := f.countAttached(fd)
			if errno != 0 {
				rep.violate("teardown: querying %s: %s", name, errnoName(errno))
				break
			}
			if n == 0 {
				break
			}
			detached := false
			for _, prog := range []uint32{uint32(f.fx.ruleFD), f.denyFD, 0} {
				var b attrBuf
				*b.attach() = progAttachAttr{TargetFD: fd, AttachBPFFD: prog, AttachType: attachCgroupLandlock}
				if _, errno := bpfAttr(bpfProgDetach, &b, 32); errno == 0 {
					detached = true
					rep.CgroupDetached++
					break
				}
			}
			if !detached {
				rep.violate("teardown: %d programs on %s, and none detaches", n, name)
				break
			}
		}
		// The check: no Landlock program is left on a scratch cgroup
		// (links closed, programs detached), before it goes.
		if n, errno := f.countAttached(fd); errno != 0 || n != 0 {
			rep.violate("teardown: %s still holds %d Landlock programs (%s) after closing the links and detaching", name, n, errnoName(errno))
		}
	}
	for _, fd := range f.ownFDs {
		unix.Close(fd)
	}
	f.ownFDs = nil
	for i := len(f.dirs) - 1; i >= 0; i-- {
		if err := rmdirRetry(f.dirs[i]); err != nil {
			rep.violate("teardown: %v", err)
		}
	}
}

// countAttached returns how many programs cgroup fd holds itself
// (BPF_PROG_QUERY, not effective, count only).
func (f *cgFuzz) countAttached(fd uint32) (uint32, unix.Errno) {
	var b attrBuf
	b.query().TargetFD, b.query().AttachType = fd, attachCgroupLandlock
	_, errno := bpfAttr(bpfProgQuery, &b, 64)
	return b.query().ProgCnt, errno
}

// rmdirRetry removes the cgroup dir, retrying for a while on EBUSY: the
// release of a cgroup (its children's, their css) is asynchronous.
func rmdirRetry(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCgroupAttrLayout checks, on the host too, the layout of the
// command parts of union bpf_attr the cgroup part has of its own (the
// shared ones are checked in tests/landlockbpf).
func TestCgroupAttrLayout(t *testing.T) {
	var l linkCreateAttr
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"link_create.target_fd", unsafe.Offsetof(l.TargetFD), 4},
		{"link_create.attach_type", unsafe.Offsetof(l.AttachType), 8},
		{"link_create.flags", unsafe.Offsetof(l.Flags), 12},
		{"link_create.cgroup.relative_fd", unsafe.Offsetof(l.RelativeFD), 16},
		{"link_create.cgroup.expected_revision", unsafe.Offsetof(l.ExpectedRevision), 24},
		{"link_create.uprobe_multi.ref_ctr_offsets", unsafe.Offsetof(l.Other), 32},
		{"sizeof(attrBuf)", unsafe.Sizeof(attrBuf{}), 128},
	} {
		require.Equal(t, f.want, f.got, f.name)
	}
}

// TestCgroupExpect checks, on the host too, expect against rows of the
// plan's §6 table, with fds that only the fuzzer's map knows.
func TestCgroupExpect(t *testing.T) {
	const (
		allow, deny, sock, amap, cg, gone, procs, file, lnk, dead, closed = 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 1 << 30
	)
	f := &cgFuzz{
		huge: uintptr(os.Getpagesize()) + 1,
		kinds: map[uint32]fdKind{
			0: fdPipe, allow: fdLandlockAllow, deny: fdLandlockDeny, sock: fdSocketFilter, amap: fdMap,
			cg: fdCgroup, gone: fdCgroupGone, procs: fdProcs, file: fdFile, lnk: fdLink, dead: fdLink,
		},
		links: []*cgLink{{fd: lnk, prog: fdLandlockAllow, exact: true}, {fd: dead, prog: fdLandlockAllow, exact: true, detached: true}},
	}
	attach := func(cmd int, a progAttachAttr) *cgCall {
		c := &cgCall{cmd: cmd, natural: 32, size: 32}
		*c.buf.attach() = a
		return c
	}
	query := func(q progQueryAttr) *cgCall {
		c := &cgCall{cmd: bpfProgQuery, natural: 64, size: 64}
		*c.buf.query() = q
		return c
	}
	create := func(l linkCreateAttr) *cgCall {
		c := &cgCall{cmd: bpfLinkCreate, natural: 60, size: 60}
		*c.buf.create() = l
		return c
	}
	update := func(u linkUpdateAttr) *cgCall {
		c := &cgCall{cmd: bpfLinkUpdate, natural: 16, size: 16}
		*c.buf.update() = u
		return c
	}
	const lc = attachCgroupLandlock
	huge := attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc})
	huge.size = f.huge
	tail := create(linkCreateAttr{ProgFD: allow, TargetFD: cg, AttachType: lc})
	tail.size, tail.tail = 68, true
	// Truncated to 8 bytes: attach type 0 (BPF_CGROUP_INET_INGRESS)
	// for the kernel, whatever the buffer holds beyond.
	short := attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc, AttachFlags: flagAllowMulti})
	short.size = 8
	undetermined := []unix.Errno(nil)
	for _, tc := range []struct {
		name string
		c    *cgCall
		want []unix.Errno
	}{
		{"past a page", huge, []unix.Errno{unix.E2BIG}},
		{"tail", tail, []unix.Errno{unix.EINVAL}},
		{"truncated", short, []unix.Errno{unix.EINVAL}},
		{"attach 57", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: landlockbpf.AttachLandlockFS}), []unix.Errno{unix.EINVAL}},
		{"attach 59", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: attachPastLast}), []unix.Errno{unix.EINVAL}},
		{"attach other type, closed prog", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: closed, AttachType: 0}), []unix.Errno{unix.EINVAL, unix.EBADF}},
		{"attach unknown flag", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc, AttachFlags: 1 << 7}), []unix.Errno{unix.EINVAL}},
		{"attach closed prog", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: closed, AttachType: lc}), []unix.Errno{unix.EBADF}},
		{"attach socket filter", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: sock, AttachType: lc}), []unix.Errno{unix.EINVAL}},
		{"attach map", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: amap, AttachType: lc}), []unix.Errno{unix.EINVAL}},
		{"attach to a file", attach(bpfProgAttach, progAttachAttr{TargetFD: file, AttachBPFFD: allow, AttachType: lc}), []unix.Errno{unix.EBADF}},
		{"attach to cgroup.procs", attach(bpfProgAttach, progAttachAttr{TargetFD: procs, AttachBPFFD: deny, AttachType: lc}), []unix.Errno{unix.EBADF}},
		{"attach to a removed cgroup", attach(bpfProgAttach, progAttachAttr{TargetFD: gone, AttachBPFFD: allow, AttachType: lc}), []unix.Errno{unix.ENOENT}},
		{"attach OVERRIDE|MULTI", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc, AttachFlags: flagAllowOverride | flagAllowMulti}), []unix.Errno{unix.EINVAL}},
		{"attach REPLACE alone", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc, AttachFlags: flagReplace}), []unix.Errno{unix.EINVAL}},
		{"attach MULTI|REPLACE, closed replace fd", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc, AttachFlags: flagAllowMulti | flagReplace, ReplaceBPFFD: closed}), []unix.Errno{unix.EBADF}},
		{"attach MULTI", attach(bpfProgAttach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc, AttachFlags: flagAllowMulti}), undetermined},
		{"detach 57", attach(bpfProgDetach, progAttachAttr{TargetFD: cg, AttachType: landlockbpf.AttachLandlockFS}), []unix.Errno{unix.EINVAL}},
		{"detach with flags", attach(bpfProgDetach, progAttachAttr{TargetFD: cg, AttachBPFFD: allow, AttachType: lc, AttachFlags: flagAllowMulti}), []unix.Errno{unix.EINVAL}},
		{"detach from a file", attach(bpfProgDetach, progAttachAttr{TargetFD: file, AttachBPFFD: allow, AttachType: lc}), []unix.Errno{unix.EBADF}},
		{"detach, closed prog", attach(bpfProgDetach, progAttachAttr{TargetFD: cg, AttachBPFFD: closed, AttachType: lc}), undetermined},
		{"query unknown flag", query(progQueryAttr{TargetFD: cg, AttachType: lc, QueryFlags: 2}), []unix.Errno{unix.EINVAL}},
		{"query 57", query(progQueryAttr{TargetFD: cg, AttachType: landlockbpf.AttachLandlockFS}), []unix.Errno{unix.EINVAL}},
		{"query closed", query(progQueryAttr{TargetFD: closed, AttachType: lc}), []unix.Errno{unix.EBADF}},
		{"query count", query(progQueryAttr{TargetFD: cg, AttachType: lc, ProgCnt: 3}), []unix.Errno{0}},
		{"query effective with prog_attach_flags", query(progQueryAttr{TargetFD: cg, AttachType: lc, QueryFlags: queryEffective, ProgAttachFlags: 16}), []unix.Errno{unix.EINVAL}},
		{"query ids", query(progQueryAttr{TargetFD: cg, AttachType: lc, ProgCnt: 3, ProgIDs: 16}), undetermined},
		{"link 57", create(linkCreateAttr{ProgFD: allow, TargetFD: cg, AttachType: landlockbpf.AttachLandlockFS}), []unix.Errno{unix.EINVAL}},
		{"link closed prog", create(linkCreateAttr{ProgFD: closed, TargetFD: cg, AttachType: lc}), []unix.Errno{unix.EBADF}},
		{"link socket filter", create(linkCreateAttr{ProgFD: sock, TargetFD: cg, AttachType: lc}), []unix.Errno{unix.EINVAL}},
		{"link ALLOW_MULTI", create(linkCreateAttr{ProgFD: allow, TargetFD: cg, AttachType: lc, Flags: flagAllowMulti}), []unix.Errno{unix.EINVAL}},
		{"link to a file", create(linkCreateAttr{ProgFD: allow, TargetFD: file, AttachType: lc}), []unix.Errno{unix.EBADF}},
		{"link", create(linkCreateAttr{ProgFD: allow, TargetFD: cg, AttachType: lc}), undetermined},
		{"update unknown flag", update(linkUpdateAttr{LinkFD: lnk, NewProgFD: deny, Flags: 1}), []unix.Errno{unix.EINVAL}},
		{"update not a link", update(linkUpdateAttr{LinkFD: allow, NewProgFD: deny}), []unix.Errno{unix.EINVAL}},
		{"update old without REPLACE", update(linkUpdateAttr{LinkFD: lnk, NewProgFD: deny, OldProgFD: allow}), []unix.Errno{unix.EINVAL}},
		{"update detached", update(linkUpdateAttr{LinkFD: dead, NewProgFD: deny}), []unix.Errno{unix.ENOLINK}},
		{"update REPLACE other old", update(linkUpdateAttr{LinkFD: lnk, NewProgFD: deny, Flags: flagReplace, OldProgFD: deny}), []unix.Errno{unix.EPERM}},
		{"update socket filter", update(linkUpdateAttr{LinkFD: lnk, NewProgFD: sock}), []unix.Errno{unix.EINVAL}},
		{"update REPLACE", update(linkUpdateAttr{LinkFD: lnk, NewProgFD: deny, Flags: flagReplace, OldProgFD: allow}), []unix.Errno{0}},
	} {
		require.Equal(t, tc.want, f.expect(tc.c).want, "%s: %s", tc.name, f.callString(tc.c))
	}
}

// TestCgroupGenerator checks, on the host too, that the cgroup part's
// draws are deterministic and never an ifindex attach type.
func TestCgroupGenerator(t *testing.T) {
	// Both generators write the addresses of the same output buffers
	// into their query attrs, so that equal draws give equal bytes.
	ids, idFlags := make([]uint32, queryBufLen), make([]uint32, queryBufLen)
	mk := func() *cgFuzz {
		return &cgFuzz{
			g: newGen(7, nil), fx: &fixtures{mapFD: 3, otherFD: 4, pipe: [2]int{5, 6}, ruleFD: 7},
			dirFDs: []uint32{10, 11}, procsFD: 12, fileFD: 13, goneFD: 14, denyFD: 15, closed: 1 << 30,
			kinds: map[uint32]fdKind{}, huge: uintptr(os.Getpagesize()) + 1,
			ids: ids, idFlags: idFlags,
		}
	}
	a, b := mk(), mk()
	for i := range 2000 {
		x, y := a.draw(), b.draw()
		require.Equal(t, x.buf, y.buf, "draw %d differs for one seed", i)
		require.Equal(t, x.size, y.size, "draw %d", i)
		if x.size != a.huge {
			require.NotContains(t, ifindexTypes, x.attachType(), "draw %d", i)
		}
	}
}
