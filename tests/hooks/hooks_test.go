// Package hooks checks, in the guest, every row of the hook table of the
// Landlock eBPF ABI (version 1): an operation that goes through the hook
// is denied with EPERM when a rule denies the row's action, and allowed
// when the rules allow it; and a recording rule sees the object's inode
// number in arg1, the row's actions in arg2, the command in syscall_cmd,
// and the system call the operation made: its number (unix.SYS_* of the
// test binary's GOARCH) and arch (landlockbpf.AuditArch:
// AUDIT_ARCH_X86_64 on amd64, AUDIT_ARCH_AARCH64 on arm64).
//
// Each case runs in a child process of the test binary (privdrop.Run,
// keeping root), in phases; each phase sets up a fresh directory, appends
// one rule and runs the operation on a goroutine locked to a thread of its
// own (landlockbpf.RunOnRuleThread), so that the phases do not see each
// other's rules:
//
//   - record: the recording rule, which allows everything;
//   - unrelated: a rule denying only actions the operation does not use;
//   - deny: for each mask of the case, a rule denying it (DenyActions);
//   - deny on: for each object and mask of denyOn, a rule denying the
//     mask on that object alone (DenyActionsOn), built once the setup
//     has made the object;
//   - permit: for each mask the operation must not report, a rule denying
//     it.
//
// From ABI version 4 on, TestHookTableUnprivileged (unpriv_test.go) runs
// the table again as nobody with no_new_privs, each rule loaded after the
// drop; the cases whose operation itself needs a privilege say there what
// an unprivileged task gets instead.
package hooks

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// keepRoot runs the scenarios as root with every capability: appending a
// rule needs CAP_SYS_ADMIN in version 1, and the mount cases need it too.
var keepRoot = privdrop.Privs{UID: privdrop.Keep, GID: privdrop.Keep}

func TestHookTable(t *testing.T) {
	if why := ll.SkipUnlessSupported(1); why != "" {
		t.Skip(why)
	}
	runHookTable(t, hookCases, func(t *testing.T, scenario func(t *testing.T)) {
		privdrop.Run(t, keepRoot, scenario)
	})
}

// runHookTable runs each case of cases, grouped by hook, as a subtest
// hook/name, its phases in a child process that run starts (privdrop.Run
// with the privileges it chooses).
func runHookTable(t *testing.T, cases []hookCase, run func(t *testing.T, scenario func(t *testing.T))) {
	var hooks []string
	byHook := map[string][]hookCase{}
	for _, c := range cases {
		if _, ok := byHook[c.hook]; !ok {
			hooks = append(hooks, c.hook)
		}
		byHook[c.hook] = append(byHook[c.hook], c)
	}
	for _, hook := range hooks {
		t.Run(hook, func(t *testing.T) {
			for _, c := range byHook[hook] {
				t.Run(c.name, func(t *testing.T) {
					if c.skip != "" {
						t.Skip(c.skip)
					}
					if why := ll.SkipUnlessSupported(c.since); c.since > 1 && why != "" {
						t.Skipf("the case is of ABI version %d: %s", c.since, why)
					}
					run(t, func(t *testing.T) { runCase(t, c) })
				})
			}
		})
	}
}

// TestHookTableCoversTheSpec checks that the table has a case for every
// LSM hook of the spec's hook table (version 1).
func TestHookTableCoversTheSpec(t *testing.T) {
	spec := []string{
		"file_open", "file_receive",
		"inode_permission", "file_permission",
		"inode_create", "inode_mkdir", "inode_symlink", "inode_mknod",
		"inode_link",
		"inode_unlink", "inode_rmdir",
		"inode_rename",
		"inode_readlink", "inode_follow_link", "inode_getattr", "inode_getxattr", "inode_listxattr", "sb_statfs",
		"inode_setattr", "inode_setxattr", "inode_removexattr", "path_truncate", "file_truncate",
		"sb_mount", "sb_remount", "sb_umount", "sb_pivotroot",
		"file_ioctl", "file_ioctl_compat", "file_lock", "file_fcntl",
		"mmap_file", "file_mprotect",
		"inode_set_acl", "inode_get_acl", "inode_remove_acl",
		"move_mount",
	}
	have := map[string]bool{}
	names := map[string]bool{}
	for _, c := range hookCases {
		have[c.hook] = true
		id := c.hook + "/" + c.name
		assert.False(t, names[id], "two cases are called %s", id)
		names[id] = true
		if c.skip != "" {
			continue
		}
		assert.NotNil(t, c.op, "%s: no operation", id)
		assert.True(t, c.none != (len(c.want) > 0), "%s: a case either reports actions (want) or none", id)
		assert.True(t, c.none || len(c.deny)+len(c.denyOn) > 0, "%s: nothing to deny", id)
	}
	for _, h := range spec {
		assert.True(t, have[h], "no case for the hook %s", h)
	}
}

