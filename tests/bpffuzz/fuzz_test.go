// Package bpffuzz throws random input, for a bounded time, at the two
// system calls of Landlock eBPF rules: bpf(BPF_PROG_LOAD) for
// BPF_PROG_TYPE_LANDLOCK (random and mutated instructions, attach types,
// flags, logs) and seccomp(SECCOMP_APPEND_LANDLOCK_RULE) (random flags and
// arguments). Every call must return, with success or an errno of an
// allowed set, and seccomp(2) exactly as the spec's table says. From ABI
// version 2 on, a cgroup part (cgroup_test.go) throws random
// BPF_PROG_ATTACH/DETACH/QUERY and BPF_LINK_CREATE/UPDATE/DETACH calls
// for BPF_CGROUP_LANDLOCK_FS at scratch cgroups that hold no process.
// Real rules are appended only in child processes, so the test process
// stays without rules. Whether the kernel printed a splat meanwhile is
// the harness's console monitor's business.
//
// The seed is logged; LANDLOCK_FUZZ_SEED replays it and
// LANDLOCK_FUZZ_SECONDS sets the time (20 s by default).
package bpffuzz

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// Knobs, read from the environment.
const (
	// EnvSeconds is how long the test fuzzes, in seconds.
	EnvSeconds = "LANDLOCK_FUZZ_SECONDS"
	// EnvSeed replays a run: the seed it logged.
	EnvSeed = "LANDLOCK_FUZZ_SEED"

	defaultSeconds = 20
)

// Environment of a child: its seed, its time and where its report goes.
const (
	envChildSeed   = "LANDLOCK_FUZZ_CHILD_SEED"
	envChildBudget = "LANDLOCK_FUZZ_CHILD_BUDGET"
	envChildReport = "LANDLOCK_FUZZ_CHILD_REPORT"
)

// children is how many child processes append real rules; each gets an
// eighth of the time, and so does the cgroup part when it runs.
const children = 2

// hangGrace is how long past the deadline a call may still be running
// before the test calls it hung. A verifier run is bounded by its
// complexity limit, which under TCG may take some seconds.
const hangGrace = 90 * time.Second

// jitSysctl switches the BPF JIT compiler (net.core.bpf_jit_enable).
const jitSysctl = "/proc/sys/net/core/bpf_jit_enable"

// maxViolations bounds the violations a report keeps in full.
const maxViolations = 20

// loadAllowed are the errnos BPF_PROG_LOAD may return for a Landlock
// program, with why.
var loadAllowed = map[unix.Errno]string{
	unix.EINVAL:     "invalid attribute or program",
	unix.EACCES:     "rejected by the verifier",
	unix.EPERM:      "privilege, or rejected by the verifier",
	unix.E2BIG:      "too many instructions, or too complex",
	unix.EFAULT:     "NULL pointer, or a verifier invariant (BPF_F_TEST_REG_INVARIANTS)",
	unix.ENOSPC:     "verifier log too small",
	unix.ENOMEM:     "out of memory",
	unix.EOPNOTSUPP: "not supported",
	enotsupp:        "not supported (kernel ENOTSUPP)",
}

// loadCoreAllowed are the errnos the BPF core returns for inputs the
// fuzzer makes and that have nothing to do with Landlock; they are
// allowed and counted apart.
var loadCoreAllowed = map[unix.Errno]string{
	// resolve_pseudo_ldimm64 and friends: a BPF_LD_IMM64 map or BTF
	// fd, or BPF_F_TOKEN_FD's token fd (0 here), that is not open.
	unix.EBADF: "a pseudo map/BTF fd or token fd that is not open",
	// do_check: a signal (the Go runtime's, SIGCHLD) is pending.
	unix.EAGAIN: "verifier interrupted by a pending signal",
	// BPF_PSEUDO_MAP_IDX* or a kfunc offset without fd_array.
	unix.EPROTO: "fd_array index without fd_array",
	// check_pseudo_btf_id with vmlinux BTF: no such BTF id.
	unix.ENOENT: "a BPF_PSEUDO_BTF_ID that names no BTF type",
}

