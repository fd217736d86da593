package seriescheck

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

func TestNewFailures(t *testing.T) {
	before := map[string]results.Status{"p A": results.StatusPass, "p B": results.StatusFail, "p C": results.StatusSkip}
	now := map[string]results.Status{"p A": results.StatusFail, "p B": results.StatusFail, "p C": results.StatusFail, "p D": results.StatusFail, "p E": results.StatusPass}
	assert.Equal(t, []string{"p A", "p C", "p D"}, newFailures(before, now))
	assert.Empty(t, newFailures(now, now))
	assert.Empty(t, newFailures(before, map[string]results.Status{"p A": results.StatusFlaky}), "a flaky test is no failure")
}

func TestDecide(t *testing.T) {
	green := func(i int) Row { return Row{Index: i, Patch: "p", Green: true, Builds: "yes"} }
	base := Row{Index: 0, Patch: "(base)", Builds: "yes", Green: false, Code: int(exitcode.TestsFailed)}

	code, why := decide([]Row{base, green(1), green(2)})
	assert.Equal(t, exitcode.OK, code, "the base's own failures are not the series'")
	assert.Equal(t, "all 2 patch(es) green", why)

	code, why = decide([]Row{green(0), green(1),
		{Index: 2, Patch: "b", Builds: "no", Code: int(exitcode.BuildFailed)},
		{Index: 3, Patch: "w", Builds: "yes", Code: int(exitcode.Warnings)}})
	assert.Equal(t, exitcode.BuildFailed, code, "the first red patch decides")
	assert.Equal(t, "red: patch 2 (b), patch 3 (w)", why)

	code, why = decide([]Row{green(0), green(1),
		{Index: 2, Patch: "b", Builds: "no", Code: int(exitcode.BuildFailed), Problems: []string{"does not build"}},
		{Index: 3, Patch: "c", Builds: "no", Code: int(exitcode.BuildFailed), BrokenSince: 2, Problems: []string{"still does not build"}}})
	assert.Equal(t, exitcode.BuildFailed, code)
	assert.Equal(t, "red: patch 2 (b); the build stays broken at patch 3", why)

	code, _ = decide([]Row{green(0), {Index: 1, Patch: "x", Code: int(exitcode.Infra)}})
	assert.Equal(t, exitcode.Infra, code)

	code, why = decide([]Row{{Index: 0, Patch: "(base)", Builds: "yes", Code: int(exitcode.Usage), Problems: []string{"kselftest nosuch: no tools/testing/selftests/nosuch/Makefile"}}})
	assert.Equal(t, exitcode.Usage, code, "a usage error at the base stops the check with its code")
	assert.Contains(t, why, "kselftest nosuch")

	code, _ = decide([]Row{green(0), {Index: 1, Patch: "x", Code: int(exitcode.Usage)}, green(2)})
	assert.Equal(t, exitcode.Usage, code)

	code, why = decide([]Row{{Index: 0, Patch: "(base)", Builds: "no", Code: int(exitcode.BuildFailed), Problems: []string{"does not build"}}})
	assert.Equal(t, exitcode.BuildFailed, code)
	assert.Contains(t, why, "the base tree itself failed")
}