// phaseResult is what a phase brings back from its rule thread.
type phaseResult struct {
	env       *env
	setupErr  error
	ruleErr   error
	appendErr error
	opErr     error
	records   []ll.HookRecord
	seen      int
	recordErr error
}

// phaseRule gives the rule of a phase, once the setup has run: most rules
// are loaded beforehand (fixed), a rule about one object needs the inode
// number the setup recorded (ruleOn).
type phaseRule func(e *env) (*ebpf.Program, error)

func fixed(prog *ebpf.Program) phaseRule {
	return func(*env) (*ebpf.Program, error) { return prog, nil }
}

// ruleOn loads a rule denying d.actions on the object d.obj alone; the
// phase closes it when it ends.
func ruleOn(d denial) phaseRule {
	return func(e *env) (*ebpf.Program, error) {
		ino, ok := e.ino[d.obj]
		if !ok {
			return nil, fmt.Errorf("the case names an object %q its setup did not make", d.obj)
		}
		prog, err := ll.Load(ll.DenyActionsOn(ino, int32(d.actions)))
		if err != nil {
			return nil, err
		}
		e.undo = append(e.undo, func() { prog.Close() })
		return prog, nil
	}
}

// runPhase runs one phase of c in the new directory dir: setup, then the
// rule appended, then the operation (recorded by rec if not nil), all on
// one new thread that ends with the phase.
func runPhase(dir string, c hookCase, rule phaseRule, rec *ll.HookRecorder) (r phaseResult) {
	ll.RunOnRuleThread(func() {
		e := newEnv(dir)
		if c.xattr != "" {
			e.xattr = c.xattr
		}
		r.env = e
		defer e.close()
		if c.setup != nil {
			c.setup(e)
		}
		if e.err != nil {
			r.setupErr = e.err
			return
		}
		prog, err := rule(e)
		if err != nil {
			r.ruleErr = err
			return
		}
		if err := ll.Append(prog); err != nil {
			r.appendErr = err
			return
		}
		if rec != nil {
			if err := rec.Start(); err != nil {
				r.recordErr = err
				return
			}
		}
		r.opErr = c.op(e)
		if rec != nil {
			r.records, r.seen, r.recordErr = rec.Stop()
		}
	})
	return r
}

// ready fails t unless the phase got as far as the operation.
func (r phaseResult) ready(t *testing.T) {
	t.Helper()
	require.NoError(t, r.setupErr, "setup, before the rule")
	require.NoError(t, r.ruleErr, "making the rule")
	require.NoError(t, r.appendErr, "appending the rule")
	require.NoError(t, r.recordErr, "recorder")
}

// deniedErr is the error op must give when a rule denies it.
func (c hookCase) deniedErr() error {
	if c.denied == nil {
		return unix.EPERM
	}
	return c.denied
}

// allowedErr is the error op must give when the rules allow it.
func (c hookCase) allowedErr(e *env) error {
	if c.allowed == nil {
		return nil
	}
	return c.allowed(e)
}

func checkAllowed(t *testing.T, c hookCase, r phaseResult, why string) {
	t.Helper()
	want := c.allowedErr(r.env)
	if want == nil {
		assert.NoError(t, r.opErr, "%s must be allowed %s", c.name, why)
		return
	}
	t.Logf("without the rules, %s fails with %v (the file system's own answer, or a missing capability's): allowed %s, it must fail with that", c.name, want, why)
	assert.ErrorIs(t, r.opErr, want, "%s allowed %s: the answer without the rules", c.name, why)
}

// load loads insns as a rule, failing t otherwise.
func load(t *testing.T, what string, insns asm.Instructions) *ebpf.Program {
	t.Helper()
	prog, err := ll.Load(insns)
	require.NoError(t, err, "loading %s", what)
	t.Cleanup(func() { prog.Close() })
	return prog
}

