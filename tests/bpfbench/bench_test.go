// Package bpfbench measures, in the guest, what Landlock eBPF rules cost
// on two hot file system paths: open+close and stat of a file in /tmp,
// with 0, 1 and 16 rules that allow everything (landlockbpf.Allow).
//
// TestBenchmark is a plain test, so that the harness runs it like the
// others. It asserts no timing: it prints what it measured, one t.Logf line
// per case of the form
//
//	bench: op=open+close rules=16 ns/op=1234.5
//
// plus "bench: jit=1" and "bench: landlock-bpf=present" (or "absent").
// Each case runs in a child process (the test binary again), because a rule
// can never be removed: the child locks its goroutine to its OS thread,
// appends the rules, warms up, then times LANDLOCK_BENCH_ITER operations
// (default 20000) LANDLOCK_BENCH_ROUNDS times (default 5) and the parent
// reports the median round. On a kernel without Landlock eBPF rules (such
// as one built with CONFIG_SECURITY_LANDLOCK_BPF=n) only the 0-rule case
// runs, which is the baseline.
package bpfbench

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
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
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

	defaultIter   = 20000
	defaultRounds = 5
)

// Environment of a child: how many rules it appends, the file it works on
// and where it writes its result.
const (
	envChildRules  = "LANDLOCK_BENCH_CHILD_RULES"
	envChildFile   = "LANDLOCK_BENCH_CHILD_FILE"
	envChildResult = "LANDLOCK_BENCH_CHILD_RESULT"
)

// guestEnv is set to 1 by the guest runner.
const guestEnv = "LANDLOCK_VMTEST_GUEST"

// jitSysctl switches the BPF JIT compiler (net.core.bpf_jit_enable).
const jitSysctl = "/proc/sys/net/core/bpf_jit_enable"

// clocksource names the clock time.Now reads in the guest.
const clocksource = "/sys/devices/system/clocksource/clocksource0/current_clocksource"

// ruleCounts are the cases, in the order they are measured.
var ruleCounts = []int{0, 1, 16}

// Operation names, as printed.
const (
	opOpenClose = "open+close"
	opStat      = "stat"
)

// result is what a child reports: for each operation, the ns/op of every
// timed round, and whether its rules were JIT-compiled.
type result struct {
	Rules  int                  `json:"rules"`
	Iter   int                  `json:"iter"`
	Rounds map[string][]float64 `json:"rounds"`
	// Jited is how many of the rules the kernel JIT-compiled.
	Jited int `json:"jited"`
}

