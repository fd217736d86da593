// Package coverage measures which kernel code the guest tests run: it
// chooses what to compile with GCOV (the code the series touches), edits
// the Makefiles of a copy of the tree to profile just that, turns the
// counters the guest sends back into an lcov report, and counts, patch by
// patch, how many of the lines each patch adds were executed.
package coverage

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultDirs are the directories profiled whole, whatever the series
// touches.
var DefaultDirs = []string{"security/landlock"}

// Fragment is the config fragment a coverage build adds (relative to the
// repository).
const Fragment = "kernel/coverage/gcov.config"

// Profile says what is compiled with GCOV: whole directories, and single
// files elsewhere. Paths are relative to the tree, with slashes.
type Profile struct {
	Dirs  []string
	Files []string
}

// NewProfile profiles dirs whole and every .c file of files that is not
// inside one of them. The result is sorted and free of duplicates.
func NewProfile(dirs, files []string) Profile {
	var p Profile
	seenDir := map[string]bool{}
	for _, d := range dirs {
		d = path.Clean(d)
		if !seenDir[d] {
			seenDir[d] = true
			p.Dirs = append(p.Dirs, d)
		}
	}
	seen := map[string]bool{}
	for _, f := range files {
		f = path.Clean(f)
		if !strings.HasSuffix(f, ".c") || seen[f] || p.inDir(f) {
			continue
		}
		seen[f] = true
		p.Files = append(p.Files, f)
	}
	sort.Strings(p.Dirs)
	sort.Strings(p.Files)
	return p
}

func (p Profile) inDir(file string) bool {
	for _, d := range p.Dirs {
		if path.Dir(file) == d {
			return true
		}
	}
	return false
}

// Covers reports whether file (relative to the tree) is compiled with GCOV.
func (p Profile) Covers(file string) bool {
	if !strings.HasSuffix(file, ".c") {
		return false
	}
	if p.inDir(file) {
		return true
	}
	for _, f := range p.Files {
		if f == file {
			return true
		}
	}
	return false
}

// String names the profile; it is part of the instrumented tree's cache key.
func (p Profile) String() string {
	return "dirs=" + strings.Join(p.Dirs, ",") + ";files=" + strings.Join(p.Files, ",")
}

// MakefileLines are the lines to append to each directory's Makefile (or
// Kbuild file), by directory.
func (p Profile) MakefileLines() map[string][]string {
	out := map[string][]string{}
	for _, d := range p.Dirs {
		out[d] = append(out[d], "GCOV_PROFILE := y")
	}
	for _, f := range p.Files {
		stem := strings.TrimSuffix(path.Base(f), ".c")
		d := path.Dir(f)
		out[d] = append(out[d], "GCOV_PROFILE_"+stem+".o := y")
	}
	return out
}

// Instrument appends the profile's lines to the kbuild makefiles of the
// tree at dir. Each changed makefile is written as a new file renamed over
// the old one, so a hard-linked original is left alone.
func Instrument(dir string, p Profile) error {
	lines := p.MakefileLines()
	dirs := make([]string, 0, len(lines))
	for d := range lines {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		mk, err := kbuildFile(filepath.Join(dir, filepath.FromSlash(d)))
		if err != nil {
			return err
		}
		old, err := os.ReadFile(mk)
		if err != nil {
			return fmt.Errorf("coverage: reading %s: %w", mk, err)
		}
		text := string(old)
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		text += "\n# Added by landlock-vmtest COVERAGE=1.\n" + strings.Join(lines[d], "\n") + "\n"
		if err := replaceFile(mk, []byte(text)); err != nil {
			return err
		}
	}
	return nil
}

// kbuildFile is the file kbuild reads in a directory: Kbuild wins over
// Makefile.
func kbuildFile(dir string) (string, error) {
	for _, name := range []string{"Kbuild", "Makefile"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("coverage: no Kbuild or Makefile in %s to add GCOV_PROFILE to", dir)
}

func replaceFile(name string, data []byte) error {
	st, err := os.Stat(name)
	if err != nil {
		return fmt.Errorf("coverage: %w", err)
	}
	tmp := name + ".landlock-vmtest.tmp"
	if err := os.WriteFile(tmp, data, st.Mode().Perm()); err != nil {
		return fmt.Errorf("coverage: writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("coverage: replacing %s: %w", name, err)
	}
	return nil
}
