package landlockbpf

import (
	"encoding/binary"
	"io"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestHookRecordLayout(t *testing.T) {
	assert.Equal(t, hookRecordSize, binary.Size(HookRecord{}), "HookRecord is the context without status")
	assert.Equal(t, CtxSize-CtxOffArch, hookRecordSize)
}

// TestHookRecorderInsns checks, on any host, that the recording rule
// assembles and reads each context field whole, at its own offset.
func TestHookRecorderInsns(t *testing.T) {
	insns := HookRecorderInsns(3, 4)
	err := insns.Marshal(io.Discard, binary.LittleEndian)
	require.NoError(t, err)

	want := map[int16]asm.Size{
		CtxOffArch: asm.Word, CtxOffSyscallNr: asm.Word, CtxOffSyscallCmd: asm.Word,
		CtxOffEvent: asm.Word, CtxOffArg1: asm.DWord, CtxOffArg2: asm.DWord,
	}
	got := map[int16]asm.Size{}
	for _, ins := range insns {
		if ins.OpCode.Class() == asm.LdXClass && ins.Src == asm.R6 {
			got[ins.Offset] = ins.OpCode.Size()
		}
	}
	assert.Equal(t, want, got, "context reads")
}

func TestRunOnRuleThread(t *testing.T) {
	var tid int
	RunOnRuleThread(func() { tid = unix.Gettid() })
	assert.NotZero(t, tid, "fn ran")
	assert.PanicsWithValue(t, "boom", func() { RunOnRuleThread(func() { panic("boom") }) },
		"a panic of fn is raised again on the caller's goroutine")
}
