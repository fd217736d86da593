package pipeline

import (
	"errors"
	"fmt"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

// Code is the harness's exit code. Each kind of failure has its own, so
// that CI and bisection scripts can tell them apart.
type Code int

// The exit codes, as the README lists them.
const (
	OK            Code = 0  // every test passed, no splat
	TestsFailed   Code = 1  // a test failed (or a test package did not compile)
	TestCrashed   Code = 2  // a test binary crashed, was killed or timed out
	PatchFailed   Code = 3  // a patch of the series did not apply
	ConfigFailed  Code = 4  // config fragments conflict or a symbol did not stick
	BuildFailed   Code = 5  // the kernel did not build
	KernelCrashed Code = 6  // boot failed, or the kernel panicked, splatted or hung
	Infra         Code = 7  // the harness or the host failed (tools, QEMU, I/O)
	Warnings      Code = 8  // series-check: a patch adds compiler warnings or checkpatch errors/warnings
	Usage         Code = 64 // bad arguments
)

func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case TestsFailed:
		return "tests failed"
	case TestCrashed:
		return "test binary crashed"
	case PatchFailed:
		return "patch did not apply"
	case ConfigFailed:
		return "kernel config failed"
	case BuildFailed:
		return "kernel build failed"
	case KernelCrashed:
		return "boot failed or kernel crashed"
	case Infra:
		return "infrastructure failure"
	case Warnings:
		return "patch adds warnings"
	case Usage:
		return "usage error"
	}
	return fmt.Sprintf("exit code %d", int(c))
}

// StageError is a failure of one stage with the code it maps to.
type StageError struct {
	Stage string
	Code  Code
	Err   error
}

func (e *StageError) Error() string { return fmt.Sprintf("%s: %v", e.Stage, e.Err) }
func (e *StageError) Unwrap() error { return e.Err }

// Classify maps an error of a stage to an exit code by its type.
func Classify(stage string, err error) Code {
	var (
		se *StageError
		ae *series.ApplyError
		ce *kconfig.ConflictError
		me *kconfig.MissingError
		ke *build.ConfigError
		be *build.Error
	)
	switch {
	case errors.As(err, &se):
		return se.Code
	case errors.As(err, &ae):
		return PatchFailed
	case errors.As(err, &ce), errors.As(err, &me), errors.As(err, &ke):
		return ConfigFailed
	case errors.As(err, &be):
		return BuildFailed
	}
	return Infra
}

// Guest is what the VM run left for the verdict.
type Guest struct {
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
}

// Verdict decides the exit code of a run that booted, from what the guest
// did and the test report. Kernel trouble comes first (a splat fails the
// run even when every test passed), then crashed binaries, then failed
// tests.
func Verdict(g Guest, r results.Report) (Code, string) {
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
		return KernelCrashed, "kernel panic: " + strings.Join(failing, "; ")
	case g.Hang != "":
		why := "guest hung: " + g.Hang
		if len(failing) > 0 {
			why += "; " + strings.Join(failing, "; ")
		}
		return KernelCrashed, why
	case !g.Hello:
		return KernelCrashed, "boot failed: the guest runner never started"
	case !g.Done:
		why := "the guest died before the runner finished (no done marker)"
		if len(failing) > 0 {
			why += "; " + strings.Join(failing, "; ")
		}
		return KernelCrashed, why
	case len(failing) > 0:
		return KernelCrashed, "kernel splat: " + strings.Join(failing, "; ")
	case r.BinaryCrashed:
		var names []string
		for _, p := range r.Packages {
			if p.Crashed {
				names = append(names, p.Name+" ("+p.Reason+")")
			}
		}
		return TestCrashed, "test binary crashed: " + strings.Join(names, ", ")
	case r.TestsFailed || r.Failed > 0:
		return TestsFailed, fmt.Sprintf("%d test(s) failed", r.Failed)
	case len(r.Errors) > 0:
		return Infra, "guest runner error: " + strings.Join(r.Errors, "; ")
	case r.Passed+r.Skipped == 0:
		return Infra, "no test ran"
	}
	return OK, "all tests passed"
}
