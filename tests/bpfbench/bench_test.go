// Package bpfbench measures, in the guest, what Landlock eBPF rules cost
// on the hot file system paths: open+close and stat of a file 1 and 8
// path components below a directory fd (openat(2) and newfstatat(2) with
// a relative path), and a 16-byte pread(2) of an open file, with 0, 1 and
// 16 rules that allow everything (landlockbpf.Allow), with one rule that
// only cares about WRITE (rule=write_only: it looks at arg2 and allows
// whatever is not a write; rule=write_only_triggered: the same rule
// appended with WRITE as its trigger, ABI version 5), and, from ABI
// version 2 on, with 0 and 1 rules
// next to a cgroup program that allows everything (BPF_CGROUP_LANDLOCK_FS),
// and, from version 3 on, the canonical "write only beneath D" rule of
// package bpfsandbox (fsbeneath_test.go: open(O_WRONLY)+close and stat 1
// and 8 directories below D and outside it, rule=fs_beneath rows):
//
//   - cgroup=0: no Landlock program on any cgroup (the version-1 figure);
//   - cgroup=1: the child runs in a cgroup that holds the program;
//   - cgroup=sibling: the program is on a sibling cgroup only, so the
//     static key of cgroup-bpf is on while the child's cgroup has no
//     program (the cost every task pays once any cgroup has one).
//
// TestBenchmark is a plain test, so that the harness runs it like the
// others. It asserts no timing: it prints what it measured, one t.Logf line
// per case and operation of the form
//
//	bench: op=open+close depth=8 rules=16 cgroup=0 ns/op=1234.5
//	bench: op=read rules=1 cgroup=0 rule=write_only ns/op=234.5
//
// plus "bench: jit=1" and "bench: landlock-bpf=present" (or "absent"), a
// second 0-rule case measured once a rule was appended in the boot
// (hooks=on: see benchCase.hooksOn), and
// "bench: cgroup rows skipped: <why>" below version 2 or without cgroup2
// on /sys/fs/cgroup. A line without rule= is the allow-everything rule.
// The fs_beneath rows have rule=, depth= and dir=.
// Each case runs in a child process (the test binary again), because a rule
// can never be removed: the child locks its goroutine to its OS thread,
// appends the rules, warms up, then times LANDLOCK_BENCH_ITER operations
// (default 5000) LANDLOCK_BENCH_ROUNDS times (default 3) and the parent
// reports the median round. A cgroup case's child is started in its cgroup
// (clone3's CLONE_INTO_CGROUP) after the parent attached the program, which
// it detaches once the child is done. On a kernel without Landlock eBPF
// rules (such as one built with CONFIG_SECURITY_LANDLOCK_BPF=n) only the
// 0-rule case runs, which is the baseline.
//
// The ns/op come from the guest's clock. Under QEMU's instruction
// counting (make bench's default under TCG: ICOUNT=) that clock follows
// the instructions the guest executes, so a figure is a count of
// instructions and repeats from one boot to the next.
package bpfbench

// A measurement beside another binary would measure the other too, and
// the 0-rule baseline needs a boot in which no rule was appended yet.
//landlock-vmtest:alone a benchmark

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// Knobs, read from the environment of the test binary.
const (
	// EnvIter is the number of operations timed per round.
	EnvIter = "LANDLOCK_BENCH_ITER"
	// EnvRounds is the number of timed rounds; the median is reported.
	EnvRounds = "LANDLOCK_BENCH_ROUNDS"

	// Under instruction counting (make bench) a round's figure repeats
	// to within a few parts in 10000, so short rounds do; make vmtest
	// runs the package too, and should not wait long for it.
	defaultIter   = 5000
	defaultRounds = 3

	// On the debug kernel (DEBUG=1) the checkers are what a benchmark
	// would measure: the rows run once, briefly, so that their rules and
	// hooks still go through KASAN, lockdep and kmemleak.
	debugIter   = 1000
	debugRounds = 1
)

// flavourEnv names the kernel flavour (contract.FlavourEnv), "debug" on
// the debug kernel.
const flavourEnv = "LANDLOCK_VMTEST_FLAVOUR"

// sizes are the iterations per round and the rounds: the knobs, or the
// defaults of the kernel's flavour.
func sizes(t *testing.T) (iter, rounds int) {
	t.Helper()
	iter, rounds = defaultIter, defaultRounds
	if os.Getenv(flavourEnv) == "debug" {
		iter, rounds = debugIter, debugRounds
	}
	return knob(t, EnvIter, iter), knob(t, EnvRounds, rounds)
}

