package seriescheck

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/worktree"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
)

func TestReviewCell(t *testing.T) {
	assert.Equal(t, "-", Review{}.cell(), "the step got nowhere near the check")
	assert.Equal(t, "n/a", Review{NA: "no .rst file in the patch"}.cell())
	assert.Equal(t, "0", Review{Ran: true}.cell())
	assert.Equal(t, "2", Review{Ran: true, New: []string{"a", "b"}}.cell())
	assert.Equal(t, "not run: no sparse", notRun("no sparse", "sparse not installed").cell(), "never a pass")
	assert.Equal(t, []string{"sparse not run: sparse not installed", "docutils not run: no docutils"},
		reviewNotes(Row{Sparse: notRun("no sparse", "sparse not installed"), Docutils: notRun("no docutils", ""), KernelDoc: Review{Ran: true}}))
}

// judge makes the review checks' new findings problems with exit code 8,
// as new W=1 warnings; a check that did not run is a note, not a pass
// and not a failure.
func TestJudgeReviewChecks(t *testing.T) {
	built := func(i int) Row {
		return Row{Index: i, Patch: fmt.Sprintf("%04d-p.patch", i), Applies: "yes", Builds: "yes", Built: true, Checkpatch: "clean", CheckpatchRan: true, CheckpatchOK: true}
	}
	prev := built(0)
	dir := t.TempDir()

	var many []string
	for i := range 7 {
		many = append(many, fmt.Sprintf("Documentation/a.rst:%d: warning: Title underline too short.", i+1))
	}
	row := built(1)
	row.KernelDoc = Review{Ran: true, New: []string{"security/landlock/bpf_hooks.h:87: warning: Excess struct member 'trigers' description in 'landlock_bpf_domain'"}}
	row.Docutils = Review{Ran: true, New: many}
	row.Sparse = Review{Ran: true}
	got := judge(row, prev, []Row{prev}, dir)
	assert.False(t, got.Green)
	assert.Equal(t, int(exitcode.Warnings), got.Code)
	require.Len(t, got.Problems, 2)
	assert.Equal(t, "adds 1 kernel-doc warning(s): security/landlock/bpf_hooks.h:87: warning: Excess struct member 'trigers' description in 'landlock_bpf_domain' ("+filepath.Join(dir, "kernel-doc-after.txt")+")", got.Problems[0])
	assert.True(t, strings.HasPrefix(got.Problems[1], "adds 7 docutils message(s): Documentation/a.rst:1: warning: Title underline too short.; "), got.Problems[1])
	assert.Contains(t, got.Problems[1], "a.rst:5: warning: Title underline too short.; and 2 more ("+filepath.Join(dir, "docutils-after.txt")+")")
	assert.NotContains(t, got.Problems[1], "a.rst:6:")

	// A build error decides the code; the findings are still problems.
	broken := built(2)
	broken.Builds, broken.Built, broken.Code = "no", false, int(exitcode.BuildFailed)
	broken.BuildError, broken.Problems = "x.c:1: error: no", []string{"does not build: x.c:1: error: no"}
	broken.Docutils = Review{Ran: true, New: many[:1]}
	got = judge(broken, prev, []Row{prev}, dir)
	assert.Equal(t, int(exitcode.BuildFailed), got.Code)
	assert.Len(t, got.Problems, 2)

	// Not run: green, said so.
	quiet := built(3)
	quiet.Sparse = notRun("no sparse", "sparse not installed")
	quiet.Spelling = notRun("no codespell", "codespell not installed")
	got = judge(quiet, prev, []Row{prev}, dir)
	assert.True(t, got.Green)
	assert.Empty(t, got.Problems)
	code, verdict := decide([]Row{prev, got})
	assert.Equal(t, exitcode.OK, code)
	assert.Equal(t, "all 1 patch(es) green, but not every check ran; not run: spelling at patch 3 (no codespell), sparse at patch 3 (no sparse)", verdict)
}

// fakeHost has what have names, and apt-get fails.
func fakeHost(have ...string) hosttools.Host {
	ok := map[string]bool{}
	for _, h := range have {
		ok[h] = true
	}
	return hosttools.Host{
		LookPath: func(c string) (string, error) {
			if ok[c] {
				return "/usr/bin/" + c, nil
			}
			return "", errors.New("not found")
		},
		Stat: func(p string) (os.FileInfo, error) {
			if ok[p] {
				return nil, nil
			}
			return nil, os.ErrNotExist
		},
		IsRoot: func() bool { return true },
		Run: func(_ io.Writer, name string, args ...string) error {
			if name == "apt-get" && args[0] == "install" {
				return errors.New("exit status 100")
			}
			return nil
		},
	}
}

