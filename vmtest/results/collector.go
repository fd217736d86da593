package results

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// unknownPackage names the package of test records that name none.
const unknownPackage = "(unknown)"

// Collector accumulates the records of a run, in the order they arrived, and
// tracks per binary and per test state. Its zero value is not ready: use
// NewCollector. All methods are safe to call from several goroutines, so a
// console monitor may call Running while another goroutine calls Add.
type Collector struct {
	mu     sync.Mutex
	events []event.Event
	pkgs   map[string]*pkgState
	// active are the packages whose binaries are running, in the order
	// they started (the guest runs several side by side on SMP).
	active   []string
	guest    map[string]string
	errors   []string
	doneSeen bool
}

// pkgState is what the collector knows about one test binary.
type pkgState struct {
	name    string
	started bool // binary-start seen
	ended   bool // binary-end seen
	exit    *event.Exit
	endAt   time.Time
	result  string  // test2json package-level action: pass, fail or skip
	elapsed float64 // test2json package-level elapsed seconds
	output  []string
	tests   map[string]*testState
	order   []string // test names in the order first seen
	running []string // started, unended tests, most recently active last
	errors  []string
	// retry is the rerun of one failed test (RETRY=) running now, nil
	// during the binary's first run; retries are the reruns that ended.
	retry   *event.Retry
	retries []retryRun
}

// retryRun is a rerun of a failed test that ended.
type retryRun struct {
	retry event.Retry
	exit  *event.Exit
	// status is the rerun test's at the end of the rerun ("" when the
	// rerun did not run it to its end).
	status Status
}

// testState is what the collector knows about one test.
type testState struct {
	status  Status // "" while running
	seconds float64
	output  []string
	runAt   time.Time
	// failedBefore is set when an earlier run of the same test (go test
	// -count=N) in the same run of the binary failed, so that a later pass
	// does not hide it.
	failedBefore bool
	// attempt is the run of the binary the test last ran in: 0 for the
	// first, k for the k-th rerun of a failed test (RETRY=).
	attempt int
	// attempts are the test's runs before the current one, when a rerun
	// ran it again; from is where the current one's lines begin in
	// output.
	attempts []Attempt
	from     int
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{pkgs: make(map[string]*pkgState)}
}

// Add records one event. Events must be added in the order they arrived.
func (c *Collector) Add(ev event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)

	switch ev.Kind {
	case event.KindHello:
		c.guest = maps.Clone(ev.Info)
	case event.KindBinaryStart:
		p := c.pkg(ev.Binary)
		p.started = true
		p.ended = false
		p.retry = nil
		if ev.Retry != nil {
			rt := *ev.Retry
			p.retry = &rt
			p.output = append(p.output, retryMarker(rt))
		}
		c.activate(p.name)
	case event.KindBinaryEnd:
		p := c.pkg(ev.Binary)
		p.ended = true
		if p.retry != nil {
			// The binary's exit is its first run's; a rerun's is its own.
			rr := retryRun{retry: *p.retry, exit: ev.Exit}
			if t := p.tests[p.retry.Test]; t != nil && t.attempt == p.retry.Attempt {
				rr.status = t.status
			}
			p.retries = append(p.retries, rr)
			p.retry = nil
		} else {
			p.exit = ev.Exit
		}
		p.endAt = ev.Time
		p.running = nil
		c.active = slices.DeleteFunc(c.active, func(s string) bool { return s == p.name })
	case event.KindTest:
		if ev.Test == nil {
			return
		}
		name := ev.Binary
		if name == "" {
			name = ev.Test.Package
		}
		p := c.pkg(name)
		if !p.ended {
			c.activate(p.name)
		}
		p.addTest(ev)
	case event.KindError:
		msg := ev.Error
		if msg == "" {
			msg = "unspecified runner error"
		}
		if ev.Binary == "" {
			c.errors = append(c.errors, msg)
			return
		}
		p := c.pkg(ev.Binary)
		p.errors = append(p.errors, msg)
	}
}

// Finish records that the stream has ended; doneSeen says whether it ended
// with the transport's "done" marker (see Report.Complete).
func (c *Collector) Finish(doneSeen bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.doneSeen = doneSeen
	c.active = nil
}

// activate counts the named package's binary as running.
func (c *Collector) activate(name string) {
	if !slices.Contains(c.active, name) {
		c.active = append(c.active, name)
	}
}

// Events returns a copy of every event added so far, in order.
func (c *Collector) Events() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// Running returns what is running now: "pkg TestName" for the most recently
// started or resumed test of a running binary that has not ended, just
// "pkg" when that binary runs no test at the moment (init, TestMain, between
// tests), or "" when no binary is running. When binaries run side by side,
// it names each, in the order they started, joined by " or ": the console
// cannot say which of them a kernel report came from.
func (c *Collector) Running() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, name := range c.active {
		p := c.pkgs[name]
		if n := len(p.running); n > 0 {
			names = append(names, p.name+" "+p.running[n-1])
		} else {
			names = append(names, p.name)
		}
	}
	return strings.Join(names, " or ")
}

