// Package ktap turns the TAP 13 / KTAP output of a kselftest binary into
// the test2json-style events that Go test binaries produce, so that the
// host collects both the same way.
//
// It understands what tools/testing/selftests/kselftest_harness.h prints
// ("TAP version 13", the plan "1..N", "#  RUN  name ...", diagnostics
// starting with "#", "ok N name", "not ok N name", "# SKIP reason"
// directives) and KTAP nesting (indented lines, "# Subtest: name"), which
// is also what KUnit prints (vmtest/console reads it off the console). A
// test named by a result line but never announced by a RUN line started
// at the line before it at its level (plan, "# Subtest:" or result), as
// tests that run back to back do. Nested results are reported as
// subtests ("parent/child", "suite/case/param"), like Go's.
package ktap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// Converter converts one binary's output, line by line. Its methods are not
// safe for concurrent use.
type Converter struct {
	pkg  string
	emit func(event.TestEvent) error
	now  func() time.Time

	start    time.Time
	running  []string             // announced tests without a result, oldest first
	started  map[string]time.Time // when each running test started
	subtests map[int]string       // "# Subtest:" name of the nested block at an indent
	// lastAt is when the last plan, "# Subtest:" or result line at an
	// indent came: a test that only a result line names started then,
	// as KUnit's cases and plain TAP's tests run back to back.
	lastAt map[int]time.Time
	// pending are the indented lines that came while no announced test
	// ran, in order: KUnit prints a case's diagnostics (and the kernel
	// its reports) before the result that names the case, so they are
	// the next result's.
	pending []string
	// header is the indent of a nested block whose header ("# Subtest:"
	// up to its plan) is being read, -1 when none: its lines are the
	// binary's.
	header   int
	planned  int    // top-level plan, -1 when none seen
	planSkip string // reason of a "1..0 # SKIP reason" plan
	results  int    // top-level results seen
	passed   int
	failed   int
	skipped  int
	bailed   bool
	err      error
}

// New returns a Converter for the binary reported as package pkg. emit
// receives the events in order; now is the clock (time.Now when nil).
func New(pkg string, emit func(event.TestEvent) error, now func() time.Time) *Converter {
	if now == nil {
		now = time.Now
	}
	return &Converter{
		pkg:      pkg,
		emit:     emit,
		now:      now,
		start:    now(),
		started:  map[string]time.Time{},
		subtests: map[int]string{},
		lastAt:   map[int]time.Time{},
		header:   -1,
		planned:  -1,
	}
}

var (
	versionRe = regexp.MustCompile(`^K?TAP version \d+$`)
	planRe    = regexp.MustCompile(`^1\.\.(\d+)\s*(?:#\s*(.*))?$`)
	resultRe  = regexp.MustCompile(`^(not ok|ok)\s+(\d+)\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$`)
	runRe     = regexp.MustCompile(`^#\s+RUN\s+(\S+)\s*\.\.\.\s*$`)
	subtestRe = regexp.MustCompile(`^#\s*Subtest:\s*(.+?)\s*$`)
	directive = regexp.MustCompile(`(?i)^(SKIP|TODO|XFAIL|XPASS)\b\s*(.*)$`)
)

// Line consumes one line of output, without its line end. It returns the
// first error emit returned; later lines are then ignored.
func (c *Converter) Line(line string) error {
	if c.err != nil {
		return c.err
	}
	line = strings.TrimRight(line, "\r")
	body := strings.TrimLeft(line, " \t")
	indent := len(line) - len(body)

	if planRe.MatchString(body) || subtestRe.MatchString(body) {
		defer func(at time.Time) { c.lastAt[indent] = at }(c.now())
	}
	switch {
	case indent == 0 && planRe.MatchString(body):
		m := planRe.FindStringSubmatch(body)
		c.planned, _ = strconv.Atoi(m[1])
		if d := directive.FindStringSubmatch(m[2]); d != nil && strings.EqualFold(d[1], "SKIP") {
			c.planSkip = d[2]
		}
		c.output("", line)
	case runRe.MatchString(body):
		name := runRe.FindStringSubmatch(body)[1]
		c.begin(name)
		c.output(name, line)
	case subtestRe.MatchString(body):
		name := c.enclosing(indent, subtestRe.FindStringSubmatch(body)[1])
		c.subtests[indent] = name
		c.output(c.current(), line)
		// The block is the test its result will name (KUnit's suite, or
		// a parameterised case): it runs from here, so a report in it
		// is its own, and it is unfinished if the output stops.
		c.announce(name)
		c.header = indent
	case indent > 0 && planRe.MatchString(body):
		c.output(c.current(), line)
		c.header = -1
	case resultRe.MatchString(body):
		c.result(indent, line, resultRe.FindStringSubmatch(body))
	case strings.HasPrefix(body, "Bail out!"):
		c.bailed = true
		c.output(c.current(), line)
	case versionRe.MatchString(body):
		c.output(c.current(), line)
	default:
		if indent > 0 && c.current() == "" && indent != c.header {
			c.pending = append(c.pending, line)
			break
		}
		c.output(c.current(), line)
	}
	return c.err
}

// flushPending gives the pending lines to test ("" for the binary).
func (c *Converter) flushPending(test string) {
	for _, l := range c.pending {
		c.output(test, l)
	}
	c.pending = nil
}

