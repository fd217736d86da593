package worktree

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
)

// Review is what a review tool found in a tree.
type Review struct {
	// Files are the files it read: those asked for that the tree has.
	Files []string
	// Findings are its warnings and errors, file names relative to the
	// tree.
	Findings []build.Warning
}

// ErrNoKernelDoc is KernelDoc's error for a tree without
// scripts/kernel-doc.
var ErrNoKernelDoc = errors.New("the tree has no scripts/kernel-doc")

// KernelDoc runs the scratch tree's scripts/kernel-doc on files; see
// KernelDocIn.
func (w *Worktree) KernelDoc(files []string, logPath string) (Review, error) {
	return KernelDocIn(w.Src, files, logPath)
}

// KernelDocIn runs dir's scripts/kernel-doc -none -Wall on the C files
// and headers among files (paths in dir; those dir does not have are left
// out), writes its output to logPath and returns its warnings and errors.
// With nothing to read it runs nothing.
func KernelDocIn(dir string, files []string, logPath string) (Review, error) {
	r := Review{Files: existing(dir, files, ".c", ".h")}
	script := filepath.Join(dir, "scripts/kernel-doc")
	if _, err := os.Stat(script); err != nil {
		return r, ErrNoKernelDoc
	}
	if len(r.Files) == 0 {
		return r, nil
	}
	// kbuild runs it so too (cmd_checkdoc), by its #! line: perl
	// before 6.15, python after.
	cmd := exec.Command(script, append([]string{"-none", "-Wall"}, r.Files...)...)
	cmd.Dir = dir
	out, runErr := cmd.CombinedOutput()
	if err := os.WriteFile(logPath, out, 0o644); err != nil {
		return r, fmt.Errorf("writing kernel-doc's output: %w", err)
	}
	var err error
	if r.Findings, err = build.Findings(logPath, dir, dir); err != nil {
		return r, fmt.Errorf("reading kernel-doc's output: %w", err)
	}
	// -none exits 0 whatever it found; a failure with nothing found is
	// the tool's own.
	if runErr != nil && len(r.Findings) == 0 {
		return r, fmt.Errorf("scripts/kernel-doc -none -Wall: %w\n%s", runErr, firstLines(out, 5))
	}
	return r, nil
}

// DocutilsArgs are the docutils front end's arguments before the file:
// parse only (the null writer), report warnings and worse, stop at none.
var DocutilsArgs = []string{"--writer=null", "--report=2", "--halt=5"}

// Docutils parses the .rst files among files in the scratch tree; see
// DocutilsIn.
func (w *Worktree) Docutils(command string, files []string, logPath string) (Review, error) {
	return DocutilsIn(w.Src, command, files, logPath)
}

// DocutilsIn parses each .rst file among files (paths in dir; those dir
// does not have are left out) with the docutils front end command
// (Debian's python3-docutils: docutils), in dir, and returns its
// messages of level 2 (warning) and above, less those about what only
// Sphinx knows (SphinxOnly). Its messages, every one, go to logPath,
// each file's under the command that printed them.
func DocutilsIn(dir, command string, files []string, logPath string) (Review, error) {
	r := Review{Files: existing(dir, files, ".rst")}
	var log bytes.Buffer
	for _, f := range r.Files {
		args := append(append([]string(nil), DocutilsArgs...), f)
		fmt.Fprintf(&log, "$ %s %s\n", command, strings.Join(args, " "))
		var stderr bytes.Buffer
		cmd := exec.Command(command, args...)
		cmd.Dir = dir
		cmd.Stderr = &stderr
		err := cmd.Run()
		log.Write(stderr.Bytes())
		if err != nil {
			_ = os.WriteFile(logPath, log.Bytes(), 0o644)
			return r, fmt.Errorf("%s on %s: %w\n%s", command, f, err, firstLines(stderr.Bytes(), 5))
		}
		r.Findings = append(r.Findings, ParseDocutils(stderr.String())...)
	}
	if err := os.WriteFile(logPath, log.Bytes(), 0o644); err != nil {
		return r, fmt.Errorf("writing docutils's messages: %w", err)
	}
	return r, nil
}

// A docutils system message: "FILE:LINE: (LEVEL/N) text", LINE empty
// when it has none.
var docutilsLine = regexp.MustCompile(`^(\S.*?):(\d*): \((WARNING|ERROR|SEVERE)/[234]\) (.*)$`)

