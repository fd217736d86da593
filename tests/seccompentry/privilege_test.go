package seccompentry

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestAppendPrivilege: appending a rule needs CAP_SYS_ADMIN in ABI
// versions 1 to 3 (EPERM without it, no_new_privs set or not); from
// version 4 on, no_new_privs is enough. The ABI version query needs no
// privilege.
//
// The rule is loaded before the privileges are dropped (code before
// privdrop.Run runs in the child with every privilege) and the child
// inherits its fd: the EPERM can only come from seccomp(2), not from
// bpf(2), which without CAP_BPF would refuse to load it.
func TestAppendPrivilege(t *testing.T) {
	skipUnlessSupported(t)
	version, err := landlockbpf.KernelABIVersion()
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		privs    privdrop.Privs
		sysAdmin bool
	}{
		{"nobody", privdrop.Nobody(), false},
		{"nobody_no_new_privs", privdrop.Nobody().WithNoNewPrivs(), false},
		{"root_without_cap_sys_admin", privdrop.RootWithout(unix.CAP_SYS_ADMIN), false},
		{"root_without_cap_sys_admin_no_new_privs", privdrop.RootWithout(unix.CAP_SYS_ADMIN).WithNoNewPrivs(), false},
		{"root_no_new_privs", keepRoot.WithNoNewPrivs(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Deny denies everything: whether it joined the domain
			// shows at the first file system action.
			rule := loadRule(t, landlockbpf.Deny)
			allowed := tc.sysAdmin || (version >= 4 && tc.privs.NoNewPrivs)
			privdrop.Run(t, tc.privs, func(t *testing.T) {
				st, err := privdrop.Current()
				require.NoError(t, err)
				require.Equal(t, tc.sysAdmin, st.HasEffective(unix.CAP_SYS_ADMIN), "CAP_SYS_ADMIN in CapEff %016x", st.CapEff)
				require.Equal(t, tc.privs.NoNewPrivs, st.NoNewPrivs, "no_new_privs")
				_, err = unix.FcntlInt(uintptr(rule.FD()), unix.F_GETFD, 0)
				require.NoError(t, err, "the rule's fd, inherited from before the drop, is open")

				v, err := landlockbpf.KernelABIVersion()
				require.NoError(t, err, "the ABI version query needs no privilege")
				assert.Equal(t, version, v, "ABI version without privilege")

				var appendErr, openErr error
				landlockbpf.OnLockedThread(func() {
					appendErr = landlockbpf.Append(rule)
					openErr = openClose("/")
				})
				if allowed {
					assert.NoError(t, appendErr, "appending (ABI version %d, %s)", version, tc.privs)
					assert.ErrorIs(t, openErr, unix.EPERM, "open after appending a rule that denies everything")
					return
				}
				assert.ErrorIs(t, appendErr, unix.EPERM, "appending without CAP_SYS_ADMIN (ABI version %d, %s)", version, tc.privs)
				assert.NoError(t, openErr, "open after the refused append: the rule must not have joined the domain")
			})
		})
	}
}

// TestDebugFlagPrivilege: loading a program with BPF_F_LANDLOCK_DEBUG needs
// CAP_SYS_ADMIN (EPERM without it), no_new_privs set or not.
func TestDebugFlagPrivilege(t *testing.T) {
	skipUnlessSupported(t)
	// As root, with CAP_SYS_ADMIN, EINVAL can only mean that the kernel
	// does not know the flag.
	p, err := landlockbpf.LoadWith(landlockbpf.Allow, landlockbpf.AttachLandlockFS, landlockbpf.ProgFlagDebug)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("debug flag not in this kernel: loading a Landlock program with BPF_F_LANDLOCK_DEBUG (%#x) as root gives EINVAL", landlockbpf.ProgFlagDebug)
	}
	require.NoError(t, err, "loading a Landlock program with BPF_F_LANDLOCK_DEBUG as root")
	p.Close()

	// Root without CAP_SYS_ADMIN keeps CAP_BPF, so that the program
	// itself can be loaded and the EPERM is the flag's.
	for _, tc := range []struct {
		name  string
		privs privdrop.Privs
	}{
		{"root_without_cap_sys_admin", privdrop.RootWithout(unix.CAP_SYS_ADMIN)},
		{"root_without_cap_sys_admin_no_new_privs", privdrop.RootWithout(unix.CAP_SYS_ADMIN).WithNoNewPrivs()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privdrop.Run(t, tc.privs, func(t *testing.T) {
				p, err := landlockbpf.Load(landlockbpf.Allow)
				if errors.Is(err, unix.EPERM) {
					t.Skipf("without CAP_SYS_ADMIN this kernel loads no Landlock program at all (%v): the debug flag's own EPERM cannot be told apart", err)
				}
				require.NoError(t, err, "loading a Landlock program without the flag, with CAP_BPF")
				p.Close()

				_, err = landlockbpf.LoadWith(landlockbpf.Allow, landlockbpf.AttachLandlockFS, landlockbpf.ProgFlagDebug)
				assert.ErrorIs(t, err, unix.EPERM, "loading with BPF_F_LANDLOCK_DEBUG without CAP_SYS_ADMIN")
			})
		})
	}
}
