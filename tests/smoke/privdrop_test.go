package smoke

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
)

// sethostnameProbe needs CAP_SYS_ADMIN and, when allowed, changes nothing:
// it sets the hostname the guest already has.
func sethostnameProbe() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	return unix.Sethostname([]byte(unix.ByteSliceToString(u.Nodename[:])))
}

// mountProbe needs CAP_SYS_ADMIN and never mounts anything: without the
// capability it fails with EPERM, with it with ENODEV, as the filesystem
// type does not exist.
func mountProbe() error {
	return unix.Mount("none", "/", "landlock-vmtest-nosuchfs", 0, "")
}

func TestPrivilegeDropHelper(t *testing.T) {
	inGuest(t)
	for _, tc := range []struct {
		name  string
		privs privdrop.Privs
		uid   int
		nnp   bool
	}{
		{"nobody", privdrop.Nobody(), privdrop.NobodyID, false},
		{"nobody_no_new_privs", privdrop.Nobody().WithNoNewPrivs(), privdrop.NobodyID, true},
		{"root_without_sys_admin", privdrop.RootWithout(unix.CAP_SYS_ADMIN), 0, false},
		{"root_without_sys_admin_no_new_privs", privdrop.RootWithout(unix.CAP_SYS_ADMIN).WithNoNewPrivs(), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privdrop.Run(t, tc.privs, func(t *testing.T) {
				st, err := privdrop.Current()
				require.NoError(t, err)
				assert.Equal(t, [4]int{tc.uid, tc.uid, tc.uid, tc.uid}, st.UID, "uids")
				assert.Equal(t, tc.uid, unix.Geteuid(), "geteuid")
				assert.False(t, st.HasEffective(unix.CAP_SYS_ADMIN), "CapEff %016x has CAP_SYS_ADMIN", st.CapEff)
				assert.False(t, st.HasBounding(unix.CAP_SYS_ADMIN), "CapBnd %016x has CAP_SYS_ADMIN", st.CapBnd)
				assert.Equal(t, tc.nnp, st.NoNewPrivs, "NoNewPrivs in /proc/self/status")
				nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
				require.NoError(t, err, "prctl(PR_GET_NO_NEW_PRIVS)")
				assert.Equal(t, tc.nnp, nnp == 1, "no_new_privs of this thread")
				if tc.uid == 0 {
					assert.True(t, st.HasEffective(unix.CAP_SETUID), "root lost more than CAP_SYS_ADMIN: CapEff %016x", st.CapEff)
				} else {
					assert.Zero(t, st.CapEff|st.CapPrm|st.CapBnd, "nobody has capabilities")
				}

				assert.ErrorIs(t, sethostnameProbe(), unix.EPERM, "sethostname without CAP_SYS_ADMIN")
				assert.ErrorIs(t, mountProbe(), unix.EPERM, "mount without CAP_SYS_ADMIN")
			})
		})
	}

	t.Run("failing_child_is_reported", func(t *testing.T) {
		res := privdrop.Spawn(t, privdrop.Nobody(), func(t *testing.T) {
			t.Error("intentional failure of the scenario")
		})
		if res == nil {
			return // in the child
		}
		assert.Equal(t, privdrop.Failed, res.Outcome, "a failing scenario must be reported as failed:\n%s", res.Output)
		assert.Error(t, res.Err)
		t.Logf("the failing child was reported as %s: %v", res.Outcome, res.Err)
		assert.Contains(t, res.Output, "intentional failure of the scenario")
	})

	if privdrop.InChild() {
		return // the rest checks the parent, not the children
	}
	st, err := privdrop.Current()
	require.NoError(t, err)
	assert.Equal(t, [4]int{0, 0, 0, 0}, st.UID, "the parent's uids changed")
	assert.True(t, st.HasEffective(unix.CAP_SYS_ADMIN), "the parent lost CAP_SYS_ADMIN: CapEff %016x", st.CapEff)
	assert.True(t, st.HasBounding(unix.CAP_SYS_ADMIN), "the parent lost CAP_SYS_ADMIN from its bounding set: CapBnd %016x", st.CapBnd)
	assert.False(t, st.NoNewPrivs, "the parent has no_new_privs")
	assert.NoError(t, sethostnameProbe(), "sethostname in the parent")
	assert.ErrorIs(t, mountProbe(), unix.ENODEV, "mount probe in the parent")
}
