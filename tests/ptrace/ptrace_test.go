package ptrace

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// skipUnlessPtrace skips t unless the kernel has ABI version 4, the one
// with the ptrace restriction.
func skipUnlessPtrace(t *testing.T) {
	t.Helper()
	if why := landlockbpf.SkipUnlessSupported(4); why != "" {
		t.Skipf("the ptrace restriction is ABI version 4: %s", why)
	}
}

// An operation is one way for a tracer to reach a tracee, all of them
// judged by the same hook (ptrace_access_check, for every
// ptrace_may_access() mode).
type operation struct {
	name string
	cmd  string // the helper's command
	// refused is what the call gives when the rule refuses: the hook's
	// EPERM, except where the caller turns the refusal into its own
	// errno (mm_access() and the /proc link checks give EACCES).
	refused unix.Errno
}

var operations = []operation{
	{"ptrace_attach", "attach", unix.EPERM},
	{"ptrace_seize", "seize", unix.EPERM},
	{"open_proc_mem_rdwr", "mem", unix.EACCES}, // PTRACE_MODE_ATTACH_FSCREDS, through mm_access()
	{"readlink_proc_cwd", "cwd", unix.EACCES},  // PTRACE_MODE_READ_FSCREDS
	{"process_vm_readv", "vmread", unix.EPERM}, // PTRACE_MODE_ATTACH_REALCREDS (its EACCES made EPERM)
	{"pidfd_getfd", "getfd", unix.EPERM},       // PTRACE_MODE_ATTACH_REALCREDS
	{"kcmp", "kcmp", unix.EPERM},               // PTRACE_MODE_READ_REALCREDS
	{"get_robust_list", "robust", unix.EPERM},  // PTRACE_MODE_READ_REALCREDS
}

// missingSyscalls returns, by command, why the kernel cannot do the
// operations it lacks: the guest's tiny configuration may leave out
// kcmp(2) (CONFIG_KCMP) and process_vm_readv(2)
// (CONFIG_CROSS_MEMORY_ATTACH). Each is probed on the calling process,
// which they always allow.
func missingSyscalls() map[string]string {
	missing := map[string]string{}
	if err := kcmp(os.Getpid(), os.Getpid()); errors.Is(err, unix.ENOSYS) {
		missing["kcmp"] = "kcmp(2) gives ENOSYS: the guest kernel needs CONFIG_KCMP=y"
	}
	if err := vmRead(os.Getpid(), uintptr(unsafe.Pointer(&vmProbe))); errors.Is(err, unix.ENOSYS) {
		missing["vmread"] = "process_vm_readv(2) gives ENOSYS: the guest kernel needs CONFIG_CROSS_MEMORY_ATTACH=y"
	}
	return missing
}

// A situation is a chain of processes, each forked by the one before, that
// append allow-all rules before or after the forks; the rule's verdict
// plays no part, only the domains it makes. A process that appends after
// it forked starts a new level that its child does not have.
type situation struct {
	name string
	// was is the case of the 2017 RFC's test_ptrace.c this one is, if
	// any.
	was string
	// roles are the processes, the first one a child of the test
	// process, each of the others a child of the one before.
	roles []string
	// setup is done in this order: "X append" (X appends an allow-all
	// rule) or "X fork" (X starts the next process of the chain).
	setup []string
	// refused are the (tracer, tracee) pairs the rule refuses, "X->Y";
	// every other pair of two processes of the chain is allowed.
	refused []string
}

var (
	pc  = []string{"P", "C"}
	gpc = []string{"G", "P", "C"}
)

var situations = []situation{
	{
		name: "no_domain", was: "ptrace_allow_without_sandbox", roles: pc,
		setup: []string{"P fork"},
	},
	{
		name: "same_domain", roles: pc,
		setup: []string{"P append", "P fork"},
	},
	{
		name: "child_has_domain_parent_none", was: "ptrace_allow_with_one_sandbox", roles: pc,
		setup:   []string{"P fork", "C append"},
		refused: []string{"C->P"},
	},
	{
		name: "child_nested_below_parent", was: "ptrace_allow_with_nested_sandbox", roles: pc,
		setup:   []string{"P append", "P fork", "C append"},
		refused: []string{"C->P"},
	},
	{
		name: "parent_has_domain_child_none", was: "ptrace_deny_with_parent_sandbox", roles: pc,
		setup:   []string{"P fork", "P append"},
		refused: []string{"P->C"},
	},
	{
		// C has P's first level, and P is nested below it.
		name: "parent_nested_below_child", was: "ptrace_deny_with_nested_and_parent_sandbox", roles: pc,
		setup:   []string{"P append", "P fork", "P append"},
		refused: []string{"P->C"},
	},
	{
		name: "siblings_over_a_shared_level", was: "ptrace_deny_with_forked_sandbox", roles: pc,
		setup:   []string{"P append", "P fork", "P append", "C append"},
		refused: []string{"P->C", "C->P"},
	},
	{
		name: "siblings", was: "ptrace_deny_with_sibling_sandbox", roles: pc,
		setup:   []string{"P fork", "P append", "C append"},
		refused: []string{"P->C", "C->P"},
	},
	{
		name: "three_levels", roles: gpc,
		setup:   []string{"G append", "G fork", "P append", "P fork", "C append"},
		refused: []string{"P->G", "C->G", "C->P"},
	},
	{
		name: "three_levels_first_without_domain", roles: gpc,
		setup:   []string{"G fork", "P append", "P fork", "C append"},
		refused: []string{"P->G", "C->G", "C->P"},
	},
	{
		name: "three_levels_child_shares_parent_level", roles: gpc,
		setup:   []string{"G append", "G fork", "P append", "P fork"},
		refused: []string{"P->G", "C->G"},
	},
	{
		// P and C both append after P forked C: siblings over G's level.
		name: "three_levels_middle_appends_after_fork", roles: gpc,
		setup:   []string{"G append", "G fork", "P fork", "P append", "C append"},
		refused: []string{"P->G", "C->G", "P->C", "C->P"},
	},
}

