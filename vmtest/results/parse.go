package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// test2jsonLine is one line of `go test -json` output: a test2json event,
// plus the ImportPath that the go command's build events carry instead of
// Package.
type test2jsonLine struct {
	event.TestEvent
	ImportPath string `json:",omitempty"`
}

// ParseTest2JSON reads plain `go test -json` (or test2json) output, one JSON
// object per line, and returns one KindTest event per line. Each event's
// Binary is binary, or when binary is "" the line's package. A line that is
// not a test2json object (build noise, a stray print) becomes a package-level
// "output" event holding the line. Events carry the test2json time, if any.
func ParseTest2JSON(r io.Reader, binary string) ([]event.Event, error) {
	var events []event.Event
	br := bufio.NewReader(r)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			events = append(events, parseLine(line, binary))
		}
		if errors.Is(err, io.EOF) {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("results: read test2json line %d: %w", lineNo, err)
		}
	}
}

// parseLine turns one line of `go test -json` output into an event.
func parseLine(line []byte, binary string) event.Event {
	trimmed := bytes.TrimSpace(line)
	var tl test2jsonLine
	if bytes.HasPrefix(trimmed, []byte("{")) && json.Unmarshal(trimmed, &tl) == nil && tl.Action != "" {
		te := tl.TestEvent
		if te.Package == "" {
			// "pkg [pkg.test]" names the package pkg.
			te.Package, _, _ = strings.Cut(tl.ImportPath, " [")
		}
		name := binary
		if name == "" {
			name = te.Package
		}
		return event.Event{Kind: event.KindTest, Time: te.Time, Binary: name, Test: &te}
	}
	text := string(line)
	if !bytes.HasSuffix(line, []byte("\n")) {
		text += "\n"
	}
	return event.Event{
		Kind:   event.KindTest,
		Binary: binary,
		Test:   &event.TestEvent{Action: "output", Package: binary, Output: text},
	}
}
