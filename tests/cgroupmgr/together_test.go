package cgroupmgr

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestRuleAndCgroupProgram: a task is checked against its own domain
// (the seccomp rule, deny-READ of the marker) and against the effective
// programs of its cgroup (deny-WRITE on A/B); any deny denies (spec,
// "Version 2": "Any deny denies"). Each alone denies only its action, and
// a task of the sibling A/C, with neither, is free.
func TestRuleAndCgroupProgram(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	b := a.Mkdir(t, "B")
	c := a.Mkdir(t, "C")
	attach(t, b, f.prog(t, 1, landlockbpf.ActionWrite), multi)
	rule := load(t, landlockbpf.DenyActionsOn(f.ino, landlockbpf.ActionRead))
	files := []*os.File{dupFile(t, rule.FD(), "rule")}
	rw := f.readWrite()

	for _, tc := range []struct {
		name     string
		cg       *landlockbpf.Cgroup
		withRule bool
		want     []string
	}{
		{"rule_in_B", b, true, []string{"ok", "EPERM", "EPERM"}},
		{"no_rule_in_B", b, false, writeDenied},
		{"rule_in_root", nil, true, []string{"ok", "EPERM", "ok"}},
		{"no_rule_in_sibling_C", c, false, bothAllowed},
		{"no_rule_in_A", a, false, bothAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := rw
			var fds []*os.File
			if tc.withRule {
				steps = append([]string{"append"}, rw...)
				fds = files
			}
			assert.Equal(t, tc.want, f.startTask(t, tc.cg, fds, steps...).finish(t), "%q", steps)
		})
	}
}