func TestBenchmark(t *testing.T) {
	if n, ok := os.LookupEnv(envChildRules); ok {
		runChild(t, n)
		return
	}
	if os.Getenv(guestEnv) != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
	iter := knob(t, EnvIter, defaultIter)
	rounds := knob(t, EnvRounds, defaultRounds)

	present := landlockBPFPresent(t)
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
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("landlock-vmtest bench\n"), 0o644))
	t.Logf("file %s, %d iterations x %d rounds per case", file, iter, rounds)

	for _, n := range ruleCounts {
		var res *result
		t.Run(fmt.Sprintf("rules=%d", n), func(t *testing.T) {
			if n > 0 && !present {
				t.Skip("the kernel has no Landlock eBPF rules: only the 0-rule baseline is measured")
			}
			res = spawn(t, n, file)
		})
		if res == nil {
			continue
		}
		if n > 0 {
			t.Logf("rules=%d: %d of %d rules JIT-compiled", n, res.Jited, n)
		}
		for _, op := range []string{opOpenClose, opStat} {
			t.Logf("rounds op=%s rules=%d ns/op=%s", op, n, formatRounds(res.Rounds[op]))
			t.Logf("bench: op=%s rules=%d ns/op=%.1f", op, n, median(res.Rounds[op]))
		}
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

// landlockBPFPresent reports whether the kernel has Landlock eBPF rules:
// the ABI version query of seccomp(2) answers, instead of EINVAL for an
// unknown operation.
func landlockBPFPresent(t *testing.T) bool {
	t.Helper()
	v, err := landlockbpf.KernelABIVersion()
	if errors.Is(err, unix.EINVAL) {
		t.Logf("seccomp(SECCOMP_APPEND_LANDLOCK_RULE, SECCOMP_LANDLOCK_ABI_VERSION, NULL): %v: no Landlock eBPF rules", err)
		return false
	}
	require.NoError(t, err, "Landlock eBPF ABI version query")
	t.Logf("Landlock eBPF ABI version %d", v)
	return true
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

// spawn runs the case of n rules in a child process and returns its result.
func spawn(t *testing.T, n int, file string) *result {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	args := []string{"-test.run=^TestBenchmark$", "-test.v", "-test.count=1"}
	if d, ok := t.Deadline(); ok {
		if left := time.Until(d) * 9 / 10; left > 0 {
			args = append(args, "-test.timeout="+left.String())
		}
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(),
		envChildRules+"="+strconv.Itoa(n),
		envChildFile+"="+file,
		envChildResult+"="+out,
	)
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child measuring %d rules failed after %s:\n%s", n, time.Since(start).Round(time.Millisecond), output)
	b, err := os.ReadFile(out)
	require.NoError(t, err, "the child measuring %d rules wrote no result:\n%s", n, output)
	var res result
	require.NoError(t, json.Unmarshal(b, &res), "decoding the child's result %s", b)
	for _, op := range []string{opOpenClose, opStat} {
		require.NotEmpty(t, res.Rounds[op], "the child measured no round of %s:\n%s", op, output)
	}
	return &res
}

// runChild is the child side: it appends n rules to its thread, measures
// and writes the result where the parent said.
func runChild(t *testing.T, n string) {
	rules, err := strconv.Atoi(n)
	require.NoError(t, err, "%s=%q", envChildRules, n)
	file, out := os.Getenv(envChildFile), os.Getenv(envChildResult)
	require.NotEmpty(t, file, envChildFile)
	require.NotEmpty(t, out, envChildResult)
	iter := knob(t, EnvIter, defaultIter)
	rounds := knob(t, EnvRounds, defaultRounds)

	// Rules belong to a thread: append them and measure on this one. The
	// thread stays locked to the end; when the test goroutine ends, Go
	// terminates the thread with it.
	runtime.LockOSThread()

	res := result{Rules: rules, Iter: iter, Rounds: map[string][]float64{}}
	for i := range rules {
		prog, err := landlockbpf.Load(landlockbpf.Allow)
		require.NoError(t, err, "loading rule %d", i)
		defer prog.Close()
		if jited(prog) {
			res.Jited++
		}
		require.NoError(t, landlockbpf.Append(prog), "appending rule %d", i)
	}
	t.Logf("%d rules appended, %d JIT-compiled", rules, res.Jited)

	path, err := unix.BytePtrFromString(file)
	require.NoError(t, err)
	ops := []struct {
		name string
		fn   func(p *byte) error
	}{
		{opOpenClose, openClose},
		{opStat, stat},
	}
	// Warm up: caches, the dentry, branch predictors, the JIT images.
	warm := max(iter/10, 100)
	for _, op := range ops {
		for range warm {
			require.NoError(t, op.fn(path), "%s %s (warm-up)", op.name, file)
		}
	}
	for r := range rounds {
		for _, op := range ops {
			start := time.Now()
			for range iter {
				if err := op.fn(path); err != nil {
					t.Fatalf("%s %s (round %d): %v", op.name, file, r, err)
				}
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(iter)
			res.Rounds[op.name] = append(res.Rounds[op.name], ns)
		}
	}
	runtime.KeepAlive(path)
	for _, op := range ops {
		t.Logf("op=%s rules=%d rounds ns/op=%s", op.name, rules, formatRounds(res.Rounds[op.name]))
	}

	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644), "writing the result")
}

// openClose opens the file read-only and closes it, with raw system calls
// on a path converted once, so that Go allocates nothing per operation.
func openClose(path *byte) error {
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("openat: %w", errno)
	}
	if _, _, errno := unix.Syscall(unix.SYS_CLOSE, fd, 0, 0); errno != 0 {
		return fmt.Errorf("close: %w", errno)
	}
	return nil
}

// atFDCWD is AT_FDCWD, in a variable so that it converts to uintptr.
var atFDCWD = unix.AT_FDCWD

// statBuf is the buffer of stat; only one goroutine measures.
var statBuf unix.Stat_t

// stat stats the file (newfstatat(AT_FDCWD, path, &st, 0), which is what
// stat(2) is on amd64 and arm64: __NR_newfstatat exists on both, 262 and
// 79, with the native struct stat of unix.Stat_t).
func stat(path *byte) error {
	_, _, errno := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)),
		uintptr(unsafe.Pointer(&statBuf)), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("newfstatat: %w", errno)
	}
	return nil
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