// Environment of a child: how many rules it appends and which, the tree
// it works in and where it writes its result.
const (
	envChildRules  = "LANDLOCK_BENCH_CHILD_RULES"
	envChildRule   = "LANDLOCK_BENCH_CHILD_RULE"
	envChildDir    = "LANDLOCK_BENCH_CHILD_DIR"
	envChildResult = "LANDLOCK_BENCH_CHILD_RESULT"
)

// guestEnv is set to 1 by the guest runner.
const guestEnv = "LANDLOCK_VMTEST_GUEST"

// jitSysctl switches the BPF JIT compiler (net.core.bpf_jit_enable).
const jitSysctl = "/proc/sys/net/core/bpf_jit_enable"

// clocksource names the clock time.Now reads in the guest.
const clocksource = "/sys/devices/system/clocksource/clocksource0/current_clocksource"

// ruleCounts are the rule counts measured without cgroup programs, and
// cgroupRuleCounts those measured with each cgroup mode.
var (
	ruleCounts       = []int{0, 1, 16}
	cgroupRuleCounts = []int{0, 1}
)

// Cgroup modes, as printed in cgroup=.
const (
	cgroupNone    = "0"       // no Landlock program on any cgroup
	cgroupOwn     = "1"       // one on the child's cgroup
	cgroupSibling = "sibling" // one on a sibling of the child's cgroup
)

// cgroupRoot is where the runner mounts cgroup2 in the guest.
const cgroupRoot = landlockbpf.CgroupRoot

// Rule kinds, as printed in rule= (ruleAllow is printed as no rule=).
// ruleWriteTriggered is the write-only rule appended with WRITE as its
// only trigger (ABI version 5), so that hooks skip it on every other
// action; ruleWriteOnly is the same rule appended the version-1 way.
const (
	ruleAllow          = "allow"
	ruleWriteOnly      = "write_only"
	ruleWriteTriggered = "write_only_triggered"
)

// benchCase is one measurement: the rules the child appends to itself,
// which rule, and the cgroup mode it runs in.
type benchCase struct {
	rules  int
	rule   string
	cgroup string
	// hooksOn marks the second 0-rule case, measured after the 1-rule
	// case appended a rule in this boot: from the patch that switches
	// the hooks of actions on with the first rule, the first 0-rule case
	// measures a kernel where nobody has appended one, this one a kernel
	// where someone has (printed as hooks=on).
	hooksOn bool
}

// name is the subtest's name.
func (c benchCase) name() string {
	n := fmt.Sprintf("rules=%d", c.rules)
	if c.rule != ruleAllow {
		n += ",rule=" + c.rule
	}
	if c.cgroup != cgroupNone {
		n += ",cgroup=" + c.cgroup
	}
	if c.hooksOn {
		n += ",hooks=on"
	}
	return n
}

// benchCases returns the cases in the order they are measured: version
// 1's first (the allow rule, then the write-only one), then each cgroup
// mode with each of cgroupRuleCounts.
func benchCases() []benchCase {
	var cs []benchCase
	for _, n := range ruleCounts {
		cs = append(cs, benchCase{rules: n, rule: ruleAllow, cgroup: cgroupNone})
		if n == 1 {
			cs = append(cs, benchCase{rules: 0, rule: ruleAllow, cgroup: cgroupNone, hooksOn: true})
		}
	}
	cs = append(cs, benchCase{rules: 1, rule: ruleWriteOnly, cgroup: cgroupNone},
		benchCase{rules: 1, rule: ruleWriteTriggered, cgroup: cgroupNone})
	for _, mode := range []string{cgroupOwn, cgroupSibling} {
		for _, n := range cgroupRuleCounts {
			cs = append(cs, benchCase{rules: n, rule: ruleAllow, cgroup: mode})
		}
	}
	return cs
}

// ruleInsns returns the instructions of a rule kind.
func ruleInsns(kind string) (asm.Instructions, error) {
	switch kind {
	case ruleAllow:
		return landlockbpf.Allow, nil
	case ruleWriteOnly, ruleWriteTriggered:
		return writeOnlyRule, nil
	}
	return nil, fmt.Errorf("unknown rule kind %q", kind)
}