// report is what a fuzzing run found. A child sends its own to the parent
// as JSON.
type report struct {
	Loads      int      `json:"loads"`
	Calls      int      `json:"seccomp_calls"`
	Load       counts   `json:"load"`
	LoadCore   counts   `json:"load_core"`
	LoadOrigin counts   `json:"load_ok_by_origin"`
	Seccomp    counts   `json:"seccomp"`
	Appended   int      `json:"appended"`
	Violations []string `json:"violations"`
	Dropped    int      `json:"violations_dropped"`
	Slowest    string   `json:"slowest"`
	SlowestDur float64  `json:"slowest_seconds"`
	FSOps      int      `json:"fs_op_rounds"`
	Execs      int      `json:"execs"`
	// The cgroup part's: outcomes per command, calls, calls with an
	// exact expectation, links closed, programs detached at teardown.
	Cgroup         map[string]counts `json:"cgroup,omitempty"`
	CgroupCalls    int               `json:"cgroup_calls,omitempty"`
	CgroupExact    int               `json:"cgroup_exact,omitempty"`
	CgroupCloses   int               `json:"cgroup_link_closes,omitempty"`
	CgroupDetached int               `json:"cgroup_teardown_detached,omitempty"`
	// The map part's (version 3): outcomes by "command:outcome", calls,
	// rules appended.
	FSMap        counts `json:"fsmap,omitempty"`
	FSMapCalls   int    `json:"fsmap_calls,omitempty"`
	FSMapAppends int    `json:"fsmap_appends,omitempty"`
}

func newReport() *report {
	return &report{Load: counts{}, LoadCore: counts{}, LoadOrigin: counts{}, Seccomp: counts{}, Cgroup: map[string]counts{}, FSMap: counts{}}
}

// violate records a violation.
func (r *report) violate(format string, args ...any) {
	if len(r.Violations) >= maxViolations {
		r.Dropped++
		return
	}
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// timed records how long a call took, keeping the slowest.
func (r *report) timed(d time.Duration, what func() string) {
	if s := d.Seconds(); s > r.SlowestDur {
		r.SlowestDur, r.Slowest = s, what()
	}
}

func TestFuzzLoadAndSeccomp(t *testing.T) {
	if _, ok := os.LookupEnv(envChildSeed); ok {
		runChild(t)
		return
	}
	if why := landlockbpf.SkipUnlessSupported(1); why != "" {
		t.Skip(why)
	}
	seconds, seed := fuzzKnobs(t)
	fuzzAll(t, fuzzMode{seed: seed, seconds: seconds})
}

// fuzzKnobs returns the time and the seed of a run: EnvSeconds or
// defaultSeconds, EnvSeed or one from the clock.
func fuzzKnobs(t *testing.T) (seconds int, seed uint64) {
	t.Helper()
	seconds = defaultSeconds
	if s := os.Getenv(EnvSeconds); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(t, err, "%s=%q", EnvSeconds, s)
		require.Positive(t, v, EnvSeconds)
		seconds = v
	}
	seed = uint64(time.Now().UnixNano())
	if s := os.Getenv(EnvSeed); s != "" {
		v, err := strconv.ParseUint(s, 0, 64)
		require.NoError(t, err, "%s=%q", EnvSeed, s)
		seed = v
	}
	return seconds, seed
}

// fuzzMode is how a run fuzzes: its seed and time, and whether it is
// version 4's unprivileged task (nobody with no_new_privs, in a child of
// the test), which cannot switch the JIT (its root parent sets it for the
// whole run), cannot make or attach to cgroups, and must be refused the
// debug flag.
type fuzzMode struct {
	seed         uint64
	seconds      int
	unprivileged bool
}

// who names the caller of a run, for messages.
func (m fuzzMode) who() string {
	if m.unprivileged {
		return "unprivileged (nobody, no_new_privs)"
	}
	return "as root"
}

