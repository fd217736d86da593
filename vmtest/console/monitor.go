package console

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"sync"
)

const (
	// MaxReportLines caps the number of console lines a report may span,
	// counting from its headline. A report that has not ended by then is
	// closed and marked Truncated.
	MaxReportLines = 100
	// MaxLineBytes caps the length of each line quoted in a report.
	MaxLineBytes = 1024
	// MaxSplats caps the number of reports a Monitor keeps. Later reports
	// are still counted (see [Monitor.Dropped]) and still fail the run.
	MaxSplats = 64
	// maxPrelude is how many lines after a "cut here" or '=' separator may
	// come before the headline for them to be quoted with the report.
	maxPrelude = 4
)

// Splat is one kernel report seen on the console.
type Splat struct {
	// Kind is the kind of the pattern that opened the report.
	Kind Kind
	// Test is the name of the test that was running when the headline
	// arrived, or "" when none was.
	Test string
	// Title is the headline without its timestamp prefix, e.g.
	// "BUG: kernel NULL pointer dereference, address: 0000000000000000".
	Title string
	// Signature is the report's title as syzkaller writes it, e.g.
	// "BUG: kernel NULL pointer dereference in landlock_merge_ruleset":
	// free of timestamps, PIDs, CPU numbers and addresses, so that the
	// same bug has the same Signature in every test and run (see
	// [Signature]).
	Signature string
	// Fingerprint is a short hash of Signature (see [Fingerprint]):
	// reports with equal fingerprints are one bug.
	Fingerprint string
	// Frames are the frames of the report's first stack trace, as
	// "function+0xoffset/0xsize" (see [Frames]).
	Frames []string
	// Text is the quoted report: the lines of the report as they came,
	// timestamps included, joined by newlines. It may start with the
	// "cut here" or '=' separator printed just before the headline.
	Text string
	// Fatal is set when the report is a panic: the guest will not go on.
	Fatal bool
	// Fails is set when the report fails the run (see [Pattern.Fails]).
	Fails bool
	// Line is the 1-based number of the headline among the lines fed.
	Line int
	// Truncated is set when the report was cut at MaxReportLines.
	Truncated bool
}

// report is the state of the report being collected.
type report struct {
	// idx is the index of the report in Monitor.splats, or -1 if the report
	// was dropped because MaxSplats was reached.
	idx int
	pat *Pattern
	// stamped tells whether the headline had a timestamp; if so, lines
	// without one come from user space and are left out of the report.
	stamped bool
	// sawTrace is set once a "Call Trace:" header has been seen.
	sawTrace bool
	// n counts the lines fed since the headline, the headline included.
	n int
}

// Monitor watches console lines for kernel reports. Its methods are safe for
// concurrent use.
//
// A report opens at a line matching the pattern table and takes in the
// lines that follow until one of these ends it:
//   - an "---[ end trace ... ]---" or "---[ end Kernel panic ... ]---" line,
//     which is quoted;
//   - for sanitizer reports, the closing row of '=', which is quoted;
//   - once a "Call Trace:" has been printed (except in a panic), a blank
//     line or a line that cannot belong to the report (anything but stack
//     frames, register dumps, other CPUs' backtraces and the like), which
//     is not quoted;
//   - the headline of another report (an oops header printed before the
//     open report's stack joins it instead);
//   - MaxReportLines lines.
type Monitor struct {
	running func() string
	fatal   chan struct{}

	mu     sync.Mutex
	splats []Splat
	// described[i] tells whether splats[i]'s Signature, Fingerprint and
	// Frames are up to date with its Text.
	described []bool
	dropped   int
	failed    bool
	closed    bool // fatal has been closed
	stamped   bool // a line with a printk timestamp has been seen
	lineNo    int
	cur       *report
	prelude   []line
}

// New returns a Monitor that asks running for the name of the test running
// at the moment a report starts ("" if none). running may be nil. It is
// called without the Monitor's lock held, from the goroutine calling Feed.
func New(running func() string) *Monitor {
	if running == nil {
		running = func() string { return "" }
	}
	return &Monitor{running: running, fatal: make(chan struct{})}
}

// Fatal returns a channel that is closed as soon as a fatal report (a
// kernel panic) starts, so that the host can stop the guest at once.
func (m *Monitor) Fatal() <-chan struct{} {
	return m.fatal
}

// Failed tells whether a report that fails the run has been seen.
func (m *Monitor) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

// Splats returns a copy of the reports seen so far, in console order, with
// their signatures, fingerprints and frames. The last one may still be
// collecting lines.
func (m *Monitor) Splats() []Splat {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Splat, len(m.splats))
	for i := range m.splats {
		if !m.described[i] {
			describe(&m.splats[i])
			m.described[i] = true
		}
		out[i] = m.splats[i]
		out[i].Frames = append([]string(nil), m.splats[i].Frames...)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Dropped returns how many reports were not kept because MaxSplats had been
// reached.
func (m *Monitor) Dropped() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropped
}