// writeOnlyRule only cares about WRITE: an action without it is allowed
// at once; a write is denied only on an inode number no file here has
// (so the workload, which never writes, is never denied either way).
var writeOnlyRule = asm.Instructions{
	asm.LoadMem(asm.R2, asm.R1, landlockbpf.CtxOffArg2, asm.DWord),
	asm.Mov.Imm(asm.R0, 0),
	asm.And.Imm(asm.R2, landlockbpf.ActionWrite),
	asm.JEq.Imm(asm.R2, 0, "allow"),
	asm.LoadMem(asm.R2, asm.R1, landlockbpf.CtxOffArg1, asm.DWord),
	asm.JNE.Imm(asm.R2, -2, "allow"),
	asm.Mov.Imm(asm.R0, 1),
	asm.Return().WithSymbol("allow"),
}

// Operation names, as printed in op=. Open+close and stat are measured at
// each of opDepths (depth=: path components below the directory fd).
const (
	opOpenClose = "open+close"
	opStat      = "stat"
	opRead      = "read"
)

// opDepths are the path depths of the open+close and stat rows.
var opDepths = []int{1, 8}

// opKey names one operation in a result's rounds: "open+close depth=8",
// "read".
func opKey(op string, depth int) string {
	if op == opRead {
		return op
	}
	return fmt.Sprintf("%s depth=%d", op, depth)
}

// opKeys are the operations every child measures, in order.
func opKeys() []string {
	var keys []string
	for _, op := range []string{opOpenClose, opStat} {
		for _, d := range opDepths {
			keys = append(keys, opKey(op, d))
		}
	}
	return append(keys, opRead)
}

// treeFile is the file depth path components below the tree's directory,
// relative to it: "file", "d1/d2/.../d7/file".
func treeFile(depth int) string {
	p := ""
	for i := 1; i < depth; i++ {
		p = filepath.Join(p, "d"+strconv.Itoa(i))
	}
	return filepath.Join(p, "file")
}

// result is what a child reports: for each operation, the ns/op of every
// timed round, and whether its rules were JIT-compiled.
type result struct {
	Rules  int                  `json:"rules"`
	Iter   int                  `json:"iter"`
	Rounds map[string][]float64 `json:"rounds"`
	// Jited is how many of the rules the kernel JIT-compiled.
	Jited int `json:"jited"`
	// Cgroup is the child's cgroup v2 line of /proc/self/cgroup.
	Cgroup string `json:"cgroup"`
}

func TestBenchmark(t *testing.T) {
	if n, ok := os.LookupEnv(envChildFSRule); ok {
		runFSChild(t, n)
		return
	}
	if n, ok := os.LookupEnv(envChildRules); ok {
		runChild(t, n)
		return
	}
	if os.Getenv(guestEnv) != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
	iter, rounds := sizes(t)
	if os.Getenv(flavourEnv) == "debug" {
		t.Logf("bench: debug kernel: %d iterations x %d round per case, to run the rows under the checkers; the figures say nothing of the rules' cost", iter, rounds)
	}

	abi, present := landlockBPFVersion(t)
	if present {
		t.Log("bench: landlock-bpf=present")
	} else {
		t.Log("bench: landlock-bpf=absent")
	}
	t.Logf("bench: jit=%s", enableJIT(t))
	if b, err := os.ReadFile(clocksource); err == nil {
		// Under TCG without a TSC this may be jiffies: a few ms per tick,
		// which the rounds' length (hundreds of ms) makes up for.
		t.Logf("clocksource %s", strings.TrimSpace(string(b)))
	}

	dir, err := os.MkdirTemp("/tmp", "bpfbench-")
	require.NoError(t, err, "creating a directory in /tmp")
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range opDepths {
		f := filepath.Join(dir, treeFile(d))
		require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
		require.NoError(t, os.WriteFile(f, []byte("landlock-vmtest bench\n"), 0o644))
	}
	t.Logf("tree %s (files %s), %d iterations x %d rounds per case", dir, strings.Join([]string{treeFile(1), treeFile(8)}, ", "), iter, rounds)

	// The cgroups of the cgroup rows, made once.
	var cg *benchCgroups
	cgroupWhy := cgroupSkip(present, abi)
	if cgroupWhy != "" {
		t.Logf("bench: cgroup rows skipped: %s", cgroupWhy)
	} else {
		cg = newBenchCgroups(t)
	}

	for _, c := range benchCases() {
		var res *result
		t.Run(c.name(), func(t *testing.T) {
			if c.rules > 0 && !present {
				t.Skip("the kernel has no Landlock eBPF rules: only the 0-rule baseline is measured")
			}
			if c.rule == ruleWriteTriggered && abi < landlockbpf.TriggersABI {
				t.Skipf("the kernel reports Landlock eBPF ABI version %d; rule triggers come with version %d", abi, landlockbpf.TriggersABI)
			}
			if c.cgroup != cgroupNone {
				if cg == nil {
					t.Skip(cgroupWhy)
				}
				res = cg.measure(t, c, dir)
				return
			}
			res = spawn(t, c, dir, -1)
		})
		if res == nil {
			continue
		}
		if c.rules > 0 {
			t.Logf("%s: %d of %d rules JIT-compiled", c.name(), res.Jited, c.rules)
		}
		rule := ""
		if c.rule != ruleAllow {
			rule = " rule=" + c.rule
		}
		if c.hooksOn {
			rule += " hooks=on"
		}
		for _, k := range opKeys() {
			t.Logf("rounds op=%s rules=%d cgroup=%s%s ns/op=%s", k, c.rules, c.cgroup, rule, formatRounds(res.Rounds[k]))
			t.Logf("bench: op=%s rules=%d cgroup=%s%s ns/op=%.1f", k, c.rules, c.cgroup, rule, median(res.Rounds[k]))
		}
	}

	benchFSBeneath(t, fsBeneathSkip(present, abi))
}

