// Package exitcode is the harness's exit codes, one per kind of failure,
// and the error that carries one out of a stage. Every command (run,
// series-check, bisect) exits with these; CI and bisection scripts read
// them.
package exitcode

import (
	"errors"
	"fmt"
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
	Warnings      Code = 8  // series-check: a patch adds compiler (W=1), sparse, kernel-doc or docutils warnings, or checkpatch errors/warnings (spelling too)
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

// Coded is an error that knows its exit code: the kernel packages' errors
// (a patch that did not apply, a config conflict, a failed build) are.
type Coded interface {
	error
	ExitCode() Code
}

// Of is the exit code of err, by type: a StageError's code, else the code
// of the first Coded error in its chain, else Infra.
func Of(err error) Code {
	var se *StageError
	if errors.As(err, &se) {
		return se.Code
	}
	var c Coded
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return Infra
}
