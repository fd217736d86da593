package seccompentry

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
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

// inUserNS returns the process attributes that start a helper in a new
// user namespace, as uid 0 and gid 0 there (mapped to root's own ids): it
// has every capability in that namespace and none in the initial one.
func inUserNS() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
}

// runInUserNS runs a helper with steps in a new user namespace (inUserNS)
// and returns the result of each step. It fails t, naming CONFIG_USER_NS,
// when the kernel cannot make the namespace.
func runInUserNS(t *testing.T, rule *ebpf.Program, steps ...string) []string {
	t.Helper()
	h, err := startHelperWith(inUserNS(), rule, nil, steps...)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		t.Fatalf("clone(CLONE_NEWUSER) refused (%v): the guest kernel needs CONFIG_USER_NS=y for this test", err)
	}
	require.NoError(t, err, "starting a helper in a new user namespace")
	_, res, err := h.wait()
	require.NoError(t, err, "the helper in a new user namespace")
	return res
}

// TestUserNamespaceIsNotPrivilege: CAP_SYS_ADMIN (and CAP_BPF) held only in
// a user namespace of the caller's own are not the privilege that the
// append and the debug flag need (capable() checks the initial user
// namespace): a helper that is uid 0 with every capability in a new user
// namespace gets EPERM for appending an already-loaded rule it inherits,
// for loading a Landlock program, and for loading one with
// BPF_F_LANDLOCK_DEBUG.
func TestUserNamespaceIsNotPrivilege(t *testing.T) {
	skipUnlessSupported(t)
	// The rule denies everything: if the append succeeded, the next open
	// would show it.
	rule := loadRule(t, landlockbpf.Deny)

	t.Run("append", func(t *testing.T) {
		res := runInUserNS(t, rule, "userns-root", "open=/", "append", "open=/")
		assert.Equal(t, []string{"ok", "ok", "EPERM", "ok"}, res,
			"in a new user namespace: root there, opens /, appending the inherited rule gives EPERM, / opens still")
	})

	t.Run("load", func(t *testing.T) {
		// From version 4 on, kernel.unprivileged_bpf_disabled = 0 lets
		// anyone load a Landlock program.
		if v, err := landlockbpf.KernelABIVersion(); err == nil && v >= 4 {
			b, err := os.ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled")
			require.NoError(t, err)
			if strings.TrimSpace(string(b)) == "0" {
				t.Skipf("ABI version %d with kernel.unprivileged_bpf_disabled = 0: loading needs no privilege", v)
			}
		}
		res := runInUserNS(t, nil, "userns-root", "load")
		assert.Equal(t, []string{"ok", "EPERM"}, res,
			"in a new user namespace: root there, loading a Landlock program (needs CAP_BPF in the initial namespace) gives EPERM")
	})

	t.Run("debug_flag", func(t *testing.T) {
		// As root, with CAP_SYS_ADMIN, EINVAL can only mean that the
		// kernel does not know the flag.
		p, err := landlockbpf.LoadWith(landlockbpf.Allow, landlockbpf.AttachLandlockFS, landlockbpf.ProgFlagDebug)
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("debug flag not in this kernel: loading a Landlock program with BPF_F_LANDLOCK_DEBUG (%#x) as root gives EINVAL", landlockbpf.ProgFlagDebug)
		}
		require.NoError(t, err, "loading a Landlock program with BPF_F_LANDLOCK_DEBUG as root")
		p.Close()

		res := runInUserNS(t, nil, "userns-root", "load-debug")
		assert.Equal(t, []string{"ok", "EPERM"}, res,
			"in a new user namespace: root there, loading with BPF_F_LANDLOCK_DEBUG gives EPERM")
	})
}