// Report builds the outcome of the run from the events added so far. A
// binary that started but has not ended, and a test that started but has not
// ended, count as unfinished, so call it once the stream is over.
func (c *Collector) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{
		Complete: c.doneSeen,
		Guest:    maps.Clone(c.guest),
		Errors:   slices.Clone(c.errors),
	}
	for _, name := range slices.Sorted(maps.Keys(c.pkgs)) {
		p := c.pkgs[name].report()
		r.Packages = append(r.Packages, p)
		r.Passed += p.Passed
		r.Failed += p.Failed
		r.Skipped += p.Skipped
		r.Flaky += p.Flaky
		if p.Crashed {
			r.BinaryCrashed = true
		}
		for _, t := range p.Tests {
			if t.Status == StatusFail && !t.Synthetic {
				r.TestsFailed = true
			}
		}
	}
	return r
}

// pkg returns the state of the named package, creating it if needed.
func (c *Collector) pkg(name string) *pkgState {
	if name == "" {
		name = unknownPackage
	}
	p, ok := c.pkgs[name]
	if !ok {
		p = &pkgState{name: name, tests: make(map[string]*testState)}
		c.pkgs[name] = p
	}
	return p
}

// eventTime returns the time of a test record: test2json's own, else the
// guest's emit time.
func eventTime(ev event.Event) time.Time {
	if ev.Test != nil && !ev.Test.Time.IsZero() {
		return ev.Test.Time
	}
	return ev.Time
}

// retryMarker is the output line that heads a rerun's lines.
func retryMarker(r event.Retry) string {
	return fmt.Sprintf("=== RETRY %s (retry %d of %d)\n", r.Test, r.Attempt, r.Of)
}

// inRetry reports whether test is the rerun test of r or one of its
// subtests.
func inRetry(r *event.Retry, test string) bool {
	return r != nil && (test == r.Test || strings.HasPrefix(test, r.Test+"/"))
}

// addTest applies one test2json record to the package.
func (p *pkgState) addTest(ev event.Event) {
	te := ev.Test
	switch te.Action {
	case "output", "build-output":
		if te.Test == "" {
			p.output = append(p.output, te.Output)
			return
		}
		t := p.test(te.Test, eventTime(ev))
		t.output = append(t.output, te.Output)
	case "run":
		if inRetry(p.retry, te.Test) {
			_, seen := p.tests[te.Test]
			t := p.test(te.Test, eventTime(ev))
			if !seen {
				t.attempt = p.retry.Attempt
			}
			if t.attempt != p.retry.Attempt {
				// The rerun's first run of the test: what it did
				// before is an attempt of its own.
				t.attempts = append(t.attempts, t.current(p))
				t.output = append(t.output, retryMarker(*p.retry))
				t.from = len(t.output)
				t.status, t.failedBefore, t.seconds = "", false, 0
				t.attempt = p.retry.Attempt
				t.runAt = eventTime(ev)
			}
		}
		t := p.test(te.Test, eventTime(ev))
		if t.status != "" {
			// Another run of a finished test (-count=N).
			t.failedBefore = t.failedBefore || t.status == StatusFail
			t.status = ""
			t.runAt = eventTime(ev)
		}
		p.setRunning(te.Test)
	case "cont":
		if te.Test != "" {
			p.test(te.Test, eventTime(ev))
			p.setRunning(te.Test)
		}
	case "pass", "fail", "skip", "bench":
		if te.Test == "" {
			if p.retry == nil {
				// The package's result is its first run's.
				p.result = te.Action
				p.elapsed = te.Elapsed
			}
			return
		}
		t := p.test(te.Test, eventTime(ev))
		switch te.Action {
		case "fail":
			t.status = StatusFail
		case "skip":
			t.status = StatusSkip
		default:
			t.status = StatusPass
		}
		if t.failedBefore {
			t.status = StatusFail
		}
		t.seconds = te.Elapsed
		p.running = slices.DeleteFunc(p.running, func(s string) bool { return s == te.Test })
	case "build-fail":
		p.result = "fail"
	}
	// "start", "pause" and actions unknown to this package change nothing.
}

// current is the test's current attempt as it stands.
func (t *testState) current(p *pkgState) Attempt {
	a := Attempt{Run: t.attempt + 1, Status: t.status, Seconds: t.seconds, Output: splitLines(t.output[t.from:])}
	if a.Status == "" {
		a.Status = StatusFail
		a.Note = "test did not finish: " + p.stopReasonAt(t.attempt)
	}
	return a
}

