package bisect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/internal/e2e"
)

func readBisect(t *testing.T, out string) *Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, "bisect.json"))
	require.NoError(t, err)
	var rep Report
	require.NoError(t, json.Unmarshal(data, &rep))
	return &rep
}

func TestE2EBisectSeriesNamesTheCulprit(t *testing.T) {
	bin := e2e.Harness(t)
	out := e2e.Out(t)
	r := e2e.Run(t, bin, "bisect", "OUT="+out, "TESTS=./tests/seccompentry", "KSELFTESTS=none", "TEST=^TestRuleLimit$",
		"SERIES="+e2e.BrokenSeries(t, e2e.BreakRuleLimit))
	require.Equal(t, 0, r.Code)
	rep := readBisect(t, out)
	assert.True(t, rep.Found)
	assert.True(t, strings.HasPrefix(rep.Culprit, "0003-"), rep.Culprit)
	assert.Contains(t, r.Output, "the first bad patch is 3/5 0003-")
	require.NotNil(t, rep.AtCulprit)
	require.NotNil(t, rep.Before)
	assert.Equal(t, "2", rep.Before.Step)
	assert.Contains(t, strings.Join(rep.AtCulprit.Output, "\n"), "--- FAIL TestRuleLimit")
	assert.Equal(t, "the culprit failed the test in 1 of 1 run(s); the step before passed it in 1 of 1 run(s)", rep.Confidence)
}

func TestE2EBisectWithoutTestIsAUsageError(t *testing.T) {
	bin := e2e.Harness(t)
	r := e2e.Run(t, bin, "bisect", "OUT="+e2e.Out(t), "TEST=")
	assert.Equal(t, 64, r.Code)
	assert.Contains(t, r.Output, "TEST= is required")
}

func TestE2EBisectGitNamesTheCulpritCommit(t *testing.T) {
	bin := e2e.Harness(t)
	src := e2e.GitKernel(t, e2e.BrokenSeries(t, e2e.BreakRuleLimit))
	out := e2e.Out(t)
	r := e2e.Run(t, bin, "bisect", "OUT="+out, "TESTS=./tests/seccompentry", "KSELFTESTS=none", "TEST=^TestRuleLimit$",
		"KERNEL_SRC="+src, "GOOD=HEAD~5", "BAD=HEAD", "SERIES=none",
		// The option the series adds is off by default; at commits before
		// patch 1 no Kconfig defines it, and it is left out there.
		"CONFIG="+filepath.Join(e2e.Repo(t), "patches", "landlock-bpf.config"))
	require.Equal(t, 0, r.Code)
	rep := readBisect(t, out)
	assert.True(t, rep.Found)
	assert.Equal(t, "seccomp,landlock: append Landlock eBPF rules with seccomp(2)", rep.Subject)
	require.NotNil(t, rep.AtCulprit)
	require.NotNil(t, rep.Before, "the culprit's parent is tested for the report")
	assert.Contains(t, strings.Join(rep.AtCulprit.Output, "\n"), "--- FAIL TestRuleLimit")
	assert.Contains(t, r.Output, "is the first bad commit")
	assert.FileExists(t, filepath.Join(out, "git-bisect.log"))
	// The user's tree is left as it was.
	assert.NoFileExists(t, filepath.Join(src, ".git", "BISECT_LOG"))
}
