package bpffuzz

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// bpf(2) commands and program types used here.
const (
	bpfProgLoad          = 5
	bpfProgAttach        = 8
	bpfProgDetach        = 9
	bpfObjGetInfoByFD    = 15
	bpfProgQuery         = 16
	bpfLinkCreate        = 28
	bpfLinkUpdate        = 29
	bpfLinkDetach        = 34
	progTypeSocketFilter = 1
)

// bpfCmdNames name the commands of the cgroup part, as the report prints
// them.
var bpfCmdNames = map[int]string{
	bpfProgAttach: "BPF_PROG_ATTACH",
	bpfProgDetach: "BPF_PROG_DETACH",
	bpfProgQuery:  "BPF_PROG_QUERY",
	bpfLinkCreate: "BPF_LINK_CREATE",
	bpfLinkUpdate: "BPF_LINK_UPDATE",
	bpfLinkDetach: "BPF_LINK_DETACH",
}

// enotsupp is the kernel's internal ENOTSUPP (524), which bpf(2) lets out.
const enotsupp = unix.Errno(524)

// progLoadAttr is the BPF_PROG_LOAD part of the kernel's union bpf_attr,
// up to and including expected_attach_type (72 bytes). The kernel reads
// the rest as zero, and writes back nothing (log_true_size lies beyond).
type progLoadAttr struct {
	ProgType           uint32
	InsnCnt            uint32
	Insns              uint64 // pointer to the instructions
	License            uint64 // pointer to a NUL-terminated string
	LogLevel           uint32
	LogSize            uint32
	LogBuf             uint64 // pointer to LogSize bytes
	KernVersion        uint32
	ProgFlags          uint32
	ProgName           [16]byte
	ProgIfindex        uint32
	ExpectedAttachType uint32
}

// attrBuf holds a union bpf_attr as the cgroup part hands it to bpf(2):
// 8-byte aligned, so that the command structs below can be laid over it,
// longer than each of them plus a trailing word, and shorter than 6.12's
// union (152 bytes), so that no size the fuzzer passes from it is beyond
// the kernel's union (where bpf(2) would want zeros, or E2BIG).
type attrBuf [16]uint64

// bytes returns b as the bytes bpf(2) reads.
func (b *attrBuf) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(b)), unsafe.Sizeof(*b))
}

// The command parts the cgroup part shares with the guest tests' raw
// layer (their layout is checked in tests/landlockbpf/cgroup_test.go).
type (
	progAttachAttr = landlockbpf.ProgAttachAttr // BPF_PROG_ATTACH, BPF_PROG_DETACH
	progQueryAttr  = landlockbpf.ProgQueryAttr  // BPF_PROG_QUERY
	linkUpdateAttr = landlockbpf.LinkUpdateAttr // BPF_LINK_UPDATE
	linkDetachAttr = landlockbpf.LinkDetachAttr // BPF_LINK_DETACH
)

// linkCreateAttr is the BPF_LINK_CREATE part (link_create) with the
// cgroup arguments; the command's last field, uprobe_multi.pid, ends at
// byte 60.
type linkCreateAttr struct {
	ProgFD           uint32
	TargetFD         uint32
	AttachType       uint32
	Flags            uint32
	RelativeFD       uint32 // cgroup.relative_fd or relative_id
	_                uint32
	ExpectedRevision uint64 // cgroup.expected_revision
	// Other are bytes 32..59 of the union: other link kinds' arguments
	// (uprobe_multi's cookies, cnt, flags, pid), which a cgroup link does
	// not read.
	Other [7]uint32
}

// Views of an attrBuf as each command's part.
func (b *attrBuf) attach() *progAttachAttr { return (*progAttachAttr)(unsafe.Pointer(b)) }
func (b *attrBuf) query() *progQueryAttr   { return (*progQueryAttr)(unsafe.Pointer(b)) }
func (b *attrBuf) create() *linkCreateAttr { return (*linkCreateAttr)(unsafe.Pointer(b)) }
func (b *attrBuf) update() *linkUpdateAttr { return (*linkUpdateAttr)(unsafe.Pointer(b)) }
func (b *attrBuf) detach() *linkDetachAttr { return (*linkDetachAttr)(unsafe.Pointer(b)) }

// bpfAttr calls bpf(cmd, buf, size). size may exceed buf's length only
// beyond a page, where bpf(2) refuses the call (E2BIG) before it reads.
func bpfAttr(cmd int, buf *attrBuf, size uintptr) (uintptr, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(buf)), size)
	runtime.KeepAlive(buf)
	return r, errno
}

// progID returns the id of the BPF program fd (BPF_OBJ_GET_INFO_BY_FD,
// the first 8 bytes of struct bpf_prog_info: type, id).
func progID(fd int) (uint32, unix.Errno) {
	var info [2]uint32
	attr := struct {
		BPFFD   uint32
		InfoLen uint32
		Info    uint64
	}{uint32(fd), uint32(unsafe.Sizeof(info)), uint64(uintptr(unsafe.Pointer(&info)))}
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfObjGetInfoByFD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(&info)
	runtime.KeepAlive(&attr)
	return info[1], errno
}

// insn is struct bpf_insn: opcode, dst_reg (low nibble) and src_reg (high
// nibble), offset, immediate.
type insn struct {
	Code uint8
	Regs uint8
	Off  int16
	Imm  int32
}

// mk builds an instruction.
func mk(code uint8, dst, src uint8, off int16, imm int32) insn {
	return insn{Code: code, Regs: dst&0xf | src<<4, Off: off, Imm: imm}
}

// dst and src return the registers of i.
func (i insn) dst() uint8 { return i.Regs & 0xf }
func (i insn) src() uint8 { return i.Regs >> 4 }

