package cgroupmgr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestExistingTask: a program attached to the cgroup of a task that is
// already running restricts it from its next action, and PROG_DETACH
// frees it from its next action (spec: "existing tasks included";
// __cgroup_bpf_attach updates the effective arrays before it returns and
// the hook reads task_dfl_cgroup(current) at every action;
// __cgroup_bpf_detach likewise). The program is on the parent A of the
// task's cgroup B, so that the inherited array is what changes.
func TestExistingTask(t *testing.T) {
	f := newFixture(t)
	for _, on := range []string{"B", "A"} {
		t.Run("attached_to_"+on, func(t *testing.T) {
			a := f.top.Mkdir(t, "A-"+on)
			b := a.Mkdir(t, "B")
			target := map[string]*landlockbpf.Cgroup{"A": a, "B": b}[on]
			deny := f.prog(t, 1, landlockbpf.ActionWrite)
			w := "write=" + f.marker

			tk := f.startTask(t, b, nil, w, "wait", w, "read="+f.marker, "wait", w)
			require.Equal(t, "ok", tk.result(t), "writing before the attach")
			assert.Equal(t, relCgroup(b), cgroupOf(t, tk.cmd.Process.Pid), "the helper's cgroup")

			attach(t, target, deny, multi)
			tk.resume(t)
			assert.Equal(t, []string{"ok", "EPERM", "ok"}, []string{tk.result(t), tk.result(t), tk.result(t)},
				"wait, then write and read once %s has a deny-WRITE program", on)

			require.NoError(t, landlockbpf.ProgDetach(target.FD, deny.FD(), attachType, 0), "PROG_DETACH")
			tk.resume(t)
			assert.Equal(t, []string{"ok", "ok"}, tk.finish(t), "wait, then write after the detach")
		})
	}
}

// TestMovedTask: a task moved into a cgroup below a program is restricted
// from its next action; moved back to the root cgroup, it is free again
// (spec: "A task moved into a cgroup is restricted from its next action;
// moved out, it is no longer restricted"; the cgroup core moves the
// task's css_set in cgroup_migrate).
func TestMovedTask(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	b := a.Mkdir(t, "B")
	attach(t, a, f.prog(t, 1, landlockbpf.ActionWrite), multi)
	w := "write=" + f.marker
	root := &landlockbpf.Cgroup{Path: landlockbpf.CgroupRoot}

	tk := f.startTask(t, nil, nil, w, "wait", w, "wait", w)
	pid := tk.cmd.Process.Pid
	assert.Equal(t, "ok", tk.result(t), "writing in the root cgroup")

	require.NoError(t, b.AddProc(pid), "moving the helper into A/B")
	assert.Equal(t, relCgroup(b), cgroupOf(t, pid))
	tk.resume(t)
	assert.Equal(t, []string{"ok", "EPERM"}, []string{tk.result(t), tk.result(t)}, "wait, then write in A/B")

	require.NoError(t, root.AddProc(pid), "moving the helper back to the root cgroup")
	assert.Equal(t, "/", cgroupOf(t, pid))
	tk.resume(t)
	assert.Equal(t, []string{"ok", "ok"}, tk.finish(t), "wait, then write back in the root cgroup")
}

// TestForkedTask: a child that a task of B forks (and that executes a
// program) is in B too and restricted like it (cgroup membership is
// inherited at fork: cgroup_post_fork), for the denied action only.
func TestForkedTask(t *testing.T) {
	f := newFixture(t)
	b := f.top.Mkdir(t, "B")
	attach(t, b, f.prog(t, 1, landlockbpf.ActionWrite), multi)
	assert.Equal(t, []string{"EPERM", "ok", "EPERM"},
		f.run(t, b, "spawn=write="+f.marker, "spawn=read="+f.marker, "write="+f.marker),
		"a child of a task of B writes, reads; the task writes")
	assert.Equal(t, []string{"ok", "ok"}, f.run(t, nil, "spawn=write="+f.marker, "write="+f.marker),
		"the same from the root cgroup")
}