// Flush gives the lines still waiting for a result to the binary, for a
// stream that ends without End (the kernel died in a KUnit case). It
// returns the first error emit returned.
func (c *Converter) Flush() error {
	c.flushPending("")
	return c.err
}

// enclosing is name inside the nested block that encloses indent, if any:
// KUnit's parameterised cases are blocks within their suite's block, so
// a case's parameters are "suite/case/param".
func (c *Converter) enclosing(indent int, name string) string {
	outer := -1
	for i := range c.subtests {
		if i < indent && i > outer {
			outer = i
		}
	}
	if outer < 0 {
		return name
	}
	return c.subtests[outer] + "/" + name
}

// current is the test output belongs to: the most recently announced test
// still running, or "" (the binary itself).
func (c *Converter) current() string {
	if n := len(c.running); n > 0 {
		return c.running[n-1]
	}
	return ""
}

func (c *Converter) send(te event.TestEvent) {
	if c.err != nil {
		return
	}
	te.Package = c.pkg
	if te.Time.IsZero() {
		te.Time = c.now()
	}
	if err := c.emit(te); err != nil {
		c.err = fmt.Errorf("emitting %s event of %s: %w", te.Action, c.pkg, err)
	}
}

func (c *Converter) output(test, line string) {
	c.send(event.TestEvent{Action: "output", Test: test, Output: line + "\n"})
}

// announce starts a test that output does not go to (a nested block whose
// result comes after its own tests').
func (c *Converter) announce(name string) {
	if _, ok := c.started[name]; ok {
		return
	}
	c.started[name] = c.now()
	c.send(event.TestEvent{Action: "run", Test: name})
}

// begin announces a test (a RUN line, or a result with no RUN before it).
func (c *Converter) begin(name string) {
	if _, ok := c.started[name]; ok {
		return
	}
	c.started[name] = c.now()
	c.running = append(c.running, name)
	c.send(event.TestEvent{Action: "run", Test: name})
}

// result handles an "ok"/"not ok" line; m is resultRe's match.
func (c *Converter) result(indent int, line string, m []string) {
	name := m[3]
	if name == "" {
		name = "test_" + m[2]
	}
	if indent > 0 {
		parent := c.subtests[indent]
		if parent == "" {
			parent = c.current()
		}
		if parent != "" {
			name = parent + "/" + name
		}
	}

	action := "pass"
	if m[1] == "not ok" {
		action = "fail"
	}
	if d := directive.FindStringSubmatch(m[4]); d != nil {
		switch strings.ToUpper(d[1]) {
		case "SKIP":
			action = "skip"
		case "TODO":
			// TAP: a failing TODO test is not a failure.
			if action == "fail" {
				action = "skip"
			}
		case "XFAIL":
			// kselftest: the test failed as expected.
			action = "pass"
		case "XPASS":
			// kselftest: the test passed but was expected to fail.
			action = "fail"
		}
	}

	now := c.now()
	if _, ok := c.started[name]; !ok {
		c.begin(name)
		if at, ok := c.lastAt[indent]; ok {
			c.started[name] = at
		}
	}
	c.lastAt[indent] = now
	c.flushPending(name)
	c.output(name, line)
	elapsed := now.Sub(c.started[name]).Seconds()
	c.send(event.TestEvent{Action: action, Test: name, Elapsed: elapsed})
	delete(c.started, name)
	for i, r := range c.running {
		if r == name {
			c.running = append(c.running[:i], c.running[i+1:]...)
			break
		}
	}
	// A result ends the blocks nested deeper than itself.
	for i := range c.subtests {
		if i > indent {
			delete(c.subtests, i)
		}
	}
	if indent > 0 {
		return
	}
	// A top-level result ends the nesting that came before it.
	clear(c.subtests)
	c.results++
	switch action {
	case "pass":
		c.passed++
	case "fail":
		c.failed++
	case "skip":
		c.skipped++
	}
}

// Summary is what the binary reported, once End was called.
type Summary struct {
	Planned                 int // -1 when no plan was seen
	Results                 int // top-level results seen
	Passed, Failed, Skipped int
	Bailed                  bool
}

// End closes the stream: it explains a missing plan or missing results in
// the output and emits the package result (pass, fail, or skip when the
// binary ran no test at all). Tests announced but without a result get no
// event: the host reports them as unfinished, with how the binary ended.
func (c *Converter) End() (Summary, error) {
	c.flushPending("")
	s := Summary{Planned: c.planned, Results: c.results, Passed: c.passed, Failed: c.failed, Skipped: c.skipped, Bailed: c.bailed}
	result := "pass"
	switch {
	case c.bailed:
		result = "fail"
	case c.planned < 0:
		c.output("", "landlock-vmtest: no TAP plan (1..N) in the output")
		result = "fail"
	case c.results < c.planned:
		c.output("", fmt.Sprintf("landlock-vmtest: the plan announced %d test(s), %d reported", c.planned, c.results))
		result = "fail"
	case c.failed > 0:
		result = "fail"
	case c.results == 0:
		if c.planSkip != "" {
			c.output("", "SKIP: "+c.planSkip)
		}
		result = "skip"
	}
	c.send(event.TestEvent{Action: result, Elapsed: c.now().Sub(c.start).Seconds()})
	return s, c.err
}
