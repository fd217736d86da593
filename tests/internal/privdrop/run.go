// Package privdrop runs a scenario of a guest test in a child process with
// fewer privileges than the test binary, which in the guest runs as root
// with every capability.
//
// # How it works
//
// A test calls Run (or Spawn) with the privileges and the scenario. In the
// test process, the parent, Run re-executes the test binary with -test.run
// matching exactly the calling test or subtest, and with that test's name
// and the privileges in the environment. In that child process the same
// test function runs again up to the same Run call, which now recognises
// its test: it applies the privileges to every thread of the process,
// checks in /proc/self/task/*/status that every thread has them (failing
// the test if not), and calls the scenario with the child's *testing.T.
// The parent captures the child's output and passes, fails or skips its
// own test as the child's test did.
//
// # Code around Run
//
// A test function that calls Run runs twice, once in each process:
//
//   - Code before Run runs in the parent and again in the child, there with
//     full privileges still. Keep it to cheap, deterministic setup, and call
//     Run with the same Privs in both processes (the child checks this).
//   - Run returns true in the parent, once the child has passed, and false
//     in the child, once the scenario has returned. So either make Run the
//     last statement of its test or subtest, or guard what follows:
//     if !privdrop.Run(t, p, scenario) { return }.
//   - When Run is called in a subtest, the child also runs the enclosing
//     test functions, before and after their t.Run call for that subtest
//     (t.Run skips the other subtests). Code of an enclosing test that must
//     run only in the parent, such as a check that the parent kept its
//     privileges, tests InChild first.
//   - Cleanup functions and t.TempDir of the child's test run with the
//     dropped privileges.
//
// Call Run at most once per test or subtest (give each case of a table its
// own subtest) and not from a scenario: in a child, Run and Spawn called
// for any other test than the one the child was started for do nothing and
// return as in a child.
//
// # Requirements
//
// The no_new_privs flag, the bounding set and the capability sets belong
// to each thread in Linux, and a Go program runs on several threads. They
// are changed with syscall.AllThreadsSyscall, which works only in binaries
// without cgo; the guest's test binaries are built with CGO_ENABLED=0.
// The uid, gid and groups are changed with the syscall package, which
// changes every thread itself. The test binary must start with the
// privileges the drop needs (CAP_SETPCAP, CAP_SETUID, CAP_SETGID), as root
// in the guest does.
package privdrop

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Environment variables that turn a test binary into a child.
const (
	// EnvTest names the test (t.Name()) whose scenario the child runs.
	EnvTest = "LANDLOCK_VMTEST_PRIVDROP_TEST"
	// EnvPrivs carries the privileges, as JSON.
	EnvPrivs = "LANDLOCK_VMTEST_PRIVDROP_PRIVS"
)

// waitDelay bounds the wait for the child's output once it has exited
// (a process it started may hold the pipe open).
const waitDelay = 10 * time.Second

// Outcome is how the child's test ended.
type Outcome int

// The outcomes of a child.
const (
	Passed Outcome = iota
	Failed
	Skipped
)