// runCase runs every phase of c, in the child process.
func runCase(t *testing.T, c hookCase) {
	// Map some heap now, so that the phases allocate from memory Go has
	// already mapped: on a thread whose rule denies READ, even an
	// anonymous mmap(PROT_READ) of the runtime is denied.
	runtime.KeepAlive(make([]byte, 32<<20))
	base := t.TempDir()
	phase := 0
	dir := func() string {
		phase++
		return filepath.Join(base, fmt.Sprintf("phase%d", phase))
	}

	reached := true
	t.Run("record", func(t *testing.T) {
		rec, err := ll.NewHookRecorder()
		require.NoError(t, err)
		defer rec.Close()
		r := runPhase(dir(), c, fixed(rec.Prog), rec)
		r.ready(t)
		reached = checkRecords(t, c, r)
		if !reached {
			t.Skipf("%s fails with %v before any rule runs: the file system cannot do it "+
				"(xattrs on tmpfs need CONFIG_TMPFS_XATTR), so the hook is never reached", c.name, r.opErr)
		}
		checkAllowed(t, c, r, "by the recording rule")
	})

	t.Run("unrelated", func(t *testing.T) {
		mask := c.unrelated()
		if mask == 0 {
			t.Skip("the case uses every action of ioctl, lock and fcntl")
		}
		r := runPhase(dir(), c, fixed(load(t, "the unrelated rule", ll.DenyActions(int32(mask)))), nil)
		r.ready(t)
		checkAllowed(t, c, r, fmt.Sprintf("by a rule denying only %s", actionNames(mask)))
	})

	for _, mask := range c.deny {
		t.Run("deny_"+actionNames(mask), func(t *testing.T) {
			if !reached {
				t.Skip("the operation fails before the hook: nothing to deny")
			}
			r := runPhase(dir(), c, fixed(load(t, "the deny rule", ll.DenyActions(int32(mask)))), nil)
			r.ready(t)
			assert.ErrorIs(t, r.opErr, c.deniedErr(), "%s under a rule denying %s", c.name, actionNames(mask))
		})
	}
	for _, d := range c.denyOn {
		t.Run("deny_"+actionNames(d.actions)+"_on_"+strings.ReplaceAll(d.obj, "/", "_"), func(t *testing.T) {
			if !reached {
				t.Skip("the operation fails before the hook: nothing to deny")
			}
			r := runPhase(dir(), c, ruleOn(d), nil)
			r.ready(t)
			assert.ErrorIs(t, r.opErr, c.deniedErr(), "%s under a rule denying %s on %s (inode %d) only",
				c.name, actionNames(d.actions), d.obj, r.env.ino[d.obj])
		})
	}
	for _, mask := range c.permit {
		t.Run("permit_"+actionNames(mask), func(t *testing.T) {
			r := runPhase(dir(), c, fixed(load(t, "the rule", ll.DenyActions(int32(mask)))), nil)
			r.ready(t)
			checkAllowed(t, c, r, fmt.Sprintf("by a rule denying %s, which it does not use", actionNames(mask)))
		})
	}
}

// checkRecords checks what the recording rule saw against c.want, and
// reports whether the rules saw the operation's system call at all.
func checkRecords(t *testing.T, c hookCase, r phaseResult) bool {
	t.Helper()
	var log strings.Builder
	for i, rec := range r.records {
		fmt.Fprintf(&log, "\n  %2d %v", i, rec)
	}
	t.Logf("the recording rule saw %d actions (objects: %s):%s", r.seen, inodes(r.env), log.String())
	require.LessOrEqual(t, r.seen, ll.HookRecordCap, "more actions than the recorder keeps")

	ofOp := 0
	for _, rec := range r.records {
		assert.EqualValues(t, ll.AuditArch(), rec.Arch, "arch of %v: want %s", rec, ll.AuditArchName())
		assert.EqualValues(t, ll.EventFS, rec.Event, "event of %v", rec)
		if uintptr(rec.SyscallNr) == c.nr {
			ofOp++
		}
	}
	if c.none {
		assert.Zero(t, ofOp, "the rules ran during %s (system call %d), which reports no action", c.name, c.nr)
		return true
	}
	if ofOp == 0 && c.allowedErr(r.env) != nil && r.opErr != nil {
		return false
	}
	abi, err := ll.KernelABIVersion()
	require.NoError(t, err, "the ABI version")
	for _, w := range c.want {
		if w.since > abi {
			t.Logf("not checked on ABI version %d: arg1=%s arg2=%s, a run of version %d", abi, objName(w.obj), actionNames(w.actions), w.since)
			continue
		}
		ino := objIno(t, r.env, w.obj)
		times := max(w.times, 1)
		n := 0
		for _, rec := range r.records {
			if rec.Arg1 == ino && rec.Arg2 == w.actions && rec.SyscallCmd == w.cmd && uintptr(rec.SyscallNr) == c.nr {
				n++
			}
		}
		assert.GreaterOrEqual(t, n, times,
			"want %d action(s) arg1=%d (%s) arg2=%#x (%s) syscall_cmd=%#x syscall_nr=%d, seen %d",
			times, ino, objName(w.obj), w.actions, actionNames(w.actions), w.cmd, c.nr, n)
	}
	for _, l := range c.limits {
		ino := objIno(t, r.env, l.obj)
		n := 0
		for _, rec := range r.records {
			if rec.Arg1 == ino && rec.Arg2&l.actions != 0 && uintptr(rec.SyscallNr) == c.nr {
				n++
			}
		}
		assert.LessOrEqual(t, n, l.most,
			"want at most %d action(s) arg1=%d (%s) with arg2 in %#x (%s) syscall_nr=%d, seen %d",
			l.most, ino, objName(l.obj), l.actions, actionNames(l.actions), c.nr, n)
	}
	return true
}

