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

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox/cli"
	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
)

// shell is the guest's /bin/sh (u-root's gosh).
const shell = "/bin/sh"

// dirs are the directories of a test: rw (given to --rw) and out (given
// to nothing), with a file in each.
type dirs struct {
	rw, out, rwFile, outFile string
}

func newDirs(t *testing.T) dirs {
	t.Helper()
	d := dirs{rw: t.TempDir(), out: t.TempDir()}
	d.rwFile, d.outFile = filepath.Join(d.rw, "existing"), filepath.Join(d.out, "existing")
	for _, f := range []string{d.rwFile, d.outFile} {
		require.NoError(t, os.WriteFile(f, []byte("hello\n"), 0o644))
	}
	return d
}

// TestShellWritesOnlyBeneathRW: a shell in the sandbox writes a file in
// the --rw directory, fails with EPERM to write one outside it, and reads
// outside it.
func TestShellWritesOnlyBeneathRW(t *testing.T) {
	skipUnlessABI3(t)
	if _, err := os.Stat(shell); err != nil {
		t.Skipf("no %s in this guest: %v", shell, err)
	}
	d := newDirs(t)
	in, out := filepath.Join(d.rw, "in"), filepath.Join(d.out, "out")
	script := fmt.Sprintf(`echo inside > '%s' && echo wrote-inside
echo outside > '%s' && echo wrote-outside
read l < '%s' && echo "read-outside:$l"`, in, out, d.outFile)
	s := sandbox(t, nil, "--rw", d.rw, "--", shell, "-c", script)
	require.Zero(t, s.code, "the sandboxed shell: %s", s)
	assert.Contains(t, s.stdout, "wrote-inside\n", s)
	assert.NotContains(t, s.stdout, "wrote-outside", s)
	assert.Contains(t, s.stdout, "read-outside:hello\n", s)
	assert.Contains(t, strings.ToLower(s.stderr), "operation not permitted", s)
	b, err := os.ReadFile(in)
	require.NoError(t, err, "the file the shell wrote beneath --rw")
	assert.Equal(t, "inside\n", string(b))
	_, err = os.Lstat(out)
	assert.ErrorIs(t, err, os.ErrNotExist, "the shell created a file outside --rw")
}

// TestWritesOnlyBeneathRW: each write-like action of a sandboxed process
// is allowed beneath --rw and denied with EPERM outside, reads and stats
// are allowed everywhere, and /dev/null stays writable.
func TestWritesOnlyBeneathRW(t *testing.T) {
	skipUnlessABI3(t)
	d := newDirs(t)
	sub := filepath.Join(d.rw, "sub")
	steps := []string{
		"write=" + filepath.Join(d.rw, "new"),
		"write=" + d.rwFile,
		"mkdir=" + sub,
		"write=" + filepath.Join(sub, "deeper"),
		"unlink=" + filepath.Join(sub, "deeper"),
		"write=" + filepath.Join(d.out, "new"),
		"write=" + d.outFile,
		"mkdir=" + filepath.Join(d.out, "sub"),
		"unlink=" + d.outFile,
		"read=" + d.outFile,
		"stat=" + d.outFile,
		"read=" + d.rwFile,
		"write=" + os.DevNull,
	}
	got := helperIn(t, []string{"--rw", d.rw}, steps...)
	want := []string{"ok", "ok", "ok", "ok", "ok", "EPERM", "EPERM", "EPERM", "EPERM", "ok", "ok", "ok", "ok"}
	assert.Equal(t, want, got, "results of %q", steps)
	b, err := os.ReadFile(d.outFile)
	require.NoError(t, err, "the file outside --rw")
	assert.Equal(t, "hello\n", string(b), "the file outside --rw changed")
}

// TestNoRWWritesNothing: without --rw nothing can be written but
// character devices.
func TestNoRWWritesNothing(t *testing.T) {
	skipUnlessABI3(t)
	d := newDirs(t)
	got := helperIn(t, nil, "write="+filepath.Join(d.rw, "new"), "read="+d.rwFile, "write="+os.DevNull)
	assert.Equal(t, []string{"EPERM", "ok", "ok"}, got)
}

// TestROConfinesEverything: with --ro, a read outside the --ro and --rw
// directories fails with EPERM; reads beneath either work, writes only
// beneath --rw. The directory of this test binary is one of the --ro
// directories: the sandboxed program must be executed and mapped.
func TestROConfinesEverything(t *testing.T) {
	skipUnlessABI3(t)
	d := newDirs(t)
	exeDir := filepath.Dir(executable(t))
	ro := t.TempDir()
	roFile := filepath.Join(ro, "existing")
	require.NoError(t, os.WriteFile(roFile, []byte("hello\n"), 0o644))
	for _, p := range []string{d.out, d.rw, ro} {
		if rel, err := filepath.Rel(exeDir, p); err == nil && !strings.HasPrefix(rel, "..") {
			t.Skipf("%s is beneath the test binary's directory %s, which the sandbox must be able to read", p, exeDir)
		}
	}
	steps := []string{
		"read=" + d.outFile,
		"stat=" + d.outFile,
		"read=" + roFile,
		"read=" + d.rwFile,
		"write=" + filepath.Join(d.rw, "new"),
		"write=" + filepath.Join(ro, "new"),
		"write=" + os.DevNull,
		"read=" + os.DevNull,
	}
	got := helperIn(t, []string{"--rw", d.rw, "--ro", exeDir, "--ro", ro}, steps...)
	want := []string{"EPERM", "EPERM", "ok", "ok", "ok", "EPERM", "ok", "ok"}
	assert.Equal(t, want, got, "results of %q", steps)
}