// fuzzAll is one run: the parent's part (loads and seccomp(2) calls that
// cannot append), the cgroup and map parts, and the children's part
// (appends), for m.seconds in all.
func fuzzAll(t *testing.T, m fuzzMode) {
	t.Helper()
	seed, seconds := m.seed, m.seconds
	t.Logf("fuzz: seed=%d seconds=%d %s (replay with %s=%d)", seed, seconds, m.who(), EnvSeed, seed)
	if m.unprivileged {
		t.Log("fuzz: loads with the JIT as the root parent set it for this run")
	} else {
		t.Log("fuzz: loads with the JIT on for the first half of the time, off for the second")
	}

	fx := newFixtures(t)
	seeds := checkSeeds(t, seedRules(fx.mapFD), m.who())

	total := time.Duration(seconds) * time.Second
	childBudget := max(total/8, time.Second)
	// The cgroup part needs ABI version 2 and cgroup2 on /sys/fs/cgroup.
	cgroupWhy := cgroupSkip()
	if m.unprivileged {
		cgroupWhy = "unprivileged: making the scratch cgroups under " + cgroupRoot + " needs root, and a cgroup attach, " +
			"detach or link needs CAP_SYS_ADMIN in every version (EPERM for nobody: tests/cgroupmgr TestPrivilege)"
	}
	var cgroupBudget time.Duration
	if cgroupWhy == "" {
		cgroupBudget = childBudget
	}
	// The map part needs ABI version 3.
	fsmapWhy := fsmapSkip()
	var fsmapBudget time.Duration
	if fsmapWhy == "" {
		fsmapBudget = childBudget
	}
	parentBudget := max(total-children*childBudget-cgroupBudget-fsmapBudget, time.Second)
	// An unprivileged run cannot write the sysctl, nor restore it at
	// cleanup (which runs with its privileges dropped).
	setJIT := func(bool) {}
	if !m.unprivileged {
		setJIT = jitSwitch(t)
	}

	// The parent's part: loads, and seccomp(2) calls that cannot append a
	// rule. It runs on its own goroutine so that a call that never
	// returns is caught.
	var inflight atomic.Pointer[string]
	done := make(chan *report, 1)
	deadline := time.Now().Add(parentBudget)
	go func() {
		done <- fuzzParent(newGen(seed, seeds), deadline, fx, &inflight, setJIT, m.unprivileged)
	}()
	var rep *report
	select {
	case rep = <-done:
	case <-time.After(time.Until(deadline) + hangGrace):
		what := "?"
		if p := inflight.Load(); p != nil {
			what = *p
		}
		t.Fatalf("a call did not return %s after the deadline (seed %d): %s", hangGrace, seed, what)
	}
	setJIT(true)

	// The cgroup part, in this process too: it attaches only to
	// cgroups that hold no process.
	if cgroupWhy != "" {
		t.Logf("fuzz: cgroup part skipped: %s", cgroupWhy)
	} else {
		crep, where := runCgroupPart(t, seed+children+1, cgroupBudget, fx)
		t.Logf("fuzz: cgroup part: %d bpf(2) calls on the scratch cgroups under %s, %d with an exact expectation; %d links closed, %d programs detached at teardown",
			crep.CgroupCalls, where, crep.CgroupExact, crep.CgroupCloses, crep.CgroupDetached)
		for _, cmd := range []int{bpfProgAttach, bpfProgDetach, bpfProgQuery, bpfLinkCreate, bpfLinkUpdate, bpfLinkDetach} {
			t.Logf("fuzz: cgroup %s: %s", bpfCmdNames[cmd], crep.Cgroup[bpfCmdNames[cmd]])
		}
		for _, cmd := range []int{bpfProgAttach, bpfLinkCreate, bpfLinkUpdate} {
			assert.Positive(t, crep.Cgroup[bpfCmdNames[cmd]]["ok"], "no %s succeeded: the cgroup part does not reach cgroup-bpf's success path", bpfCmdNames[cmd])
		}
		rep.Violations = append(rep.Violations, crep.Violations...)
		rep.Dropped += crep.Dropped
		if crep.SlowestDur > rep.SlowestDur {
			rep.SlowestDur, rep.Slowest = crep.SlowestDur, crep.Slowest
		}
	}

	// The map part, in this process: its rules go to threads of their
	// own, which end with them.
	if fsmapWhy != "" {
		t.Logf("fuzz: map part skipped: %s", fsmapWhy)
	} else {
		frep := runFSMapPart(t, seed+children+2, fsmapBudget, fx)
		t.Logf("fuzz: map part: %d calls, %d rules appended: %s", frep.FSMapCalls, frep.FSMapAppends, frep.FSMap)
		for _, k := range []string{"BPF_MAP_CREATE:ok", "BPF_MAP_UPDATE_ELEM:ok", "BPF_MAP_DELETE_ELEM:ok", "BPF_PROG_LOAD:ok"} {
			assert.Positive(t, frep.FSMap[k], "no %s: the map part does not reach the success path", k)
		}
		rep.Violations = append(rep.Violations, frep.Violations...)
		rep.Dropped += frep.Dropped
		if frep.SlowestDur > rep.SlowestDur {
			rep.SlowestDur, rep.Slowest = frep.SlowestDur, frep.Slowest
		}
	}

	// The children's part: appending real rules.
	for i := range children {
		cseed := seed + uint64(i) + 1
		jit := i%2 == 0
		setJIT(jit)
		if m.unprivileged {
			t.Logf("child %d: seed %d, %s, JIT as set, %s", i, cseed, childBudget, m.who())
		} else {
			t.Logf("child %d: seed %d, %s, JIT %v", i, cseed, childBudget, jit)
		}
		crep := spawnChild(t, cseed, childBudget)
		t.Logf("child %d: %d seccomp calls (%s), %d rules appended, %d rounds of file system operations, %d execs",
			i, crep.Calls, crep.Seccomp, crep.Appended, crep.FSOps, crep.Execs)
		rep.Calls += crep.Calls
		rep.Seccomp.add(crep.Seccomp)
		rep.Violations = append(rep.Violations, crep.Violations...)
		rep.Dropped += crep.Dropped
		if crep.SlowestDur > rep.SlowestDur {
			rep.SlowestDur, rep.Slowest = crep.SlowestDur, crep.Slowest
		}
	}
	setJIT(true)

	t.Logf("fuzz: %d BPF_PROG_LOAD calls: %s", rep.Loads, rep.Load)
	if len(rep.LoadCore) > 0 {
		t.Logf("fuzz: BPF_PROG_LOAD errnos of the BPF core, not of Landlock: %s", rep.LoadCore)
	}
	t.Logf("fuzz: loaded, by origin: %s", rep.LoadOrigin)
	t.Logf("fuzz: %d seccomp(SECCOMP_APPEND_LANDLOCK_RULE) calls, parent and children: %s", rep.Calls, rep.Seccomp)
	t.Logf("fuzz: slowest call %.3fs: %s", rep.SlowestDur, rep.Slowest)
	assert.Positive(t, rep.Load["ok"], "no input loaded: the fuzzer does not reach the verifier's success path")
	for _, v := range rep.Violations {
		t.Errorf("seed %d: %s", seed, v)
	}
	if rep.Dropped > 0 {
		t.Errorf("seed %d: %d more violations", seed, rep.Dropped)
	}
}

