package landlockbpf

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// DenyActionsOn is a rule that denies the actions whose bits are in mask
// when they are about the object with inode number ino (arg1 == ino and
// arg2 & mask != 0), and allows everything else.
//
// Inode numbers are unique within one file system only: a scenario that
// uses this rule checks that nothing else it touches has the same number
// (see Inode).
func DenyActionsOn(ino uint64, mask int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R0, 0),
		asm.LoadMem(asm.R2, asm.R1, CtxOffArg1, asm.DWord),
		asm.LoadImm(asm.R3, int64(ino), asm.DWord),
		asm.JNE.Reg(asm.R2, asm.R3, "allow"),
		asm.LoadMem(asm.R2, asm.R1, CtxOffArg2, asm.DWord),
		asm.And.Imm(asm.R2, mask),
		asm.JEq.Imm(asm.R2, 0, "allow"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return().WithSymbol("allow"),
	}
}

// Inode returns the inode number of path (not following a final symbolic
// link), the arg1 the rules see for it.
func Inode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Ino, nil
}
