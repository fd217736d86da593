package seccompentry

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestABIVersion: seccomp(SECCOMP_APPEND_LANDLOCK_RULE,
// SECCOMP_LANDLOCK_ABI_VERSION, NULL) returns the version, without
// privilege: one of the versions the tests know, and the same for every
// caller. (privilege_test.go asks again in each privilege scenario;
// tests/cgroupmgr checks that version 2 comes with the cgroup attach type.)
func TestABIVersion(t *testing.T) {
	skipUnlessSupported(t)
	rootV, err := landlockbpf.KernelABIVersion()
	require.NoError(t, err, "seccomp(SECCOMP_APPEND_LANDLOCK_RULE, SECCOMP_LANDLOCK_ABI_VERSION, NULL) as root")
	require.GreaterOrEqual(t, rootV, 1, "the ABI version")
	require.LessOrEqual(t, rootV, landlockbpf.ABIVersion, "the ABI version: newer than the tests know")
	check := func(t *testing.T) {
		v, err := landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, landlockbpf.SeccompLandlockABIVersion, nil)
		require.NoError(t, err, "seccomp(SECCOMP_APPEND_LANDLOCK_RULE, SECCOMP_LANDLOCK_ABI_VERSION, NULL)")
		assert.EqualValues(t, rootV, v, "the ABI version, against root's")
	}
	t.Run("root", check)
	t.Run("nobody", func(t *testing.T) { privdrop.Run(t, privdrop.Nobody(), check) })
	t.Run("nobody_no_new_privs", func(t *testing.T) { privdrop.Run(t, privdrop.Nobody().WithNoNewPrivs(), check) })
}

// seccompCall is one call of seccomp(SECCOMP_APPEND_LANDLOCK_RULE, flags,
// args) and its expected outcome. args is NULL when fd is nil, else a
// pointer to *fd.
type seccompCall struct {
	name  string
	flags uintptr
	fd    *uint32
	want  error // nil: returns 0
}

// seccompCalls builds the rows of the spec's seccomp table that need no
// privilege change, around a Landlock rule (rule) and objects that are
// not Landlock rules. The only row that appends a rule is the last one.
func seccompCalls(t *testing.T, rule *ebpf.Program) []seccompCall {
	t.Helper()
	u32 := func(fd int) *uint32 { v := uint32(fd); return &v }

	arrayMap, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	require.NoError(t, err, "creating an array map")
	t.Cleanup(func() { arrayMap.Close() })
	devNull, err := os.Open(os.DevNull)
	require.NoError(t, err)
	t.Cleanup(func() { devNull.Close() })
	// Last: nothing the table opens may take the closed fd's number.
	sockFilter, closedFD := notRules(t)

	abi, err := landlockbpf.KernelABIVersion()
	require.NoError(t, err, "the ABI version")
	unknown := []uintptr{1 << 2, 1 << 31, landlockbpf.SeccompLandlockABIVersion | 1<<1, ^uintptr(0) &^ landlockbpf.SeccompLandlockABIVersion}
	if abi < landlockbpf.TriggersABI {
		// From version 5 this is SECCOMP_LANDLOCK_RULE_TRIGGERS
		// (triggers_test.go), never with the version flag.
		unknown = append([]uintptr{1 << 1}, unknown...)
	}
	var calls []seccompCall
	// Any flag bit but SECCOMP_LANDLOCK_ABI_VERSION (and, from version 5,
	// SECCOMP_LANDLOCK_RULE_TRIGGERS alone): EINVAL, with no argument and
	// with a valid rule.
	for _, flags := range unknown {
		calls = append(calls,
			seccompCall{fmt.Sprintf("flags_%#x_NULL", uint32(flags)), flags, nil, unix.EINVAL},
			seccompCall{fmt.Sprintf("flags_%#x_rule", uint32(flags)), flags, u32(rule.FD()), unix.EINVAL},
		)
	}
	return append(calls,
		seccompCall{"flags_0_NULL", 0, nil, unix.EFAULT},
		seccompCall{fmt.Sprintf("fd_not_open_%d", closedFD), 0, u32(closedFD), unix.EBADF},
		seccompCall{"fd_not_open_0xffffffff", 0, u32(-1), unix.EBADF},
		seccompCall{"fd_socket_filter_program", 0, u32(sockFilter.FD()), unix.EINVAL},
		seccompCall{"fd_array_map", 0, u32(arrayMap.FD()), unix.EINVAL},
		seccompCall{"fd_dev_null", 0, u32(int(devNull.Fd())), unix.EINVAL},
		seccompCall{"fd_landlock_rule", 0, u32(rule.FD()), nil},
	)
}

// TestSeccompTable makes each call of the spec's seccomp table, in a child,
// and then checks that only the one valid call appended a rule: 63 more
// fill the domain, and the next gives E2BIG.
func TestSeccompTable(t *testing.T) {
	skipUnlessSupported(t)
	privdrop.Run(t, keepRoot, seccompTableScenario(true))
}

