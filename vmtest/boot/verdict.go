package boot

import (
	"fmt"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

// Seen is what the VM run left for the verdict.
type Seen struct {
	// Done is true when the runner's "done" marker arrived.
	Done bool
	// Hello is true when the runner said hello.
	Hello bool
	// Panicked is true when the kernel panicked.
	Panicked bool
	// Hang says why the watchdog ended the VM, if it did.
	Hang string
	// Splats are the console splats.
	Splats []console.Splat
	// Command is true for the guest of landlock-vmtest exec, which runs
	// one command and no test: once the kernel is cleared, its own exit
	// status is the caller's to give.
	Command bool
}

// Verdict decides the exit code of a run that booted, from what the guest
// did and the test report. Kernel trouble comes first (a splat fails the
// run even when every test passed), then crashed binaries, then failed
// tests; flaky tests (RETRY=) passed in the end, and the reason says so.
func Verdict(g Seen, r results.Report) (exitcode.Code, string) {
	var failing []string
	for _, s := range g.Splats {
		if s.Fails {
			where := ""
			if s.Test != "" {
				where = " during " + s.Test
			}
			failing = append(failing, fmt.Sprintf("%s%s: %s", s.Kind, where, s.Title))
		}
	}
	switch {
	case g.Panicked:
		return exitcode.KernelCrashed, "kernel panic: " + strings.Join(failing, "; ")
	case g.Hang != "":
		why := "guest hung: " + g.Hang
		if len(failing) > 0 {
			why += "; " + strings.Join(failing, "; ")
		}
		return exitcode.KernelCrashed, why
	case !g.Hello:
		return exitcode.KernelCrashed, "boot failed: the guest runner never started"
	case !g.Done:
		why := "the guest died before the runner finished (no done marker)"
		if len(failing) > 0 {
			why += "; " + strings.Join(failing, "; ")
		}
		return exitcode.KernelCrashed, why
	case len(failing) > 0:
		return exitcode.KernelCrashed, "kernel splat: " + strings.Join(failing, "; ")
	case g.Command:
		return exitcode.OK, "the command ended, the kernel well"
	case r.BinaryCrashed:
		var names []string
		for _, p := range r.Packages {
			if p.Crashed {
				names = append(names, p.Name+" ("+p.Reason+")")
			}
		}
		return exitcode.TestCrashed, "test binary crashed: " + strings.Join(names, ", ")
	case r.TestsFailed || r.Failed > 0:
		return exitcode.TestsFailed, fmt.Sprintf("%d test(s) failed", r.Failed)
	case len(r.Errors) > 0:
		return exitcode.Infra, "guest runner error: " + strings.Join(r.Errors, "; ")
	case r.Passed+r.Skipped == 0:
		return exitcode.Infra, "no test ran"
	case r.Flaky > 0:
		return exitcode.OK, fmt.Sprintf("all tests passed, %d of them flaky (failed, then passed on a retry)", r.Flaky)
	}
	return exitcode.OK, "all tests passed"
}