// Feed consumes one console line. A timestamp prefix such as
// "[    1.234567] " and carriage returns or a newline at either end are
// allowed. Once a line with a timestamp has been fed, the kernel is known to
// stamp its messages and lines without one are taken for user space output:
// they neither open a report nor appear in one.
func (m *Monitor) Feed(s string) {
	l := splitLine(s)
	pat := match(l.body)
	test := ""
	if pat != nil {
		test = m.running()
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.lineNo++
	if l.stamped {
		m.stamped = true
	} else if m.stamped {
		// The kernel stamps its lines, so this one comes from user space
		// and cannot open a report.
		pat = nil
	}
	if m.cur != nil && m.continueReport(l, pat) {
		return
	}
	if pat != nil {
		m.start(l, pat, test)
		return
	}
	m.notePrelude(l)
}

// continueReport offers l to the open report. It returns true when the
// line was used up (added to the report or skipped as foreign), false when
// the report has ended and l must be looked at afresh.
func (m *Monitor) continueReport(l line, pat *Pattern) bool {
	r := m.cur
	r.n++
	if r.stamped && !l.stamped {
		// User space output mixed into a kernel report.
		if r.n >= MaxReportLines {
			m.truncate()
		}
		return true
	}
	if pat != nil && !(pat.Inner && !r.sawTrace) {
		// A new report opens.
		m.cur = nil
		return false
	}
	switch {
	case endMarkerRe.MatchString(l.body):
		m.appendLine(l)
		m.cur = nil
		return true
	case r.pat.Delimited:
		m.appendLine(l)
		if delimiterRe.MatchString(l.body) {
			m.cur = nil
		}
	case r.sawTrace && !r.pat.Fatal && (l.blank() || !continuationRe.MatchString(l.body)):
		// The stack trace has been printed and this line is not part of
		// what may follow it: the report is over.
		m.cur = nil
		return false
	default:
		m.appendLine(l)
	}
	if callTraceRe.MatchString(l.body) {
		r.sawTrace = true
	}
	if m.cur != nil && r.n >= MaxReportLines {
		m.truncate()
	}
	return true
}

// truncate closes the open report because it reached MaxReportLines.
func (m *Monitor) truncate() {
	if m.cur.idx >= 0 {
		m.splats[m.cur.idx].Truncated = true
	}
	m.cur = nil
}

// start opens a report whose headline is l.
func (m *Monitor) start(l line, pat *Pattern, test string) {
	if pat.Fails {
		m.failed = true
	}
	if pat.Fatal && !m.closed {
		m.closed = true
		close(m.fatal)
	}
	r := &report{idx: -1, pat: pat, stamped: l.stamped, n: 1}
	if callTraceRe.MatchString(l.body) {
		r.sawTrace = true
	}
	m.cur = r
	prelude := m.prelude
	m.prelude = nil
	if len(m.splats) >= MaxSplats {
		m.dropped++
		return
	}
	var text []string
	for _, p := range prelude {
		if p.stamped == l.stamped {
			text = append(text, clip(p.raw))
		}
	}
	text = append(text, clip(l.raw))
	r.idx = len(m.splats)
	m.splats = append(m.splats, Splat{
		Kind:  pat.Kind,
		Test:  test,
		Title: strings.TrimSpace(l.body),
		Text:  strings.Join(text, "\n"),
		Fatal: pat.Fatal,
		Fails: pat.Fails,
		Line:  m.lineNo,
	})
	m.described = append(m.described, false)
}

// appendLine adds l to the text of the open report.
func (m *Monitor) appendLine(l line) {
	if m.cur.idx < 0 {
		return
	}
	s := &m.splats[m.cur.idx]
	s.Text += "\n" + clip(l.raw)
	m.described[m.cur.idx] = false
}

// notePrelude remembers the lines that follow a separator while no report
// is open, so that a report starting shortly after can quote them.
func (m *Monitor) notePrelude(l line) {
	switch {
	case separatorRe.MatchString(l.body):
		m.prelude = []line{l}
	case m.prelude == nil:
	case len(m.prelude) > maxPrelude || l.stamped != m.prelude[0].stamped:
		m.prelude = nil
	default:
		m.prelude = append(m.prelude, l)
	}
}

// clip shortens s to at most MaxLineBytes bytes.
func clip(s string) string {
	if len(s) > MaxLineBytes {
		return s[:MaxLineBytes] + "..."
	}
	return s
}

// Scan reads a saved console log from r and returns the reports in it, as
// a Monitor fed its lines one by one would. running is called as by
// [Monitor.Feed]; it may be nil. On a read error Scan returns the reports
// found before it together with the error.
func Scan(r io.Reader, running func() string) ([]Splat, error) {
	m := New(running)
	br := bufio.NewReader(r)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			m.Feed(s)
		}
		if errors.Is(err, io.EOF) {
			return m.Splats(), nil
		}
		if err != nil {
			return m.Splats(), err
		}
	}
}