// seccompTableScenario is TestSeccompTable's scenario, for a caller who may
// append (canAppend) or who may not (version 4: no CAP_SYS_ADMIN and no
// no_new_privs). The append's checks come in the order of the spec: flags
// (EINVAL), the version query, NULL args (EFAULT), then the privilege
// (EPERM), then the fd (EBADF), its type (EINVAL) and the limit (E2BIG);
// so a caller who may not append gets the EINVAL of the flags and the
// EFAULT of the probe as anyone does, and EPERM for every call with an fd.
// The scenario loads its programs itself.
func seccompTableScenario(canAppend bool) func(t *testing.T) {
	return func(t *testing.T) {
		rule := loadRule(t, landlockbpf.Allow)
		calls := seccompCalls(t, rule)
		if !canAppend {
			for i, c := range calls {
				if c.flags == 0 && c.fd != nil {
					calls[i].want = unix.EPERM
				}
			}
		}
		type result struct {
			ret uintptr
			err error
		}
		results := make([]result, len(calls))
		var fdReused error
		var fill []error
		landlockbpf.OnLockedThread(func() {
			for i, c := range calls {
				var args unsafe.Pointer
				if c.fd != nil {
					args = unsafe.Pointer(c.fd)
					if strings.HasPrefix(c.name, "fd_not_open_") {
						// Nothing may have reused the closed fd.
						if _, err := unix.FcntlInt(uintptr(*c.fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
							fdReused = fmt.Errorf("fd %d is open again (fcntl: %v)", *c.fd, err)
						}
					}
				}
				results[i].ret, results[i].err = landlockbpf.Seccomp(landlockbpf.SeccompAppendLandlockRule, c.flags, args)
			}
			for range landlockbpf.MaxRules {
				_, err := appendFD(0, uint32(rule.FD()))
				fill = append(fill, err)
			}
		})
		require.NoError(t, fdReused, "the fd that must not be open")

		for i, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				r := results[i]
				if c.want == nil {
					assert.NoError(t, r.err, "appending a Landlock rule")
					assert.Zero(t, r.ret, "return value of a successful append")
				} else {
					assert.ErrorIs(t, r.err, c.want, "seccomp(SECCOMP_APPEND_LANDLOCK_RULE, %#x, %s)", c.flags, argsString(c.fd))
				}
			})
		}
		if !canAppend {
			for i, err := range fill {
				assert.ErrorIs(t, err, unix.EPERM, "append #%d after the table, without the privilege to append", i+1)
			}
			return
		}
		// The valid call appended one rule, the failed ones none: 63
		// more succeed, the 64th of this loop is the 65th rule.
		for i, err := range fill[:landlockbpf.MaxRules-1] {
			assert.NoError(t, err, "append #%d after the table (rule %d of the domain)", i+1, i+2)
		}
		assert.ErrorIs(t, fill[landlockbpf.MaxRules-1], unix.E2BIG,
			"the 65th rule: if it succeeded, a failed call of the table appended nothing but the domain is bigger than 64; if an earlier append failed with E2BIG, a failed call appended a rule")
	}
}

// notRules returns what the append tables offer instead of a rule: a
// socket filter program (closed when t ends) and an fd that was just
// closed. Call it after opening anything else: the next fd opened may
// take the closed one's number.
func notRules(t *testing.T) (*ebpf.Program, int) {
	t.Helper()
	sockFilter, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "not_landlock",
		Type:         ebpf.SocketFilter,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	require.NoError(t, err, "loading a socket filter")
	t.Cleanup(func() { sockFilter.Close() })
	closed, err := os.Open(os.DevNull)
	require.NoError(t, err)
	closedFD := int(closed.Fd())
	require.NoError(t, closed.Close())
	return sockFilter, closedFD
}

func argsString(fd *uint32) string {
	if fd == nil {
		return "NULL"
	}
	return fmt.Sprintf("&%d", *fd)
}

// TestRuleLimit: a domain holds 64 rules, inherited ones included; the
// 65th gives E2BIG, and a child that fills its own domain (a level on top
// of the inherited ones from version 4 on) leaves its parent's as it was.
func TestRuleLimit(t *testing.T) {
	skipUnlessSupported(t)
	privdrop.Run(t, keepRoot, ruleLimitScenario)
}

// ruleLimitScenario is TestRuleLimit's scenario.
func ruleLimitScenario(t *testing.T) {
	rule := loadRule(t, landlockbpf.Allow)
	fd := uint32(rule.FD())
	var first []error
	var helperStatus int
	var helperResults []string
	var helperErr, sixtyFourth, sixtyFifth, sixtySixth error
	landlockbpf.OnLockedThread(func() {
		for range landlockbpf.MaxRules - 1 {
			_, err := appendFD(0, fd)
			first = append(first, err)
		}
		// A child inherits the 63 rules: it can append one more.
		helperStatus, helperResults, helperErr = runHelper(rule, "append", "append")
		// This thread still has 63.
		_, sixtyFourth = appendFD(0, fd)
		_, sixtyFifth = appendFD(0, fd)
		_, sixtySixth = appendFD(0, fd)
	})
	for i, err := range first {
		assert.NoError(t, err, "rule %d", i+1)
	}
	require.NoError(t, helperErr)
	assert.Equal(t, []string{"ok", "E2BIG"}, helperResults,
		"a child of a thread with 63 rules appends the 64th, then gets E2BIG (exit status %d)", helperStatus)
	assert.NoError(t, sixtyFourth, "the 64th rule, after the child appended its own")
	assert.ErrorIs(t, sixtyFifth, unix.E2BIG, "the 65th rule")
	assert.ErrorIs(t, sixtySixth, unix.E2BIG, "a 66th try")
}
