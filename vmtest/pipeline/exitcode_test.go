package pipeline

import (
	"errors"
	"fmt"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

func TestCodesAreDistinct(t *testing.T) {
	seen := map[exitcode.Code]bool{}
	for _, c := range []exitcode.Code{exitcode.OK, exitcode.TestsFailed, exitcode.TestCrashed, exitcode.PatchFailed, exitcode.ConfigFailed, exitcode.BuildFailed, exitcode.KernelCrashed, exitcode.Infra, exitcode.Usage} {
		assert.False(t, seen[c], "code %d used twice", c)
		seen[c] = true
		assert.NotContains(t, c.String(), "exit code", "code %d has a name", c)
	}
}

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("stage: %w", err) }
	cases := []struct {
		err  error
		want exitcode.Code
	}{
		{wrap(&series.ApplyError{Index: 2}), exitcode.PatchFailed},
		{wrap(&kconfig.ConflictError{}), exitcode.ConfigFailed},
		{wrap(&kconfig.MissingError{}), exitcode.ConfigFailed},
		{wrap(&build.ConfigError{Err: errors.New("x")}), exitcode.ConfigFailed},
		{wrap(&build.Error{Err: errors.New("exit status 2")}), exitcode.BuildFailed},
		{&exitcode.StageError{Code: exitcode.TestsFailed, Err: errors.New("go test -c")}, exitcode.TestsFailed},
		{errors.New("disk full"), exitcode.Infra},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, Classify("x", tc.err), "%v", tc.err)
	}
}

func splat(kind console.Kind, test string, fatal bool) console.Splat {
	return console.Splat{Kind: kind, Test: test, Title: string(kind) + " title", Fatal: fatal, Fails: true}
}

func TestVerdict(t *testing.T) {
	passed := results.Report{Passed: 3, Complete: true}
	failed := results.Report{Passed: 2, Failed: 1, TestsFailed: true, Complete: true}
	crashed := results.Report{Passed: 1, Failed: 1, BinaryCrashed: true, Complete: true,
		Packages: []results.Package{{Name: "p", Crashed: true, Reason: "binary killed by signal killed"}}}
	booted := Guest{Done: true, Hello: true}

	cases := []struct {
		name   string
		g      Guest
		r      results.Report
		want   exitcode.Code
		reason string
	}{
		{"all passed", booted, passed, exitcode.OK, "all tests passed"},
		{"a test failed", booted, failed, exitcode.TestsFailed, "1 test(s) failed"},
		{"a binary crashed", booted, crashed, exitcode.TestCrashed, "p (binary killed by signal killed)"},
		{"crash beats failure", booted, results.Report{Failed: 2, TestsFailed: true, BinaryCrashed: true}, exitcode.TestCrashed, "crashed"},
		{"splat with every test passed", Guest{Done: true, Hello: true, Splats: []console.Splat{splat(console.KindWarning, "p TestW", false)}}, passed, exitcode.KernelCrashed, "during p TestW"},
		{"splat beats a failure", Guest{Done: true, Hello: true, Splats: []console.Splat{splat(console.KindBug, "", false)}}, failed, exitcode.KernelCrashed, "kernel splat"},
		{"panic", Guest{Hello: true, Panicked: true, Splats: []console.Splat{splat(console.KindPanic, "p TestP", true)}}, crashed, exitcode.KernelCrashed, "kernel panic"},
		{"hang", Guest{Hello: true, Hang: "the guest printed nothing for 3m0s"}, passed, exitcode.KernelCrashed, "guest hung"},
		{"no hello", Guest{}, results.Report{}, exitcode.KernelCrashed, "boot failed"},
		{"died without done", Guest{Hello: true, Splats: []console.Splat{splat(console.KindSoftLockup, "p", false)}}, crashed, exitcode.KernelCrashed, "no done marker"},
		{"non-failing splat ignored", Guest{Done: true, Hello: true, Splats: []console.Splat{{Kind: console.KindLockdepLimit}}}, passed, exitcode.OK, "all tests passed"},
		{"runner error", booted, results.Report{Passed: 1, Errors: []string{"reading test manifest"}}, exitcode.Infra, "guest runner error"},
		{"nothing ran", booted, results.Report{Complete: true}, exitcode.Infra, "no test ran"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, why := Verdict(tc.g, tc.r)
			assert.Equal(t, tc.want, code, why)
			assert.Contains(t, why, tc.reason)
		})
	}
}

func TestSplitLast(t *testing.T) {
	body, last := splitLast("a\nb\n\n1 passed, 0 failed, 0 skipped\n")
	assert.Equal(t, "a\nb\n\n", body)
	assert.Equal(t, "1 passed, 0 failed, 0 skipped", last)
}

func TestShellQuote(t *testing.T) {
	assert.Equal(t, "-append", shellQuote("-append"))
	assert.Equal(t, "'console=ttyS0 panic=-1'", shellQuote("console=ttyS0 panic=-1"))
	assert.Equal(t, `'it'\''s'`, shellQuote("it's"))
	assert.Equal(t, "''", shellQuote(""))
}
