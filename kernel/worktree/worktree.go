// Package worktree keeps a scratch copy of a kernel tree beside a build
// directory that outlives it, so that a series can be applied one patch at
// a time and every state built incrementally from the one before
// (series-check, bisection).
//
// make decides what to rebuild from file times. A fresh copy of the base
// tree carries the base's old times, so a file that a patch changed in an
// earlier use of the build directory would look older than its object and
// never be rebuilt. The worktree therefore records every file a patch
// touches before applying it, and Reset gives those files a new time (and
// their own inode, so the base tree's file is left alone).
package worktree

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// Worktree is a scratch source tree and its build directory.
type Worktree struct {
	base *source.Tree
	// Root holds Src, Build and the list of touched files.
	Root string
	// Src is the scratch copy of the source tree.
	Src string
	// Build is the out-of-tree build directory (O=).
	Build string
	// applied counts the patches applied since the last Reset.
	applied int
	unlock  func()
}

// Open takes the worktree named name for the base tree, creating it on
// first use, and locks it until Close: two runs never share one.
func Open(c *cache.Cache, base *source.Tree, name string) (*Worktree, error) {
	root := c.Path("worktree", cache.Key(base.Key, name))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("creating worktree: %w", err)
	}
	unlock, err := cache.Lock(root)
	if err != nil {
		return nil, err
	}
	w := &Worktree{base: base, Root: root, Src: filepath.Join(root, "src"), Build: filepath.Join(root, "build"), unlock: unlock}
	if err := os.MkdirAll(w.Build, 0o755); err != nil {
		unlock()
		return nil, fmt.Errorf("creating worktree build directory: %w", err)
	}
	return w, nil
}

// Close releases the worktree's lock.
func (w *Worktree) Close() {
	if w.unlock != nil {
		w.unlock()
		w.unlock = nil
	}
}

func (w *Worktree) touchedList() string { return filepath.Join(w.Root, "touched") }

// Tree is the scratch tree as a source.Tree to build.
func (w *Worktree) Tree() *source.Tree {
	return &source.Tree{Dir: w.Src, Key: fmt.Sprintf("worktree:%s:%d", w.Root, w.applied), Desc: fmt.Sprintf("%s + %d patch(es)", w.base.Desc, w.applied)}
}

// Applied is the number of patches applied since the last Reset.
func (w *Worktree) Applied() int { return w.applied }

// Reset makes the scratch tree a fresh copy of the base tree, and makes
// every file a patch ever touched in this worktree newer than the build
// directory's objects, so that make rebuilds what depends on them.
func (w *Worktree) Reset() error {
	if err := os.RemoveAll(w.Src); err != nil {
		return fmt.Errorf("removing the old scratch tree: %w", err)
	}
	if err := os.MkdirAll(w.Src, 0o755); err != nil {
		return fmt.Errorf("creating the scratch tree: %w", err)
	}
	if err := w.base.CopyTo(w.Src); err != nil {
		return err
	}
	w.applied = 0
	touched, err := w.touched()
	if err != nil {
		return err
	}
	for _, f := range touched {
		if err := renew(filepath.Join(w.Src, f)); err != nil {
			return err
		}
	}
	return nil
}

// renew gives an existing file a new inode with the same content and the
// current time. A missing file is fine: the patch that touched it created
// it, and no Makefile of the base refers to it.
func renew(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("renewing %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("renewing %s: %w", path, err)
	}
	tmp := path + ".worktree-tmp"
	if err := os.WriteFile(tmp, data, st.Mode().Perm()); err != nil {
		return fmt.Errorf("renewing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renewing %s: %w", path, err)
	}
	return nil
}

func (w *Worktree) touched() ([]string, error) {
	f, err := os.Open(w.touchedList())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the worktree's touched files: %w", err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !seen[l] && !strings.Contains(l, "..") {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// Apply applies patch number index (1-based) of s to the scratch tree,
// after recording the files it touches.
func (w *Worktree) Apply(s *series.Series, index int) error {
	if index < 1 || index > len(s.Patches) {
		return fmt.Errorf("series has no patch %d", index)
	}
	files, err := s.Patches[index-1].Files()
	if err != nil {
		return err
	}
	if err := w.record(files); err != nil {
		return err
	}
	if err := s.ApplyOne(w.Src, index); err != nil {
		return err
	}
	w.applied++
	return nil
}

// ApplyN resets the tree and applies the first n patches of s.
func (w *Worktree) ApplyN(s *series.Series, n int) error {
	if err := w.Reset(); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		if err := w.Apply(s, i); err != nil {
			return err
		}
	}
	return nil
}

