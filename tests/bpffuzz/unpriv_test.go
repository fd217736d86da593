package bpffuzz

import (
	"strconv"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestFuzzLoadAndSeccompUnprivileged is TestFuzzLoadAndSeccomp's run again
// as version 4's unprivileged task: nobody with no_new_privs and no
// capability, with kernel.unprivileged_bpf_disabled 0, in a child process
// (landlockbpf.RunUnprivileged) that loads its own fixtures and programs
// (the verifier's unprivileged mode) and whose children append real rules
// (no_new_privs allows it). The allowed errnos are the root run's:
// BPF_PROG_LOAD's set has EPERM ("privilege, or rejected by the
// verifier": unprivileged, bpf-to-bpf and kfunc calls are EPERM, back-edges
// EINVAL, pointer leaks and uninitialized stack reads EACCES), and with
// no_new_privs the seccomp(2) table is root's. What only an unprivileged
// caller gets is checked exactly: the debug flag is EPERM. The cgroup part
// does not run (it needs root; see fuzzAll).
//
// The time is the root run's (EnvSeconds), in two halves: the first with
// the JIT on, the second off, each set by this (root) process before its
// child starts, as an unprivileged task cannot switch it. The seed is
// logged and passed to the child through EnvSeed; the second half uses
// seed+16.
func TestFuzzLoadAndSeccompUnprivileged(t *testing.T) {
	if why := landlockbpf.SkipUnlessSupported(landlockbpf.UnprivilegedABI); why != "" {
		t.Skip(why)
	}
	seconds, seed := fuzzKnobs(t)
	if !privdrop.InChild() {
		// The child must draw what this process logs.
		t.Setenv(EnvSeed, strconv.FormatUint(seed, 10))
		t.Logf("fuzz: unprivileged run: seed=%d seconds=%d (replay with %s=%d)", seed, seconds, EnvSeed, seed)
	}
	landlockbpf.AllowUnprivilegedBPF(t)
	half := max(seconds/2, 1)
	for i, jit := range landlockbpf.JITModes {
		t.Run(jit.Name, func(t *testing.T) {
			landlockbpf.SetJIT(t, jit.Value)
			landlockbpf.RunUnprivileged(t, func(t *testing.T) {
				fuzzAll(t, fuzzMode{seed: seed + uint64(16*i), seconds: half, unprivileged: true})
			})
		})
	}
}