// runCgroupPart runs the cgroup part with seed for budget on its own
// goroutine, so that a call that never returns is caught, and returns its
// report and where its scratch cgroups were.
func runCgroupPart(t *testing.T, seed uint64, budget time.Duration, fx *fixtures) (*report, string) {
	t.Helper()
	t.Logf("fuzz: cgroup part: seed %d, %s", seed, budget)
	f := newCgFuzz(t, newGen(seed, nil), fx)
	var inflight atomic.Pointer[string]
	done := make(chan *report, 1)
	deadline := time.Now().Add(budget)
	f.started = true
	go func() { done <- fuzzCgroup(f, deadline, &inflight) }()
	select {
	case rep := <-done:
		return rep, f.root
	case <-time.After(time.Until(deadline) + hangGrace):
		what := "?"
		if p := inflight.Load(); p != nil {
			what = *p
		}
		t.Fatalf("a call of the cgroup part did not return %s after the deadline (seed %d): %s; the scratch cgroups under %s are left", hangGrace, seed, what, f.root)
		return nil, ""
	}
}

// fixtures are the objects the fuzzer points at: an array map, a program
// of another type, a pipe, and (for calls that cannot append it) a valid
// Landlock rule.
type fixtures struct {
	mapFD    int
	otherFD  int
	pipe     [2]int
	ruleFD   int
	closedFD int
	// triggers says the kernel has rule triggers (ABI version 5):
	// SECCOMP_LANDLOCK_RULE_TRIGGERS is a known flag, whose args is a
	// struct landlock_rule_attr.
	triggers bool
}

// newFixtures creates the fixtures, closed at cleanup.
func newFixtures(t testing.TB) *fixtures {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	require.NoError(t, err, "creating an array map")
	t.Cleanup(func() { m.Close() })
	fx := &fixtures{mapFD: m.FD()}
	if v, err := landlockbpf.KernelABIVersion(); err == nil && v >= landlockbpf.TriggersABI {
		fx.triggers = true
	}

	fd, errno := loadRetry(&loadInput{
		ProgType: progTypeSocketFilter,
		Insns:    []insn{movImm(0, 0), exit()},
		License:  []byte("GPL\x00"),
	})
	require.Zero(t, errno, "loading a socket filter: %v", errno)
	fx.otherFD = fd
	t.Cleanup(func() { unix.Close(fd) })

	require.NoError(t, unix.Pipe2(fx.pipe[:], unix.O_CLOEXEC))
	t.Cleanup(func() { unix.Close(fx.pipe[0]); unix.Close(fx.pipe[1]) })

	fd, errno = loadRetry(&loadInput{Insns: []insn{movImm(0, 0), exit()}, License: []byte("GPL\x00"), Attach: landlockbpf.AttachLandlockFS})
	require.Zero(t, errno, "loading the allow rule: %v", errno)
	fx.ruleFD = fd
	t.Cleanup(func() { unix.Close(fd) })

	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
	unix.Close(p[0])
	unix.Close(p[1])
	fx.closedFD = p[1]
	return fx
}