// cgroupSkip returns why the cgroup rows cannot be measured here, or "".
func cgroupSkip(present bool, abi int) string {
	switch {
	case !present:
		return "the kernel has no Landlock eBPF rules"
	case abi < 2:
		return fmt.Sprintf("the kernel reports Landlock eBPF ABI version %d; cgroup programs (BPF_CGROUP_LANDLOCK_FS) come with version 2", abi)
	}
	return landlockbpf.SkipUnlessCgroup2()
}

// benchCgroups are the cgroups of the cgroup rows: a private subtree of
// /sys/fs/cgroup with two empty children, task (where the child runs) and
// sibling, and the allow-all program that goes on one of them.
type benchCgroups struct {
	root, task, sibling string
	taskFD, siblingFD   int
	prog                *ebpf.Program
}

// newBenchCgroups creates the cgroups and loads the program; cleanup
// closes and removes them.
func newBenchCgroups(t *testing.T) *benchCgroups {
	t.Helper()
	root, err := os.MkdirTemp(cgroupRoot, "bpfbench-")
	require.NoError(t, err, "creating the bench's cgroup subtree")
	cg := &benchCgroups{root: root, task: filepath.Join(root, "task"), sibling: filepath.Join(root, "sibling")}
	// Registered first, so it runs last, after the fds are closed.
	t.Cleanup(func() {
		for _, d := range []string{cg.task, cg.sibling, cg.root} {
			if err := rmdirRetry(d); err != nil {
				t.Errorf("removing the bench's cgroups: %v", err)
			}
		}
	})
	for _, d := range []string{cg.task, cg.sibling} {
		require.NoError(t, os.Mkdir(d, 0o755), "creating a cgroup")
	}
	cg.taskFD = openDir(t, cg.task)
	cg.siblingFD = openDir(t, cg.sibling)
	cg.prog, err = landlockbpf.Load(landlockbpf.Allow)
	require.NoError(t, err, "loading the cgroup program")
	t.Cleanup(func() { cg.prog.Close() })
	t.Logf("cgroups %s and %s; the cgroup program is JIT-compiled: %v", cg.task, cg.sibling, jited(cg.prog))
	return cg
}

