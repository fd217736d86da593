package ktap

import (
	"fmt"
	"strings"
)

// HarnessMarker is a line of kselftest_harness.h's usage text. A binary
// that contains it uses the harness: `-l` lists its tests without running
// any, and `-r fixture.variant.test` runs one of them.
const HarnessMarker = "-r name  run specified test"

// ListedTests reads the output of a kselftest_harness binary's -l and
// returns the names of the tests it would run, in its order, as its TAP
// output names them: "fixture.test", or "fixture.variant.test" for a
// fixture with variants (every test runs once per variant).
//
// The listing zips three columns, FIXTURE, VARIANT and TEST: a fixture's
// first row names it, its first variant (if it has any) and its first
// test; each later row names its next variant, its next test, or both;
// fixtures are separated by a row of dashes.
func ListedTests(listing string) ([]string, error) {
	type fixture struct {
		name            string
		variants, tests []string
	}
	var (
		fixtures []*fixture
		cur      *fixture
		testCol  = -1
	)
	for _, line := range strings.Split(listing, "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "# FIXTURE"):
			testCol = strings.Index(line, "TEST")
			cur = nil
			continue
		case strings.HasPrefix(line, "---"):
			cur = nil
			continue
		}
		if testCol < 0 {
			return nil, fmt.Errorf("kselftest listing: %q before the FIXTURE/VARIANT/TEST header", line)
		}
		fields := fieldsAt(line)
		if cur == nil {
			// A fixture's first row names it; the rest of the row is
			// read as any other (the harness lists its "global"
			// fixture even when it has no test).
			cur = &fixture{name: fields[0].text}
			fixtures = append(fixtures, cur)
			fields = fields[1:]
		}
		switch {
		case len(fields) == 0:
		case len(fields) == 2:
			cur.variants = append(cur.variants, fields[0].text)
			cur.tests = append(cur.tests, fields[1].text)
		case len(fields) == 1 && fields[0].at >= testCol:
			cur.tests = append(cur.tests, fields[0].text)
		case len(fields) == 1:
			cur.variants = append(cur.variants, fields[0].text)
		default:
			return nil, fmt.Errorf("kselftest listing: cannot read row %q", line)
		}
	}
	var names []string
	for _, f := range fixtures {
		if len(f.variants) == 0 {
			for _, t := range f.tests {
				names = append(names, f.name+"."+t)
			}
			continue
		}
		for _, v := range f.variants {
			for _, t := range f.tests {
				names = append(names, f.name+"."+v+"."+t)
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("kselftest listing: no test listed")
	}
	return names, nil
}

type field struct {
	text string
	at   int
}

// fieldsAt splits line at spaces, keeping each field's column.
func fieldsAt(line string) []field {
	var out []field
	start := -1
	for i := 0; i <= len(line); i++ {
		if i < len(line) && line[i] != ' ' && line[i] != '\t' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, field{text: line[start:i], at: start})
			start = -1
		}
	}
	return out
}
