package seriescheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/internal/e2e"
)

// The end-to-end tests run the real series-check on our series' version-1
// prefix (e2e.V1Patches patches) and on scratch copies of it with patch 3
// broken, with a small guest test set.

const e2eTests = "TESTS=./tests/seccompentry"

// e2eNoKselftests leaves the upstream kselftests out: these tests are about
// series-check itself.
const e2eNoKselftests = "KSELFTESTS=none"

func readReport(t *testing.T, out string) *Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "series-check.json"))
	require.NoError(t, err)
	var rep Report
	require.NoError(t, json.Unmarshal(data, &rep))
	md, err := os.ReadFile(filepath.Join(out, "series-check.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| patch | applies | builds | new warnings | checkpatch |")
	return &rep
}

func TestE2ESeriesCheckOurSeriesIsGreen(t *testing.T) {
	bin := e2e.Harness(t)
	out := e2e.Out(t)
	r := e2e.Run(t, bin, "series-check", "OUT="+out, e2eTests, e2eNoKselftests, "SERIES="+e2e.SeriesPrefix(t, e2e.V1Patches))
	require.Equal(t, 0, r.Code)
	rep := readReport(t, out)
	require.Len(t, rep.Rows, 6, "the base and 5 patches")
	for _, row := range rep.Rows[1:] {
		assert.True(t, row.Green, "patch %d %s: %v", row.Index, row.Patch, row.Problems)
		assert.Equal(t, "yes", row.Builds)
		assert.Equal(t, "clean", row.Checkpatch)
		assert.Empty(t, row.NewWarnings)
		assert.Zero(t, row.Failed)
	}
	assert.Positive(t, rep.Rows[3].Passed, "the seccomp entry's tests pass once patch 3 is in")
	assert.Contains(t, r.Output, "series-check: all 5 patch(es) green (exit 0)")
}

func TestE2ESeriesCheckPointsAtTheBuildBreak(t *testing.T) {
	bin := e2e.Harness(t)
	out := e2e.Out(t)
	r := e2e.Run(t, bin, "series-check", "OUT="+out, e2eTests, e2eNoKselftests, "SERIES="+e2e.BrokenSeries(t, e2e.BreakBuild))
	require.Equal(t, int(exitcode.BuildFailed), r.Code)
	rep := readReport(t, out)
	require.Len(t, rep.Rows, 6)
	assert.True(t, rep.Rows[1].Green)
	assert.True(t, rep.Rows[2].Green)
	bad := rep.Rows[e2e.BrokenPatch]
	assert.False(t, bad.Green)
	assert.Equal(t, "yes", bad.Applies)
	assert.Equal(t, "no", bad.Builds)
	assert.Contains(t, strings.Join(bad.Problems, "\n"), "landlock_vmtest_no_such_header.h")
	assert.Contains(t, r.Output, "red: patch 3 (0003-")
	assert.Contains(t, r.Output, "the build stays broken at patch 4, 5")
	assert.Equal(t, 3, rep.Rows[4].BrokenSince)
	assert.Equal(t, 3, rep.Rows[5].BrokenSince)
	assert.FileExists(t, filepath.Join(bad.Out, "build.log"))
}

func TestE2ESeriesCheckPointsAtTheBehaviourChange(t *testing.T) {
	bin := e2e.Harness(t)
	out := e2e.Out(t)
	r := e2e.Run(t, bin, "series-check", "OUT="+out, e2eTests, e2eNoKselftests, "SERIES="+e2e.BrokenSeries(t, e2e.BreakRuleLimit))
	require.Equal(t, int(exitcode.TestsFailed), r.Code)
	rep := readReport(t, out)
	require.Len(t, rep.Rows, 6)
	for i, row := range rep.Rows[1:] {
		assert.Equal(t, "yes", row.Builds, "patch %d", i+1)
	}
	assert.True(t, rep.Rows[1].Green)
	assert.True(t, rep.Rows[2].Green)
	bad := rep.Rows[e2e.BrokenPatch]
	assert.False(t, bad.Green)
	assert.Contains(t, bad.NewFailures, "github.com/landlock-vmtest/landlock-vmtest/tests/seccompentry TestRuleLimit")
	// The failure is patch 3's, not repeated against the later ones.
	assert.True(t, rep.Rows[4].Green, "%v", rep.Rows[4].Problems)
	assert.True(t, rep.Rows[5].Green, "%v", rep.Rows[5].Problems)
	assert.Contains(t, r.Output, "red: patch 3 (0003-")
}
