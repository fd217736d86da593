package seccompentry

// Version 4, nested domains: the rules a task appends after it inherited
// a domain form a new level on top of the inherited ones, shared by the
// tasks that inherit it and never copied; every level must allow; a
// level changes neither the task below it nor its siblings; the 64-rule
// limit counts the rules of every level; every rule of every level runs,
// root level first, even after a deny.
//
// Each case runs twice: as root (appends allowed by CAP_SYS_ADMIN) and as
// uid 65534 without any capability, with no_new_privs
// (landlockbpf.RunUnprivileged: the scenario loads its own programs after
// the drop, with kernel.unprivileged_bpf_disabled set to 0 by the root
// parent first).
//
// The levels need a line of processes, each forked by the one before, and
// each appending its own rules: the scenario's locked thread is the first
// (as in the other tests of the package), and the nesting helper below,
// which can start a helper of its own, gives the next two.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// The nesting helper: this test binary, executed again with nestHelperEnv
// set, runs the steps given as its arguments on its main thread, in order,
// and reports them as the package's helper does ("<step>\t<result>" a
// line, exit status helperOK, helperStepFailed or helperMisuse). It
// inherits rules at fds 3, 4, ...; nestRulesEnv names them, in that order,
// comma-separated. The steps:
//
//	append=NAME     append the rule NAME to its domain
//	append=NAME*K   append it K times; the result is the first failure's
//	child=S1;S2;... start a nesting helper of its own from its thread, with
//	                the same rules, running the steps S1, S2, ... (which
//	                cannot start helpers themselves), and wait for it; the
//	                result is the child's results joined with ";"
//	open=PATH       open PATH read-only
//	wait            read its standard input up to EOF
//
// TestMain (main_test.go) knows only the package's first helper, so this
// one is entered from init, before TestMain runs.
const (
	nestHelperEnv = "LANDLOCK_VMTEST_SECCOMPENTRY_NEST_HELPER"
	nestRulesEnv  = "LANDLOCK_VMTEST_SECCOMPENTRY_NEST_RULES"
	nestFirstFD   = 3
)