// checkSeeds loads each seed rule as is, as who, and returns those that
// load. All must load, or the mutants start from nothing; but the rules of
// BPF_F_LANDLOCK_DEBUG, which the spec says load with CAP_SYS_ADMIN (which
// the test has as root, and not unprivileged), are only logged and left
// out if they do not.
func checkSeeds(t *testing.T, seeds []seedRule, who string) []seedRule {
	t.Helper()
	var ok []seedRule
	for _, s := range seeds {
		in := &loadInput{Insns: s.insns, License: []byte("GPL\x00"), Attach: landlockbpf.AttachLandlockFS, ProgFlags: s.flags, Origin: "seed:" + s.name}
		fd, errno := loadRetry(in)
		if errno != 0 && s.flags != 0 {
			t.Logf("fuzz: note: the seed rule %s with prog_flags %#x does not load %s: %s (the spec: BPF_F_LANDLOCK_DEBUG loads with CAP_SYS_ADMIN); left out",
				s.name, s.flags, who, errnoName(errno))
			continue
		}
		require.Zero(t, errno, "the seed rule %s does not load: %v (%s)", s.name, errno, in)
		unix.Close(fd)
		ok = append(ok, s)
	}
	t.Logf("fuzz: %d of %d seed rules load", len(ok), len(seeds))
	return ok
}

// jitSwitch returns a function that turns the BPF JIT on or off (if the
// kernel lets it), and restores the original state at cleanup.
func jitSwitch(t *testing.T) func(on bool) {
	t.Helper()
	// Binaries run side by side: no other may see the JIT switch, or
	// switch it, while t does.
	landlockbpf.HoldSysctls(t)
	b, err := os.ReadFile(jitSysctl)
	if err != nil {
		t.Logf("fuzz: %v: the JIT state stays as it is", err)
		return func(bool) {}
	}
	orig := strings.TrimSpace(string(b))
	t.Cleanup(func() {
		if err := os.WriteFile(jitSysctl, []byte(orig+"\n"), 0); err != nil {
			t.Errorf("restoring %s to %s: %v", jitSysctl, orig, err)
		}
	})
	return func(on bool) {
		v := "0"
		if on {
			v = "1"
		}
		// With CONFIG_BPF_JIT_ALWAYS_ON, 0 is refused: fine.
		_ = os.WriteFile(jitSysctl, []byte(v+"\n"), 0)
	}
}

// Program flags: BPF_F_SLEEPABLE, which a Landlock rule cannot have; the
// flags 6.12 knows (BPF_F_STRICT_ALIGNMENT .. BPF_F_TEST_REG_INVARIANTS,
// BPF_F_TOKEN_FD), which the BPF core accepts, and ignores, for any
// program type; and the series' own.
const (
	progFlagSleepable     = 1 << 4 // rules run under rcu_read_lock()
	progFlagsKnownTo612   = 0xff | 1<<16
	progFlagLandlockDebug = landlockbpf.ProgFlagDebug
)

// mustNotLoad returns why in must fail to load, or "" if it may load.
func mustNotLoad(in *loadInput) string {
	switch {
	case in.Attach != landlockbpf.AttachLandlockFS:
		return fmt.Sprintf("expected_attach_type is %d, not BPF_LANDLOCK_FS", in.Attach)
	case in.ProgFlags&progFlagSleepable != 0:
		return "BPF_F_SLEEPABLE is set: a Landlock rule runs under rcu_read_lock()"
	case in.Ifindex != 0:
		return "the program is bound to a device (prog_ifindex)"
	case in.ProgFlags&^(progFlagsKnownTo612|progFlagLandlockDebug) != 0:
		return fmt.Sprintf("prog_flags %#x has unknown bits", in.ProgFlags)
	case in.NullIns || in.ZeroCnt:
		return "there are no instructions"
	case in.License == nil:
		return "the license is NULL"
	}
	return ""
}

