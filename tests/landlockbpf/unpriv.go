package landlockbpf

// Version 4's unprivileged mode: a helper that runs an existing scenario
// of a test as nobody with no_new_privs.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
)

// UnprivilegedABI is the first ABI version whose rules an unprivileged
// task may load and append.
const UnprivilegedABI = 4

// Unprivileged returns the privileges of version 4's unprivileged caller:
// uid and gid 65534, no capability at all (not even in the bounding set),
// and no_new_privs, which the append needs without CAP_SYS_ADMIN.
func Unprivileged() privdrop.Privs {
	return privdrop.Nobody().WithNoNewPrivs()
}

// SkipUnlessUnprivileged skips t unless the kernel has ABI version 4.
func SkipUnlessUnprivileged(t testing.TB) {
	t.Helper()
	if why := SkipUnlessSupported(UnprivilegedABI); why != "" {
		t.Skip(why)
	}
}

// RunUnprivileged runs scenario, a scenario of privdrop.Run, again as an
// unprivileged task (Unprivileged) in a child process, and reports as
// privdrop.Run does whether it returned in the parent. It skips t below
// ABI version 4, and sets kernel.unprivileged_bpf_disabled to 0 for the
// time of t (AllowUnprivilegedBPF: it skips when the value is 1).
//
// The programs of the scenario must be loaded, and its maps created, by
// the scenario itself, after the drop: a program loaded by the code
// before privdrop.Run (which the child runs with every privilege) would
// have passed the verifier's privileged mode. RunUnprivileged fails the
// child if it holds an fd of a BPF program when the scenario starts. It
// also checks that the child has no capability, is uid 65534 and has
// no_new_privs, and that the sysctl is 0.
func RunUnprivileged(t *testing.T, scenario func(t *testing.T)) bool {
	t.Helper()
	SkipUnlessUnprivileged(t)
	AllowUnprivilegedBPF(t)
	return privdrop.Run(t, Unprivileged(), func(t *testing.T) {
		t.Helper()
		RequireUnprivileged(t)
		progs, err := openBPFProgFDs()
		require.NoError(t, err, "listing the open fds")
		require.Empty(t, progs, "BPF programs open when the unprivileged scenario starts: loaded before the drop, by the verifier's privileged mode")
		scenario(t)
	})
}

// RequireUnprivileged fails t unless the calling process is uid 65534
// with no capability and no_new_privs, and kernel.unprivileged_bpf_disabled
// is 0.
func RequireUnprivileged(t *testing.T) {
	t.Helper()
	st, err := privdrop.Current()
	require.NoError(t, err)
	require.Equal(t, [4]int{privdrop.NobodyID, privdrop.NobodyID, privdrop.NobodyID, privdrop.NobodyID}, st.UID, "uids")
	require.Zero(t, st.CapEff|st.CapPrm|st.CapBnd|st.CapAmb|st.CapInh, "capabilities: CapEff %016x CapPrm %016x CapBnd %016x", st.CapEff, st.CapPrm, st.CapBnd)
	require.True(t, st.NoNewPrivs, "no_new_privs")
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	require.NoError(t, err, "prctl(PR_GET_NO_NEW_PRIVS)")
	require.Equal(t, 1, nnp, "no_new_privs of this thread")
	v, err := ReadSysctl(UnprivBPFSysctl)
	require.NoError(t, err)
	require.Equal(t, "0", v, "kernel.unprivileged_bpf_disabled")
}

// openBPFProgFDs lists the fds of this process that are BPF programs.
func openBPFProgFDs() ([]string, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var progs []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the fd of the directory listing, closed since
		}
		if strings.HasPrefix(target, "anon_inode:bpf-prog") {
			progs = append(progs, e.Name()+" -> "+target)
		}
	}
	return progs, nil
}