func init() {
	if os.Getenv(nestHelperEnv) == "1" {
		os.Exit(nestHelperMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
}

// nestHelperMain runs the nesting helper's steps.
func nestHelperMain(steps []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// The rules belong to the thread that appends them, and a child
	// inherits the domain of the thread that forks it: every step runs on
	// this one.
	runtime.LockOSThread()
	var names []string
	if v := os.Getenv(nestRulesEnv); v != "" {
		names = strings.Split(v, ",")
	}
	// The inherited rules, made Files once: a File closes its fd when it
	// is garbage-collected.
	files := make([]*os.File, len(names))
	for i, n := range names {
		files[i] = os.NewFile(uintptr(nestFirstFD+i), n)
	}
	defer runtime.KeepAlive(files)
	status := helperOK
	for _, step := range steps {
		res, err := nestHelperStep(step, names, files, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "nesting helper: step %q: %v\n", step, err)
			return helperMisuse
		}
		for _, r := range strings.Split(res, ";") {
			if r != "ok" {
				status = helperStepFailed
			}
		}
		fmt.Fprintf(stdout, "%s\t%s\n", step, res)
	}
	return status
}

// nestHelperStep runs one step and returns its result; an error means
// that the step could not be run at all.
func nestHelperStep(step string, names []string, files []*os.File, stdin io.Reader) (string, error) {
	what, arg, _ := strings.Cut(step, "=")
	switch what {
	case "append":
		name, count := arg, 1
		if n, k, ok := strings.Cut(arg, "*"); ok {
			c, err := strconv.Atoi(k)
			if err != nil || c < 1 {
				return "", fmt.Errorf("bad count %q", k)
			}
			name, count = n, c
		}
		i := nestRuleIndex(names, name)
		if i < 0 {
			return "", fmt.Errorf("no rule called %q (rules: %q)", name, names)
		}
		for range count {
			if _, err := appendFD(0, uint32(nestFirstFD+i)); err != nil {
				return landlockbpf.ResultName(err), nil
			}
		}
		return "ok", nil
	case "child":
		childSteps := strings.Split(arg, ";")
		h, err := startNestHelper(os.Environ(), files, nil, childSteps...)
		if err != nil {
			return "", err
		}
		_, res, err := h.wait()
		if err != nil {
			return "", err
		}
		return strings.Join(res, ";"), nil
	case "open":
		return landlockbpf.ResultName(openClose(arg)), nil
	case "wait":
		_, err := io.Copy(io.Discard, stdin)
		return landlockbpf.ResultName(err), nil
	}
	return "", fmt.Errorf("unknown step")
}

func nestRuleIndex(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

// startNestHelper starts a nesting helper with the environment env (plus
// nestHelperEnv), the rules files at fds 3, 4, ... and stdin, if not nil,
// as its standard input. It is a child of the calling thread, whose
// domain it inherits.
func startNestHelper(env []string, files []*os.File, stdin *os.File, steps ...string) (*helperProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	h := &helperProc{steps: steps, cmd: exec.Command(exe, steps...)}
	h.cmd.Env = append(env, nestHelperEnv+"=1")
	h.cmd.Stdout = &h.stdout
	h.cmd.Stderr = &h.stderr
	h.cmd.ExtraFiles = files
	if stdin != nil {
		h.cmd.Stdin = stdin
	}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the nesting helper %q: %w", steps, err)
	}
	return h, nil
}

// A nestRule is a rule a nesting helper can append, under its name.
type nestRule struct {
	name string
	prog *ebpf.Program
}

// nestRun is a nesting helper to be started by a scenario's thread.
type nestRun struct {
	rules []nestRule
	steps []nestStep
}

// start starts the helper from the calling thread, with stdin as its
// standard input if not nil.
func (r nestRun) start(stdin *os.File) (*helperProc, error) {
	names := make([]string, len(r.rules))
	files := make([]*os.File, len(r.rules))
	for i, rule := range r.rules {
		names[i] = rule.name
		fd, err := unix.FcntlInt(uintptr(rule.prog.FD()), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicating the fd of rule %s: %w", rule.name, err)
		}
		files[i] = os.NewFile(uintptr(fd), rule.name)
		defer files[i].Close()
	}
	env := append(os.Environ(), nestRulesEnv+"="+strings.Join(names, ","))
	return startNestHelper(env, files, stdin, nestArgs(r.steps)...)
}

// run starts the helper from the calling thread and waits for it.
func (r nestRun) run() ([]string, error) {
	h, err := r.start(nil)
	if err != nil {
		return nil, err
	}
	_, res, err := h.wait()
	return res, err
}

// A nestStep is a step of a nesting helper and the result its case
// expects, with what that result shows.
type nestStep struct {
	do    string     // the step, or "" for a child
	child []nestStep // the steps of a child helper started at this point
	want  string     // "ok" or an errno name (for a step, not a child)
	why   string
}

func nestOpen(path, want, why string) nestStep {
	return nestStep{do: "open=" + path, want: want, why: why}
}

func nestAppend(rule, want, why string) nestStep {
	return nestStep{do: "append=" + rule, want: want, why: why}
}

func nestAppendN(rule string, n int, want, why string) nestStep {
	return nestStep{do: fmt.Sprintf("append=%s*%d", rule, n), want: want, why: why}
}

func nestChild(steps ...nestStep) nestStep {
	return nestStep{child: steps}
}

func nestWait() nestStep {
	return nestStep{do: "wait", want: "ok", why: "reading its standard input"}
}

// nestArgs returns the helper arguments of steps.
func nestArgs(steps []nestStep) []string {
	args := make([]string, len(steps))
	for i, s := range steps {
		if s.child == nil {
			args[i] = s.do
			continue
		}
		sub := nestArgs(s.child)
		for _, c := range s.child {
			if c.child != nil {
				panic("a nesting helper's child cannot start a helper of its own")
			}
		}
		args[i] = "child=" + strings.Join(sub, ";")
	}
	return args
}

// checkNest asserts each result of a helper, who, against its steps.
func checkNest(t *testing.T, who string, steps []nestStep, results []string) {
	t.Helper()
	if !assert.Len(t, results, len(steps), "%s: results %q", who, results) {
		return
	}
	for i, s := range steps {
		if s.child != nil {
			checkNest(t, who+"'s child", s.child, strings.Split(results[i], ";"))
			continue
		}
		assert.Equal(t, s.want, results[i], "%s, step %q: %s", who, s.do, s.why)
	}
}

// nestFiles makes a file for each name in a directory of its own and
// returns their paths and, by the same names, the rules that deny opening
// each (GET on its inode), which helpers know as deny_NAME. Their inode
// numbers differ from each other's and from the files a helper needs.
func nestFiles(t *testing.T, names ...string) (paths map[string]string, deny map[string]nestRule) {
	t.Helper()
	dir := t.TempDir()
	paths = map[string]string{}
	deny = map[string]nestRule{}
	// The files the helpers need live on other file systems (the
	// initramfs, devtmpfs), whose inode numbers may be those of a new
	// file here: such a file is left aside and another one made.
	taken := map[uint64]string{}
	for _, o := range []string{executable(t), "/dev/null"} {
		taken[inodeOf(t, o)] = o
	}
	for _, n := range names {
		for try := 0; ; try++ {
			require.Less(t, try, 64, "no file for %s with an inode number of its own", n)
			p := writeFile(t, dir, fmt.Sprintf("%s.%d", n, try))
			ino := inodeOf(t, p)
			if _, ok := taken[ino]; ok {
				continue
			}
			taken[ino] = p
			paths[n] = p
			deny[n] = nestRule{"deny_" + n, loadRule(t, landlockbpf.DenyActionsOn(ino, landlockbpf.ActionGet))}
			break
		}
	}
	return paths, deny
}

// forEachNestingPrivilege runs scenario twice, in a child process each
// time: as root ("root", the appends allowed by CAP_SYS_ADMIN) and as uid
// 65534 without any capability, with no_new_privs ("nobody_no_new_privs",
// version 4's unprivileged appends). It skips below ABI version 4, which
// has no nested domains.
func forEachNestingPrivilege(t *testing.T, scenario func(t *testing.T)) {
	t.Helper()
	if why := landlockbpf.SkipUnlessSupported(4); why != "" {
		t.Skipf("nested domains are ABI version 4: %s", why)
	}
	t.Run("root", func(t *testing.T) { privdrop.Run(t, keepRoot, scenario) })
	t.Run("nobody_no_new_privs", func(t *testing.T) { landlockbpf.RunUnprivileged(t, scenario) })
}

// TestNestedParentLevelDenies: a level inherited from the parent denies
// what the child's own level allows: the child of a thread whose rule
// denies opening X appends an allow-all rule and is still denied X (EPERM);
// every level must allow.
func TestNestedParentLevelDenies(t *testing.T) {
	forEachNestingPrivilege(t, func(t *testing.T) {
		paths, deny := nestFiles(t, "x", "y")
		x, y := paths["x"], paths["y"]
		allow := nestRule{"allow", loadRule(t, landlockbpf.Allow)}
		child := nestRun{rules: []nestRule{allow}, steps: []nestStep{
			nestOpen(x, "EPERM", "X, denied by the parent's level"),
			nestOpen(y, "ok", "Y, which no level denies"),
			nestAppend("allow", "ok", "the child's own level: an allow-all rule"),
			nestOpen(x, "EPERM", "X again: the child's level allows it, the parent's still denies it, and every level must allow"),
			nestOpen(y, "ok", "Y again"),
		}}
		var appendErr, parentX, runErr error
		var res []string
		landlockbpf.OnLockedThread(func() {
			if appendErr = landlockbpf.Append(deny["x"].prog); appendErr != nil {
				return
			}
			parentX = openClose(x)
			res, runErr = child.run()
		})
		require.NoError(t, appendErr, "the parent appends the rule denying X")
		assert.ErrorIs(t, parentX, unix.EPERM, "the parent: X, denied by its own rule")
		require.NoError(t, runErr, "the child")
		checkNest(t, "the child", child.steps, res)
	})
}

// TestNestedLevelAffectsNeitherParentNorSiblings: a thread S denies X and
// starts two children; A appends a level denying Y while its sibling B is
// running: A is denied X and Y, B and S only X, and so is a child S starts
// afterwards.
func TestNestedLevelAffectsNeitherParentNorSiblings(t *testing.T) {
	forEachNestingPrivilege(t, func(t *testing.T) {
		paths, deny := nestFiles(t, "x", "y")
		x, y := paths["x"], paths["y"]
		sibling := nestRun{steps: []nestStep{
			nestWait(),
			nestOpen(x, "EPERM", "X, denied by the level it shares with S"),
			nestOpen(y, "ok", "Y: its sibling's level is not its own"),
		}}
		appender := nestRun{rules: []nestRule{deny["y"]}, steps: []nestStep{
			nestOpen(y, "ok", "Y, before its own level"),
			nestAppend("deny_y", "ok", "a level of its own, denying Y"),
			nestOpen(x, "EPERM", "X, denied by the inherited level"),
			nestOpen(y, "EPERM", "Y, denied by its own level"),
		}}
		later := nestRun{steps: []nestStep{
			nestOpen(x, "EPERM", "X, denied by the level inherited from S"),
			nestOpen(y, "ok", "Y: the level of a child S started earlier does not reach a later one"),
		}}
		var appendErr, setupErr, errB, errA, errLate, parentX, parentY error
		var resB, resA, resLate []string
		landlockbpf.OnLockedThread(func() {
			if appendErr = landlockbpf.Append(deny["x"].prog); appendErr != nil {
				return
			}
			r, w, err := os.Pipe()
			if err != nil {
				setupErr = err
				return
			}
			b, err := sibling.start(r)
			r.Close()
			if err != nil {
				w.Close()
				setupErr = err
				return
			}
			resA, errA = appender.run()
			w.Close() // B goes on once A has appended and ended
			_, resB, errB = b.wait()
			parentX, parentY = openClose(x), openClose(y)
			resLate, errLate = later.run()
		})
		require.NoError(t, appendErr, "S appends the rule denying X")
		require.NoError(t, setupErr)
		require.NoError(t, errA, "child A")
		require.NoError(t, errB, "child B")
		require.NoError(t, errLate, "the child S starts afterwards")
		checkNest(t, "child A", appender.steps, resA)
		checkNest(t, "child B, running while its sibling appended", sibling.steps, resB)
		assert.ErrorIs(t, parentX, unix.EPERM, "S: X, its own rule")
		assert.NoError(t, parentY, "S: Y, denied only by its child's level")
		checkNest(t, "the child S starts afterwards", later.steps, resLate)
	})
}

// TestNestedThreeLevels: a grandparent G denies A, its child P denies B,
// P's child C denies C: C is denied A, B and C, P only A and B (also after
// C appended), G only A.
func TestNestedThreeLevels(t *testing.T) {
	forEachNestingPrivilege(t, func(t *testing.T) {
		paths, deny := nestFiles(t, "a", "b", "c")
		a, b, c := paths["a"], paths["b"], paths["c"]
		seen := func(who string, wantA, wantB, wantC, why string) []nestStep {
			return []nestStep{
				nestOpen(a, wantA, who+": A "+why),
				nestOpen(b, wantB, who+": B "+why),
				nestOpen(c, wantC, who+": C "+why),
			}
		}
		var steps []nestStep
		steps = append(steps, seen("P", "EPERM", "ok", "ok", "with G's level only")...)
		steps = append(steps, nestAppend("deny_b", "ok", "P's level, denying B"))
		steps = append(steps, seen("P", "EPERM", "EPERM", "ok", "with G's and its own level")...)
		var child []nestStep
		child = append(child, seen("C", "EPERM", "EPERM", "ok", "with G's and P's levels")...)
		child = append(child, nestAppend("deny_c", "ok", "C's level, denying C"))
		child = append(child, seen("C", "EPERM", "EPERM", "EPERM", "with the three levels")...)
		steps = append(steps, nestChild(child...))
		steps = append(steps, seen("P", "EPERM", "EPERM", "ok", "after its child appended: C's level is not P's")...)
		p := nestRun{rules: []nestRule{deny["b"], deny["c"]}, steps: steps}

		var appendErr, runErr error
		var before, after [3]error
		var res []string
		landlockbpf.OnLockedThread(func() {
			if appendErr = landlockbpf.Append(deny["a"].prog); appendErr != nil {
				return
			}
			before = [3]error{openClose(a), openClose(b), openClose(c)}
			res, runErr = p.run()
			after = [3]error{openClose(a), openClose(b), openClose(c)}
		})
		require.NoError(t, appendErr, "G appends the rule denying A")
		require.NoError(t, runErr, "P")
		checkNest(t, "P", p.steps, res)
		for when, got := range map[string][3]error{"before its children": before, "after its children": after} {
			assert.ErrorIs(t, got[0], unix.EPERM, "G %s: A, its own level", when)
			assert.NoError(t, got[1], "G %s: B, denied only by its child's level", when)
			assert.NoError(t, got[2], "G %s: C, denied only by its grandchild's level", when)
		}
	})
}

// TestNestedParentAppendsAfterFork: a thread with a level denying Z starts
// a child W, then appends a rule denying X: W, which shares only the
// level it inherited, is denied Z and not X; W then appends a level
// denying Y, which the parent does not see. A child the parent starts
// afterwards is denied Z and X.
func TestNestedParentAppendsAfterFork(t *testing.T) {
	forEachNestingPrivilege(t, func(t *testing.T) {
		paths, deny := nestFiles(t, "x", "y", "z")
		x, y, z := paths["x"], paths["y"], paths["z"]
		w := nestRun{rules: []nestRule{deny["y"]}, steps: []nestStep{
			nestWait(),
			nestOpen(z, "EPERM", "Z, denied by the level inherited at the fork"),
			nestOpen(x, "ok", "X: the parent appended its rule after the fork, on a level of its own that W does not have"),
			nestAppend("deny_y", "ok", "W's own level, denying Y"),
			nestOpen(y, "EPERM", "Y, its own level"),
			nestOpen(x, "ok", "X, still not W's"),
			nestOpen(z, "EPERM", "Z, still inherited"),
		}}
		later := nestRun{steps: []nestStep{
			nestOpen(z, "EPERM", "Z, the parent's first level"),
			nestOpen(x, "EPERM", "X: a child forked after the parent's append inherits its new level"),
			nestOpen(y, "ok", "Y: W's level reaches neither its parent nor its parent's later children"),
		}}
		var appendZ, appendX, setupErr, errW, errLate error
		var parent [3]error
		var resW, resLate []string
		landlockbpf.OnLockedThread(func() {
			if appendZ = landlockbpf.Append(deny["z"].prog); appendZ != nil {
				return
			}
			r, wr, err := os.Pipe()
			if err != nil {
				setupErr = err
				return
			}
			h, err := w.start(r)
			r.Close()
			if err != nil {
				wr.Close()
				setupErr = err
				return
			}
			appendX = landlockbpf.Append(deny["x"].prog)
			wr.Close() // W goes on once the parent has appended
			_, resW, errW = h.wait()
			parent = [3]error{openClose(x), openClose(y), openClose(z)}
			resLate, errLate = later.run()
		})
		require.NoError(t, appendZ, "the parent appends the rule denying Z")
		require.NoError(t, setupErr)
		require.NoError(t, appendX, "the parent appends the rule denying X, after starting W")
		require.NoError(t, errW, "W")
		require.NoError(t, errLate, "the child started afterwards")
		checkNest(t, "W", w.steps, resW)
		assert.ErrorIs(t, parent[0], unix.EPERM, "the parent: X, its own rule")
		assert.NoError(t, parent[1], "the parent: Y, its child's level")
		assert.ErrorIs(t, parent[2], unix.EPERM, "the parent: Z, its own rule")
		checkNest(t, "the child started afterwards", later.steps, resLate)
	})
}

// TestNestedRuleLimit: the 64-rule limit counts the rules of every level.
// G appends 30 rules, its child P 30 more, P's child C1 4 more: 64, and
// C1's next append gives E2BIG. C1's sibling C2, at 30 + 30, may still
// append 4 (C1's level is not its own), and so may P, and then G 34; each
// time the next one gives E2BIG.
func TestNestedRuleLimit(t *testing.T) {
	forEachNestingPrivilege(t, func(t *testing.T) {
		fill := nestRule{"fill", loadRule(t, landlockbpf.Allow)}
		const g, p, c = 30, 30, 4
		require.Equal(t, landlockbpf.MaxRules, g+p+c)
		full := func(who string) nestStep {
			return nestAppend("fill", "E2BIG", fmt.Sprintf("%s: the 65th rule of its domain", who))
		}
		steps := []nestStep{
			nestAppendN("fill", p, "ok", fmt.Sprintf("P: %d rules on top of G's %d", p, g)),
			nestChild(
				nestAppendN("fill", c, "ok", fmt.Sprintf("C1: %d rules on top of %d + %d: 64 over three levels", c, g, p)),
				full("C1"),
			),
			nestChild(
				nestAppendN("fill", c, "ok", fmt.Sprintf("C2, C1's sibling: %d rules on top of %d + %d, C1's level is not its own", c, g, p)),
				full("C2"),
			),
			nestAppendN("fill", c, "ok", fmt.Sprintf("P: %d more, its children's levels are not its own", c)),
			full("P"),
		}
		pRun := nestRun{rules: []nestRule{fill}, steps: steps}
		var first, second []error
		var last, runErr error
		var res []string
		landlockbpf.OnLockedThread(func() {
			for range g {
				first = append(first, landlockbpf.Append(fill.prog))
			}
			res, runErr = pRun.run()
			for range landlockbpf.MaxRules - g {
				second = append(second, landlockbpf.Append(fill.prog))
			}
			last = landlockbpf.Append(fill.prog)
		})
		for i, err := range first {
			require.NoError(t, err, "G: rule %d", i+1)
		}
		require.NoError(t, runErr, "P")
		checkNest(t, "P", pRun.steps, res)
		for i, err := range second {
			assert.NoError(t, err, "G: rule %d, its descendants' levels are not its own", g+i+1)
		}
		assert.ErrorIs(t, last, unix.E2BIG, "G: the 65th rule of its domain")
	})
}

// nestStampRule is a rule that, each time it runs, takes the next value of
// a clock, the 64-bit counter at key 0 of the array map m, and writes it
// at key: after an action, the keys of the rules that ran hold increasing
// values in the order they ran. It allows.
func nestStampRule(m *ebpf.Map, key int64) asm.Instructions {
	insns := lookupKey(m, 0, "allow")
	// The rules of one task run one after the other on one CPU (with
	// migration disabled): a plain read, add and write of the clock is
	// enough, and R6 keeps its new value across the next lookup.
	insns = append(insns,
		asm.LoadMem(asm.R6, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R6, 1),
		asm.StoreMem(asm.R0, 0, asm.R6, asm.DWord),
	)
	insns = append(insns, lookupKey(m, key, "allow")...)
	return append(insns,
		asm.StoreMem(asm.R0, 0, asm.R6, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("allow"),
		asm.Return(),
	)
}

// TestNestedEveryRuleRuns: every rule of every level runs at every hook,
// root level first and in append order within a level, even after a rule
// of a lower level denied. G appends, in one level, stamp 1, a rule that
// denies every action on the target, and stamp 2; its child P appends
// stamp 3; P's child C stamp 4. Each of their opens of the target is
// denied (EPERM), and the stamps of the last open show every rule of its
// domain ran, in that order.
func TestNestedEveryRuleRuns(t *testing.T) {
	forEachNestingPrivilege(t, func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "target")
		ino := inodeOf(t, path)
		requireDistinctInode(t, ino, executable(t), "/dev/null")
		m := newCounterMap(t, 5) // key 0: the clock; 1 to 4: the stamps
		stamp := func(k int64) nestRule {
			return nestRule{fmt.Sprintf("stamp%d", k), loadRule(t, onlyOn(ino, nestStampRule(m, k)))}
		}
		stamp1, stamp2, stamp3, stamp4 := stamp(1), stamp(2), stamp(3), stamp(4)
		deny := loadRule(t, landlockbpf.DenyActionsOn(ino, -1))
		denied := "the target, denied by G's level"

		// stamps reads the four stamps, in key order (on the thread of
		// G too: no require).
		stamps := func() (s [4]uint64, err error) {
			for k := range s {
				if err = m.Lookup(uint32(k+1), &s[k]); err != nil {
					return s, fmt.Errorf("reading stamp %d: %w", k+1, err)
				}
			}
			return s, nil
		}
		// ranInOrder asserts that the first ran stamps ran, in key
		// order, and the others not at all.
		ranInOrder := func(s [4]uint64, err error, who string, ran int) {
			t.Helper()
			require.NoError(t, err, "%s: the stamps", who)
			t.Logf("%s: stamps %v", who, s)
			for k := range s {
				if k >= ran {
					assert.Zero(t, s[k], "%s: stamp %d ran, but it is not a rule of its domain", who, k+1)
					continue
				}
				assert.NotZero(t, s[k], "%s: stamp %d, a rule of its domain, never ran during the denied open", who, k+1)
				if k > 0 {
					assert.Less(t, s[k-1], s[k], "%s: stamp %d must run before stamp %d (root level first, append order within a level)", who, k, k+1)
				}
			}
		}

		var appendErr, gOpen, gStampsErr, pStampsErr error
		var gStamps, pStamps [4]uint64
		var pRes, cRes []string
		var pErr, cErr error
		p := nestRun{rules: []nestRule{stamp3}, steps: []nestStep{
			nestAppend("stamp3", "ok", "P's level"),
			nestOpen(path, "EPERM", denied),
		}}
		pc := nestRun{rules: []nestRule{stamp3, stamp4}, steps: []nestStep{
			nestAppend("stamp3", "ok", "P's level"),
			nestChild(
				nestAppend("stamp4", "ok", "C's level"),
				nestOpen(path, "EPERM", denied),
			),
		}}
		landlockbpf.OnLockedThread(func() {
			for _, r := range []*ebpf.Program{stamp1.prog, deny, stamp2.prog} {
				if appendErr = landlockbpf.Append(r); appendErr != nil {
					return
				}
			}
			gOpen = openClose(path)
			gStamps, gStampsErr = stamps()
			pRes, pErr = p.run()
			pStamps, pStampsErr = stamps()
			cRes, cErr = pc.run()
		})
		require.NoError(t, appendErr, "G appends stamp 1, the deny rule and stamp 2")
		assert.ErrorIs(t, gOpen, unix.EPERM, "G: "+denied)
		ranInOrder(gStamps, gStampsErr, "G", 2)
		require.NoError(t, pErr, "P")
		checkNest(t, "P", p.steps, pRes)
		ranInOrder(pStamps, pStampsErr, "P", 3)
		require.NoError(t, cErr, "P with a child C")
		checkNest(t, "P with a child C", pc.steps, cRes)
		cStamps, err := stamps()
		ranInOrder(cStamps, err, "C", 4)
	})
}
