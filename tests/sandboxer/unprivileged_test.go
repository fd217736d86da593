package sandboxer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox/cli"
	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// The tests of ABI version 4: the sandboxer without privilege. It sets
// no_new_privs itself (the privdrop children here do not); a caller
// without CAP_BPF needs kernel.unprivileged_bpf_disabled = 0, which the
// tests set as root before dropping privileges, and restore
// (landlockbpf.AllowUnprivilegedBPF; they skip when it is 1, which only a
// reboot undoes).

// requireUnprivileged fails t unless this process is nobody without
// capabilities and without no_new_privs: the sandboxer must set that
// flag itself.
func requireUnprivileged(t *testing.T) {
	t.Helper()
	st, err := privdrop.Current()
	require.NoError(t, err)
	require.Equal(t, [4]int{privdrop.NobodyID, privdrop.NobodyID, privdrop.NobodyID, privdrop.NobodyID}, st.UID)
	require.Zero(t, st.CapEff|st.CapPrm, "capabilities left")
	require.False(t, st.NoNewPrivs, "no_new_privs set before the sandboxer")
}

// TestWithoutCapSysAdminVersion4: from ABI version 4, root without
// CAP_SYS_ADMIN runs the sandboxer (it sets no_new_privs), and the
// program is confined: it writes beneath --rw, gets EPERM outside, and
// runs with no_new_privs.
func TestWithoutCapSysAdminVersion4(t *testing.T) {
	skipUnlessUnprivileged(t)
	privdrop.Run(t, privdrop.RootWithout(unix.CAP_SYS_ADMIN), func(t *testing.T) {
		d := newDirs(t)
		steps := []string{"nnp", "write=" + filepath.Join(d.rw, "new"), "write=" + filepath.Join(d.out, "new"), "read=" + d.outFile}
		got := helperIn(t, []string{"--rw", d.rw}, steps...)
		assert.Equal(t, []string{"ok", "ok", "EPERM", "ok"}, got, "results of %q", steps)
		_, err := os.Lstat(filepath.Join(d.out, "new"))
		assert.ErrorIs(t, err, os.ErrNotExist, "a file was created outside --rw")
	})
}

// TestUnprivileged: from ABI version 4, nobody (uid 65534, no capability,
// no no_new_privs of its own) runs "landlock-bpf-sandbox --rw D -- sh -c
// ..." with kernel.unprivileged_bpf_disabled = 0: the shell writes D/f
// and gets EPERM for /tmp/x, which nobody may write without the sandbox
// (checked first, so that the EPERM is the rule's, not the permission
// bits'); the helper, sandboxed the same way, has no_new_privs.
func TestUnprivileged(t *testing.T) {
	skipUnlessUnprivileged(t)
	if _, err := os.Stat(shell); err != nil {
		t.Skipf("no %s in this guest: %v", shell, err)
	}
	landlockbpf.AllowUnprivilegedBPF(t)
	privdrop.Run(t, privdrop.Nobody(), func(t *testing.T) {
		requireUnprivileged(t)
		d := t.TempDir()
		f := filepath.Join(d, "f")
		x := filepath.Join("/tmp", fmt.Sprintf("landlock-vmtest-sandboxer-%d-x", os.Getpid()))
		require.NoError(t, os.WriteFile(x, nil, 0o644), "nobody writes %s without the sandbox", x)
		require.NoError(t, os.Remove(x))
		t.Cleanup(func() { os.Remove(x) })

		script := fmt.Sprintf(`echo inside > '%s' && echo wrote-inside
echo outside > '%s' && echo wrote-outside
true`, f, x)
		s := sandbox(t, nil, "--rw", d, "--", shell, "-c", script)
		require.Zero(t, s.code, "the sandboxed shell: %s", s)
		assert.Contains(t, s.stdout, "wrote-inside\n", s)
		assert.NotContains(t, s.stdout, "wrote-outside", s)
		assert.Contains(t, strings.ToLower(s.stderr), "operation not permitted", s)
		b, err := os.ReadFile(f)
		require.NoError(t, err, "the file the shell wrote beneath --rw")
		assert.Equal(t, "inside\n", string(b))
		_, err = os.Lstat(x)
		assert.ErrorIs(t, err, os.ErrNotExist, "the shell created %s outside --rw", x)

		got := helperIn(t, []string{"--rw", d}, "nnp", "write="+filepath.Join(d, "g"), "write="+x, "mkdir="+filepath.Join(d, "sub"))
		assert.Equal(t, []string{"ok", "ok", "EPERM", "ok"}, got, "nnp, write beneath --rw, write /tmp, mkdir beneath --rw")
	})
}