// checkSituations builds each situation and tries every operation between
// every two of its processes, both ways, and PTRACE_TRACEME from every
// process to its parent. wantStatus, if not empty, is what every helper
// must report for its uid, capabilities and no_new_privs.
func checkSituations(t *testing.T, wantStatus string) {
	missing := missingSyscalls()
	var ops []operation
	for _, op := range operations {
		if why, ok := missing[op.cmd]; ok {
			t.Run(op.name, func(t *testing.T) { t.Skip(why) })
			continue
		}
		ops = append(ops, op)
	}
	for _, s := range situations {
		t.Run(s.name, func(t *testing.T) {
			if s.was != "" {
				t.Logf("the 2017 RFC's %s", s.was)
			}
			t.Logf("setup: %s; refused: %q", strings.Join(s.setup, ", "), s.refused)
			c := newChain(t, wantStatus, s.roles...)
			for _, step := range s.setup {
				role, verb, _ := strings.Cut(step, " ")
				switch verb {
				case "append":
					c.appendRule(t, role)
				case "fork":
					c.fork(t, role)
				default:
					t.Fatalf("bad setup step %q", step)
				}
			}
			for _, p := range c.procs {
				require.NotZero(t, p.pid, "the setup %q never starts %s", s.setup, p.role)
			}
			for _, tracer := range c.procs {
				for _, tracee := range c.procs {
					if tracer == tracee {
						continue
					}
					pair := tracer.role + "->" + tracee.role
					refused := slices.Contains(s.refused, pair)
					for _, op := range ops {
						t.Run(fmt.Sprintf("%s_to_%s/%s", tracer.role, tracee.role, op.name), func(t *testing.T) {
							err := c.try(t, op, tracer, tracee)
							if refused {
								assert.ErrorIs(t, err, op.refused, "%s: %s on %s must be refused: %s's domain is not %s's nor nested below it (setup %q)", s.name, op.name, pair, tracee.role, tracer.role, s.setup)
							} else {
								assert.NoError(t, err, "%s: %s on %s must be allowed: %s has no domain, or %s's domain is %s's or nested below it (setup %q)", s.name, op.name, pair, tracer.role, tracee.role, tracer.role, s.setup)
							}
						})
					}
				}
			}
			for _, tracee := range c.procs[1:] {
				parent := c.parent(tracee)
				pair := parent.role + "->" + tracee.role
				refused := slices.Contains(s.refused, pair)
				t.Run(tracee.role+"/ptrace_traceme", func(t *testing.T) {
					err := c.traceme(t, tracee)
					if refused {
						assert.ErrorIs(t, err, unix.EPERM, "%s: PTRACE_TRACEME from %s, judged as %s: must be refused (setup %q)", s.name, tracee.role, pair, s.setup)
					} else {
						assert.NoError(t, err, "%s: PTRACE_TRACEME from %s, judged as %s: must be allowed (setup %q)", s.name, tracee.role, pair, s.setup)
					}
				})
			}
		})
	}
}

// TestPtrace: the ptrace matrix as root: in each situation, every
// operation between every two processes, both ways, is allowed or refused
// as the situation's domains say, and so is PTRACE_TRACEME. Yama's
// ptrace_scope is 0 (when the kernel has Yama), so that only the rule can
// refuse.
func TestPtrace(t *testing.T) {
	skipUnlessPtrace(t)
	landlockbpf.DisableYamaPtrace(t)
	checkSituations(t, "")
}

// unprivilegedStatus is the status of a helper that is uid 65534 with no
// capability and no_new_privs.
var unprivilegedStatus = fmt.Sprintf("ok uid=%d capeff=0x0 no_new_privs=true", privdrop.NobodyID)

