package boot

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

func splat(kind console.Kind, test string, fatal bool) console.Splat {
	return console.Splat{Kind: kind, Test: test, Title: string(kind) + " title", Fatal: fatal, Fails: true}
}

func TestVerdict(t *testing.T) {
	passed := results.Report{Passed: 3, Complete: true}
	failed := results.Report{Passed: 2, Failed: 1, TestsFailed: true, Complete: true}
	crashed := results.Report{Passed: 1, Failed: 1, BinaryCrashed: true, Complete: true,
		Packages: []results.Package{{Name: "p", Crashed: true, Reason: "binary killed by signal killed"}}}
	booted := Seen{Done: true, Hello: true}

	cases := []struct {
		name   string
		g      Seen
		r      results.Report
		want   exitcode.Code
		reason string
	}{
		{"all passed", booted, passed, exitcode.OK, "all tests passed"},
		{"a test failed", booted, failed, exitcode.TestsFailed, "1 test(s) failed"},
		{"a binary crashed", booted, crashed, exitcode.TestCrashed, "p (binary killed by signal killed)"},
		{"crash beats failure", booted, results.Report{Failed: 2, TestsFailed: true, BinaryCrashed: true}, exitcode.TestCrashed, "crashed"},
		{"splat with every test passed", Seen{Done: true, Hello: true, Splats: []console.Splat{splat(console.KindWarning, "p TestW", false)}}, passed, exitcode.KernelCrashed, "during p TestW"},
		{"splat beats a failure", Seen{Done: true, Hello: true, Splats: []console.Splat{splat(console.KindBug, "", false)}}, failed, exitcode.KernelCrashed, "kernel splat"},
		{"panic", Seen{Hello: true, Panicked: true, Splats: []console.Splat{splat(console.KindPanic, "p TestP", true)}}, crashed, exitcode.KernelCrashed, "kernel panic"},
		{"hang", Seen{Hello: true, Hang: "the guest printed nothing for 3m0s"}, passed, exitcode.KernelCrashed, "guest hung"},
		{"no hello", Seen{}, results.Report{}, exitcode.KernelCrashed, "boot failed"},
		{"died without done", Seen{Hello: true, Splats: []console.Splat{splat(console.KindSoftLockup, "p", false)}}, crashed, exitcode.KernelCrashed, "no done marker"},
		{"non-failing splat ignored", Seen{Done: true, Hello: true, Splats: []console.Splat{{Kind: console.KindLockdepLimit}}}, passed, exitcode.OK, "all tests passed"},
		{"runner error", booted, results.Report{Passed: 1, Errors: []string{"reading test manifest"}}, exitcode.Infra, "guest runner error"},
		{"nothing ran", booted, results.Report{Complete: true}, exitcode.Infra, "no test ran"},
		{"flaky tests passed", booted, results.Report{Passed: 3, Flaky: 1, Complete: true}, exitcode.OK, "all tests passed, 1 of them flaky (failed, then passed on a retry)"},
		{"a command ended: its status is the caller's", Seen{Done: true, Hello: true, Command: true}, crashed, exitcode.OK, "the command ended"},
		{"a command that ran nothing", Seen{Done: true, Hello: true, Command: true}, results.Report{Complete: true, Errors: []string{"starting command"}}, exitcode.OK, "the command ended"},
		{"a command's splat", Seen{Done: true, Hello: true, Command: true, Splats: []console.Splat{splat(console.KindWarning, "exec", false)}}, passed, exitcode.KernelCrashed, "kernel splat"},
		{"a command's guest hung", Seen{Hello: true, Command: true, Hang: "x"}, passed, exitcode.KernelCrashed, "guest hung"},
		{"a failure beats flaky tests", booted, results.Report{Passed: 3, Flaky: 1, Failed: 1, TestsFailed: true, Complete: true}, exitcode.TestsFailed, "1 test(s) failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, why := Verdict(tc.g, tc.r)
			if tc.want == exitcode.OK && tc.r.Flaky == 0 && !tc.g.Command {
				assert.Equal(t, "all tests passed", why, "without flaky tests the reason is as it was")
			}
			assert.Equal(t, tc.want, code, why)
			assert.Contains(t, why, tc.reason)
		})
	}
}