// openDir opens dir, closed at cleanup.
func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "opening %s", dir)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// measure attaches the program for c (to task for cgroup=1, to sibling
// for cgroup=sibling), checks that the child's cgroup runs what c says,
// measures in a child started in task, and detaches.
func (cg *benchCgroups) measure(t *testing.T, c benchCase, dir string) *result {
	t.Helper()
	onFD, on := cg.taskFD, cg.task
	if c.cgroup == cgroupSibling {
		onFD, on = cg.siblingFD, cg.sibling
	}
	l, err := link.AttachRawLink(link.RawLinkOptions{
		Target:  onFD,
		Program: cg.prog,
		Attach:  ebpf.AttachType(landlockbpf.AttachCgroupLandlockFS),
	})
	require.NoError(t, err, "attaching the allow-all program to %s", on)
	// Closing the (unpinned) link detaches the program before close(2)
	// returns; on a failure too.
	defer l.Close()

	// The effective programs of the child's cgroup (its own and its
	// ancestors', the root's included): the one attached for cgroup=1,
	// none for sibling, where the sibling holds it.
	want := map[string]int{cgroupOwn: 1, cgroupSibling: 0}[c.cgroup]
	require.Equal(t, want, cg.effective(t, cg.taskFD), "Landlock programs that run for %s", cg.task)
	require.Equal(t, 1, cg.effective(t, onFD), "Landlock programs that run for %s", on)

	res := spawn(t, c, dir, cg.taskFD)
	rel, err := filepath.Rel(cgroupRoot, cg.task)
	require.NoError(t, err)
	require.Equal(t, "0::/"+rel, res.Cgroup, "the child's cgroup (/proc/self/cgroup)")

	require.NoError(t, l.Close(), "detaching the program from %s", on)
	require.Zero(t, cg.effective(t, onFD), "Landlock programs left on %s after the detach", on)
	return res
}

// effective returns how many Landlock programs run for the cgroup of fd
// (BPF_PROG_QUERY with BPF_F_QUERY_EFFECTIVE).
func (cg *benchCgroups) effective(t *testing.T, fd int) int {
	t.Helper()
	r, err := link.QueryPrograms(link.QueryOptions{
		Target:     fd,
		Attach:     ebpf.AttachType(landlockbpf.AttachCgroupLandlockFS),
		QueryFlags: unix.BPF_F_QUERY_EFFECTIVE,
	})
	require.NoError(t, err, "querying the Landlock programs of a cgroup")
	return len(r.Programs)
}

// rmdirRetry removes the cgroup dir, retrying for a while on EBUSY: a
// cgroup whose last task just exited may still be busy a moment.
func rmdirRetry(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// knob reads a positive integer from the environment variable name.
func knob(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// landlockBPFVersion returns the kernel's Landlock eBPF ABI version and
// whether it has Landlock eBPF rules at all: the ABI version query of
// seccomp(2) answers, instead of EINVAL for an unknown operation.
func landlockBPFVersion(t *testing.T) (int, bool) {
	t.Helper()
	v, err := landlockbpf.KernelABIVersion()
	if errors.Is(err, unix.EINVAL) {
		t.Logf("seccomp(SECCOMP_APPEND_LANDLOCK_RULE, SECCOMP_LANDLOCK_ABI_VERSION, NULL): %v: no Landlock eBPF rules", err)
		return 0, false
	}
	require.NoError(t, err, "Landlock eBPF ABI version query")
	t.Logf("Landlock eBPF ABI version %d", v)
	return v, true
}

// enableJIT turns the BPF JIT on for the test, restores the previous state
// at cleanup and returns the state read back.
func enableJIT(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(jitSysctl)
	require.NoError(t, err, "reading the BPF JIT state")
	orig := strings.TrimSpace(string(b))
	if orig != "1" {
		require.NoError(t, os.WriteFile(jitSysctl, []byte("1\n"), 0), "turning the BPF JIT on")
		t.Cleanup(func() {
			if err := os.WriteFile(jitSysctl, []byte(orig+"\n"), 0); err != nil {
				t.Errorf("restoring %s to %s: %v", jitSysctl, orig, err)
			}
		})
	}
	b, err = os.ReadFile(jitSysctl)
	require.NoError(t, err, "reading the BPF JIT state")
	now := strings.TrimSpace(string(b))
	require.Equal(t, "1", now, "the BPF JIT must be on for the measurement (%s was %s)", jitSysctl, orig)
	return now
}

// spawn runs case c in a child process on the tree dir, started in the
// cgroup of cgroupFD unless it is -1, and returns its result.
func spawn(t *testing.T, c benchCase, dir string, cgroupFD int) *result {
	t.Helper()
	what := fmt.Sprintf("%d rules (%s), cgroup=%s", c.rules, c.rule, c.cgroup)
	env := []string{envChildRules + "=" + strconv.Itoa(c.rules), envChildRule + "=" + c.rule, envChildDir + "=" + dir}
	return spawnChild(t, what, env, cgroupFD, opKeys())
}

// spawnChild runs a child with the extra environment env (which says
// what it measures, what describes it), started in the cgroup of
// cgroupFD unless it is -1, and returns its result, which must have
// rounds for each of ops.
func spawnChild(t *testing.T, what string, env []string, cgroupFD int, ops []string) *result {
	t.Helper()
	return spawnChildTo(t, filepath.Join(t.TempDir(), "result.json"), what, env, cgroupFD, ops)
}

// spawnChildTo is spawnChild with the child's result written to out.
func spawnChildTo(t *testing.T, out, what string, env []string, cgroupFD int, ops []string) *result {
	t.Helper()
	args := []string{"-test.run=^TestBenchmark$", "-test.v", "-test.count=1"}
	if d, ok := t.Deadline(); ok {
		if left := time.Until(d) * 9 / 10; left > 0 {
			args = append(args, "-test.timeout="+left.String())
		}
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), env...), envChildResult+"="+out)
	cmd.WaitDelay = 10 * time.Second
	if cgroupFD >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgroupFD}
	}
	start := time.Now()
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child measuring %s failed after %s:\n%s", what, time.Since(start).Round(time.Millisecond), output)
	b, err := os.ReadFile(out)
	require.NoError(t, err, "the child measuring %s wrote no result:\n%s", what, output)
	var res result
	require.NoError(t, json.Unmarshal(b, &res), "decoding the child's result %s", b)
	for _, op := range ops {
		require.NotEmpty(t, res.Rounds[op], "the child measured no round of %s:\n%s", op, output)
	}
	return &res
}

