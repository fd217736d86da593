package seccompentry

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// enabledAtBootSkip is why TestNotEnabledAtBoot skips in a boot with
// Landlock enabled.
const enabledAtBootSkip = "Landlock is enabled at boot; make e2e runs this test in a boot with CMDLINE=lsm=capability (TestE2ELandlockLeftOutOfLSM)"

// landlockEnabledAtBoot asks the upstream Landlock whether it is enabled:
// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) gives
// its ABI version when it is, EOPNOTSUPP when it was left out of lsm=. It
// skips t on a kernel without Landlock at all (ENOSYS).
func landlockEnabledAtBoot(t *testing.T) bool {
	t.Helper()
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	switch errno {
	case 0:
		t.Logf("landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) = %d", v)
		return true
	case unix.EOPNOTSUPP:
		return false
	case unix.ENOSYS:
		t.Skip("the kernel has no Landlock at all (landlock_create_ruleset: ENOSYS), so no Landlock eBPF rules either")
	}
	t.Fatalf("landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): %v", errno)
	return false
}

// TestNotEnabledAtBoot: when Landlock is left out of lsm= at boot, every
// seccomp(SECCOMP_APPEND_LANDLOCK_RULE, ...) call fails with EOPNOTSUPP,
// the ABI version query and the append of a valid rule included. As
// landlock_create_ruleset does, the kernel checks that Landlock is enabled
// before anything else: before the flags, the arguments and the caller's
// privilege.
//
// It does not use skipUnlessSupported, which skips when the version query
// fails: here the query must fail.
func TestNotEnabledAtBoot(t *testing.T) {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
	if landlockEnabledAtBoot(t) {
		t.Skip(enabledAtBootSkip)
	}
	// The program type belongs to bpf(2), which does not depend on the
	// LSM being enabled: a kernel with the option loads the rule.
	p, err := landlockbpf.Load(landlockbpf.Deny)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("the kernel has no BPF_PROG_TYPE_LANDLOCK (loading an allow-all program of type %d as root gives EINVAL): built without CONFIG_SECURITY_LANDLOCK_BPF, nothing to check", landlockbpf.ProgTypeLandlock)
	}
	require.NoError(t, err, "loading a Landlock rule with Landlock disabled at boot")
	p.Close()

	for _, tc := range []struct {
		name  string
		privs privdrop.Privs
	}{
		{"root", keepRoot},
		{"nobody", privdrop.Nobody()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Loaded before the drop (this code runs in the child with
			// every privilege): the child inherits the fd.
			rule := loadRule(t, landlockbpf.Deny)
			privdrop.Run(t, tc.privs, func(t *testing.T) {
				fd := uint32(rule.FD())
				calls := []seccompCall{
					{"abi_version", landlockbpf.SeccompLandlockABIVersion, nil, unix.EOPNOTSUPP},
					{"abi_version_with_args", landlockbpf.SeccompLandlockABIVersion, &fd, unix.EOPNOTSUPP},
					{"append_landlock_rule", 0, &fd, unix.EOPNOTSUPP},
					{"flags_0_NULL", 0, nil, unix.EOPNOTSUPP},
					{"unknown_flag_0x2_NULL", 1 << 1, nil, unix.EOPNOTSUPP},
					{"unknown_flag_0x2_rule", 1 << 1, &fd, unix.EOPNOTSUPP},
				}
				type result struct {
					ret uintptr
					err error
				}
				results := make([]result, len(calls))
				var openErr error
				landlockbpf.OnLockedThread(func() {
					for i, c := range calls {
						var args unsafe.Pointer
						if c.fd != nil {
							args = unsafe.Pointer(c.fd)
						}
						results[i].ret, results[i].err = landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, c.flags, args)
					}
					openErr = openClose("/")
				})
				for i, c := range calls {
					t.Run(c.name, func(t *testing.T) {
						r := results[i]
						assert.ErrorIs(t, r.err, c.want, "seccomp(SECCOMP_APPEND_LANDLOCK_RULE, %#x, %s) with Landlock disabled at boot (%s): returned %d, %v",
							c.flags, argsString(c.fd), tc.privs, r.ret, errString(r.err))
					})
				}
				assert.NoError(t, openErr, "open after the calls: no rule may have joined the domain")
			})
		})
	}
}

// errString describes the error of a call, "no error" for nil.
func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return fmt.Sprint(err)
}

// TestCgroupAttachNotEnabledAtBoot: when Landlock is left out of lsm= at
// boot, attaching a Landlock program to a cgroup (BPF_PROG_ATTACH and
// BPF_LINK_CREATE with BPF_CGROUP_LANDLOCK_FS) fails with EOPNOTSUPP, as
// the seccomp(2) entry does: the hooks that would run it are not there.
// Detach and query are cgroup-bpf's as usual (nothing is attached: ENOENT
// and an empty list). On a kernel without the cgroup manager (a prefix of
// the series before version 2) the attach type is unknown (EINVAL): the
// test skips.
func TestCgroupAttachNotEnabledAtBoot(t *testing.T) {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
	if landlockEnabledAtBoot(t) {
		t.Skip(enabledAtBootSkip)
	}
	if why := landlockbpf.SkipUnlessCgroup2(); why != "" {
		t.Skip(why)
	}
	rule, err := landlockbpf.Load(landlockbpf.Deny)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("the kernel has no BPF_PROG_TYPE_LANDLOCK (loading a program of type %d gives EINVAL)", landlockbpf.ProgTypeLandlock)
	}
	require.NoError(t, err)
	defer rule.Close()
	cg := landlockbpf.NewCgroupHierarchy(t)

	err = landlockbpf.ProgAttach(cg.FD, rule.FD(), landlockbpf.AttachCgroupLandlockFS, unix.BPF_F_ALLOW_MULTI, 0)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("BPF_PROG_ATTACH with attach type %d gives EINVAL: the kernel has no cgroup manager (ABI version 1)", landlockbpf.AttachCgroupLandlockFS)
	}
	assert.ErrorIs(t, err, unix.EOPNOTSUPP, "BPF_PROG_ATTACH of a Landlock program to %s with Landlock disabled at boot", cg.Path)
	fd, err := landlockbpf.LinkCreate(rule.FD(), cg.FD, landlockbpf.AttachCgroupLandlockFS, 0)
	if err == nil {
		unix.Close(fd)
	}
	assert.ErrorIs(t, err, unix.EOPNOTSUPP, "BPF_LINK_CREATE of a Landlock program on %s with Landlock disabled at boot", cg.Path)
	assert.ErrorIs(t, landlockbpf.ProgDetach(cg.FD, rule.FD(), landlockbpf.AttachCgroupLandlockFS, 0), unix.ENOENT,
		"BPF_PROG_DETACH with nothing attached")
	q, err := landlockbpf.ProgQuery(cg.FD, landlockbpf.AttachCgroupLandlockFS, 0, false)
	if assert.NoError(t, err, "BPF_PROG_QUERY") {
		assert.Zero(t, q.Count, "no program may have been attached")
	}
}
