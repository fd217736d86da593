package bpftype

import (
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
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

// optionOffSkip is why TestDebugFlagWithoutTheOption skips on a kernel with
// Landlock eBPF rules.
const optionOffSkip = "the kernel has Landlock eBPF rules; this test is for a kernel built with CONFIG_SECURITY_LANDLOCK_BPF=n"

// skipUnlessOptionOff skips t unless the kernel is the patched one built
// without CONFIG_SECURITY_LANDLOCK_BPF: as root, loading an allow-all
// program of type BPF_PROG_TYPE_LANDLOCK gives EINVAL, and so does the
// seccomp(2) ABI version query.
func skipUnlessOptionOff(t *testing.T) {
	t.Helper()
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
	p, loadErr := landlockbpf.Load(landlockbpf.Allow)
	if loadErr == nil {
		p.Close()
	}
	_, seccompErr := landlockbpf.KernelABIVersion()
	if loadErr == nil || !errors.Is(seccompErr, unix.EINVAL) {
		t.Logf("loading an allow-all program of type %d as root: %v; seccomp(SECCOMP_APPEND_LANDLOCK_RULE, SECCOMP_LANDLOCK_ABI_VERSION, NULL): %v",
			landlockbpf.ProgTypeLandlock, loadErr, seccompErr)
		t.Skip(optionOffSkip)
	}
	require.ErrorIs(t, loadErr, unix.EINVAL, "loading an allow-all program of type %d as root, on a kernel without seccomp op %d",
		landlockbpf.ProgTypeLandlock, landlockbpf.SeccompAppendLandlockRule)
}

// TestDebugFlagWithoutTheOption: on a kernel built with
// CONFIG_SECURITY_LANDLOCK_BPF=n nothing may differ from the unpatched 6.12
// kernel, and there BPF_F_LANDLOCK_DEBUG (1<<8) is an unknown prog flag.
// bpf_prog_load checks the flags first of all, before any capability
// check, so the load fails with EINVAL for every program type and every
// caller, root or not.
//
// The loads that do not use the flag fail as the unpatched kernel makes
// them fail too: type 33 is unknown to it (EINVAL), but a caller without
// CAP_BPF is refused any program type but the socket filter and
// cgroup/skb ones (EPERM) before the type is looked up; and seccomp(2) has
// no operation 4 (EINVAL). That EPERM is the unpatched kernel's: with the
// option on, version 4 lets a caller without CAP_BPF load type 33
// (TestVerifierUnprivileged).
func TestDebugFlagWithoutTheOption(t *testing.T) {
	skipUnlessOptionOff(t)
	fs := uint32(landlockbpf.AttachLandlockFS)
	debug := uint32(landlockbpf.ProgFlagDebug)

	check := func(t *testing.T, privileged bool) {
		_, err := landlockbpf.LoadWith(landlockbpf.Allow, fs, debug)
		assert.ErrorIs(t, err, unix.EINVAL, "type %d with prog flag %#x (unknown to the unpatched kernel)", landlockbpf.ProgTypeLandlock, debug)

		_, err = landlockbpf.LoadWith(landlockbpf.Allow, 0, debug)
		assert.ErrorIs(t, err, unix.EINVAL, "type %d with prog flag %#x and expected_attach_type 0", landlockbpf.ProgTypeLandlock, debug)

		_, err = landlockbpf.LoadWith(landlockbpf.Allow, fs, debug|1<<9)
		assert.ErrorIs(t, err, unix.EINVAL, "type %d with prog flags %#x", landlockbpf.ProgTypeLandlock, debug|1<<9)

		p, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
			Name:         "debug_sockfilter",
			Type:         ebpf.SocketFilter,
			Flags:        debug,
			Instructions: ret0,
			License:      "GPL",
		}, ebpf.ProgramOptions{LogDisabled: true})
		if err == nil {
			p.Close()
		}
		assert.ErrorIs(t, err, unix.EINVAL, "a socket filter with prog flag %#x", debug)

		want := unix.EINVAL
		if !privileged {
			want = unix.EPERM
		}
		_, err = landlockbpf.Load(landlockbpf.Allow)
		assert.ErrorIs(t, err, want, "type %d without flags", landlockbpf.ProgTypeLandlock)

		_, err = landlockbpf.KernelABIVersion()
		assert.ErrorIs(t, err, unix.EINVAL, "seccomp(4, SECCOMP_LANDLOCK_ABI_VERSION, NULL)")
		_, err = landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, 0, nil)
		assert.ErrorIs(t, err, unix.EINVAL, "seccomp(4, 0, NULL)")
	}

	t.Run("root", func(t *testing.T) { check(t, true) })
	for _, tc := range []struct {
		name  string
		privs privdrop.Privs
	}{
		{"root_without_cap_sys_admin_and_cap_bpf", privdrop.RootWithout(unix.CAP_SYS_ADMIN, unix.CAP_BPF)},
		{"root_without_cap_sys_admin_and_cap_bpf_no_new_privs", privdrop.RootWithout(unix.CAP_SYS_ADMIN, unix.CAP_BPF).WithNoNewPrivs()},
		{"nobody", privdrop.Nobody()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privdrop.Run(t, tc.privs, func(t *testing.T) {
				st, err := privdrop.Current()
				require.NoError(t, err)
				require.False(t, st.HasEffective(unix.CAP_SYS_ADMIN), "CAP_SYS_ADMIN in CapEff %016x", st.CapEff)
				require.False(t, st.HasEffective(unix.CAP_BPF), "CAP_BPF in CapEff %016x", st.CapEff)
				check(t, false)
			})
		})
	}
}
