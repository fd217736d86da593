package seccompentry

// Version 5, rule triggers (an addition of issue 12, which the spec is to
// record): seccomp(SECCOMP_APPEND_LANDLOCK_RULE,
// SECCOMP_LANDLOCK_RULE_TRIGGERS, &attr) appends attr.prog_fd as a rule
// that runs only on the actions that have a bit of attr.triggers; for the
// others it is not run, and allows. A rule appended with flags 0 runs on
// every action, as before.

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// skipUnlessTriggers skips t unless the kernel has rule triggers.
func skipUnlessTriggers(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessSupported(landlockbpf.TriggersABI); why != "" {
		t.Skip(why)
	}
}

// appendAttr calls seccomp(SECCOMP_APPEND_LANDLOCK_RULE, flags, attr).
func appendAttr(flags uintptr, attr *landlockbpf.RuleAttr) error {
	_, err := landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, flags, unsafe.Pointer(attr))
	return err
}

// triggersCall is one append with SECCOMP_LANDLOCK_RULE_TRIGGERS (or with
// the version flag too) and its expected outcome; attr nil is args NULL.
type triggersCall struct {
	name  string
	flags uintptr
	attr  *landlockbpf.RuleAttr
	want  error // nil: appends the rule
}

// triggersCalls are the rows around rule (a Landlock rule that allows
// everything); the last one, the only valid call, appends it.
func triggersCalls(t *testing.T, rule *ebpf.Program) []triggersCall {
	t.Helper()
	sockFilter, closed := notRules(t)
	closedFD := uint32(closed)

	fd := uint32(rule.FD())
	attr := func(progFD, flags uint32, triggers uint64) *landlockbpf.RuleAttr {
		return &landlockbpf.RuleAttr{ProgFD: progFD, Flags: flags, Triggers: triggers}
	}
	trig := uintptr(landlockbpf.SeccompLandlockRuleTriggers)
	both := trig | landlockbpf.SeccompLandlockABIVersion
	return []triggersCall{
		{"NULL", trig, nil, unix.EFAULT},
		{"version_flag_too_NULL", both, nil, unix.EINVAL},
		{"version_flag_too_valid_attr", both, attr(fd, 0, landlockbpf.ActionWrite), unix.EINVAL},
		{"no_trigger", trig, attr(fd, 0, 0), unix.EINVAL},
		{"unknown_action_bit_9", trig, attr(fd, 0, 1<<9), unix.EINVAL},
		{"write_and_bit_63", trig, attr(fd, 0, landlockbpf.ActionWrite|1<<63), unix.EINVAL},
		{"attr_flags_1", trig, attr(fd, 1, landlockbpf.ActionWrite), unix.EINVAL},
		{"attr_flags_bit_31", trig, attr(fd, 1<<31, landlockbpf.ActionWrite), unix.EINVAL},
		{fmt.Sprintf("fd_not_open_%d", closedFD), trig, attr(closedFD, 0, landlockbpf.ActionWrite), unix.EBADF},
		{"fd_socket_filter_program", trig, attr(uint32(sockFilter.FD()), 0, landlockbpf.ActionWrite), unix.EINVAL},
		{"every_action", trig, attr(fd, 0, landlockbpf.ActionsAll), nil},
	}
}

// TestTriggersTable makes each call of triggersCalls in a child, and then
// checks that only the valid one appended a rule: 63 more with triggers
// fill the domain, and the next gives E2BIG (triggered rules count towards
// the limit as any rule).
func TestTriggersTable(t *testing.T) {
	skipUnlessTriggers(t)
	privdrop.Run(t, keepRoot, triggersTableScenario)
}

func triggersTableScenario(t *testing.T) {
	rule := loadRule(t, landlockbpf.Allow)
	calls := triggersCalls(t, rule)
	got := make([]error, len(calls))
	var fill []error
	landlockbpf.OnLockedThread(func() {
		for i, c := range calls {
			if c.attr == nil {
				_, got[i] = landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, c.flags, nil)
				continue
			}
			got[i] = appendAttr(c.flags, c.attr)
		}
		for range landlockbpf.MaxRules {
			fill = append(fill, landlockbpf.AppendTriggered(rule, landlockbpf.ActionWrite))
		}
	})
	for i, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				assert.NoError(t, got[i], "appending a rule with triggers %#x", c.attr.Triggers)
				return
			}
			assert.ErrorIs(t, got[i], c.want, "seccomp(SECCOMP_APPEND_LANDLOCK_RULE, %#x, %+v)", c.flags, c.attr)
		})
	}
	for i, err := range fill[:landlockbpf.MaxRules-1] {
		assert.NoError(t, err, "append #%d after the table (rule %d of the domain)", i+1, i+2)
	}
	assert.ErrorIs(t, fill[landlockbpf.MaxRules-1], unix.E2BIG, "the 65th rule")
}

