package results

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// JUnitTestSuites is the root element of the JUnit XML that WriteJUnit
// writes; it is exported so that the file can be read back.
type JUnitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Skipped  int              `xml:"skipped,attr"`
	Time     string           `xml:"time,attr"`
	Suites   []JUnitTestSuite `xml:"testsuite"`
}

// JUnitTestSuite is one package in JUnit XML.
type JUnitTestSuite struct {
	Name      string          `xml:"name,attr"`
	Tests     int             `xml:"tests,attr"`
	Failures  int             `xml:"failures,attr"`
	Errors    int             `xml:"errors,attr"`
	Skipped   int             `xml:"skipped,attr"`
	Time      string          `xml:"time,attr"`
	TestCases []JUnitTestCase `xml:"testcase"`
	SystemOut string          `xml:"system-out,omitempty"`
}

// JUnitTestCase is one test in JUnit XML.
type JUnitTestCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *JUnitFailure `xml:"failure,omitempty"`
	Skipped   *JUnitSkipped `xml:"skipped,omitempty"`
	// FlakyFailures and RerunFailures are Maven Surefire's elements for
	// tests run again after a failure (RETRY=): a flaky test is a passing
	// test case with a flakyFailure for each run that failed; a test
	// that failed on every retry has its failure, and a rerunFailure for
	// each retry.
	FlakyFailures []JUnitRerun `xml:"flakyFailure,omitempty"`
	RerunFailures []JUnitRerun `xml:"rerunFailure,omitempty"`
}

// JUnitFailure marks a failed test case; Text holds the test's output.
type JUnitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// JUnitRerun is a run of a test RETRY= ran again that failed
// (Surefire's flakyFailure and rerunFailure): SystemOut holds its output
// for a flaky test; a failed one has all of its output in its failure.
type JUnitRerun struct {
	Message   string `xml:"message,attr"`
	Type      string `xml:"type,attr"`
	SystemOut string `xml:"system-out,omitempty"`
}

// JUnitSkipped marks a skipped test case.
type JUnitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// WriteJUnit writes r to w as JUnit XML: a testsuites element holding one
// testsuite per package and one testcase per test (classname is the package,
// name the test). A failed test has a failure element whose message is its
// note (or "test failed") and whose text is its output; a skipped test has a
// skipped element. A flaky test (RETRY=) is a passing test case with a
// flakyFailure element for each of its runs that failed, the run's output
// in its system-out, as Maven Surefire writes them; a test that failed on
// every retry has a rerunFailure element for each retry besides its
// failure. Package-level output goes to the suite's system-out.
func WriteJUnit(w io.Writer, r Report) error {
	doc := JUnitTestSuites{
		Tests:    r.Passed + r.Failed + r.Skipped,
		Failures: r.Failed,
		Skipped:  r.Skipped,
	}
	total := 0.0
	for _, p := range r.Packages {
		suite := JUnitTestSuite{
			Name:      p.Name,
			Tests:     len(p.Tests),
			Failures:  p.Failed,
			Skipped:   p.Skipped,
			Time:      junitTime(p.Seconds),
			SystemOut: joinLines(p.Output),
		}
		for _, t := range p.Tests {
			tc := JUnitTestCase{
				Classname: p.Name,
				Name:      t.Name,
				Time:      junitTime(t.Seconds),
			}
			switch t.Status {
			case StatusFail:
				msg := t.Note
				if msg == "" {
					msg = "test failed"
				}
				text := joinLines(t.Output)
				if t.Note != "" {
					text = t.Note + "\n" + text
				}
				tc.Failure = &JUnitFailure{Message: msg, Type: "failure", Text: text}
			case StatusSkip:
				tc.Skipped = &JUnitSkipped{Message: t.Note}
			}
			for _, a := range t.Attempts {
				if a.Status != StatusFail {
					continue
				}
				msg := fmt.Sprintf("run %d of %d failed", a.Run, len(t.Attempts))
				if a.Note != "" {
					msg += ": " + a.Note
				}
				switch {
				case t.Status == StatusFlaky:
					tc.FlakyFailures = append(tc.FlakyFailures, JUnitRerun{Message: msg, Type: "flaky", SystemOut: joinLines(a.Output)})
				case t.Status == StatusFail && a.Run > 1:
					tc.RerunFailures = append(tc.RerunFailures, JUnitRerun{Message: msg, Type: "failure"})
				}
			}
			suite.TestCases = append(suite.TestCases, tc)
		}
		total += p.Seconds
		doc.Suites = append(doc.Suites, suite)
	}
	doc.Time = junitTime(total)

	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("results: write JUnit header: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("results: write JUnit XML: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("results: write JUnit XML: %w", err)
	}
	return nil
}

// junitTime formats seconds the way JUnit XML has them.
func junitTime(s float64) string {
	return fmt.Sprintf("%.3f", s)
}

// joinLines joins lines, each ended by a newline.
func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}
