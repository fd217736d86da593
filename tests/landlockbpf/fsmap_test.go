package landlockbpf

import (
	"encoding/binary"
	"io"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMapAttrLayout: the attribute structs of fsmap.go have the offsets
// and sizes of the members of union bpf_attr they stand for, counted by
// hand from include/uapi/linux/bpf.h of 6.12:
//
//   - BPF_MAP_CREATE: map_type 0, key_size 4, value_size 8, max_entries
//     12, map_flags 16, inner_map_fd 20, numa_node 24, map_name[16] 28,
//     map_ifindex 44, btf_fd 48, btf_key_type_id 52, btf_value_type_id
//     56, btf_vmlinux_value_type_id 60, map_extra (__u64) 64,
//     value_type_btf_obj_fd (__s32) 72, map_token_fd (__s32) 76; 80.
//   - BPF_MAP_*_ELEM: map_fd 0, key (__aligned_u64) 8, value / next_key
//     16, flags (__u64) 24; 32.
func TestMapAttrLayout(t *testing.T) {
	var (
		c MapCreateAttr
		e MapElemAttr
	)
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(map create)", unsafe.Sizeof(c), 80},
		{"map_type", unsafe.Offsetof(c.MapType), 0},
		{"key_size", unsafe.Offsetof(c.KeySize), 4},
		{"value_size", unsafe.Offsetof(c.ValueSize), 8},
		{"max_entries", unsafe.Offsetof(c.MaxEntries), 12},
		{"map_flags", unsafe.Offsetof(c.MapFlags), 16},
		{"inner_map_fd", unsafe.Offsetof(c.InnerMapFD), 20},
		{"numa_node", unsafe.Offsetof(c.NUMANode), 24},
		{"map_name", unsafe.Offsetof(c.MapName), 28},
		{"map_ifindex", unsafe.Offsetof(c.MapIfindex), 44},
		{"btf_fd", unsafe.Offsetof(c.BTFFD), 48},
		{"btf_key_type_id", unsafe.Offsetof(c.BTFKeyTypeID), 52},
		{"btf_value_type_id", unsafe.Offsetof(c.BTFValueTypeID), 56},
		{"btf_vmlinux_value_type_id", unsafe.Offsetof(c.BTFVmlinuxValueTypeID), 60},
		{"map_extra", unsafe.Offsetof(c.MapExtra), 64},
		{"value_type_btf_obj_fd", unsafe.Offsetof(c.ValueTypeBTFObjFD), 72},
		{"map_token_fd", unsafe.Offsetof(c.MapTokenFD), 76},

		{"sizeof(map elem)", unsafe.Sizeof(e), 32},
		{"map elem map_fd", unsafe.Offsetof(e.MapFD), 0},
		{"map elem key", unsafe.Offsetof(e.Key), 8},
		{"map elem value", unsafe.Offsetof(e.Value), 16},
		{"map elem flags", unsafe.Offsetof(e.Flags), 24},
	} {
		assert.Equal(t, f.want, f.got, f.name)
	}
	assert.Equal(t, MapCreateAttr{MapType: 34, KeySize: 4, ValueSize: 4, MaxEntries: 8}, FSMapAttr(8))
}

func TestFSBeneathRecordLayout(t *testing.T) {
	assert.Equal(t, fsBeneathRecordSize, binary.Size(FSBeneathRecord{}))
}

// TestFSBeneathRecorderInsns checks, on any host, that the recording rule
// assembles, calls the helper once with the map in R2 (a map fd load)
// and the flags in R3, and reads each context field it logs whole, at
// its own offset.
func TestFSBeneathRecorderInsns(t *testing.T) {
	insns := FSBeneathRecorderInsns(3, 4, 5, 1)
	require.NoError(t, insns.Marshal(io.Discard, binary.LittleEndian))

	calls := 0
	for i, ins := range insns {
		if ins.IsBuiltinCall() && ins.Constant == FuncFSBeneath {
			calls++
			require.GreaterOrEqual(t, i, 3)
			assert.Equal(t, asm.R1, insns[i-3].Dst, "R1 = ctx")
			assert.Equal(t, asm.R6, insns[i-3].Src, "R1 = ctx")
			assert.True(t, insns[i-2].IsLoadFromMap(), "R2 = the map: %v", insns[i-2])
			assert.Equal(t, asm.R2, insns[i-2].Dst)
			assert.EqualValues(t, 5, insns[i-2].Constant, "the map's fd")
			assert.Equal(t, asm.R3, insns[i-1].Dst)
			assert.EqualValues(t, 1, insns[i-1].Constant, "the flags")
		}
	}
	assert.Equal(t, 1, calls, "calls of bpf_landlock_fs_beneath")

	want := map[int16]asm.Size{CtxOffSyscallNr: asm.Word, CtxOffArg1: asm.DWord, CtxOffArg2: asm.DWord}
	got := map[int16]asm.Size{}
	for _, ins := range insns {
		if ins.OpCode.Class() == asm.LdXClass && ins.Src == asm.R6 {
			got[ins.Offset] = ins.OpCode.Size()
		}
	}
	assert.Equal(t, want, got, "context reads")
}