// allowedLoad classifies errno for BPF_PROG_LOAD: allowed for Landlock,
// allowed as the BPF core's, or not allowed.
func allowedLoad(errno unix.Errno) (landlock, core bool) {
	_, landlock = loadAllowed[errno]
	_, core = loadCoreAllowed[errno]
	return landlock, core
}

// debugRefusedUnprivileged reports whether an unprivileged caller must get
// exactly EPERM for in: bpf_prog_load() checks the prog flags (unknown
// ones: EINVAL), then BPF_F_LANDLOCK_DEBUG (another program type: EINVAL;
// no CAP_SYS_ADMIN: EPERM) before anything else of the attributes.
func debugRefusedUnprivileged(in *loadInput) bool {
	return in.ProgFlags&progFlagLandlockDebug != 0 &&
		in.ProgFlags&^(progFlagsKnownTo612|progFlagLandlockDebug) == 0 &&
		in.progType() == landlockbpf.ProgTypeLandlock
}

// fuzzParent loads inputs of g until deadline, and calls seccomp(2) in
// ways that cannot append a rule. Halfway it turns the JIT off. It does
// not touch t: what it finds goes into the report. unprivileged says the
// caller has no capability (version 4): then the debug flag must be
// refused with EPERM.
func fuzzParent(g *gen, deadline time.Time, fx *fixtures, inflight *atomic.Pointer[string], jit func(bool), unprivileged bool) *report {
	rep := newReport()
	half := time.Now().Add(time.Until(deadline) / 2)
	jit(true)
	switched := false
	for i := 0; time.Now().Before(deadline); i++ {
		if !switched && time.Now().After(half) {
			jit(false)
			switched = true
		}
		in := g.input()
		desc := fmt.Sprintf("BPF_PROG_LOAD call %d: %s", i, in)
		inflight.Store(&desc)
		start := time.Now()
		fd, errno := load(in)
		rep.timed(time.Since(start), func() string { return desc })
		rep.Loads++
		name := errnoName(errno)
		if unprivileged && debugRefusedUnprivileged(in) && errno != unix.EPERM {
			rep.violate("BPF_PROG_LOAD with BPF_F_LANDLOCK_DEBUG without CAP_SYS_ADMIN returned %s, want EPERM (%s)", name, desc)
		}
		switch landlock, core := allowedLoad(errno); {
		case errno == 0:
			unix.Close(fd)
			rep.Load[name]++
			rep.LoadOrigin[strings.SplitN(in.Origin, ":", 2)[0]]++
			if why := mustNotLoad(in); why != "" {
				rep.violate("loaded although %s (%s)", why, desc)
			}
		case landlock:
			rep.Load[name]++
		case core:
			rep.LoadCore[name]++
		default:
			rep.Load[name]++
			rep.violate("BPF_PROG_LOAD returned %s (%d), not an allowed errno (%s)", name, int(errno), desc)
		}

		if i%4 == 0 {
			c := g.seccompCall(fx, false, []int{fx.ruleFD})
			desc := fmt.Sprintf("seccomp call after load %d: %s", i, c)
			inflight.Store(&desc)
			start := time.Now()
			c.check(rep, 0)
			rep.timed(time.Since(start), func() string { return desc })
		}
	}
	return rep
}

// seccompCall is one seccomp(SECCOMP_APPEND_LANDLOCK_RULE) call.
type seccompCall struct {
	flags uint32
	null  bool   // args NULL
	fd    uint32 // *args otherwise
	kind  string // what fd is
	// rule says fd is a Landlock rule that allows everything.
	rule bool
	// triggersKnown says the kernel has SECCOMP_LANDLOCK_RULE_TRIGGERS;
	// attr says args is then a struct landlock_rule_attr with fd,
	// attrFlags and trig (flags is that flag alone).
	triggersKnown, attr bool
	attrFlags           uint32
	trig                uint64
}

func (c seccompCall) String() string {
	switch {
	case c.null:
		return fmt.Sprintf("flags=%#x args=NULL", c.flags)
	case c.attr:
		return fmt.Sprintf("flags=%#x args=&{prog_fd=%d (%s) flags=%#x triggers=%#x}", c.flags, c.fd, c.kind, c.attrFlags, c.trig)
	}
	return fmt.Sprintf("flags=%#x args=&%d (%s)", c.flags, c.fd, c.kind)
}