// runChild is the child side: it appends n rules to its thread, measures
// and writes the result where the parent said.
func runChild(t *testing.T, n string) {
	rules, err := strconv.Atoi(n)
	require.NoError(t, err, "%s=%q", envChildRules, n)
	dir, out, kind := os.Getenv(envChildDir), os.Getenv(envChildResult), os.Getenv(envChildRule)
	require.NotEmpty(t, dir, envChildDir)
	require.NotEmpty(t, out, envChildResult)
	insns, err := ruleInsns(kind)
	require.NoError(t, err, envChildRule)
	iter, rounds := sizes(t)

	// Rules belong to a thread: append them and measure on this one. The
	// thread stays locked to the end; when the test goroutine ends, Go
	// terminates the thread with it.
	runtime.LockOSThread()

	// The directory fd and the file read, opened before any rule.
	dirFD, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "opening %s", dir)
	defer unix.Close(dirFD)
	readFD, err := unix.Open(filepath.Join(dir, treeFile(1)), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "opening the file read")
	defer unix.Close(readFD)

	res := result{Rules: rules, Iter: iter, Rounds: map[string][]float64{}}
	res.Cgroup = ownCgroup()
	for i := range rules {
		prog, err := landlockbpf.Load(insns)
		require.NoError(t, err, "loading rule %d (%s)", i, kind)
		defer prog.Close()
		if jited(prog) {
			res.Jited++
		}
		if kind == ruleWriteTriggered {
			require.NoError(t, landlockbpf.AppendTriggered(prog, landlockbpf.ActionWrite), "appending rule %d (%s)", i, kind)
			continue
		}
		require.NoError(t, landlockbpf.Append(prog), "appending rule %d (%s)", i, kind)
	}
	t.Logf("%d rules (%s) appended, %d JIT-compiled; cgroup %s", rules, kind, res.Jited, res.Cgroup)

	type benchOp struct {
		key string
		fn  func() unix.Errno
	}
	var ops []benchOp
	for _, op := range []string{opOpenClose, opStat} {
		for _, d := range opDepths {
			p, err := unix.BytePtrFromString(treeFile(d))
			require.NoError(t, err)
			fn := func() unix.Errno { return openCloseAt(dirFD, p) }
			if op == opStat {
				fn = func() unix.Errno { return statAt(dirFD, p) }
			}
			ops = append(ops, benchOp{opKey(op, d), fn})
		}
	}
	ops = append(ops, benchOp{opRead, func() unix.Errno { return pread16(readFD) }})

	// Warm up: caches, the dentries, branch predictors, the JIT images.
	warm := max(iter/10, 100)
	for _, op := range ops {
		for range warm {
			if errno := op.fn(); errno != 0 {
				t.Fatalf("%s in %s (warm-up): %v", op.key, dir, errno)
			}
		}
	}
	for r := range rounds {
		for _, op := range ops {
			start := time.Now()
			for range iter {
				if errno := op.fn(); errno != 0 {
					t.Fatalf("%s in %s (round %d): %v", op.key, dir, r, errno)
				}
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(iter)
			res.Rounds[op.key] = append(res.Rounds[op.key], ns)
		}
	}
	for _, op := range ops {
		t.Logf("op=%s rules=%d rounds ns/op=%s", op.key, rules, formatRounds(res.Rounds[op.key]))
	}

	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644), "writing the result")
}