func TestTable(t *testing.T) {
	rep := &Report{Rows: []Row{
		{Index: 0, Patch: "(base)", Applies: "-", Builds: "yes", Checkpatch: "-", TestsRan: true, Passed: 3, Skipped: 2, Green: true, Seconds: 61},
		{Index: 1, Patch: "0001-a.patch", Applies: "yes", Builds: "yes", Checkpatch: "clean", TestsRan: true, Passed: 5, Green: true, WarningFiles: []string{"a.c"},
			Spelling: Review{Ran: true}, Sparse: Review{Ran: true, Files: []string{"a.c"}}, KernelDoc: Review{NA: "no C file or header in the patch"}, Docutils: Review{NA: "no .rst file in the patch"}},
		{Index: 2, Patch: "0002-b.patch", Applies: "yes", Builds: "yes", Checkpatch: "0E 1W 0C", NewWarnings: []string{"a.c:3: warning: x"}, TestsRan: true, Passed: 4, Failed: 1,
			Spelling:  Review{Ran: true, New: []string{"commit message: 'teh' may be misspelled - perhaps 'the'?"}},
			Sparse:    notRun("no sparse", "sparse not installed (Debian's sparse): apt-get install: exit status 100"),
			KernelDoc: Review{Ran: true, Files: []string{"a.c", "a.h"}},
			Docutils:  notRun("docutils failed", "docutils on Documentation/a.rst: exit status 1"),
			Problems:  []string{"adds 1 W=1 warning(s)"}},
		{Index: 3, Patch: "0003-c.patch", Applies: "no", Builds: "-", Checkpatch: "clean", Spelling: Review{Ran: true}, Problems: []string{"does not apply"}},
	}}
	var b bytes.Buffer
	assert.NoError(t, Table(&b, rep))
	out := b.String()
	assert.Contains(t, out, "patch")
	assert.Regexp(t, `\(base\)\s+-\s+yes\s+-\s+-\s+-\s+-\s+-\s+-\s+3/0/2\s+61s\s+baseline`, out)
	assert.Regexp(t, `1 0001-a.patch\s+yes\s+yes\s+0\s+clean\s+0\s+0\s+n/a\s+n/a\s+5/0/0\s+0s\s+green`, out)
	assert.Regexp(t, `2 0002-b.patch\s+yes\s+yes\s+1\s+0E 1W 0C\s+1\s+not run: no sparse\s+0\s+not run: docutils failed\s+4/1/0\s+0s\s+RED`, out)
	assert.Regexp(t, `3 0003-c.patch\s+no\s+-\s+-\s+clean\s+0\s+-\s+-\s+-\s+-\s+0s\s+RED`, out)
	assert.Contains(t, out, "[3] 0003-c.patch: does not apply")
	// A check that did not run says why, under the table.
	assert.Contains(t, out, "  [2] 0002-b.patch: sparse not run: sparse not installed (Debian's sparse): apt-get install: exit status 100\n")
	assert.Contains(t, out, "  [2] 0002-b.patch: docutils not run: docutils on Documentation/a.rst: exit status 1\n")
	assert.Regexp(t, `patch\s+applies\s+builds\s+new warnings\s+checkpatch\s+spelling\s+sparse\s+kernel-doc\s+docutils\s+pass/fail/skip\s+time\s+verdict`, out)

	var md bytes.Buffer
	Markdown(&md, rep)
	assert.Contains(t, md.String(), "| 2 0002-b.patch | yes | yes | 1 | 0E 1W 0C | 1 | not run: no sparse | 0 | not run: docutils failed | 4/1/0 | 0s | RED |")
	assert.Contains(t, md.String(), "- 2 0002-b.patch: sparse not run: sparse not installed (Debian's sparse): apt-get install: exit status 100\n")
	assert.NotContains(t, out, "flaky")
	assert.NotContains(t, md.String(), "flaky")
}

// A step whose only trouble is a flaky test (RETRY=) is green; the table
// counts the flaky test among the passed and names it.
func TestTableFlaky(t *testing.T) {
	rep := &Report{Rows: []Row{
		{Index: 1, Patch: "0001-a.patch", Applies: "yes", Builds: "yes", Checkpatch: "clean", TestsRan: true, Passed: 5, Flaky: 1, FlakyTests: []string{"p TestF"}, Green: true},
	}}
	var b bytes.Buffer
	assert.NoError(t, Table(&b, rep))
	assert.Regexp(t, `1 0001-a.patch\s+yes\s+yes\s+0\s+clean(\s+-){4}\s+5/0/0 \(1 flaky\)\s+0s\s+green`, b.String())
	assert.Contains(t, b.String(), "  [1] 0001-a.patch: flaky (failed, then passed on a retry; counted as passed): p TestF\n")
	var md bytes.Buffer
	Markdown(&md, rep)
	assert.Contains(t, md.String(), "| 5/0/0 (1 flaky) |")
	assert.Contains(t, md.String(), "- 1 0001-a.patch: flaky (failed, then passed on a retry; counted as passed): p TestF\n")
}

