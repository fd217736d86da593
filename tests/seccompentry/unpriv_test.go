package seccompentry

// Version 4, unprivileged mode: the scenarios of the seccomp table and of
// the domain's semantics again, as nobody with no_new_privs and no
// capability (landlockbpf.RunUnprivileged: each scenario loads its own
// programs after the drop, with kernel.unprivileged_bpf_disabled 0); the
// append without no_new_privs; the sysctl at 2 and at 1; the debug flag.

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestUnprivilegedScenarios runs the scenarios of TestSeccompTable,
// TestRuleLimit, TestDeniedOpenOnlyInTheThreadThatAppended,
// TestRulesAreInherited, TestAppendChangesNeitherParentNorSiblings,
// TestEveryRuleRuns and TestReturnValueAll64Bits (JIT on and off) as an
// unprivileged task: from version 4 on, each must end as it does as root.
// The helper processes some of them start are children of the
// unprivileged task: nobody, with no_new_privs.
func TestUnprivilegedScenarios(t *testing.T) {
	skipUnlessSupported(t)
	landlockbpf.SkipUnlessUnprivileged(t)
	for _, sc := range []struct {
		name     string
		scenario func(t *testing.T)
	}{
		{"seccomp_table", seccompTableScenario(true)},
		{"rule_limit", ruleLimitScenario},
		{"denied_open_only_in_the_thread_that_appended", deniedOpenOnlyInTheThreadScenario},
		{"rules_are_inherited", rulesAreInheritedScenario},
		{"append_changes_neither_parent_nor_siblings", appendChangesNeitherParentNorSiblingsScenario},
		{"every_rule_runs", everyRuleRunsScenario},
	} {
		t.Run(sc.name, func(t *testing.T) { landlockbpf.RunUnprivileged(t, sc.scenario) })
	}
	t.Run("return_value_all_64_bits", func(t *testing.T) {
		for _, jit := range landlockbpf.JITModes {
			t.Run(jit.Name, func(t *testing.T) {
				// Set as root, before the child starts; the child
				// finds the value set and changes nothing.
				landlockbpf.SetJIT(t, jit.Value)
				landlockbpf.RunUnprivileged(t, returnValueScenario(jit.JITed))
			})
		}
	})
}

// TestSeccompTableWithoutNoNewPrivs: nobody without no_new_privs may load a
// rule (version 4, kernel.unprivileged_bpf_disabled 0) but not append it:
// the table's calls with flags other than 0 give EINVAL and the NULL probe
// EFAULT, as for anyone (both are answered before the privilege test);
// every call with flags 0 and an fd, valid rule or not, gives EPERM, and
// so do the 64 appends after the table.
func TestSeccompTableWithoutNoNewPrivs(t *testing.T) {
	skipUnlessSupported(t)
	landlockbpf.SkipUnlessUnprivileged(t)
	landlockbpf.AllowUnprivilegedBPF(t)
	privdrop.Run(t, privdrop.Nobody(), func(t *testing.T) {
		st, err := privdrop.Current()
		require.NoError(t, err)
		require.False(t, st.NoNewPrivs, "no_new_privs")
		require.Zero(t, st.CapEff, "CapEff")
		seccompTableScenario(false)(t)
	})
}

// unprivBPFCase is one bpf(2) call an unprivileged task makes, with what it
// gives when unprivileged bpf is allowed (sysctl 0); with the sysctl at 1
// or 2 every one of them is EPERM.
type unprivBPFCase struct {
	name string
	call func() error
}

// unprivBPFCases are the calls the Landlock eBPF rules need: loading a
// Landlock program, creating a map of file system paths and an array map;
// and, for comparison, loading a socket filter, which unprivileged bpf(2)
// has always allowed. Each closes what it made.
var unprivBPFCases = []unprivBPFCase{
	{"load_landlock_program", func() error { return closeFD(landlockbpf.ProgLoad(landlockbpf.Allow, landlockbpf.AttachLandlockFS, 0)) }},
	{"create_landlock_fs_map", func() error { return closeFD(landlockbpf.MapCreate(landlockbpf.FSMapAttr(8))) }},
	{"create_array_map", func() error {
		return closeFD(landlockbpf.MapCreate(landlockbpf.MapCreateAttr{MapType: uint32(ebpf.Array), KeySize: 4, ValueSize: 8, MaxEntries: 1}))
	}},
	{"load_socket_filter", func() error {
		p, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
			Type: ebpf.SocketFilter, Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, License: "GPL",
		}, ebpf.ProgramOptions{LogDisabled: true})
		if err == nil {
			p.Close()
		}
		return err
	}},
}

// closeFD closes fd when err is nil, and returns err.
func closeFD(fd int, err error) error {
	if err == nil {
		unix.Close(fd)
	}
	return err
}