// TestPtraceUnprivileged: the same matrix with every process uid 65534,
// without any capability (CAP_SYS_PTRACE included), with no_new_privs,
// loading and appending its rules itself (kernel.unprivileged_bpf_disabled
// set to 0 by the root parent first): where the rule allows, nothing
// else refuses (same uid, dumpable); where it refuses, the same errnos.
func TestPtraceUnprivileged(t *testing.T) {
	skipUnlessPtrace(t)
	landlockbpf.DisableYamaPtrace(t)
	landlockbpf.RunUnprivileged(t, func(t *testing.T) {
		checkSituations(t, unprivilegedStatus)
	})
}

// A threadOp is one way for a thread to reach another of its process.
type threadOp struct {
	name string
	cmd  string // the command of the same operation between processes, for missingSyscalls
	do   func(self, other, fd int) error
}

var threadOps = []threadOp{
	{"open_proc_task_mem_rdwr", "mem", func(_, other, _ int) error {
		fd, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/mem", other), unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	}},
	{"readlink_proc_task_cwd", "cwd", func(_, other, _ int) error {
		_, err := unix.Readlink(fmt.Sprintf("/proc/self/task/%d/cwd", other), make([]byte, unix.PathMax))
		return err
	}},
	{"pidfd_getfd", "getfd", func(_, other, fd int) error { return getFD(other, fd, unix.PIDFD_THREAD) }},
	{"kcmp", "kcmp", func(self, other, _ int) error { return kcmp(self, other) }},
	{"get_robust_list", "robust", func(_, other, _ int) error { return getRobustList(other) }},
	{"process_vm_readv", "vmread", func(_, other, _ int) error {
		return vmRead(other, uintptr(unsafe.Pointer(&vmProbe)))
	}},
}

// threadOpsOn runs every threadOp from the calling thread, self, on the
// thread other, with fd an open fd of the process.
func threadOpsOn(self, other, fd int, missing map[string]string) map[string]error {
	res := map[string]error{}
	for _, op := range threadOps {
		if _, ok := missing[op.cmd]; !ok {
			res[op.name] = op.do(self, other, fd)
		}
	}
	return res
}

// TestPtraceSameThreadGroup: two threads of one process, each with a
// domain of its own (each appends its own rule once both exist: between
// two processes they would be siblings, refused both ways), reach each
// other: the kernel allows a task's own thread group before it asks the
// LSMs (open /proc/self/task/TID/mem read-write, which does not even ask
// for the calling process's own memory; readlink of its cwd;
// pidfd_getfd through a thread pidfd; kcmp; get_robust_list;
// process_vm_readv). As root and unprivileged.
func TestPtraceSameThreadGroup(t *testing.T) {
	skipUnlessPtrace(t)
	scenario := func(t *testing.T) {
		// A process whose credentials changed is not dumpable, which
		// makes its /proc/self/task files root's: set it, so that only
		// the rules could refuse.
		require.NoError(t, unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0))
		missing := missingSyscalls()
		rule, err := landlockbpf.Load(landlockbpf.Allow)
		require.NoError(t, err)
		defer rule.Close()

		// Thread B appends its rule, gives its id, and waits for A's id
		// to reach A once A is done with it.
		var appendA, appendB error
		var fromA, fromB map[string]error
		var tidA, tidB int
		bReady := make(chan int, 1)
		aDone := make(chan int, 1)
		bDone := make(chan struct{})
		go func() {
			defer close(bDone)
			runtime.LockOSThread() // never unlocked: the thread, and its rule, end with the goroutine
			if appendB = landlockbpf.Append(rule); appendB != nil {
				bReady <- 0
				return
			}
			bReady <- unix.Gettid()
			if a := <-aDone; a != 0 {
				fromB = threadOpsOn(unix.Gettid(), a, rule.FD(), missing)
			}
		}()
		landlockbpf.OnLockedThread(func() {
			appendA = landlockbpf.Append(rule)
			tidB = <-bReady
			if appendA != nil || tidB == 0 {
				aDone <- 0
				return
			}
			tidA = unix.Gettid()
			fromA = threadOpsOn(tidA, tidB, rule.FD(), missing)
			aDone <- tidA
			<-bDone // this thread, with its rule, lives until B is done with it
		})
		<-bDone
		require.NoError(t, appendA, "thread A appends its rule")
		require.NoError(t, appendB, "thread B appends its rule")
		require.NotEqual(t, tidA, tidB, "A and B ran on the same thread")
		for _, op := range threadOps {
			t.Run(op.name, func(t *testing.T) {
				if why, ok := missing[op.cmd]; ok {
					t.Skip(why)
				}
				assert.NoError(t, fromA[op.name], "thread A (%d) on thread B (%d) of its process, each with a domain of its own", tidA, tidB)
				assert.NoError(t, fromB[op.name], "thread B (%d) on thread A (%d) of its process, each with a domain of its own", tidB, tidA)
			})
		}
	}
	t.Run("root", func(t *testing.T) {
		privdrop.Run(t, privdrop.Privs{UID: privdrop.Keep, GID: privdrop.Keep}, scenario)
	})
	t.Run("nobody_no_new_privs", func(t *testing.T) { landlockbpf.RunUnprivileged(t, scenario) })
}
