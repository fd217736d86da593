package cgroupmgr

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// markerRecorder is a Landlock program that allows everything and logs
// the context of every action on the marker (arg1 == its inode) into an
// array map: landlockbpf.HookRecorderInsns behind an inode test.
type markerRecorder struct {
	prog     *ebpf.Program
	ctl, log *ebpf.Map
}

func newMarkerRecorder(t *testing.T, ino uint64) *markerRecorder {
	t.Helper()
	r := &markerRecorder{}
	var err error
	r.ctl, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	require.NoError(t, err)
	t.Cleanup(func() { r.ctl.Close() })
	r.log, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: landlockbpf.HookRecordCap})
	require.NoError(t, err)
	t.Cleanup(func() { r.log.Close() })
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, landlockbpf.CtxOffArg1, asm.DWord),
		asm.LoadImm(asm.R3, int64(ino), asm.DWord),
		asm.JNE.Reg(asm.R2, asm.R3, "not_marker"),
	}
	insns = append(insns, landlockbpf.HookRecorderInsns(r.ctl.FD(), r.log.FD())...)
	insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("not_marker"), asm.Return())
	r.prog = load(t, insns)
	return r
}

// records returns what the program logged.
func (r *markerRecorder) records(t *testing.T) []landlockbpf.HookRecord {
	t.Helper()
	var n uint64
	require.NoError(t, r.ctl.Lookup(uint32(0), &n))
	require.LessOrEqual(t, n, uint64(landlockbpf.HookRecordCap), "more actions on the marker than the log holds")
	recs := make([]landlockbpf.HookRecord, n)
	for i := range recs {
		require.NoError(t, r.log.Lookup(uint32(i), &recs[i]))
	}
	return recs
}

// TestContext: a cgroup program sees, for each action, the context a
// seccomp rule sees for the same action (spec, "Version 2": "the same
// context"; run_rules passes one ctx to both): the same records, in the
// same order, for reading, writing, an ioctl and a flock of the marker,
// once from a task in the root cgroup under a recording rule, once from a
// task in A under a recording cgroup program. The records themselves are
// checked too: arch, event, arg1, and the ioctl's and the flock's
// syscall_nr, syscall_cmd and action.
func TestContext(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	fromRule := newMarkerRecorder(t, f.ino)
	fromCgroup := newMarkerRecorder(t, f.ino)
	attach(t, a, fromCgroup.prog, multi)
	ops := []string{"read=" + f.marker, "write=" + f.marker, "ioctl=" + f.marker, "flock=" + f.marker}

	ruleFile := []*os.File{dupFile(t, fromRule.prog.FD(), "rule")}
	assert.Equal(t, []string{"ok", "ok", "ok", "ok", "ok"}, f.startTask(t, nil, ruleFile, append([]string{"append"}, ops...)...).finish(t),
		"the operations under the recording rule")
	assert.Equal(t, []string{"ok", "ok", "ok", "ok"}, f.run(t, a, ops...), "the operations under the recording cgroup program")

	want := fromRule.records(t)
	got := fromCgroup.records(t)
	require.NotEmpty(t, want, "the rule saw no action on the marker")
	assert.Equal(t, want, got, "what the cgroup program saw, against what the seccomp rule saw")

	var ioctl, flock bool
	for _, r := range got {
		assert.Equal(t, landlockbpf.AuditArch(), r.Arch, "arch of %v (%s)", r, landlockbpf.AuditArchName())
		assert.Equal(t, uint32(landlockbpf.EventFS), r.Event, "event of %v", r)
		assert.Equal(t, f.ino, r.Arg1, "arg1 of %v", r)
		switch r.SyscallNr {
		case unix.SYS_IOCTL:
			if r.Arg2 == landlockbpf.ActionIoctl {
				ioctl = true
				assert.Equal(t, uint32(fionread), r.SyscallCmd, "syscall_cmd of the ioctl's IOCTL action")
			}
		case unix.SYS_FLOCK:
			if r.Arg2 == landlockbpf.ActionLock {
				flock = true
				assert.Contains(t, []uint32{unix.LOCK_SH, unix.LOCK_UN}, r.SyscallCmd, "syscall_cmd of flock's LOCK action")
			}
		}
	}
	assert.True(t, ioctl, "no IOCTL action of ioctl(2) on the marker in %v", got)
	assert.True(t, flock, "no LOCK action of flock(2) on the marker in %v", got)
}