// TestUnprivilegedBPFDisabledMessage: with kernel.unprivileged_bpf_disabled
// = 2 (Debian's default), nobody's sandboxer cannot create the map: it
// stops with "not permitted" (exit 4) and names the sysctl to set, and
// the program never runs. The test sets 2 and restores the old value; it
// skips when the value is 1 (which cannot be changed until a reboot).
func TestUnprivilegedBPFDisabledMessage(t *testing.T) {
	skipUnlessUnprivileged(t)
	v, err := landlockbpf.ReadSysctl(landlockbpf.UnprivBPFSysctl)
	require.NoError(t, err)
	if v == "1" {
		t.Skip("kernel.unprivileged_bpf_disabled is 1, which only a reboot undoes: it cannot be set to 2 here")
	}
	landlockbpf.SetSysctl(t, landlockbpf.UnprivBPFSysctl, "2")
	privdrop.Run(t, privdrop.Nobody(), func(t *testing.T) {
		requireUnprivileged(t)
		marker := filepath.Join(t.TempDir(), "ran")
		s := sandbox(t, []string{helperEnv + "=1"}, "--rw", t.TempDir(), "--", executable(t), "write="+marker)
		assert.Equal(t, cli.ExitNotPermitted, s.code, s)
		assert.Contains(t, s.stderr, "landlock-bpf-sandbox: not permitted: ", s)
		assert.Contains(t, s.stderr, "EPERM", s)
		assert.Contains(t, s.stderr, "without CAP_BPF, creating the map and loading the rule need the sysctl kernel.unprivileged_bpf_disabled = 0 (it is 2): as root, sysctl -w kernel.unprivileged_bpf_disabled=0\n", s)
		assert.Empty(t, s.stdout, "the program ran: %s", s)
		_, err := os.Lstat(marker)
		assert.ErrorIs(t, err, os.ErrNotExist, "the program ran unconfined")
	})
}

// mountResults parses usernsMounts's report into step -> result.
func mountResults(t *testing.T, report string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range strings.Fields(report) {
		step, res, ok := strings.Cut(f, ":")
		require.True(t, ok, "report %q", report)
		out[step] = res
	}
	for _, step := range usernsSteps {
		require.Contains(t, out, step, "report %q", report)
	}
	return out
}

// noMountEscape is the check of TestNoMountEscape: in a user and mount
// namespace of its own, where it has CAP_SYS_ADMIN over its mounts, a
// process bind-mounts a directory outside D onto D/m1 and moves a clone
// of it (open_tree, move_mount) onto D/m2, then writes through both.
// Outside the sandbox that works (the control: the files land in the
// outside directory); in the sandbox (--rw D) the rule denies mount(2)
// and move_mount(2) with EPERM, whatever their paths, and the files land
// in D/m1 and D/m2 themselves.
func noMountEscape(t *testing.T) {
	outside := t.TempDir()
	d := t.TempDir()
	m1, m2 := filepath.Join(d, "m1"), filepath.Join(d, "m2")
	for _, m := range []string{m1, m2} {
		require.NoError(t, os.Mkdir(m, 0o755))
	}
	step := fmt.Sprintf("userns-mounts=%s:%s:%s", outside, m1, m2)

	control := mountResults(t, helperOutside(t, step)[0])
	if control["unshare"] != "ok" {
		t.Skipf("no user and mount namespace of its own for this process (unshare: %s): nothing to escape with", control["unshare"])
	}
	if control["mount"] != "ok" || control["move_mount"] != "ok" {
		t.Skipf("outside the sandbox, the bind mount (%s) or move_mount (%s) fails already: the sandbox's EPERM could not be told apart", control["mount"], control["move_mount"])
	}
	for _, f := range []string{"escaped", "escaped2"} {
		_, err := os.Lstat(filepath.Join(outside, f))
		require.NoError(t, err, "outside the sandbox, %s was written through the mount into the outside directory", f)
		require.NoError(t, os.Remove(filepath.Join(outside, f)))
	}

	got := mountResults(t, helperIn(t, []string{"--rw", d}, step)[0])
	assert.Equal(t, "ok", got["unshare"], "unshare(CLONE_NEWUSER|CLONE_NEWNS) in the sandbox")
	assert.Equal(t, "EPERM", got["mount"], "bind mount of a directory outside --rw onto a directory beneath it")
	// open_tree has no hook of its own: its path walk is allowed, and
	// the clone it makes is detached; move_mount would attach it.
	assert.Contains(t, []string{"ok", "EPERM"}, got["open_tree"], "open_tree(OPEN_TREE_CLONE) in the sandbox")
	if got["open_tree"] == "ok" {
		assert.Equal(t, "EPERM", got["move_mount"], "move_mount of a clone of a directory outside --rw onto a directory beneath it")
	}
	assert.Equal(t, "ok", got["create"], "creating m1/escaped beneath --rw")
	assert.Equal(t, "ok", got["create2"], "creating m2/escaped2 beneath --rw")
	for _, f := range []string{"escaped", "escaped2"} {
		_, err := os.Lstat(filepath.Join(outside, f))
		assert.ErrorIs(t, err, os.ErrNotExist, "%s reached the directory outside --rw", f)
	}
	for _, f := range []string{filepath.Join(m1, "escaped"), filepath.Join(m2, "escaped2")} {
		_, err := os.Lstat(f)
		assert.NoError(t, err, "%s: created in the directory itself, beneath --rw", f)
	}
}

// TestNoMountEscape: the rule denies the mount-family system calls, so
// that a bind mount cannot give a directory outside --rw new names
// beneath it (noMountEscape). As root from ABI version 3 (root could
// mount in the initial namespace too; the test uses a namespace of its
// own so that nothing stays mounted if it fails); as nobody from version
// 4, where a user and mount namespace of its own is how an unprivileged
// process gets to mount.
func TestNoMountEscape(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		skipUnlessABI3(t)
		noMountEscape(t)
	})
	t.Run("nobody", func(t *testing.T) {
		skipUnlessUnprivileged(t)
		landlockbpf.AllowUnprivilegedBPF(t)
		privdrop.Run(t, privdrop.Nobody(), func(t *testing.T) {
			requireUnprivileged(t)
			noMountEscape(t)
		})
	})
}