func splatGroup(title, fp string, count int) results.SplatGroup {
	return results.SplatGroup{Signature: title, Fingerprint: fp, Kind: "WARNING", Count: count}
}

// A splat is the patch's where its fingerprint first appears, even when
// the step before splatted too (another bug); the report says where each
// one first appeared and where it was seen again.
func TestSplatsByStep(t *testing.T) {
	tested := func(i int, code exitcode.Code, splats ...results.SplatGroup) Row {
		return Row{Index: i, Patch: fmt.Sprintf("%04d-p.patch", i), Builds: "yes", Applies: "yes", TestsRan: true, TestCode: code, Splats: splats,
			Statuses: map[string]results.Status{"p TestA": results.StatusPass}}
	}
	a := splatGroup("WARNING in landlock_a", "aaaa", 1)
	b := splatGroup("WARNING in landlock_b", "bbbb", 2)
	rows := []Row{tested(0, exitcode.OK), tested(1, exitcode.OK)}
	rows = append(rows, judge(tested(2, exitcode.KernelCrashed, a), rows[1], rows, t.TempDir()))
	rows = append(rows, judge(tested(3, exitcode.KernelCrashed, a), rows[2], rows, t.TempDir()))
	rows = append(rows, judge(tested(4, exitcode.KernelCrashed, a, b), rows[3], rows, t.TempDir()))

	assert.False(t, rows[2].Green)
	assert.Equal(t, int(exitcode.KernelCrashed), rows[2].Code)
	assert.Equal(t, []string{`1 kernel splat(s) first seen at this patch: "WARNING in landlock_a" (aaaa)`}, rows[2].Problems)
	// The same bug one step later is not that patch's.
	assert.Empty(t, rows[3].NewSplats)
	assert.Empty(t, rows[3].Problems)
	assert.True(t, rows[3].Green)
	// A new bug beside the old one is.
	assert.Equal(t, []string{`"WARNING in landlock_b" (bbbb)`}, rows[4].NewSplats)
	assert.Equal(t, int(exitcode.KernelCrashed), rows[4].Code)

	hist := splatHistory(rows)
	assert.Equal(t, []SplatHistory{
		{Signature: "WARNING in landlock_a", Fingerprint: "aaaa", Kind: "WARNING", First: 2, FirstPatch: "0002-p.patch", Steps: []int{2, 3, 4}, Count: 3},
		{Signature: "WARNING in landlock_b", Fingerprint: "bbbb", Kind: "WARNING", First: 4, FirstPatch: "0004-p.patch", Steps: []int{4}, Count: 2},
	}, hist)

	rep := &Report{Rows: rows, Splats: hist}
	var out bytes.Buffer
	assert.NoError(t, Table(&out, rep))
	assert.Contains(t, out.String(), `  splat "WARNING in landlock_a" (WARNING, fingerprint aaaa): first at patch 2 0002-p.patch; seen 3 time(s), at step(s) 2, 3, 4`)
	var md bytes.Buffer
	Markdown(&md, rep)
	assert.Contains(t, md.String(), "## Kernel splats\n\n- \"WARNING in landlock_a\"")
	assert.Contains(t, md.String(), `- "WARNING in landlock_b" (WARNING, fingerprint bbbb): first at patch 4 0004-p.patch; seen 2 time(s), at step(s) 4`)

	// In the base tree already: no patch's.
	base := splatHistory([]Row{tested(0, exitcode.KernelCrashed, a)})
	assert.Contains(t, splatNote(base[0]), "first at the base tree")
}