// String returns "passed", "failed" or "skipped".
func (o Outcome) String() string {
	switch o {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case Skipped:
		return "skipped"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is what the parent learns of a child.
type Result struct {
	// Outcome is how the child's test ended.
	Outcome Outcome
	// Output is the child's standard output and error (go test -v).
	Output string
	// Err, for a failed child, says how it failed: exit status, or why it
	// could not run the test.
	Err error
}

// InChild reports whether this process is a child started by Run or Spawn.
func InChild() bool {
	_, ok := os.LookupEnv(EnvTest)
	return ok
}

// Run runs scenario with the privileges p in a child process, and reports
// whether it returned in the parent (see the package documentation).
//
// In the parent, Run fails t with the child's output if the child's test
// failed, skips t if it was skipped, and logs the output and returns true
// if it passed. In the child, Run drops the privileges, calls scenario(t)
// and returns false.
func Run(t *testing.T, p Privs, scenario func(t *testing.T)) bool {
	t.Helper()
	res := Spawn(t, p, scenario)
	if res == nil {
		return false
	}
	switch res.Outcome {
	case Passed:
		t.Logf("scenario passed in a child process with %s:\n%s", p, res.Output)
		return true
	case Skipped:
		t.Skipf("scenario skipped in a child process with %s:\n%s", p, res.Output)
	default:
		t.Fatalf("scenario failed in a child process with %s: %v\n%s", p, res.Err, res.Output)
	}
	return true
}

// Spawn is Run leaving the verdict to the caller: in the parent it returns
// the child's Result and neither fails nor skips t; in the child it drops
// the privileges, calls scenario(t) and returns nil.
func Spawn(t *testing.T, p Privs, scenario func(t *testing.T)) *Result {
	t.Helper()
	if name, ok := os.LookupEnv(EnvTest); ok {
		if name == t.Name() {
			runChild(t, p, scenario)
		}
		return nil
	}
	return spawn(t, p)
}

// runChild applies the privileges the parent sent, which must be p, and
// runs the scenario.
func runChild(t *testing.T, p Privs, scenario func(t *testing.T)) {
	t.Helper()
	want, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("encoding privileges: %v", err)
	}
	if got := os.Getenv(EnvPrivs); got != string(want) {
		t.Fatalf("the parent asked for privileges %s but this Run call has %s: call Run the same way in both processes", got, want)
	}
	if err := apply(p); err != nil {
		t.Fatalf("dropping privileges to %s: %v", p, err)
	}
	t.Logf("privileges dropped to %s", p)
	scenario(t)
}

// spawn runs the child for t and collects its result.
func spawn(t *testing.T, p Privs) *Result {
	t.Helper()
	enc, err := json.Marshal(p)
	if err != nil {
		return &Result{Outcome: Failed, Err: fmt.Errorf("encoding privileges: %w", err)}
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args := []string{"-test.run=" + runPattern(t.Name()), "-test.v"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if d, ok := t.Deadline(); ok {
		// Time out a little before the parent, so that the child's
		// goroutine dump ends up in the parent's log.
		if left := time.Until(d) * 9 / 10; left > 0 {
			args = append(args, "-test.timeout="+left.String())
		}
	}
	cmd := exec.CommandContext(t.Context(), exe, args...)
	cmd.Env = append(withoutPrivdropEnv(os.Environ()), EnvTest+"="+t.Name(), EnvPrivs+"="+string(enc))
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	return verdict(t.Name(), out, err)
}

func withoutPrivdropEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, EnvTest+"=") || strings.HasPrefix(kv, EnvPrivs+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// runPattern returns the -test.run pattern that matches the test called
// name and nothing else: one anchored, quoted regexp per level.
func runPattern(name string) string {
	levels := strings.Split(name, "/")
	for i, l := range levels {
		levels[i] = "^" + regexp.QuoteMeta(l) + "$"
	}
	return strings.Join(levels, "/")
}

// verdict interprets a child's exit and its -test.v output for the test
// called name.
func verdict(name string, out []byte, runErr error) *Result {
	res := &Result{Outcome: Failed, Output: string(out)}
	if runErr != nil {
		var ee *exec.ExitError
		if errors.As(runErr, &ee) {
			res.Err = fmt.Errorf("child test binary: %w", runErr)
		} else {
			res.Err = fmt.Errorf("running the child test binary: %w", runErr)
		}
		return res
	}
	sc := bufio.NewScanner(strings.NewReader(res.Output))
	sc.Buffer(make([]byte, 64*1024), len(out)+1)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		for _, r := range []struct {
			word string
			o    Outcome
		}{{"PASS", Passed}, {"SKIP", Skipped}, {"FAIL", Failed}} {
			if strings.HasPrefix(line, "--- "+r.word+": "+name+" (") {
				res.Outcome = r.o
				if r.o == Failed {
					res.Err = errors.New("the test failed but the binary exited with status 0")
				}
				return res
			}
		}
	}
	res.Err = fmt.Errorf("the child test binary did not report test %s (did -test.run=%s match it?)", name, runPattern(name))
	return res
}