// TestExitStatusIsTheProgramsOwn: the sandboxer execve(2)s the program,
// so its exit status is the program's.
func TestExitStatusIsTheProgramsOwn(t *testing.T) {
	skipUnlessABI3(t)
	s := sandbox(t, []string{helperEnv + "=1"}, "--rw", t.TempDir(), "--", executable(t), "exit=7")
	assert.Equal(t, 7, s.code, s)
}

// TestWithoutCapSysAdmin: below ABI version 4, root without CAP_SYS_ADMIN
// may create the map and load the rule (CAP_BPF) but not append it: a
// clear error, and the program never runs. From version 4 the sandboxer
// sets no_new_privs and needs no CAP_SYS_ADMIN:
// TestWithoutCapSysAdminVersion4.
func TestWithoutCapSysAdmin(t *testing.T) {
	skipUnlessABI3(t)
	if v := kernelABI(t); v >= bpfsandbox.UnprivilegedABI {
		t.Skipf("the kernel reports Landlock eBPF ABI version %d: the sandboxer sets no_new_privs and appends without CAP_SYS_ADMIN (TestWithoutCapSysAdminVersion4)", v)
	}
	privdrop.Run(t, privdrop.RootWithout(unix.CAP_SYS_ADMIN), func(t *testing.T) {
		marker := filepath.Join(t.TempDir(), "ran")
		s := sandbox(t, []string{helperEnv + "=1"}, "--rw", t.TempDir(), "--", executable(t), "write="+marker)
		assert.Equal(t, cli.ExitNotPermitted, s.code, s)
		assert.Contains(t, s.stderr, "landlock-bpf-sandbox: not permitted: ", s)
		assert.Contains(t, s.stderr, "EPERM", s)
		assert.Contains(t, s.stderr, "CAP_SYS_ADMIN", s)
		assert.Empty(t, s.stdout, "the program ran: %s", s)
		_, err := os.Lstat(marker)
		assert.ErrorIs(t, err, os.ErrNotExist, "the program ran unconfined")
	})
}

// TestMissingDirectory: a --rw or --ro directory that does not exist is a
// usage error that names it, checked before the kernel is asked anything
// (so this runs on the host too).
func TestMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, flag := range []string{"--rw", "--ro"} {
		s := sandbox(t, []string{helperEnv + "=1"}, flag, missing, "--", executable(t), "exit=0")
		assert.Equal(t, cli.ExitUsage, s.code, s)
		assert.Equal(t, fmt.Sprintf("landlock-bpf-sandbox: %s %s: no such directory\n", flag, missing), s.stderr)
	}
}

// TestUsage: no program is a usage error (exit 2) with the usage text.
func TestUsage(t *testing.T) {
	s := sandbox(t, nil, "--rw", t.TempDir())
	assert.Equal(t, cli.ExitUsage, s.code, s)
	assert.Contains(t, s.stderr, "landlock-bpf-sandbox: no PROGRAM to run\nusage: landlock-bpf-sandbox [--rw DIR]... [--ro DIR]...", s)
}

// TestTooOldKernelMessage: on a kernel that reports version 2 the command
// says what the kernel lacks and stops (exit 3) before applying anything;
// the version is injected, so this runs anywhere.
func TestTooOldKernelMessage(t *testing.T) {
	applied := false
	sys := cli.System{
		ABIVersion: func() (int, error) { return 2, nil },
		Apply:      func(rw, ro []string) error { applied = true; return nil },
		LookPath:   func(f string) (string, error) { return f, nil },
		Exec:       func(string, []string, []string) error { t.Error("executed"); return nil },
	}
	var stderr strings.Builder
	done := make(chan int)
	go func() { done <- cli.Run([]string{"--rw", t.TempDir(), "--", "/bin/true"}, &stderr, sys) }()
	assert.Equal(t, cli.ExitUnsupported, <-done)
	assert.Equal(t, "landlock-bpf-sandbox: the running kernel reports Landlock eBPF ABI version 2; this needs version 3 (BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath)\n", stderr.String())
	assert.False(t, applied)
}

// TestTooOldRunningKernel: on a guest kernel below version 3 (a prefix
// of the series), the real command says so with the kernel's version.
func TestTooOldRunningKernel(t *testing.T) {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Skip("runs only in the guest kernel (make vmtest)")
	}
	v, err := bpfsandbox.ABIVersion()
	if err == nil && v >= bpfsandbox.NeedABI {
		t.Skipf("the kernel reports Landlock eBPF ABI version %d: not too old", v)
	}
	s := sandbox(t, []string{helperEnv + "=1"}, "--rw", t.TempDir(), "--", executable(t), "exit=0")
	assert.Equal(t, cli.ExitUnsupported, s.code, s)
	want := bpfsandbox.CheckVersion(v, err).Error()
	assert.Equal(t, "landlock-bpf-sandbox: "+want+"\n", s.stderr)
	if err == nil {
		assert.Contains(t, s.stderr, fmt.Sprintf("reports Landlock eBPF ABI version %d; this needs version 3", v))
	}
}