// objIno is the arg1 of the object obj of e: its inode number, 0 for "".
func objIno(t *testing.T, e *env, obj string) uint64 {
	t.Helper()
	if obj == "" {
		return 0
	}
	ino, ok := e.ino[obj]
	require.True(t, ok, "the case names an object %q its setup did not make", obj)
	return ino
}

func objName(obj string) string {
	if obj == "" {
		return "no object: a new entry"
	}
	return obj
}

func inodes(e *env) string {
	var parts []string
	for name, ino := range e.ino {
		parts = append(parts, fmt.Sprintf("%s=%d", name, ino))
	}
	return strings.Join(parts, " ")
}

// actionNames names the actions of mask, e.g. "READ|GET".
func actionNames(mask uint64) string {
	if mask == actAll {
		return "ALL"
	}
	var names []string
	for _, a := range []struct {
		bit  uint64
		name string
	}{
		{actExec, "EXEC"}, {actWrite, "WRITE"}, {actRead, "READ"}, {actNew, "NEW"}, {actGet, "GET"},
		{actRemove, "REMOVE"}, {actIoctl, "IOCTL"}, {actLock, "LOCK"}, {actFcntl, "FCNTL"},
	} {
		if mask&a.bit != 0 {
			names = append(names, a.name)
			mask &^= a.bit
		}
	}
	if mask != 0 {
		names = append(names, fmt.Sprintf("%#x", mask))
	}
	if len(names) == 0 {
		return "NONE"
	}
	return strings.Join(names, "|")
}

func TestActionNames(t *testing.T) {
	for mask, want := range map[uint64]string{
		0: "NONE", actRead | actGet: "READ|GET", actAll: "ALL", actFcntl | 1<<12: "FCNTL|0x1000",
	} {
		assert.Equal(t, want, actionNames(mask))
	}
	assert.Equal(t, uint64(actLock|actFcntl), hookCase{want: []seen{{actions: actIoctl}}}.unrelated())
	assert.Equal(t, uint64(actIoctl|actLock|actFcntl), hookCase{want: []seen{{actions: actRead}}}.unrelated())
	assert.Equal(t, uint64(actIoctl|actFcntl), hookCase{denyOn: []denial{{obj: "f", actions: actLock}}}.unrelated())
}

// TestACLXattr checks the ACL blob against the xattr format: a version 2
// header, then five 8-byte entries in the order posix_acl_valid wants.
func TestACLXattr(t *testing.T) {
	b := aclXattr()
	require.Len(t, b, 4+5*8)
	assert.Equal(t, []byte{2, 0, 0, 0}, b[:4])
	var tags []uint16
	for i := 4; i < len(b); i += 8 {
		tags = append(tags, binary.LittleEndian.Uint16(b[i:]))
	}
	assert.Equal(t, []uint16{0x01, 0x02, 0x04, 0x10, 0x20}, tags)
	assert.EqualValues(t, aclUID, binary.LittleEndian.Uint32(b[4+8+4:]), "the id of the ACL_USER entry")
}