// attrValid says the rule attr is one the kernel takes: no flag, and
// triggers that are a non-empty set of actions.
func (c seccompCall) attrValid() bool {
	return c.attrFlags == 0 && c.trig != 0 && c.trig&^landlockbpf.ActionsAll == 0
}

// seccompCall draws a call; ruleFDs are the fds of Landlock rules (that
// allow everything) the caller holds. Only a child (canAppend) gets calls
// that append a rule: in the parent, such a call is redrawn with the
// version flag.
func (g *gen) seccompCall(fx *fixtures, canAppend bool, ruleFDs []int) seccompCall {
	var c seccompCall
	c.triggersKnown = fx.triggers
	switch n := g.r.IntN(12); {
	case n < 5:
		c.flags = 0
	case n < 7:
		c.flags = landlockbpf.SeccompLandlockABIVersion
	case n < 9:
		c.flags = 1 << g.r.IntN(32)
	case n < 10 && fx.triggers:
		c.flags = landlockbpf.SeccompLandlockRuleTriggers
	default:
		c.flags = g.r.Uint32()
	}
	if fx.triggers && c.flags == landlockbpf.SeccompLandlockRuleTriggers {
		c.attr = true
		if g.chance(0.2) {
			c.attrFlags = g.r.Uint32() | 1
		}
		switch n := g.r.IntN(5); {
		case n < 3:
			c.trig = g.r.Uint64N(landlockbpf.ActionsAll) + 1
		case n < 4:
			c.trig = 0
		default:
			c.trig = g.r.Uint64()
		}
	}
	switch r := g.r.IntN(20); {
	case r < 4:
		c.null = true
	case r < 7:
		c.fd, c.kind = uint32(g.r.IntN(64)), "random small"
	case r < 9:
		c.fd, c.kind = g.r.Uint32(), "random"
	case r < 10:
		c.fd, c.kind = uint32(fx.mapFD), "array map"
	case r < 11:
		c.fd, c.kind = uint32(fx.otherFD), "socket filter"
	case r < 12:
		c.fd, c.kind = uint32(fx.pipe[g.r.IntN(2)]), "pipe"
	case r < 13:
		c.fd, c.kind = uint32(fx.closedFD), "closed"
	default:
		c.fd, c.kind = uint32(pick(g, ruleFDs)), "landlock allow rule"
	}
	c.rule = !c.null && slices.Contains(ruleFDs, int(c.fd))
	if c.rule && c.kind != "landlock allow rule" {
		c.kind += ", a landlock allow rule"
	}
	if !canAppend && c.rule && (c.flags == 0 || c.attr && c.attrValid()) {
		c.flags = landlockbpf.SeccompLandlockABIVersion
		c.attr = false
	}
	return c
}

// check makes the call and checks the result against the spec's table.
// appended is how many rules the calling thread holds; it returns whether
// the call appended one.
func (c seccompCall) check(rep *report, appended int) bool {
	var args unsafe.Pointer
	fd := c.fd
	attr := landlockbpf.RuleAttr{ProgFD: c.fd, Flags: c.attrFlags, Triggers: c.trig}
	switch {
	case c.attr && !c.null:
		args = unsafe.Pointer(&attr)
	case !c.null:
		args = unsafe.Pointer(&fd)
	}
	open := c.null || fdOpen(c.fd)
	r, errno := seccompAppend(c.flags, args)
	runtime.KeepAlive(&fd)
	runtime.KeepAlive(&attr)
	known := uint32(landlockbpf.SeccompLandlockABIVersion)
	if c.triggersKnown {
		known |= landlockbpf.SeccompLandlockRuleTriggers
	}
	name := errnoName(errno)
	if errno == 0 && c.flags == landlockbpf.SeccompLandlockABIVersion {
		name = "version"
	}
	rep.Calls++
	rep.Seccomp[name]++

	var want unix.Errno
	var why string
	switch {
	case c.flags&^known != 0:
		want, why = unix.EINVAL, "unknown flag"
	case c.flags&landlockbpf.SeccompLandlockABIVersion != 0 && c.flags != landlockbpf.SeccompLandlockABIVersion:
		want, why = unix.EINVAL, "the version flag with another"
	case c.flags == landlockbpf.SeccompLandlockABIVersion && c.null:
		if errno != 0 || r < 1 || r > landlockbpf.ABIVersion {
			rep.violate("seccomp(4, %s) = %d, %s: want an ABI version in 1..%d", c, r, name, landlockbpf.ABIVersion)
		}
		return false
	case c.flags == landlockbpf.SeccompLandlockABIVersion:
		want, why = unix.EINVAL, "the version query takes NULL"
	case c.null:
		want, why = unix.EFAULT, "NULL args (the support probe)"
	case c.attr && !c.attrValid():
		want, why = unix.EINVAL, "a rule attr with a flag, no trigger or an unknown one"
	case !open:
		want, why = unix.EBADF, "fd not open"
	case !c.rule:
		want, why = unix.EINVAL, "fd not a Landlock program"
	case appended >= landlockbpf.MaxRules:
		want, why = unix.E2BIG, "64 rules already"
	default:
		want, why = 0, "appends the rule"
	}
	if errno != want || (want == 0 && r != 0) {
		rep.violate("seccomp(4, %s) = %d, %s: want %s (%s), %d rules held", c, int(r), name, errnoName(want), why, appended)
	}
	return errno == 0 && want == 0
}

