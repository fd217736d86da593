package landlockbpf

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestBPFAttrLayout: the raw bpf(2) attribute structs of cgroup.go have
// the offsets and sizes of the members of union bpf_attr they stand for.
// The expectations are counted by hand from include/uapi/linux/bpf.h of
// 6.12 (all fields __u32 unless said; __aligned_u64 and __u64 aligned on 8):
//
//   - "anonymous struct used by BPF_PROG_ATTACH/DETACH commands":
//     target_fd 0, attach_bpf_fd 4, attach_type 8, attach_flags 12,
//     replace_bpf_fd 16, relative_fd 20, expected_revision (__u64) 24;
//     32 bytes.
//   - query ("used by BPF_PROG_QUERY"): target_fd 0, attach_type 4,
//     query_flags 8, attach_flags 12, prog_ids 16, prog_cnt 24, __u32 :32
//     at 28, prog_attach_flags 32, link_ids 40, link_attach_flags 48,
//     revision 56; 64 bytes (__cgroup_bpf_query writes revision only when
//     the caller's size reaches offsetofend(query.revision) = 64).
//   - link_create: prog_fd 0, target_fd 4, attach_type 8, flags 12, then
//     the union at 16 (8-aligned: iter_info is __aligned_u64), whose
//     cgroup struct has relative_fd at 16 and expected_revision at 24;
//     the union's largest member, uprobe_multi (4 x 8 + 3 x 4 = 44,
//     rounded to 48), makes the member 64 bytes.
//   - link_update: link_fd 0, new_prog_fd 4, flags 8, old_prog_fd 12; 16.
//   - link_detach: link_fd 0; 4.
//   - "anonymous struct used by BPF_OBJ_* commands": pathname 0, bpf_fd
//     8, file_flags 12, path_fd (__s32) 16; 24 with the tail padding.
func TestBPFAttrLayout(t *testing.T) {
	type field struct {
		name      string
		got, want uintptr
	}
	var (
		pa ProgAttachAttr
		q  ProgQueryAttr
		lc LinkCreateAttr
		lu LinkUpdateAttr
		ld LinkDetachAttr
		op ObjPinAttr
	)
	for _, f := range []field{
		{"sizeof(prog attach/detach)", unsafe.Sizeof(pa), 32},
		{"target_fd", unsafe.Offsetof(pa.TargetFD), 0},
		{"attach_bpf_fd", unsafe.Offsetof(pa.AttachBPFFD), 4},
		{"attach_type", unsafe.Offsetof(pa.AttachType), 8},
		{"attach_flags", unsafe.Offsetof(pa.AttachFlags), 12},
		{"replace_bpf_fd", unsafe.Offsetof(pa.ReplaceBPFFD), 16},
		{"relative_fd", unsafe.Offsetof(pa.RelativeFDOrID), 20},
		{"expected_revision", unsafe.Offsetof(pa.ExpectedRevision), 24},

		{"sizeof(query)", unsafe.Sizeof(q), 64},
		{"query.target_fd", unsafe.Offsetof(q.TargetFD), 0},
		{"query.attach_type", unsafe.Offsetof(q.AttachType), 4},
		{"query.query_flags", unsafe.Offsetof(q.QueryFlags), 8},
		{"query.attach_flags", unsafe.Offsetof(q.AttachFlags), 12},
		{"query.prog_ids", unsafe.Offsetof(q.ProgIDs), 16},
		{"query.prog_cnt", unsafe.Offsetof(q.ProgCnt), 24},
		{"query.prog_attach_flags", unsafe.Offsetof(q.ProgAttachFlags), 32},
		{"query.link_ids", unsafe.Offsetof(q.LinkIDs), 40},
		{"query.link_attach_flags", unsafe.Offsetof(q.LinkAttachFlags), 48},
		{"query.revision", unsafe.Offsetof(q.Revision), 56},

		{"sizeof(link_create)", unsafe.Sizeof(lc), 64},
		{"link_create.prog_fd", unsafe.Offsetof(lc.ProgFD), 0},
		{"link_create.target_fd", unsafe.Offsetof(lc.TargetFD), 4},
		{"link_create.attach_type", unsafe.Offsetof(lc.AttachType), 8},
		{"link_create.flags", unsafe.Offsetof(lc.Flags), 12},
		{"link_create.cgroup.relative_fd", unsafe.Offsetof(lc.RelativeFDOrID), 16},
		{"link_create.cgroup.expected_revision", unsafe.Offsetof(lc.ExpectedRevision), 24},

		{"sizeof(link_update)", unsafe.Sizeof(lu), 16},
		{"link_update.link_fd", unsafe.Offsetof(lu.LinkFD), 0},
		{"link_update.new_prog_fd", unsafe.Offsetof(lu.NewProgFD), 4},
		{"link_update.flags", unsafe.Offsetof(lu.Flags), 8},
		{"link_update.old_prog_fd", unsafe.Offsetof(lu.OldProgFD), 12},

		{"sizeof(link_detach)", unsafe.Sizeof(ld), 4},
		{"link_detach.link_fd", unsafe.Offsetof(ld.LinkFD), 0},

		{"sizeof(obj pin/get)", unsafe.Sizeof(op), 24},
		{"pathname", unsafe.Offsetof(op.Pathname), 0},
		{"bpf_fd", unsafe.Offsetof(op.BPFFD), 8},
		{"file_flags", unsafe.Offsetof(op.FileFlags), 12},
		{"path_fd", unsafe.Offsetof(op.PathFD), 16},
	} {
		assert.Equal(t, f.want, f.got, f.name)
	}
}

// TestFDAttrClosed: a negative fd, which tests pass for "not open",
// reaches the kernel as an fd number no process has open.
func TestFDAttrClosed(t *testing.T) {
	assert.Equal(t, uint32(0xffffffff), fdAttr(-1))
	assert.Equal(t, uint32(7), fdAttr(7))
}

// TestCgroupHierarchyName: the name is one path component, and the same
// for a given test and pid.
func TestCgroupHierarchyName(t *testing.T) {
	t.Run("a/b c", func(t *testing.T) {
		n := CgroupHierarchyName(t, 42)
		assert.Equal(t, "landlock-vmtest-42-TestCgroupHierarchyName_a_b_c", n)
		assert.Equal(t, n, CgroupHierarchyName(t, 42))
		assert.NotEqual(t, n, CgroupHierarchyName(t, 43))
	})
}