func TestEnsureReviewTools(t *testing.T) {
	m := machine.OrDefault(machine.Machine{})
	var all []string
	for _, n := range hosttools.For(hosttools.Request{Machine: m, Review: true}) {
		all = append(all, n.String())
	}
	tools := ensureReviewTools(fakeHost(all...), m, io.Discard)
	assert.Equal(t, reviewTools{sparse: "sparse", docutils: "docutils", codespell: hosttools.CodespellDictionary, missing: map[string]string{}}, tools)

	var log strings.Builder
	tools = ensureReviewTools(fakeHost(slicesWithout(all, "sparse", hosttools.CodespellDictionary)...), m, &log)
	assert.Empty(t, tools.sparse)
	assert.Empty(t, tools.codespell)
	assert.Equal(t, "docutils", tools.docutils)
	assert.Contains(t, tools.why("sparse"), "sparse not installed (Debian's sparse): apt-get install: exit status 100")
	assert.Contains(t, log.String(), "its check is not run")

	// No dictionary: checkpatch.pl ran without --codespell.
	sp := tools.spelling(worktree.CheckpatchResult{})
	assert.Equal(t, "no codespell", sp.NotRun)
	assert.Contains(t, sp.Why, "dictionary.txt not installed (Debian's codespell)")
	assert.Equal(t, Review{Ran: true, New: []string{"x"}}, reviewTools{}.spelling(worktree.CheckpatchResult{Codespell: true, Spelling: []string{"x"}}))
}

func slicesWithout(all []string, drop ...string) []string {
	var out []string
	for _, a := range all {
		keep := true
		for _, d := range drop {
			keep = keep && a != d
		}
		if keep {
			out = append(out, a)
		}
	}
	return out
}

// The columns of the checks that need no tree or build to be decided.
func TestReviewColumnsWithoutRunning(t *testing.T) {
	c := &checker{}
	dir := t.TempDir()
	_, skip := c.sparseBefore([]string{"a.c"}, true, dir)
	require.NotNil(t, skip)
	assert.Equal(t, "no sparse", skip.NotRun)
	c.tools.sparse = "sparse"
	_, skip = c.sparseBefore([]string{"a.c"}, false, dir)
	assert.Equal(t, notRun("no baseline", "the step before did not build"), *skip)

	assert.Equal(t, "n/a", c.sparseAfter(nil, skip, nil, nil, dir).cell(), "no C file built: nothing to check")
	assert.Equal(t, "not run: no baseline", c.sparseAfter(nil, skip, []string{"a.c"}, nil, dir).cell())
	assert.Equal(t, "not run: W=1 build failed", c.sparseAfter(nil, nil, []string{"a.c"}, errors.New("make W=1 a.o: exit status 2"), dir).cell())

	kd := c.kernelDocBefore([]string{"Documentation/a.rst"}, dir)
	assert.Equal(t, Review{NA: "no C file or header in the patch"}, c.kernelDocAfter(kd, nil, dir))
	du := c.docutilsBefore([]string{"a.c"}, dir)
	assert.Equal(t, "n/a", c.docutilsAfter(du, nil, dir).cell())
	du = c.docutilsBefore([]string{"Documentation/a.rst"}, dir)
	assert.Equal(t, "not run: no docutils", c.docutilsAfter(du, nil, dir).cell())
}

// A tree check's delta: the findings of the tree with the patch that the
// tree before it lacks, whatever their lines; a run that failed on
// either side is not run.
func TestTreeReviewCompare(t *testing.T) {
	w := func(line int, text string) build.Warning {
		return build.Warning{File: "include/linux/path.h", Line: line, Level: "warning", Text: text}
	}
	b := treeReview{before: worktree.Review{Files: []string{"include/linux/path.h"}, Findings: []build.Warning{w(3, "old")}}}
	got := b.compare("kernel-doc", worktree.Review{Files: []string{"kernel/a.c", "include/linux/path.h"}, Findings: []build.Warning{w(5, "old"), w(9, "new")}}, nil)
	assert.Equal(t, Review{Ran: true, Files: []string{"include/linux/path.h", "kernel/a.c"}, New: []string{"include/linux/path.h:9: warning: new"}}, got)

	got = b.compare("kernel-doc", worktree.Review{}, errors.New("scripts/kernel-doc -none -Wall: exit status 2\nCan't locate Pod/Usage.pm"))
	assert.Equal(t, notRun("kernel-doc failed", "scripts/kernel-doc -none -Wall: exit status 2"), got)
	b.err = errors.New("docutils on Documentation/a.rst: exit status 1")
	assert.Equal(t, "not run: docutils failed", b.compare("docutils", worktree.Review{}, nil).cell())
}
