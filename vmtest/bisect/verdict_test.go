package bisect

import (
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/stretchr/testify/assert"
)

func TestDecide(t *testing.T) {
	pass := Run{Code: exitcode.OK, Matched: 1, Passed: 1}
	fail := Run{Code: exitcode.TestsFailed, Matched: 1, Failed: 1}
	flaky := Run{Code: exitcode.OK, Matched: 1, Passed: 1, Flaky: 1}
	for _, c := range []struct {
		name   string
		runs   []Run
		want   Decision
		agreed int
	}{
		{"no run", nil, Stop, 0},
		{"one pass", []Run{pass}, Good, 1},
		{"one failure", []Run{fail}, Bad, 1},
		{"all pass", []Run{pass, pass, pass}, Good, 3},
		{"flaky: one failure of three is bad", []Run{pass, fail, pass}, Bad, 1},
		{"other tests failing do not count", []Run{{Code: exitcode.TestsFailed, Matched: 1, Passed: 1}}, Good, 1},
		{"the test skipped is not a failure", []Run{{Code: exitcode.OK, Matched: 1, Skipped: 1}}, Good, 1},
		{"kernel crash during the test is bad", []Run{{Code: exitcode.KernelCrashed, Matched: 1, Failed: 1}}, Bad, 1},
		{"no boot is skipped", []Run{{Code: exitcode.KernelCrashed}}, Skip, 1},
		{"build failure is skipped", []Run{{Code: exitcode.BuildFailed}}, Skip, 1},
		{"patch failure is skipped", []Run{{Code: exitcode.PatchFailed}}, Skip, 1},
		{"config failure is skipped", []Run{{Code: exitcode.ConfigFailed}}, Skip, 1},
		{"test not found is skipped", []Run{{Code: exitcode.OK, Passed: 5}}, Skip, 1},
		{"infrastructure stops", []Run{pass, {Code: exitcode.Infra}}, Stop, 0},
		{"infrastructure stops even after a failure", []Run{fail, {Code: exitcode.Infra}}, Stop, 0},
		{"a pass beats a failed boot", []Run{{Code: exitcode.KernelCrashed}, pass}, Good, 1},
		{"a failure beats a failed boot", []Run{{Code: exitcode.KernelCrashed}, fail}, Bad, 1},
		{"flaky only is good", []Run{flaky}, Good, 1},
		{"flaky and passing runs are good", []Run{pass, flaky, pass}, Good, 3},
		{"a failure beats flaky runs", []Run{flaky, fail}, Bad, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Decide(c.runs)
			assert.Equal(t, c.want, v.Decision, v.Why)
			assert.Equal(t, c.agreed, v.Agreed)
			assert.Equal(t, len(c.runs), v.Runs)
			assert.Equal(t, c.want.String(), v.Name)
		})
	}
}

// The reason says when runs had the test flaky, and only then.
func TestDecideSaysFlaky(t *testing.T) {
	pass := Run{Code: exitcode.OK, Matched: 1, Passed: 1}
	flaky := Run{Code: exitcode.OK, Matched: 1, Passed: 1, Flaky: 1}
	assert.Equal(t, "the test passed in 1 of 1 run(s), flaky (failed, then passed on a retry) in 1", Decide([]Run{flaky}).Why)
	assert.Equal(t, "the test passed in 3 of 3 run(s), flaky (failed, then passed on a retry) in 2", Decide([]Run{flaky, pass, flaky}).Why)
	assert.Equal(t, "the test passed in 2 of 2 run(s)", Decide([]Run{pass, pass}).Why)
}

func TestExitCodes(t *testing.T) {
	assert.Equal(t, 0, Good.ExitCode())
	assert.Equal(t, 1, Bad.ExitCode())
	assert.Equal(t, 125, Skip.ExitCode())
	assert.Equal(t, 128, Stop.ExitCode())
}

func TestNext(t *testing.T) {
	n, ok := Next(0, 5, nil)
	assert.True(t, ok)
	assert.Equal(t, 2, n)
	n, ok = Next(2, 5, map[int]bool{3: true})
	assert.True(t, ok)
	assert.Equal(t, 4, n)
	_, ok = Next(2, 5, map[int]bool{3: true, 4: true})
	assert.False(t, ok)
	_, ok = Next(3, 4, nil)
	assert.False(t, ok)
	n, ok = Next(0, 8, map[int]bool{4: true})
	assert.True(t, ok)
	assert.Equal(t, 3, n)
}