// ParseDocutils reads docutils's messages of level 2 and above. A
// message's text goes on over the lines right after it (a SEVERE
// include error names the file on the next one); after a blank line
// comes the quoted source, which is left out. Messages about what only
// Sphinx knows are left out (SphinxOnly). A message printed twice at one
// place counts once.
func ParseDocutils(out string) []build.Warning {
	var ws []build.Warning
	open := false
	for _, l := range strings.Split(out, "\n") {
		if m := docutilsLine.FindStringSubmatch(l); m != nil {
			w := build.Warning{File: filepath.Clean(m[1]), Level: strings.ToLower(m[3]), Text: m[4]}
			w.Line, _ = strconv.Atoi(m[2])
			if SphinxOnly(w.Text) {
				open = false
				continue
			}
			ws = append(ws, w)
			open = true
			continue
		}
		if strings.TrimSpace(l) == "" {
			open = false
			continue
		}
		if open {
			ws[len(ws)-1].Text += " " + strings.TrimSpace(l)
		}
	}
	seen := map[string]bool{}
	out2 := ws[:0]
	for _, w := range ws {
		if !seen[w.String()] {
			seen[w.String()] = true
			out2 = append(out2, w)
		}
	}
	return out2
}

var (
	unknownDirective = regexp.MustCompile(`^Unknown directive type "([^"]+)"\.$`)
	unknownRole      = regexp.MustCompile(`^Unknown interpreted text role "([^"]+)"\.$`)
	undefinedSubst   = regexp.MustCompile(`^Undefined substitution referenced: "([^"]+)"\.$`)
)

// The directives and roles that the kernel's documentation build
// (Documentation/conf.py: Sphinx, its C domain as primary domain, and
// the kernel's extensions in Documentation/sphinx) adds to docutils's.
// Any other unknown name, a misspelt kernel-doc say, is a finding.
var (
	sphinxDirectives = set(
		// Sphinx.
		"toctree", "only", "index", "seealso", "versionadded", "versionchanged",
		"deprecated", "centered", "hlist", "glossary", "productionlist",
		"tabularcolumns", "highlight", "literalinclude", "sourcecode",
		"code-block", "rst-class", "cssclass", "sectionauthor", "moduleauthor",
		"codeauthor", "acks", "default-domain", "describe", "object", "ifconfig",
		// The C domain, primary: its directives unqualified too.
		"function", "macro", "struct", "union", "enum", "enumerator", "type",
		"member", "var", "alias", "namespace", "namespace-push", "namespace-pop",
		// Documentation/sphinx.
		"kernel-doc", "kernel-include", "kernel-abi", "kernel-feat",
		"kernel-figure", "kernel-image", "kernel-render", "maintainers-include",
		"flat-table",
	)
	sphinxRoles = set(
		// Sphinx.
		"ref", "doc", "numref", "term", "any", "download", "envvar", "token",
		"keyword", "option", "abbr", "command", "dfn", "file", "guilabel",
		"kbd", "mailheader", "makevar", "manpage", "menuselection", "mimetype",
		"newsgroup", "program", "regexp", "samp", "eq",
		// The C domain, unqualified.
		"func", "macro", "struct", "union", "enum", "enumerator", "type",
		"member", "data", "var", "expr", "texpr",
		// flat-table's.
		"cspan", "rspan",
	)
	sphinxSubstitutions = set("version", "release", "today")
	// Sphinx's domains: "c:func", "c:function", "py:class".
	sphinxDomains = set("c", "cpp", "py", "js", "rst", "std", "math")
)

// SphinxOnly reports whether a docutils message is about a directive,
// role or substitution that Sphinx, with the kernel's extensions, knows
// and docutils alone does not: not a mistake of the document.
func SphinxOnly(text string) bool {
	if m := unknownDirective.FindStringSubmatch(text); m != nil {
		return sphinxDirectives[m[1]] || inSphinxDomain(m[1])
	}
	if m := unknownRole.FindStringSubmatch(text); m != nil {
		return sphinxRoles[m[1]] || inSphinxDomain(m[1])
	}
	if m := undefinedSubst.FindStringSubmatch(text); m != nil {
		return sphinxSubstitutions[m[1]]
	}
	return false
}

func inSphinxDomain(name string) bool {
	domain, rest, ok := strings.Cut(name, ":")
	return ok && rest != "" && sphinxDomains[domain]
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// existing are the files with one of the suffixes that dir has, in order.
func existing(dir string, files []string, suffixes ...string) []string {
	var out []string
	for _, f := range files {
		ok := false
		for _, s := range suffixes {
			ok = ok || strings.HasSuffix(f, s)
		}
		if !ok {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			out = append(out, f)
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			// Unreadable: kernel-doc or docutils will say so.
			out = append(out, f)
		}
	}
	return out
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