// spawnChild runs the child part with seed for budget and returns its
// report; a child that fails fails t.
func spawnChild(t *testing.T, seed uint64, budget time.Duration) *report {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFuzzLoadAndSeccomp$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envChildSeed+"="+strconv.FormatUint(seed, 10),
		envChildBudget+"="+budget.String(),
		envChildReport+"="+out,
	)
	cmd.WaitDelay = 10 * time.Second
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	require.NoError(t, cmd.Start(), "starting a child")
	timer := time.AfterFunc(budget+hangGrace, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	hung := !timer.Stop()
	require.False(t, hung, "the child with seed %d did not finish %s after its budget of %s: killed\n%s", seed, hangGrace, budget, output.String())
	require.NoError(t, err, "the child with seed %d failed:\n%s", seed, output.String())
	b, err := os.ReadFile(out)
	require.NoError(t, err, "the child with seed %d wrote no report:\n%s", seed, output.String())
	rep := newReport()
	require.NoError(t, json.Unmarshal(b, rep), "decoding the child's report")
	return rep
}

// sizeofAttr is checked on the host too: the layout of union bpf_attr's
// BPF_PROG_LOAD part up to expected_attach_type.
func TestProgLoadAttrLayout(t *testing.T) {
	var a progLoadAttr
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"prog_type", unsafe.Offsetof(a.ProgType), 0},
		{"insn_cnt", unsafe.Offsetof(a.InsnCnt), 4},
		{"insns", unsafe.Offsetof(a.Insns), 8},
		{"license", unsafe.Offsetof(a.License), 16},
		{"log_level", unsafe.Offsetof(a.LogLevel), 24},
		{"log_size", unsafe.Offsetof(a.LogSize), 28},
		{"log_buf", unsafe.Offsetof(a.LogBuf), 32},
		{"kern_version", unsafe.Offsetof(a.KernVersion), 40},
		{"prog_flags", unsafe.Offsetof(a.ProgFlags), 44},
		{"prog_name", unsafe.Offsetof(a.ProgName), 48},
		{"prog_ifindex", unsafe.Offsetof(a.ProgIfindex), 64},
		{"expected_attach_type", unsafe.Offsetof(a.ExpectedAttachType), 68},
		{"sizeof", unsafe.Sizeof(a), 72},
		{"sizeof(struct bpf_insn)", unsafe.Sizeof(insn{}), 8},
	} {
		assert.Equal(t, f.want, f.got, f.name)
	}
}

// TestGenerator checks, on the host too, that the generator is
// deterministic and keeps to its bounds: 1..64 instructions, buffers as
// long as the sizes given to the kernel.
func TestGenerator(t *testing.T) {
	seeds := seedRules(3)
	a, b := newGen(42, seeds), newGen(42, seeds)
	for i := range 5000 {
		x, y := a.input(), b.input()
		require.Equal(t, x.String(), y.String(), "input %d differs for one seed", i)
		require.NotEmpty(t, x.Insns, "input %d", i)
		require.LessOrEqual(t, len(x.Insns), 64, "input %d", i)
		if x.License != nil {
			require.Equal(t, byte(0), x.License[len(x.License)-1], "license NUL-terminated")
		}
		c := a.seccompCall(&fixtures{mapFD: 3, otherFD: 4, pipe: [2]int{5, 6}, ruleFD: 7, closedFD: 8}, false, []int{7})
		b.seccompCall(&fixtures{}, false, []int{0})
		if c.flags == 0 && !c.null {
			require.NotEqual(t, uint32(7), c.fd, "the parent must never be drawn an append of its rule: %s", c)
		}
	}
}
