package seriescheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

// rawSteps are steps as patch() leaves them before judge(): what each
// found on its own.
func rawSteps() []Row {
	pass := results.StatusPass
	fail := results.StatusFail
	tested := func(i int, code exitcode.Code, st map[string]results.Status, splats ...results.SplatGroup) Row {
		return Row{Index: i, Patch: fmt.Sprintf("%04d-p.patch", i), Applies: "yes", Builds: "yes", Checkpatch: "clean", Built: true,
			TestsRan: true, TestCode: code, Statuses: st, Splats: splats, CheckpatchRan: true, CheckpatchOK: true}
	}
	base := tested(0, exitcode.OK, map[string]results.Status{"p A": pass})
	base.Patch, base.Applies, base.Green = "(base)", "-", true
	rows := []Row{
		base,
		// Checkpatch warnings.
		tested(1, exitcode.OK, map[string]results.Status{"p A": pass}),
		// A new failure...
		tested(2, exitcode.TestsFailed, map[string]results.Status{"p A": fail}),
		// ...that is the step before's, not this one's.
		tested(3, exitcode.TestsFailed, map[string]results.Status{"p A": fail, "p B": pass}),
		// A splat of its own.
		tested(4, exitcode.KernelCrashed, map[string]results.Status{"p A": fail, "p B": pass}, splatGroup("WARNING in x", "ffff", 1)),
	}
	rows[1].Checkpatch, rows[1].CheckpatchOK, rows[1].CheckpatchWarnings = "0E 2W 0C", false, 2
	// The review checks: a spelling mistake and a sparse warning of
	// patch 1's, docutils missing at patch 2, kernel-doc clean at 3.
	rows[1].Spelling = Review{Ran: true, New: []string{"commit message: 'teh' may be misspelled - perhaps 'the'?"}}
	rows[1].Sparse = Review{Ran: true, Files: []string{"fs/d_path.c"}, New: []string{"fs/d_path.c:551: warning: context imbalance in 'path_walk_up' - different lock contexts for basic block"}}
	rows[2].Docutils = notRun("no docutils", "docutils not installed (Debian's python3-docutils): not root, so not installing them")
	rows[3].KernelDoc = Review{Ran: true, Files: []string{"include/linux/path.h"}}
	// A build break, and the same break one patch later.
	for _, i := range []int{5, 6} {
		r := Row{Index: i, Patch: fmt.Sprintf("%04d-p.patch", i), Applies: "yes", Builds: "no", Checkpatch: "clean", CheckpatchRan: true, CheckpatchOK: true,
			BuildError: "x.c:1: error: no", Problems: []string{"does not build: x.c:1: error: no"}, Code: int(exitcode.BuildFailed)}
		rows = append(rows, r)
	}
	for i := range rows[1:] {
		r := &rows[i+1]
		r.Judged, r.RawProblems, r.RawCode = true, slices.Clone(r.Problems), r.Code
	}
	return rows
}

// The sequential check's loop: each step judged as it comes, against the
// steps before it.
func sequential(raw []Row) []Row {
	rows := []Row{raw[0]}
	for _, r := range raw[1:] {
		rows = append(rows, judge(r, rows[len(rows)-1], rows, r.Out))
	}
	return rows
}

