package seccompentry

import (
	"errors"
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
// bpf(2), which without CAP_BPF would refuse to load it (below version
// 4, or with kernel.unprivileged_bpf_disabled not 0). A rule loaded with
// privilege may be appended by an unprivileged task (the fd is the
// capability; docs/abi-v4-plan.md gap 3); TestUnprivilegedScenarios
// loads its rules unprivileged.
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
// BPF_F_LANDLOCK_DEBUG. From version 4 on, the append is allowed with
// no_new_privs (as for anyone, not for the namespace's capability), and
// loading a program with kernel.unprivileged_bpf_disabled = 0.
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
		// From version 4 on, kernel.unprivileged_bpf_disabled decides:
		// 0 lets a caller without CAP_BPF load a Landlock program, 1
		// and 2 refuse it (EPERM), as below version 4 the program type
		// itself does. Both values are set here (2 skips when the
		// sysctl is 1, which cannot be left).
		if v, err := landlockbpf.KernelABIVersion(); err == nil && v >= landlockbpf.UnprivilegedABI {
			t.Run("unprivileged_bpf_allowed", func(t *testing.T) {
				landlockbpf.AllowUnprivilegedBPF(t)
				res := runInUserNS(t, nil, "userns-root", "load")
				assert.Equal(t, []string{"ok", "ok"}, res,
					"in a new user namespace: root there, loading a Landlock program with kernel.unprivileged_bpf_disabled = 0 (ABI version %d)", v)
			})
			t.Run("unprivileged_bpf_disabled", func(t *testing.T) {
				landlockbpf.DisableUnprivilegedBPF(t)
				res := runInUserNS(t, nil, "userns-root", "load")
				assert.Equal(t, []string{"ok", "EPERM"}, res,
					"in a new user namespace: root there, loading a Landlock program with kernel.unprivileged_bpf_disabled = 2 (needs CAP_BPF in the initial namespace)")
			})
			return
		}
		res := runInUserNS(t, nil, "userns-root", "load")
		assert.Equal(t, []string{"ok", "EPERM"}, res,
			"in a new user namespace: root there, loading a Landlock program (needs CAP_BPF in the initial namespace) gives EPERM")
	})

	t.Run("append_with_no_new_privs", func(t *testing.T) {
		// From version 4 on, no_new_privs is enough: the root of a user
		// namespace sets it, as anyone, and may append. Below 4 the
		// append needs CAP_SYS_ADMIN in the initial namespace whatever
		// no_new_privs says. no_new_privs is set on a thread of its own,
		// which ends with the goroutine, and the helper, started from
		// that thread, inherits it.
		v, err := landlockbpf.KernelABIVersion()
		require.NoError(t, err)
		// Not the rule that denies everything: the helper must still
		// write its results (WRITE) and map memory (READ) after the
		// append. This one denies opens (GET).
		denyOpen := loadRule(t, landlockbpf.DenyActions(landlockbpf.ActionGet))
		want := []string{"ok", "ok", "EPERM", "ok"}
		if v >= landlockbpf.UnprivilegedABI {
			want = []string{"ok", "ok", "ok", "EPERM"}
		}
		var res []string
		var nnpErr, helperErr error
		landlockbpf.OnLockedThread(func() {
			if nnpErr = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); nnpErr != nil {
				return
			}
			var h *helperProc
			if h, helperErr = startHelperWith(inUserNS(), denyOpen, nil, "userns-root", "open=/", "append", "open=/"); helperErr != nil {
				return
			}
			_, res, helperErr = h.wait()
		})
		require.NoError(t, nnpErr, "prctl(PR_SET_NO_NEW_PRIVS) on a thread of its own")
		require.NoError(t, helperErr, "the helper in a new user namespace, with no_new_privs")
		assert.Equal(t, want, res,
			"in a new user namespace with no_new_privs (ABI version %d): root there, opens /, appends the inherited rule that denies opens (allowed from version 4 on), opens /", v)
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
