package bpfsandbox

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

// File type bits of i_mode.
const (
	modeTypeMask = 0o170000 // S_IFMT
	modeCharDev  = 0o020000 // S_IFCHR
)

// Rule is the program described in the package documentation: nothing
// the mount-family system calls do (MountSyscalls), write-like actions
// only beneath rw, and, when ro is not nil, no other action outside ro
// and rw; character devices always allowed. rw must not be nil (an empty
// map denies every write-like action). The maps' fds are in the
// instructions (asm.LoadMapPtr): they must stay open until the program is
// loaded, and the loaded program keeps the maps.
func Rule(rw, ro *FSMap) asm.Instructions {
	// beneath calls bpf_landlock_fs_beneath(ctx, m, 0); ctx is in R6.
	beneath := func(m *FSMap) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.LoadMapPtr(asm.R2, m.FD()),
			asm.Mov.Imm(asm.R3, 0),
			asm.BuiltinFunc(FuncFSBeneath).Call(),
		}
	}
	other := "allow"
	if ro != nil {
		other = "other"
	}
	insns := asm.Instructions{
		// R6 = ctx, kept across the calls; R7 = the action mask.
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, CtxOffArg2, asm.DWord),
	}
	// Whatever a mount-family system call does is denied, before
	// anything else is looked at.
	insns = append(insns, denySyscalls(mountSyscalls, "deny")...)
	insns = append(insns,
		// A character device is always allowed (the tty, /dev/null).
		// -ENOENT (no inode) has all of S_IFMT's bits set: not one.
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("not_mount"),
		asm.BuiltinFunc(FuncGetFSMode).Call(),
		asm.And.Imm(asm.R0, modeTypeMask),
		asm.JEq.Imm(asm.R0, modeCharDev, "allow"),
		// Not write-like: allowed without ro, else to the ro part.
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.And.Imm(asm.R1, WriteActions),
		asm.JEq.Imm(asm.R1, 0, other),
	)
	// Write-like: deny iff not beneath rw (0); 1 and -ENOENT allow.
	insns = append(insns, beneath(rw)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "deny"),
		asm.Ja.Label("allow"),
	)
	if ro != nil {
		// Any other action is allowed when beneath ro or rw (or
		// when either answers -ENOENT), denied when both answer 0.
		first := beneath(ro)
		first[0] = first[0].WithSymbol("other")
		insns = append(insns, first...)
		insns = append(insns, asm.JNE.Imm(asm.R0, 0, "allow"))
		insns = append(insns, beneath(rw)...)
		insns = append(insns, asm.JNE.Imm(asm.R0, 0, "allow"))
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, 1).WithSymbol("deny"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	)
}

// denySyscalls jumps to deny when the context's (arch, syscall_nr) is one
// of calls, and falls through to the instruction labelled "not_mount"
// otherwise. The context is in R6; R1 and R2 are clobbered. The fields
// are __u32: they are read as words and compared with 32-bit jumps
// (BPF_JMP32), so that an AUDIT_ARCH_* value with its top bit set
// (__AUDIT_ARCH_64BIT) is not sign-extended.
func denySyscalls(calls []MountSyscall, deny string) asm.Instructions {
	if len(calls) == 0 {
		return nil
	}
	// The calls by arch, in the order the arches first appear.
	var arches []uint32
	byArch := map[uint32][]uint32{}
	for _, c := range calls {
		if _, ok := byArch[c.Arch]; !ok {
			arches = append(arches, c.Arch)
		}
		byArch[c.Arch] = append(byArch[c.Arch], c.Nr)
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R1, asm.R6, CtxOffArch, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, CtxOffSyscallNr, asm.Word),
	}
	label := func(i int) string {
		if i == len(arches) {
			return "not_mount"
		}
		return fmt.Sprintf("abi_%d", i)
	}
	for i, arch := range arches {
		test := asm.JNE.Imm32(asm.R1, int32(arch), label(i+1))
		if i > 0 {
			test = test.WithSymbol(label(i))
		}
		insns = append(insns, test)
		for _, nr := range byArch[arch] {
			insns = append(insns, asm.JEq.Imm32(asm.R2, int32(nr), deny))
		}
		insns = append(insns, asm.Ja.Label("not_mount"))
	}
	return insns
}