// checkUnprivBPFRefused runs every unprivBPFCase as root (each succeeds:
// CAP_BPF passes the sysctl) and as nobody, with and without no_new_privs
// (each is EPERM), with the sysctl at value.
func checkUnprivBPFRefused(t *testing.T, value string) {
	t.Helper()
	got, err := landlockbpf.ReadSysctl(landlockbpf.UnprivBPFSysctl)
	require.NoError(t, err)
	require.Equal(t, value, got, "kernel.unprivileged_bpf_disabled")
	if !privdrop.InChild() {
		for _, c := range unprivBPFCases {
			assert.NoError(t, c.call(), "%s as root with kernel.unprivileged_bpf_disabled = %s", c.name, value)
		}
	}
	for _, p := range []struct {
		name  string
		privs privdrop.Privs
	}{
		{"nobody", privdrop.Nobody()},
		{"nobody_no_new_privs", privdrop.Nobody().WithNoNewPrivs()},
	} {
		t.Run(p.name, func(t *testing.T) {
			privdrop.Run(t, p.privs, func(t *testing.T) {
				for _, c := range unprivBPFCases {
					assert.ErrorIs(t, c.call(), unix.EPERM, "%s as %s with kernel.unprivileged_bpf_disabled = %s", c.name, p.privs, value)
				}
			})
		})
	}
}

// TestUnprivBPFDisabledTwo: with kernel.unprivileged_bpf_disabled = 2, set
// here and restored after, bpf(2) refuses a caller without CAP_BPF
// (EPERM) the Landlock program, the map of file system paths and the
// array map that version 4 otherwise lets it have, and its socket filter.
// It skips when the value is 1, which cannot be left in this boot.
func TestUnprivBPFDisabledTwo(t *testing.T) {
	skipUnlessSupported(t)
	landlockbpf.SkipUnlessUnprivileged(t)
	landlockbpf.DisableUnprivilegedBPF(t)
	checkUnprivBPFRefused(t, "2")
}

// unprivBPFOneSkip is why TestUnprivBPFDisabledOne skips in a boot that did
// not set the sysctl to 1 on the kernel command line.
const unprivBPFOneSkip = "kernel.unprivileged_bpf_disabled is not 1, and writing 1 cannot be undone in this boot: " +
	"an e2e boot with sysctl.kernel.unprivileged_bpf_disabled=1 on the kernel command line runs this test"

// TestUnprivBPFDisabledOne: with kernel.unprivileged_bpf_disabled = 1, as
// an e2e boot sets it on the kernel command line, nobody gets EPERM for
// the Landlock program and the maps (and root still gets them). The test
// never writes the sysctl: it skips unless the value already is 1.
func TestUnprivBPFDisabledOne(t *testing.T) {
	skipUnlessSupported(t)
	landlockbpf.SkipUnlessUnprivileged(t)
	v, err := landlockbpf.ReadSysctl(landlockbpf.UnprivBPFSysctl)
	require.NoError(t, err)
	if v != "1" {
		t.Skipf("%s (it is %s)", unprivBPFOneSkip, v)
	}
	checkUnprivBPFRefused(t, "1")
}

// TestDebugFlagUnprivileged: from version 4 on, nobody (with no_new_privs
// or without) loads a Landlock program when unprivileged bpf is allowed,
// but not with BPF_F_LANDLOCK_DEBUG, which still needs CAP_SYS_ADMIN:
// EPERM, answered before the program is looked at.
func TestDebugFlagUnprivileged(t *testing.T) {
	skipUnlessSupported(t)
	landlockbpf.SkipUnlessUnprivileged(t)
	// As root, with CAP_SYS_ADMIN, EINVAL can only mean that the kernel
	// does not know the flag.
	fd, err := landlockbpf.ProgLoad(landlockbpf.Allow, landlockbpf.AttachLandlockFS, landlockbpf.ProgFlagDebug)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("debug flag not in this kernel: loading a Landlock program with BPF_F_LANDLOCK_DEBUG (%#x) as root gives EINVAL", landlockbpf.ProgFlagDebug)
	}
	require.NoError(t, closeFD(fd, err), "loading a Landlock program with BPF_F_LANDLOCK_DEBUG as root")
	landlockbpf.AllowUnprivilegedBPF(t)
	for _, p := range []struct {
		name  string
		privs privdrop.Privs
	}{
		{"nobody", privdrop.Nobody()},
		{"nobody_no_new_privs", privdrop.Nobody().WithNoNewPrivs()},
	} {
		t.Run(p.name, func(t *testing.T) {
			privdrop.Run(t, p.privs, func(t *testing.T) {
				assert.NoError(t, closeFD(landlockbpf.ProgLoad(landlockbpf.Allow, landlockbpf.AttachLandlockFS, 0)),
					"loading a Landlock program without the flag as %s", p.privs)
				assert.ErrorIs(t, closeFD(landlockbpf.ProgLoad(landlockbpf.Allow, landlockbpf.AttachLandlockFS, landlockbpf.ProgFlagDebug)), unix.EPERM,
					"loading with BPF_F_LANDLOCK_DEBUG as %s", p.privs)
				// The flag's test comes before the attach type's.
				assert.ErrorIs(t, closeFD(landlockbpf.ProgLoad(landlockbpf.Allow, 0, landlockbpf.ProgFlagDebug)), unix.EPERM,
					"loading with BPF_F_LANDLOCK_DEBUG and expected_attach_type 0 as %s", p.privs)
			})
		})
	}
}