// record appends files to the touched list, synced before the tree
// changes, so that a run killed mid-way still leaves a true list.
func (w *Worktree) record(files []string) error {
	f, err := os.OpenFile(w.touchedList(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("recording touched files: %w", err)
	}
	_, werr := f.WriteString(strings.Join(files, "\n") + "\n")
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("recording touched files: %w", werr)
	}
	return nil
}

// CheckpatchOptions are checkpatch.pl's options beyond --strict.
type CheckpatchOptions struct {
	// Codespell is codespell's dictionary, for --codespell; "" checks
	// no spelling. It is named with --codespellfile: checkpatch.pl
	// looks for it only at /usr/share/codespell/dictionary.txt and
	// through the python3 first in PATH, which need not be the one
	// codespell was installed for.
	Codespell string
}

// Checkpatch runs the scratch tree's scripts/checkpatch.pl --strict
// --show-types on a patch file and returns its counts, its spelling
// mistakes and its output. ok is false when the tree has no
// checkpatch.pl.
func (w *Worktree) Checkpatch(patch string, o CheckpatchOptions) (c CheckpatchResult, ok bool, err error) {
	script := filepath.Join(w.Src, "scripts/checkpatch.pl")
	if _, err := os.Stat(script); err != nil {
		return c, false, nil
	}
	args := []string{script, "--strict", "--no-color", "--show-types"}
	if o.Codespell != "" {
		args = append(args, "--codespell", "--codespellfile="+o.Codespell)
	}
	cmd := exec.Command("perl", append(args, patch)...)
	cmd.Dir = w.Src
	out, runErr := cmd.CombinedOutput()
	c.Output = string(out)
	c.Codespell = o.Codespell != ""
	if !c.parse() {
		if runErr != nil {
			return c, true, fmt.Errorf("checkpatch.pl on %s: %w\n%s", filepath.Base(patch), runErr, out)
		}
		return c, true, fmt.Errorf("checkpatch.pl on %s printed no totals line:\n%s", filepath.Base(patch), out)
	}
	return c, true, nil
}

// CheckpatchResult are checkpatch.pl's totals for one patch.
type CheckpatchResult struct {
	Errors, Warnings, Checks int
	// Codespell tells that spelling was checked; Spelling are the
	// TYPO_SPELLING findings (counted among Errors, Warnings or Checks
	// too), each "file:line: message", or "commit message: message".
	Codespell bool
	Spelling  []string
	Output    string
}

// A finding's first line with --show-types ("WARNING:TYPO_SPELLING:
// 'teh' may be misspelled - perhaps 'the'?"), and the line after it that
// places it ("#32: FILE: include/linux/x.h:94:", or "#8: " in the
// commit message).
var (
	checkpatchFinding = regexp.MustCompile(`^(?:ERROR|WARNING|CHECK):([A-Z0-9_]+): (.*)$`)
	checkpatchPlace   = regexp.MustCompile(`^#\d+: (?:FILE: (\S+?):(\d+):)?`)
)

func (c *CheckpatchResult) parse() bool {
	lines := strings.Split(c.Output, "\n")
	totals := false
	for i, l := range lines {
		if m := checkpatchFinding.FindStringSubmatch(l); m != nil && m[1] == "TYPO_SPELLING" {
			where := "commit message"
			if i+1 < len(lines) {
				if p := checkpatchPlace.FindStringSubmatch(lines[i+1]); p != nil && p[1] != "" {
					where = p[1] + ":" + p[2]
				}
			}
			c.Spelling = append(c.Spelling, where+": "+m[2])
		}
		if !totals && strings.HasPrefix(l, "total: ") {
			var n int
			if _, err := fmt.Sscanf(l, "total: %d errors, %d warnings, %d checks, %d lines checked", &c.Errors, &c.Warnings, &c.Checks, &n); err == nil {
				totals = true
			}
		}
	}
	return totals
}

// Clean reports whether checkpatch had nothing to say.
func (c CheckpatchResult) Clean() bool { return c.Errors+c.Warnings+c.Checks == 0 }

func (c CheckpatchResult) String() string {
	if c.Clean() {
		return "clean"
	}
	return fmt.Sprintf("%dE %dW %dC", c.Errors, c.Warnings, c.Checks)
}