// TestMergeEqualsSequential: steps run apart, each judged against nothing
// (as CheckStep leaves them) and written to its own report, merge into
// the rows, table and verdict of the sequential check.
func TestMergeEqualsSequential(t *testing.T) {
	raw := rawSteps()
	want := sequential(raw)

	var dirs []string
	for i, r := range raw {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("step-%d", i))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		alone := r
		if r.Index > 0 {
			// CheckStep: judged with only the untested tree before it.
			prev := Row{Index: r.Index - 1, Built: true, Builds: "yes"}
			alone = judge(r, prev, []Row{prev}, dir)
		}
		step := r.Index
		require.NoError(t, write(&Report{Series: "s", Base: "b", Tests: "t", Patches: len(raw) - 1, Step: &step, Rows: []Row{alone}, Seconds: 10}, dir))
		dirs = append(dirs, dir)
	}
	// The order of the directories does not matter.
	slices.Reverse(dirs)
	got, err := mergeReports(dirs)
	require.NoError(t, err)
	require.Equal(t, want, got.Rows)
	assert.Equal(t, 70.0, got.Seconds)

	code, verdict := decide(got.Rows)
	wantCode, wantVerdict := decide(want)
	assert.Equal(t, wantCode, code)
	assert.Equal(t, wantVerdict, verdict)
	assert.Equal(t, "red: patch 1 (0001-p.patch), patch 2 (0002-p.patch), patch 4 (0004-p.patch), patch 5 (0005-p.patch); the build stays broken at patch 6; not run: docutils at patch 2 (no docutils)", verdict)
	// The review checks' findings come through the JSON as they were
	// found, and judge() makes them problems again.
	assert.Equal(t, raw[1].Sparse, got.Rows[1].Sparse)
	assert.Equal(t, raw[2].Docutils, got.Rows[2].Docutils)
	assert.Contains(t, got.Rows[1].Problems, "adds 1 sparse warning(s): fs/d_path.c:551: warning: context imbalance in 'path_walk_up' - different lock contexts for basic block ("+filepath.Join(got.Rows[1].Out, "sparse-after.log")+")")
	assert.Contains(t, got.Rows[1].Problems, "adds 1 spelling mistake(s) (checkpatch.pl --codespell): commit message: 'teh' may be misspelled - perhaps 'the'? ("+filepath.Join(got.Rows[1].Out, "checkpatch.txt")+")")
	assert.True(t, got.Rows[3].Green)
	assert.True(t, got.Rows[3].Green, "the failure is patch 2's: %v", got.Rows[3].Problems)
	assert.Equal(t, []string{"p A"}, got.Rows[2].NewFailures)
	assert.Equal(t, 5, got.Rows[6].BrokenSince)

	// Alone, step 3 had the failure as its own.
	b, err := os.ReadFile(filepath.Join(dirs[len(dirs)-1-3], "series-check.json"))
	require.NoError(t, err)
	var alone Report
	require.NoError(t, json.Unmarshal(b, &alone))
	assert.False(t, alone.Rows[0].Green)
}

func TestMergeRefusesGapsAndDuplicates(t *testing.T) {
	raw := rawSteps()
	write1 := func(r Row, patches int, tests string) string {
		dir := t.TempDir()
		step := r.Index
		require.NoError(t, write(&Report{Series: "s", Tests: tests, Patches: patches, Step: &step, Rows: []Row{r}}, dir))
		return dir
	}
	_, err := mergeReports([]string{write1(raw[0], 2, "t"), write1(raw[2], 2, "t")})
	assert.ErrorContains(t, err, "missing: step 1")
	// The last steps missing (a job that never wrote its report).
	_, err = mergeReports([]string{write1(raw[0], 3, "t"), write1(raw[1], 3, "t")})
	assert.ErrorContains(t, err, "the series has steps 0 (the base tree) to 3; missing: step 2, 3")
	_, err = mergeReports([]string{write1(raw[0], 1, "t"), write1(raw[1], 1, "t"), write1(raw[1], 1, "t")})
	assert.ErrorContains(t, err, "step 1 is in more than one report")
	_, err = mergeReports([]string{write1(raw[0], 1, "t"), write1(raw[1], 1, "other")})
	assert.ErrorContains(t, err, "step 1 checked another series, base tree or tests")
	_, err = mergeReports([]string{t.TempDir()})
	assert.ErrorContains(t, err, "reading a step's report")
	// A sequential report has no test statuses to judge with.
	seq := t.TempDir()
	require.NoError(t, write(&Report{Patches: 1, Rows: raw[:2]}, seq))
	_, err = mergeReports([]string{seq})
	assert.ErrorContains(t, err, "not the report of a step run alone")
}

// A patch that does not apply leaves the later steps not tried, as the
// sequential check does, whatever they found on their own.
func TestMergeAfterAPatchThatDoesNotApply(t *testing.T) {
	raw := rawSteps()[:4]
	raw[2] = Row{Index: 2, Patch: "0002-p.patch", Applies: "no", Builds: "-", Checkpatch: "clean", Problems: []string{"does not apply: x"}, Code: int(exitcode.PatchFailed)}
	rows := assemble(raw)
	require.Len(t, rows, 4)
	assert.Equal(t, []string{"not tried: an earlier patch did not apply"}, rows[3].Problems)
	assert.Equal(t, "-", rows[3].Applies)
}
