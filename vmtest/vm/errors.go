package vm

import "fmt"

// The VM boundary's two kinds of failure, told apart by type (as
// syzkaller's vm package does), never by what the console said:
//
//   - *InfraError: the host's or the harness's fault. QEMU could not be
//     assembled or started, it exited with an error of its own (a guest
//     that reboots or panics makes it exit 0 under -no-reboot), or the
//     result channel broke.
//   - *BootError: QEMU ran, but the kernel never got as far as starting
//     the guest runner.
//
// What the guest did once it was up (tests, splats, a hang) is in the
// Outcome, for the verdict.

// InfraError is a failure of the host or the harness to run the VM.
type InfraError struct {
	// Op is what failed ("starting QEMU", "reading results").
	Op  string
	Err error
}

func (e *InfraError) Error() string { return fmt.Sprintf("infrastructure: %s: %v", e.Op, e.Err) }
func (e *InfraError) Unwrap() error { return e.Err }

// BootError is a kernel that did not boot to the guest runner.
type BootError struct {
	// Why says what the watchdog or the console saw, if anything.
	Why string
}

func (e *BootError) Error() string { return "boot failed: " + e.Why }
