// Package kconfig merges Kconfig fragments, refuses fragments that set one
// symbol two ways, and checks, after `make olddefconfig`, that every
// requested symbol kept its value.
package kconfig

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
)

// Setting is one symbol's requested value and where it was asked for.
type Setting struct {
	// Symbol without the CONFIG_ prefix.
	Symbol string
	// Value as written after '=' ("y", "m", "\"landlock\"", "64"), or "n"
	// for "# CONFIG_X is not set".
	Value string
	// Source is "file:line".
	Source string
}

// Line renders the setting as a .config line.
func (s Setting) Line() string {
	if s.Value == "n" {
		return "# CONFIG_" + s.Symbol + " is not set"
	}
	return "CONFIG_" + s.Symbol + "=" + s.Value
}

var (
	setLine   = regexp.MustCompile(`^CONFIG_([A-Za-z0-9_]+)=(.*)$`)
	unsetLine = regexp.MustCompile(`^# CONFIG_([A-Za-z0-9_]+) is not set$`)
)

// Parse reads a fragment (or a whole .config). name is used in Source.
// Comments and blank lines are skipped; any other line is an error.
func Parse(r io.Reader, name string) ([]Setting, error) {
	var out []Setting
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		src := fmt.Sprintf("%s:%d", name, n)
		if m := setLine.FindStringSubmatch(line); m != nil {
			out = append(out, Setting{Symbol: m[1], Value: m[2], Source: src})
			continue
		}
		if m := unsetLine.FindStringSubmatch(line); m != nil {
			out = append(out, Setting{Symbol: m[1], Value: "n", Source: src})
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return nil, fmt.Errorf("%s: not a Kconfig setting: %q", src, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

// ParseFile reads a fragment file.
func ParseFile(path string) ([]Setting, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening config fragment: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// ConflictError is returned when two fragments set one symbol two ways.
type ConflictError struct {
	First, Second Setting
}

// ExitCode is ConfigFailed: the run exits with it.
func (e *ConflictError) ExitCode() exitcode.Code { return exitcode.ConfigFailed }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("CONFIG_%s is set two ways: %s at %s, %s at %s",
		e.First.Symbol, e.First.Value, e.First.Source, e.Second.Value, e.Second.Source)
}

// Fragments is a merged set of requested settings, in a stable order.
type Fragments struct {
	// Files are the fragment files, in merge order.
	Files    []string
	Settings []Setting
}

// Merge merges fragments in order. A symbol set twice to the same value is
// fine; set to two values it is a *ConflictError.
func Merge(files ...string) (*Fragments, error) {
	f := &Fragments{Files: files}
	seen := map[string]Setting{}
	for _, file := range files {
		settings, err := ParseFile(file)
		if err != nil {
			return nil, err
		}
		for _, s := range settings {
			if prev, ok := seen[s.Symbol]; ok {
				if prev.Value != s.Value {
					return nil, &ConflictError{First: prev, Second: s}
				}
				continue
			}
			seen[s.Symbol] = s
			f.Settings = append(f.Settings, s)
		}
	}
	return f, nil
}

// Dir merges every *.config file of dir, in name order.
func Dir(dir string) (*Fragments, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.config"))
	if err != nil {
		return nil, fmt.Errorf("listing config fragments: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.config fragments in %s", dir)
	}
	sort.Strings(files)
	return Merge(files...)
}

// Text is the merged fragment as .config lines, ready to append to a base
// config before `make olddefconfig`.
func (f *Fragments) Text() string {
	var b strings.Builder
	for _, s := range f.Settings {
		b.WriteString(s.Line())
		b.WriteByte('\n')
	}
	return b.String()
}

// Hash is a digest of the merged settings (not of comments or file names).
func (f *Fragments) Hash() string {
	sum := sha256.Sum256([]byte(f.Text()))
	return hex.EncodeToString(sum[:])
}

// Missing is a requested symbol that olddefconfig did not keep.
type Missing struct {
	Setting
	// Got is the value in the final .config ("n" when not set).
	Got string
	// Why explains, when known, what stopped the symbol: its Kconfig
	// dependencies or that no Kconfig file defines it.
	Why string
}

func (m Missing) String() string {
	s := fmt.Sprintf("CONFIG_%s: requested %s (%s), got %s", m.Symbol, m.Value, m.Source, m.Got)
	if m.Why != "" {
		s += " (" + m.Why + ")"
	}
	return s
}

// MissingError lists the symbols that did not stick.
type MissingError struct {
	Missing []Missing
}

// ExitCode is ConfigFailed: the run exits with it.
func (e *MissingError) ExitCode() exitcode.Code { return exitcode.ConfigFailed }

func (e *MissingError) Error() string {
	lines := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		lines[i] = "  missing: " + m.String()
	}
	return fmt.Sprintf("%d requested config symbol(s) did not stick after olddefconfig:\n%s",
		len(e.Missing), strings.Join(lines, "\n"))
}

// Check compares the requested settings with a final .config. srcDir, if
// not empty, is the kernel source used to explain each miss.
func (f *Fragments) Check(finalConfig io.Reader, srcDir string) error {
	final, err := Parse(finalConfig, ".config")
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, s := range final {
		got[s.Symbol] = s.Value
	}
	var missing []Missing
	for _, want := range f.Settings {
		have, ok := got[want.Symbol]
		if !ok {
			have = "n"
		}
		if have == want.Value {
			continue
		}
		m := Missing{Setting: want, Got: have}
		if srcDir != "" {
			m.Why = Explain(srcDir, want.Symbol)
		}
		missing = append(missing, m)
	}
	if len(missing) > 0 {
		return &MissingError{Missing: missing}
	}
	return nil
}

// Without returns the fragments less the settings drop picks.
func (f *Fragments) Without(drop func(Setting) bool) *Fragments {
	out := &Fragments{Files: f.Files}
	for _, s := range f.Settings {
		if !drop(s) {
			out.Settings = append(out.Settings, s)
		}
	}
	return out
}