// String prints i as the kernel's struct bpf_insn fields.
func (i insn) String() string {
	return fmt.Sprintf("{%#02x %d %d %d %d}", i.Code, i.dst(), i.src(), i.Off, i.Imm)
}

// loadInput is one BPF_PROG_LOAD call, with the memory its pointers point
// to. A nil slice is passed as a NULL pointer.
type loadInput struct {
	Insns   []insn
	NullIns bool // insns NULL although InsnCnt > 0
	ZeroCnt bool // insn_cnt 0 with a valid pointer
	// ProgType is the program type, 0 meaning BPF_PROG_TYPE_LANDLOCK.
	ProgType    uint32
	License     []byte // NUL-terminated, or nil for NULL
	LogLevel    uint32
	LogBuf      []byte // LogSize is its length; nil is NULL
	LogSizeNull uint32 // log_size when LogBuf is nil
	KernVersion uint32
	ProgFlags   uint32
	ProgName    [16]byte
	Ifindex     uint32
	Attach      uint32
	// Origin says where the instructions come from: "random",
	// "mutant:<seed rule>" or "seed:<rule>".
	Origin string
}

// progType returns the program type the input loads.
func (in *loadInput) progType() uint32 {
	if in.ProgType == 0 {
		return landlockbpf.ProgTypeLandlock
	}
	return in.ProgType
}

// loadRetries is how many times loadRetry calls load again after EAGAIN,
// as libbpf does (sys_bpf_prog_load).
const loadRetries = 5

// loadRetry is load for a program whose outcome the caller checks
// exactly: EAGAIN means the verifier saw a signal pending (Go's runtime
// preempts a goroutine with SIGURG, which it does more often with several
// CPUs) and is not the program's answer, so the load is tried again.
func loadRetry(in *loadInput) (int, unix.Errno) {
	for i := 0; ; i++ {
		fd, errno := load(in)
		if errno != unix.EAGAIN || i == loadRetries {
			return fd, errno
		}
	}
}

// load calls bpf(BPF_PROG_LOAD) with in and returns the new fd or the
// errno.
func load(in *loadInput) (int, unix.Errno) {
	attr := progLoadAttr{
		ProgType:           in.progType(),
		InsnCnt:            uint32(len(in.Insns)),
		LogLevel:           in.LogLevel,
		KernVersion:        in.KernVersion,
		ProgFlags:          in.ProgFlags,
		ProgName:           in.ProgName,
		ProgIfindex:        in.Ifindex,
		ExpectedAttachType: in.Attach,
	}
	if len(in.Insns) > 0 && !in.NullIns {
		attr.Insns = uint64(uintptr(unsafe.Pointer(&in.Insns[0])))
	}
	if in.ZeroCnt {
		attr.InsnCnt = 0
	}
	if len(in.License) > 0 {
		attr.License = uint64(uintptr(unsafe.Pointer(&in.License[0])))
	}
	if len(in.LogBuf) > 0 {
		attr.LogBuf = uint64(uintptr(unsafe.Pointer(&in.LogBuf[0])))
		attr.LogSize = uint32(len(in.LogBuf))
	} else {
		attr.LogSize = in.LogSizeNull
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgLoad, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(in)
	runtime.KeepAlive(&attr)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), 0
}

// String prints in completely, so that a failing call can be replayed
// without the seed.
func (in *loadInput) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "origin=%s prog_type=%d expected_attach_type=%d prog_flags=%#x insn_cnt=%d",
		in.Origin, in.progType(), in.Attach, in.ProgFlags, len(in.Insns))
	if in.NullIns {
		b.WriteString(" insns=NULL")
	}
	if in.ZeroCnt {
		b.WriteString(" (insn_cnt passed as 0)")
	}
	if in.License == nil {
		b.WriteString(" license=NULL")
	} else {
		fmt.Fprintf(&b, " license=%q", strings.TrimRight(string(in.License), "\x00"))
	}
	fmt.Fprintf(&b, " log_level=%#x", in.LogLevel)
	if in.LogBuf == nil {
		fmt.Fprintf(&b, " log_buf=NULL log_size=%d", in.LogSizeNull)
	} else {
		fmt.Fprintf(&b, " log_size=%d", len(in.LogBuf))
	}
	fmt.Fprintf(&b, " kern_version=%#x prog_name=%q prog_ifindex=%d insns=", in.KernVersion, in.ProgName[:], in.Ifindex)
	for _, i := range in.Insns {
		b.WriteString(i.String())
	}
	return b.String()
}

// seccompAppend calls seccomp(SECCOMP_APPEND_LANDLOCK_RULE, flags, args).
func seccompAppend(flags uint32, args unsafe.Pointer) (uintptr, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, landlockbpf.SeccompAppendLandlockRule, uintptr(flags), uintptr(args))
	runtime.KeepAlive(args)
	return r, errno
}

// fdOpen reports whether fd (as the kernel's unsigned int) is open.
func fdOpen(fd uint32) bool {
	_, _, errno := unix.Syscall(unix.SYS_FCNTL, uintptr(fd), unix.F_GETFD, 0)
	return errno == 0
}

// errnoName names an errno, ENOTSUPP included.
func errnoName(e unix.Errno) string {
	if e == 0 {
		return "ok"
	}
	if e == enotsupp {
		return "ENOTSUPP"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno%d", int(e))
}

// counts counts outcomes by name.
type counts map[string]int

// add merges o into c.
func (c counts) add(o counts) {
	for k, v := range o {
		c[k] += v
	}
}

// String prints the counts sorted by name.
func (c counts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c[k])
	}
	return strings.Join(parts, " ")
}