// TestTriggersPrivilege: an append with triggers needs what any append
// needs: nobody without no_new_privs gets EPERM, with it the rule is
// appended (version 4's unprivileged mode).
func TestTriggersPrivilege(t *testing.T) {
	skipUnlessTriggers(t)
	landlockbpf.SkipUnlessUnprivileged(t)
	landlockbpf.AllowUnprivilegedBPF(t)
	for _, p := range []struct {
		privs privdrop.Privs
		want  error
	}{
		{privdrop.Nobody(), unix.EPERM},
		{privdrop.Nobody().WithNoNewPrivs(), nil},
	} {
		t.Run(p.privs.String(), func(t *testing.T) {
			privdrop.Run(t, p.privs, func(t *testing.T) {
				rule := loadRule(t, landlockbpf.Allow)
				var err error
				landlockbpf.OnLockedThread(func() { err = landlockbpf.AppendTriggered(rule, landlockbpf.ActionWrite) })
				if p.want == nil {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, p.want)
				}
			})
		})
	}
}

// triggersWorkload does, relative to the directory fd dirFD, actions that
// the hooks report with every action bit: a file created, opened for
// reading and writing, written, read, stat'ed, ioctl'ed, locked,
// fcntl'ed, mapped readable and executable, then removed. It returns the
// first error.
func triggersWorkload(dirFD int) error {
	fd, err := unix.Openat(dirFD, "file", unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("openat(O_CREAT): %w", err)
	}
	defer unix.Close(fd)
	steps := []struct {
		name string
		do   func() error
	}{
		{"write", func() error { _, err := unix.Pwrite(fd, []byte("x"), 0); return err }},
		{"read", func() error { _, err := unix.Pread(fd, make([]byte, 1), 0); return err }},
		{"fstatat", func() error { var st unix.Stat_t; return unix.Fstatat(dirFD, "file", &st, 0) }},
		{"ioctl(FIONREAD)", func() error { _, err := unix.IoctlGetInt(fd, unix.TIOCINQ); return err }},
		{"flock", func() error { return unix.Flock(fd, unix.LOCK_SH) }},
		{"fcntl(F_SETFD)", func() error { _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); return err }},
		{"mmap(PROT_READ|PROT_EXEC)", func() error {
			m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
			if err != nil {
				return err
			}
			return unix.Munmap(m)
		}},
		{"unlinkat", func() error { return unix.Unlinkat(dirFD, "file", 0) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// TestTriggersRunOnlyOnTheirActions: two recording rules, one appended the
// version-1 way and one with triggers T, see the same workload; the second
// must have run exactly on the actions of the first whose arg2 has a bit
// of T, in the same order, and seen them whole (the same arg1 and arg2).
// For each action bit alone, two of them together, and all of them.
func TestTriggersRunOnlyOnTheirActions(t *testing.T) {
	skipUnlessTriggers(t)
	triggerSets := []uint64{}
	for bit := range 9 {
		triggerSets = append(triggerSets, 1<<bit)
	}
	triggerSets = append(triggerSets, landlockbpf.ActionWrite|landlockbpf.ActionNew, landlockbpf.ActionsAll)
	for _, trig := range triggerSets {
		t.Run(fmt.Sprintf("triggers_%#x", trig), func(t *testing.T) {
			privdrop.Run(t, keepRoot, func(t *testing.T) { triggersRecordScenario(t, trig) })
		})
	}
}

func triggersRecordScenario(t *testing.T, trig uint64) {
	all, err := landlockbpf.NewHookRecorder()
	require.NoError(t, err)
	t.Cleanup(all.Close)
	some, err := landlockbpf.NewHookRecorder()
	require.NoError(t, err)
	t.Cleanup(some.Close)
	dir := t.TempDir()
	dirFD, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(dirFD) })

	var appendErr, workErr, startErr error
	landlockbpf.OnLockedThread(func() {
		if appendErr = landlockbpf.Append(all.Prog); appendErr != nil {
			return
		}
		if appendErr = landlockbpf.AppendTriggered(some.Prog, trig); appendErr != nil {
			return
		}
		if startErr = all.Start(); startErr == nil {
			startErr = some.Start()
		}
		workErr = triggersWorkload(dirFD)
	})
	require.NoError(t, appendErr)
	require.NoError(t, startErr)
	require.NoError(t, workErr, "the workload in %s (every rule allows)", filepath.Base(dir))
	// Stop the second first: the first must not see the second's map
	// updates (they run on the thread that is gone, so nothing runs).
	someRecs, someN, err := some.Stop()
	require.NoError(t, err)
	allRecs, allN, err := all.Stop()
	require.NoError(t, err)
	require.Less(t, allN, landlockbpf.HookRecordCap, "the workload must fit the recorder's log")

	var want []landlockbpf.HookRecord
	var seen uint64
	for _, r := range allRecs {
		seen |= r.Arg2
		if r.Arg2&trig != 0 {
			want = append(want, r)
		}
	}
	// The workload reaches every action, so each trigger set has runs.
	require.Equal(t, uint64(landlockbpf.ActionsAll), seen, "the actions the workload reaches (arg2 of the rule appended without triggers)")
	assert.Equal(t, len(want), someN, "runs of the rule with triggers %#x (the other rule ran %d times)", trig, allN)
	assert.True(t, slices.Equal(want, someRecs), "what the rule with triggers %#x saw:\n got %v\nwant %v", trig, someRecs, want)
}

// TestTriggersOfEachRuleReachTheChildren: the triggers a thread's rules
// have are those of every rule it appended, and its children (forked, and
// forked and executed) have the same. A rule denying the open of A,
// appended with WRITE as its trigger, never runs on an open for reading:
// A opens, in the thread and in its children. A second rule denying the
// open of B, appended with GET as its trigger, runs from then on: B no
// longer opens, in the thread and in the children it starts afterwards,
// and A still does.
func TestTriggersOfEachRuleReachTheChildren(t *testing.T) {
	skipUnlessTriggers(t)
	privdrop.Run(t, keepRoot, triggersReachTheChildrenScenario)
}

// triggersReachTheChildrenScenario is
// TestTriggersOfEachRuleReachTheChildren's scenario.
func triggersReachTheChildrenScenario(t *testing.T) {
	dir := t.TempDir()
	a, b := writeFile(t, dir, "a"), writeFile(t, dir, "b")
	inoA, inoB := inodeOf(t, a), inodeOf(t, b)
	requireDistinctInode(t, inoA, executable(t), "/dev/null", b)
	requireDistinctInode(t, inoB, executable(t), "/dev/null", a)
	denyA := loadRule(t, landlockbpf.DenyActionsOn(inoA, landlockbpf.ActionGet))
	denyB := loadRule(t, landlockbpf.DenyActionsOn(inoB, landlockbpf.ActionGet))

	type outcome struct{ a, b error }
	first := make([]outcome, len(openers))
	both := make([]outcome, len(openers))
	var firstErr, secondErr error
	landlockbpf.OnLockedThread(func() {
		if firstErr = landlockbpf.AppendTriggered(denyA, landlockbpf.ActionWrite); firstErr != nil {
			return
		}
		for i, o := range openers {
			first[i] = outcome{o.open(a), o.open(b)}
		}
		if secondErr = landlockbpf.AppendTriggered(denyB, landlockbpf.ActionGet); secondErr != nil {
			return
		}
		for i, o := range openers {
			both[i] = outcome{o.open(a), o.open(b)}
		}
	})
	require.NoError(t, firstErr, "the rule denying A, triggered by WRITE")
	for i, o := range openers {
		assert.NoError(t, first[i].a, "open of A for reading %s: its rule is triggered by WRITE only", o.how)
		assert.NoError(t, first[i].b, "open of B %s, before B's rule", o.how)
	}
	require.NoError(t, secondErr, "the rule denying B, triggered by GET")
	for i, o := range openers {
		assert.NoError(t, both[i].a, "open of A for reading %s, with B's rule too", o.how)
		assert.ErrorIs(t, both[i].b, unix.EPERM, "open of B %s: B's rule is triggered by GET", o.how)
	}
}
