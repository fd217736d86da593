package landlockbpf

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Load loads insns as a Landlock rule for the file system event.
func Load(insns asm.Instructions) (*ebpf.Program, error) {
	return LoadWith(insns, AttachLandlockFS, 0)
}

// LoadWith loads insns as a Landlock program with the given expected
// attach type and program flags.
func LoadWith(insns asm.Instructions, attach uint32, flags uint32) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "landlock_rule",
		Type:         ebpf.ProgramType(ProgTypeLandlock),
		AttachType:   ebpf.AttachType(attach),
		Flags:        flags,
		Instructions: insns,
		License:      "GPL",
	}, ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		return nil, fmt.Errorf("loading Landlock rule: %w", err)
	}
	return prog, nil
}

// Allow is a rule that allows everything; Deny one that denies everything.
var (
	Allow = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	Deny  = asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}
)

// DenyActions is a rule that denies the actions whose bits are in mask
// (arg2 & mask != 0) and allows the rest.
func DenyActions(mask int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, CtxOffArg2, asm.DWord),
		asm.Mov.Imm(asm.R0, 0),
		asm.And.Imm(asm.R2, mask),
		asm.JEq.Imm(asm.R2, 0, "allow"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return().WithSymbol("allow"),
	}
}

// Seccomp calls seccomp(2) with op, flags and args.
func Seccomp(op, flags uintptr, args unsafe.Pointer) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, op, flags, uintptr(args))
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// KernelABIVersion asks the running kernel for its Landlock eBPF ABI
// version.
func KernelABIVersion() (int, error) {
	v, err := Seccomp(SeccompAppendLandlockRule, SeccompLandlockABIVersion, nil)
	if err != nil {
		return 0, err
	}
	return int(v), nil
}

// Append appends the rule prog to the calling thread's domain. Rules are
// per thread: the caller must have locked its goroutine to its OS thread
// (runtime.LockOSThread) and do the operations under test on it.
func Append(prog *ebpf.Program) error {
	fd := uint32(prog.FD())
	_, err := Seccomp(SeccompAppendLandlockRule, 0, unsafe.Pointer(&fd))
	runtime.KeepAlive(fd)
	if err != nil {
		return fmt.Errorf("appending Landlock rule: %w", err)
	}
	return nil
}

// AppendTriggered appends the rule prog, run only on the actions of
// triggers (SECCOMP_LANDLOCK_RULE_TRIGGERS, version 5), to the calling
// thread's domain; the thread rules of Append apply.
func AppendTriggered(prog *ebpf.Program, triggers uint64) error {
	attr := RuleAttr{ProgFD: uint32(prog.FD()), Triggers: triggers}
	_, err := Seccomp(SeccompAppendLandlockRule, SeccompLandlockRuleTriggers, unsafe.Pointer(&attr))
	runtime.KeepAlive(&attr)
	if err != nil {
		return fmt.Errorf("appending Landlock rule with triggers %#x: %w", triggers, err)
	}
	return nil
}

// SkipUnlessSupported returns why the tests of version want cannot run on
// this kernel, or "" when they can.
func SkipUnlessSupported(want int) string {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		return "runs only in the guest kernel (make vmtest)"
	}
	v, err := KernelABIVersion()
	if errors.Is(err, unix.EINVAL) {
		return "the kernel has no Landlock eBPF rules (seccomp op 4 unknown)"
	}
	if err != nil {
		return fmt.Sprintf("Landlock eBPF ABI version query: %v", err)
	}
	if v < want {
		return fmt.Sprintf("the kernel reports Landlock eBPF ABI version %d, these tests need %d", v, want)
	}
	return ""
}

// SkipUnlessProgType returns why tests of the program type alone (the
// verifier, the helpers) cannot run on this kernel, or "" when they can.
// It probes the type itself by loading an allow-all program, so the tests
// run from the patch that adds the type on, before the seccomp(2) entry
// point (and its ABI version query) exists.
func SkipUnlessProgType() string {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		return "runs only in the guest kernel (make vmtest)"
	}
	p, err := Load(Allow)
	if errors.Is(err, unix.EINVAL) {
		return fmt.Sprintf("the kernel has no BPF_PROG_TYPE_LANDLOCK: loading an allow-all program of type %d as root gives EINVAL", ProgTypeLandlock)
	}
	if err != nil {
		return fmt.Sprintf("probing BPF_PROG_TYPE_LANDLOCK: %v", err)
	}
	p.Close()
	return ""
}