// ownCgroup returns the line of /proc/self/cgroup for the cgroup v2
// hierarchy ("0::/path"), or what went wrong.
func ownCgroup() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "0::") {
			return l
		}
	}
	return strings.TrimSpace(string(b))
}

// openCloseAt opens path (relative to dirFD) read-only and closes it,
// with raw system calls on a path converted once, so that Go allocates
// nothing per operation; it returns the errno (0 on success).
func openCloseAt(dirFD int, path *byte) unix.Errno {
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirFD), uintptr(unsafe.Pointer(path)),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	_, _, errno = unix.Syscall(unix.SYS_CLOSE, fd, 0, 0)
	return errno
}

// atFDCWD is AT_FDCWD, in a variable so that it converts to uintptr.
var atFDCWD = unix.AT_FDCWD

// statBuf is the buffer of stat; only one goroutine measures.
var statBuf unix.Stat_t

// statAt stats path relative to dirFD (newfstatat(dirFD, path, &st, 0),
// which is what stat(2) is on amd64 and arm64: __NR_newfstatat exists on
// both, 262 and 79, with the native struct stat of unix.Stat_t).
func statAt(dirFD int, path *byte) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirFD), uintptr(unsafe.Pointer(path)),
		uintptr(unsafe.Pointer(&statBuf)), 0, 0, 0)
	return errno
}

// readBuf is the buffer of pread16.
var readBuf [16]byte

// pread16 reads 16 bytes at offset 0 of fd (pread64(2): one
// file_permission(MAY_READ) check and no change of the file offset).
func pread16(fd int) unix.Errno {
	n, _, errno := unix.Syscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(unsafe.Pointer(&readBuf[0])),
		uintptr(len(readBuf)), 0, 0, 0)
	if errno == 0 && n == 0 {
		return unix.EIO // the file is not empty: a short read is wrong
	}
	return errno
}

// jited reports whether the kernel JIT-compiled prog.
func jited(prog *ebpf.Program) bool {
	info, err := prog.Info()
	if err != nil {
		return false
	}
	size, err := info.JitedSize()
	return err == nil && size > 0
}

// median returns the median of v (the mean of the middle two for an even
// count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// formatRounds prints the rounds' ns/op with one decimal.
func formatRounds(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 30, 20, 50, 40}, 30},
	} {
		require.Equal(t, tc.want, median(tc.in), "median(%v)", tc.in)
	}
}

func TestOpKeys(t *testing.T) {
	require.Equal(t, []string{"open+close depth=1", "open+close depth=8", "stat depth=1", "stat depth=8", "read"}, opKeys())
	require.Equal(t, "file", treeFile(1))
	require.Equal(t, "d1/d2/d3/d4/d5/d6/d7/file", treeFile(8))
	for _, kind := range []string{ruleAllow, ruleWriteOnly, ruleWriteTriggered} {
		_, err := ruleInsns(kind)
		require.NoError(t, err, kind)
	}
	_, err := ruleInsns("nope")
	require.Error(t, err)
	require.Equal(t, "rules=1,rule=write_only", benchCase{rules: 1, rule: ruleWriteOnly, cgroup: cgroupNone}.name())
	require.Equal(t, "rules=0,cgroup=sibling", benchCase{rules: 0, rule: ruleAllow, cgroup: cgroupSibling}.name())
	require.Equal(t, "rules=0,hooks=on", benchCase{rules: 0, rule: ruleAllow, cgroup: cgroupNone, hooksOn: true}.name())
	cs := benchCases()
	require.Equal(t, "rules=1", cs[1].name())
	require.True(t, cs[2].hooksOn, "the second 0-rule case comes right after the first rule")
}