// test returns the state of the named test, creating it (as running) if
// needed.
func (p *pkgState) test(name string, at time.Time) *testState {
	t, ok := p.tests[name]
	if !ok {
		t = &testState{runAt: at}
		p.tests[name] = t
		p.order = append(p.order, name)
	}
	return t
}

// setRunning makes name the most recently active running test.
func (p *pkgState) setRunning(name string) {
	p.running = slices.DeleteFunc(p.running, func(s string) bool { return s == name })
	p.running = append(p.running, name)
}

// finished reports whether the binary's end was seen.
func (p *pkgState) finished() bool {
	if p.started || p.ended {
		return p.ended
	}
	// A bare test2json stream: its end is the package result.
	return p.result != ""
}

// stopReason says why the binary stopped, for tests that did not finish.
func (p *pkgState) stopReason() string {
	switch {
	case p.ended && p.exit != nil:
		return exitReason(*p.exit)
	case p.ended:
		return "binary ended"
	case p.started:
		return "binary did not end (no binary-end record)"
	default:
		return "test output ended before the test did"
	}
}

// stopReasonAt says why the binary stopped in its run attempt (0: the
// first, k: the k-th rerun of a failed test), for tests that did not
// finish there.
func (p *pkgState) stopReasonAt(attempt int) string {
	if attempt == 0 {
		return p.stopReason()
	}
	if p.retry != nil && p.retry.Attempt == attempt {
		return "binary did not end (no binary-end record)"
	}
	for _, rr := range p.retries {
		if rr.retry.Attempt == attempt && rr.exit != nil {
			return exitReason(*rr.exit)
		}
	}
	return "binary ended"
}

// exitReason describes how a binary exited.
func exitReason(e event.Exit) string {
	switch {
	case e.TimedOut:
		return "binary timed out after " + formatSeconds(e.Seconds) + " s"
	case e.Signal != "":
		return "binary killed by signal " + e.Signal
	default:
		return "binary exited with status " + strconv.Itoa(e.Code)
	}
}

// formatSeconds formats seconds to a tenth, without trailing zeros.
func formatSeconds(s float64) string {
	return strconv.FormatFloat(float64(int64(s*10+0.5))/10, 'f', -1, 64)
}

// report builds the package's outcome.
func (p *pkgState) report() Package {
	out := Package{
		Name:     p.name,
		Finished: p.finished(),
		Seconds:  p.elapsed,
		Output:   splitLines(p.output),
		Errors:   slices.Clone(p.errors),
	}
	if p.exit != nil {
		out.ExitCode = p.exit.Code
		out.Signal = p.exit.Signal
		out.TimedOut = p.exit.TimedOut
		if p.exit.Seconds > 0 {
			out.Seconds = p.exit.Seconds
		}
	}
	for _, rr := range p.retries {
		if rr.exit != nil {
			out.Seconds += rr.exit.Seconds
		}
	}

	anyFailed, anyFlaky := false, false
	for _, name := range p.order {
		t := p.tests[name]
		rt := Test{
			Name:    name,
			Status:  t.status,
			Seconds: t.seconds,
			Output:  splitLines(t.output),
		}
		switch t.status {
		case "":
			rt.Status = StatusFail
			rt.Note = "test did not finish: " + p.stopReasonAt(t.attempt)
			if !t.runAt.IsZero() && p.endAt.After(t.runAt) {
				rt.Seconds = p.endAt.Sub(t.runAt).Seconds()
			}
		case StatusSkip:
			rt.Note = skipReason(splitLines(t.output[t.from:]))
		}
		if len(t.attempts) > 0 {
			retried(&rt, append(slices.Clone(t.attempts), t.current(p)))
		}
		out.Tests = append(out.Tests, rt)
	}
	p.staleSubtests(out.Tests)
	for _, rt := range out.Tests {
		switch rt.Status {
		case StatusFail:
			anyFailed = true
		case StatusFlaky:
			anyFlaky = true
		}
	}

	var reasons []string
	for _, e := range p.errors {
		reasons = append(reasons, "runner error: "+e)
	}
	switch {
	case p.ended && p.exit != nil && (p.exit.TimedOut || p.exit.Signal != ""):
		reasons = append(reasons, exitReason(*p.exit))
	case !out.Finished && p.retry != nil:
		reasons = append(reasons, fmt.Sprintf("retry %d of %s did not finish (no binary-end record)", p.retry.Attempt, p.retry.Test))
	case !out.Finished && p.started:
		reasons = append(reasons, "binary did not finish (no binary-end record)")
	case !out.Finished:
		reasons = append(reasons, "test output ended before the package result")
	case anyFailed:
		// A non-zero exit is how a binary reports failing tests.
	case anyFlaky:
		// The first run's failure is its flaky tests'.
	case p.ended && p.exit != nil && p.exit.Code != 0:
		reasons = append(reasons, exitReason(*p.exit)+" but no test failed")
	case p.result == "fail":
		reasons = append(reasons, "package reported FAIL but no test failed")
	}
	for _, rr := range p.retries {
		switch e := rr.exit; {
		case e == nil:
		case e.TimedOut || e.Signal != "":
			reasons = append(reasons, fmt.Sprintf("retry %d of %s: %s", rr.retry.Attempt, rr.retry.Test, exitReason(*e)))
		case e.Code != 0 && rr.status == StatusPass:
			reasons = append(reasons, fmt.Sprintf("retry %d of %s: %s but the test passed", rr.retry.Attempt, rr.retry.Test, exitReason(*e)))
		}
	}
	if len(reasons) > 0 {
		out.Crashed = true
		out.Reason = strings.Join(reasons, "; ")
		if !anyFailed {
			out.Tests = append(out.Tests, Test{
				Name:      BinaryTestName,
				Status:    StatusFail,
				Seconds:   out.Seconds,
				Note:      out.Reason,
				Synthetic: true,
				Output:    slices.Clone(out.Output),
			})
		}
	}

	for _, t := range out.Tests {
		switch t.Status {
		case StatusPass:
			out.Passed++
		case StatusFlaky:
			// A flaky test passed in the end: it counts as passed, and
			// is counted apart too.
			out.Passed++
			out.Flaky++
		case StatusFail:
			out.Failed++
		case StatusSkip:
			out.Skipped++
		}
	}
	switch {
	case out.Failed > 0:
		out.Status = StatusFail
	case p.result == "skip" && len(out.Tests) == 0:
		out.Status = StatusSkip
	default:
		out.Status = StatusPass
	}
	return out
}

