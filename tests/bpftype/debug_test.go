package bpftype

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// skipUnlessDebugFlag skips t unless the kernel accepts the prog flag
// BPF_F_LANDLOCK_DEBUG: as the test runs as root, with CAP_SYS_ADMIN,
// EINVAL can only mean that the kernel does not know the flag.
func skipUnlessDebugFlag(t *testing.T) {
	t.Helper()
	p, err := load(landlockbpf.Allow, landlockbpf.AttachLandlockFS, landlockbpf.ProgFlagDebug)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("debug flag not in this kernel: loading a Landlock program with BPF_F_LANDLOCK_DEBUG (%#x) as root gives EINVAL", landlockbpf.ProgFlagDebug)
	}
	require.NoError(t, err, "loading a Landlock program with BPF_F_LANDLOCK_DEBUG as root")
	p.Close()
}

// TestDebugFlag checks what BPF_F_LANDLOCK_DEBUG unlocks, and only that.
func TestDebugFlag(t *testing.T) {
	skipUnlessSupported(t)
	skipUnlessDebugFlag(t)
	fs := uint32(landlockbpf.AttachLandlockFS)
	debug := uint32(landlockbpf.ProgFlagDebug)

	for _, h := range []struct {
		name    string
		tracing bool // the helper exists only in kernels with BPF tracing
		insns   asm.Instructions
	}{
		{"bpf_trace_printk", true, call(asm.FnTracePrintk, printkArgs...)},
		{"bpf_get_current_pid_tgid", false, call(asm.FnGetCurrentPidTgid)},
		{"bpf_get_current_uid_gid", false, call(asm.FnGetCurrentUidGid)},
		{"bpf_get_current_comm", false, call(asm.FnGetCurrentComm, commArgs...)},
	} {
		t.Run(h.name, func(t *testing.T) {
			_, err := load(h.insns, fs, 0)
			assert.ErrorIs(t, err, unix.EINVAL, "%s without the debug flag", h.name)

			// A kernel without BPF tracing (CONFIG_BPF_EVENTS) has no
			// bpf_trace_printk for any program type; as root, a
			// socket filter may call it when the kernel has it.
			if h.tracing {
				if err := features.HaveProgramHelper(ebpf.SocketFilter, asm.FnTracePrintk); err != nil {
					t.Skipf("the kernel offers %s to no program type (no BPF tracing: %v): nothing for the debug flag to unlock", h.name, err)
				}
			}
			p, err := load(h.insns, fs, debug)
			require.NoError(t, err, "%s with the debug flag", h.name)
			p.Close()
		})
	}

	t.Run("other_helpers_stay_refused", func(t *testing.T) {
		_, err := load(call(asm.FnKtimeGetNs), fs, debug)
		assert.ErrorIs(t, err, unix.EINVAL, "bpf_ktime_get_ns with the debug flag")
		_, err = load(call(asm.FnGetPrandomU32), fs, debug)
		assert.ErrorIs(t, err, unix.EINVAL, "bpf_get_prandom_u32 with the debug flag")
	})

	t.Run("landlock_programs_only", func(t *testing.T) {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "debug_sockfilter",
			Type:         ebpf.SocketFilter,
			Flags:        debug,
			Instructions: ret0,
			License:      "GPL",
		})
		if err == nil {
			p.Close()
		}
		assert.ErrorIs(t, err, unix.EINVAL, "a socket filter with BPF_F_LANDLOCK_DEBUG")
	})

	t.Run("unknown_flag_beside_it", func(t *testing.T) {
		_, err := load(landlockbpf.Allow, fs, debug|1<<15)
		assert.ErrorIs(t, err, unix.EINVAL, "BPF_F_LANDLOCK_DEBUG with the unknown flag 1<<15")
	})

	t.Run("still_needs_the_attach_type", func(t *testing.T) {
		_, err := load(landlockbpf.Allow, 0, debug)
		assert.ErrorIs(t, err, unix.EINVAL, "the debug flag with expected_attach_type 0")
	})
}
