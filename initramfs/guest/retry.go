package guest

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// RETRY=N: after a Go test binary has run, each top-level test that
// failed runs again, by itself (-test.run=^Name$) and up to N times,
// until it passes (retry.go).
// Every rerun is a run of the binary of its own, between a binary-start
// that names the test (event.Retry) and a binary-end, with the per-binary
// timeout; the events of every run go to the host, which marks a test
// that failed and then passed as flaky.

// tally is what one run of a Go test binary said about its tests, read
// from its test2json events as they are forwarded.
type tally struct {
	// failed are the top-level tests that failed, each once, in the
	// order of their first failure.
	failed []string
	fails  map[string]bool
	passes map[string]bool
}

// add counts one test2json event.
func (t *tally) add(te event.TestEvent) {
	if te.Test == "" {
		return
	}
	switch te.Action {
	case "fail":
		if t.fails == nil {
			t.fails = map[string]bool{}
		}
		// A subtest fails its top-level test too: that is the one to run
		// again.
		if !t.fails[te.Test] && !strings.Contains(te.Test, "/") {
			t.failed = append(t.failed, te.Test)
		}
		t.fails[te.Test] = true
	case "pass":
		if t.passes == nil {
			t.passes = map[string]bool{}
		}
		t.passes[te.Test] = true
	}
}

// passed reports whether test passed in this run and never failed (with
// -test.count=N it runs N times). A skip is not a pass.
func (t *tally) passed(test string) bool {
	return t.passes[test] && !t.fails[test]
}

// retryFailed runs each test of failed again, in order, up to n times,
// until a run passes: run(test, k) is the k-th rerun (1 to n) of test and
// says whether it passed. It returns the tests that passed on a rerun
// (flaky) and those that failed every time, and stops at run's first
// error (the result channel broke, the run was cancelled).
func retryFailed(failed []string, n int, run func(test string, k int) (bool, error)) (flaky, failing []string, err error) {
	for _, test := range failed {
		passed := false
		for k := 1; k <= n && !passed; k++ {
			if passed, err = run(test, k); err != nil {
				return flaky, failing, err
			}
		}
		if passed {
			flaky = append(flaky, test)
		} else {
			failing = append(failing, test)
		}
	}
	return flaky, failing, nil
}

// retryArgs are the arguments of a manifest's Go test binaries (args)
// for a rerun of the top-level test: the same, with -test.run matching
// only that test (retryPattern).
func retryArgs(args []string, test string) []string {
	var out []string
	run := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "-test.run="); ok {
			run = v
			continue
		}
		out = append(out, a)
	}
	return append(out, "-test.run="+retryPattern(test, run))
}

// retryPattern is the -test.run regexp that runs only the top-level test
// of the name, and of its subtests those that run, RUN= chose: "^Name$"
// (the name's metacharacters escaped), followed by run's own levels below
// the top for each of its alternatives that matches the name
// ("TestA/x|TestB" gives "^TestA$/x" for TestA).
func retryPattern(test, run string) string {
	top := "^" + regexp.QuoteMeta(test) + "$"
	var alts []string
	for _, levels := range splitRun(run) {
		re, err := regexp.Compile(levels[0])
		if err != nil || !re.MatchString(test) {
			continue
		}
		if len(levels) == 1 {
			// This alternative runs all of the test.
			return top
		}
		alts = append(alts, top+"/"+strings.Join(levels[1:], "/"))
	}
	if len(alts) == 0 {
		return top
	}
	return strings.Join(alts, "|")
}

// splitRun splits a -test.run regexp as package testing does: into its
// alternatives at the top-level "|", each into its levels at the
// top-level "/" (neither inside [...] nor (...), nor escaped). An empty
// run is one alternative of one empty level, which matches every name.
func splitRun(run string) [][]string {
	var alts [][]string
	var levels []string
	brackets, parens := 0, 0
	start := 0
	for i := 0; i < len(run); i++ {
		switch run[i] {
		case '[':
			brackets++
		case ']':
			if brackets--; brackets < 0 {
				// An unmatched ']' is a literal.
				brackets = 0
			}
		case '(':
			if brackets == 0 {
				parens++
			}
		case ')':
			if brackets == 0 {
				parens--
			}
		case '\\':
			i++
		case '/', '|':
			if brackets != 0 || parens != 0 {
				continue
			}
			levels = append(levels, run[start:i])
			start = i + 1
			if run[i] == '|' {
				alts = append(alts, levels)
				levels = nil
			}
		}
	}
	return append(alts, append(levels, run[start:]))
}

// retry runs again, up to m.Retry times each, the top-level tests that
// failed in the first run of Go test binary b (t), unless that run
// crashed: a binary killed by a signal or by its timeout is a crash, which
// no rerun makes good. It returns an error only when it could not emit.
func (r *Runner) retry(ctx context.Context, m *contract.Manifest, b contract.Binary, t *tally, first event.Exit) error {
	if m.Retry <= 0 || t == nil || len(t.failed) == 0 {
		return nil
	}
	if first.TimedOut || first.Signal != "" {
		r.logf("landlock-vmtest: %s: not retrying its failed tests: the binary %s", b.Package, describe(first))
		return nil
	}
	flaky, failing, err := retryFailed(t.failed, m.Retry, func(test string, k int) (bool, error) {
		return r.rerun(ctx, m, b, test, k)
	})
	if len(flaky) > 0 {
		r.logf("landlock-vmtest: %s: flaky (failed, then passed on a retry): %s", b.Package, strings.Join(flaky, " "))
	}
	if len(failing) > 0 {
		r.logf("landlock-vmtest: %s: failed on every retry: %s", b.Package, strings.Join(failing, " "))
	}
	return err
}

// rerun is the k-th rerun of the top-level test of Go test binary b:
// binary-start naming the rerun, its test events, binary-end. It says
// whether the test passed, and returns an error only when it could not
// emit or ctx is done.
func (r *Runner) rerun(ctx context.Context, m *contract.Manifest, b contract.Binary, test string, k int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	timeout := time.Duration(m.Timeout)
	r.logf("landlock-vmtest: retrying %s %s (retry %d of %d, timeout %s)", b.Package, test, k, m.Retry, timeout)
	start := event.Event{Kind: event.KindBinaryStart, Time: time.Now(), Binary: b.Package, Retry: &event.Retry{Test: test, Attempt: k, Of: m.Retry}}
	if err := r.Emit(start); err != nil {
		return false, err
	}
	began := time.Now()
	t := &tally{}
	exit, err := r.execute(ctx, m, b, r.goJob(m, b, retryArgs(m.Args, test), t))
	if err != nil {
		r.logf("landlock-vmtest: %s: %v", b.Package, err)
		if eerr := r.Emit(event.Event{Kind: event.KindError, Time: time.Now(), Binary: b.Package, Error: err.Error()}); eerr != nil {
			return false, eerr
		}
	}
	exit.Seconds = time.Since(began).Seconds()
	passed := err == nil && exit.Code == 0 && !exit.TimedOut && exit.Signal == "" && t.passed(test)
	word := "failed"
	if passed {
		word = "passed"
	}
	r.logf("landlock-vmtest: %s %s: retry %d of %d %s: %s", b.Package, test, k, m.Retry, word, describe(exit))
	return passed, r.Emit(event.Event{Kind: event.KindBinaryEnd, Time: time.Now(), Binary: b.Package, Exit: &exit})
}