// retried sets the status of a test that RETRY= ran again from its
// attempts (the last is the current one), which it keeps in rt: flaky
// when the last passed after an earlier one failed; failed when the last
// failed or skipped after a failure (only a pass counts).
func retried(rt *Test, attempts []Attempt) {
	rt.Attempts = attempts
	last := attempts[len(attempts)-1]
	failed := 0
	for _, a := range attempts[:len(attempts)-1] {
		if a.Status == StatusFail {
			failed++
		}
	}
	if failed == 0 {
		return
	}
	retries := len(attempts) - 1
	switch last.Status {
	case StatusPass:
		rt.Status = StatusFlaky
		rt.Note = fmt.Sprintf("flaky: failed in %d of %d runs, then passed on retry %d", failed, len(attempts), last.Run-1)
	case StatusSkip:
		rt.Status = StatusFail
		rt.Note = fmt.Sprintf("failed, then skipped on retry %d (a skip is not a pass): %s", last.Run-1, rt.Note)
	case StatusFail:
		switch {
		case rt.Note != "":
			// Why its last run did not finish.
		case failed == retries:
			rt.Note = fmt.Sprintf("failed in every run: the first and %d retry(s)", retries)
		default:
			rt.Note = fmt.Sprintf("failed in %d of %d runs, the last one too", failed+1, len(attempts))
		}
	}
}

// staleSubtests marks flaky the failed subtests of a flaky test that its
// last, passing run did not run again (a test passes only when the
// subtests it runs do): they failed as part of it.
func (p *pkgState) staleSubtests(tests []Test) {
	status := map[string]Status{}
	for _, t := range tests {
		status[t.Name] = t.Status
	}
	for i := range tests {
		t := &tests[i]
		top, _, sub := strings.Cut(t.Name, "/")
		if !sub || t.Status != StatusFail || status[top] != StatusFlaky {
			continue
		}
		if p.tests[t.Name].attempt < p.tests[top].attempt {
			t.Status = StatusFlaky
			t.Note = "flaky: failed as part of " + top + ", which then passed on a retry"
		}
	}
}

// splitLines joins output chunks and splits them into lines without line
// ends; a final unterminated line is kept.
func splitLines(chunks []string) []string {
	if len(chunks) == 0 {
		return nil
	}
	text := strings.TrimSuffix(strings.Join(chunks, ""), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// tapSkip matches a TAP result line with a SKIP directive (kselftests).
var tapSkip = regexp.MustCompile(`(?i)^\s*(?:not )?ok \d+\b[^#]*#\s*SKIP\b\s*(.*)$`)

// skipReason extracts the reason a test gave for skipping from its output:
// a TAP result's SKIP directive (kselftests), else the lines that are not
// test2json framing ("=== RUN", "--- SKIP", ...).
func skipReason(lines []string) string {
	for _, l := range lines {
		if m := tapSkip.FindStringSubmatch(l); m != nil {
			return strings.TrimSpace(m[1])
		}
	}
	var reason []string
	for _, l := range lines {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") {
			continue
		}
		reason = append(reason, s)
	}
	return strings.Join(reason, "\n")
}
