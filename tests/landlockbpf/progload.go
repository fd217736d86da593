package landlockbpf

// A raw bpf(BPF_PROG_LOAD) for Landlock programs, for the tests that
// assert the exact errno of a load, and above all of an unprivileged one
// (version 4). cilium/ebpf's NewProgram runs feature probes when a load
// fails: for a program with a bpf-to-bpf call it probes bpf2bpf calls with
// a socket filter, which an unprivileged caller cannot load either (the
// verifier refuses every bpf-to-bpf call without CAP_BPF), and then
// reports ErrNotSupported instead of the kernel's EPERM.

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// ProgLoadAttr is the BPF_PROG_LOAD member of union bpf_attr ("anonymous
// struct used by BPF_PROG_LOAD command") up to and including
// expected_attach_type, 72 bytes: the kernel reads the fields past it as
// zero.
type ProgLoadAttr struct {
	ProgType           uint32   // prog_type
	InsnCnt            uint32   // insn_cnt
	Insns              uint64   // insns: a pointer
	License            uint64   // license: a pointer to a NUL-terminated string
	LogLevel           uint32   // log_level
	LogSize            uint32   // log_size
	LogBuf             uint64   // log_buf: a pointer
	KernVersion        uint32   // kern_version
	ProgFlags          uint32   // prog_flags
	ProgName           [16]byte // prog_name
	ProgIfindex        uint32   // prog_ifindex
	ExpectedAttachType uint32   // expected_attach_type
}

// progLogSize is the size of the verifier log ProgLoadWithLog asks for.
const progLogSize = 1 << 20

// nativeOrder is the byte order of this machine, as asm's Marshal wants
// it named (binary.LittleEndian or binary.BigEndian, not
// binary.NativeEndian).
func nativeOrder() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// marshalInsns encodes insns for the kernel, jumps and bpf-to-bpf calls
// resolved (asm.Instructions.Marshal does that on a copy here).
func marshalInsns(insns asm.Instructions) ([]byte, error) {
	var buf bytes.Buffer
	if err := append(asm.Instructions(nil), insns...).Marshal(&buf, nativeOrder()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// progLoad calls BPF_PROG_LOAD for a Landlock program (GPL) with the
// expected attach type attach, the prog flags and, if log is not nil, a
// verifier log of level 1 in log.
func progLoad(insns asm.Instructions, attach, flags uint32, log []byte) (int, error) {
	code, err := marshalInsns(insns)
	if err != nil {
		return -1, err
	}
	license := []byte("GPL\x00")
	attr := ProgLoadAttr{
		ProgType:           ProgTypeLandlock,
		InsnCnt:            uint32(len(code) / asm.InstructionSize),
		License:            uint64(uintptr(unsafe.Pointer(&license[0]))),
		ProgFlags:          flags,
		ExpectedAttachType: attach,
	}
	if len(code) > 0 {
		attr.Insns = uint64(uintptr(unsafe.Pointer(&code[0])))
	}
	copy(attr.ProgName[:], "landlock_rule")
	if len(log) > 0 {
		attr.LogLevel = 1
		attr.LogSize = uint32(len(log))
		attr.LogBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

// ProgLoad loads insns as a Landlock program with the expected attach
// type attach and the prog flags, calling bpf(2) directly, without a
// verifier log; it returns the program's fd, or nil and a bare unix.Errno
// (or an error encoding insns).
func ProgLoad(insns asm.Instructions, attach, flags uint32) (int, error) {
	return progLoad(insns, attach, flags, nil)
}

// ProgLoadWithLog is ProgLoad with a verifier log (level 1), which it
// returns too. A log that does not fit makes the load fail with ENOSPC:
// assert the errno of ProgLoad, and use this one for the verifier's
// reason.
func ProgLoadWithLog(insns asm.Instructions, attach, flags uint32) (int, string, error) {
	log := make([]byte, progLogSize)
	fd, err := progLoad(insns, attach, flags, log)
	return fd, unix.ByteSliceToString(log), err
}
