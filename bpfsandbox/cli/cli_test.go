package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		want Options
		err  string
	}{
		{args: []string{"--rw", "/a", "--ro=/b", "--rw=/c", "--", "prog", "--rw", "x"},
			want: Options{RW: []string{"/a", "/c"}, RO: []string{"/b"}, Program: []string{"prog", "--rw", "x"}}},
		{args: []string{"prog", "-x"}, want: Options{Program: []string{"prog", "-x"}}},
		{args: []string{"--rw", "/a", "sh", "-c", "echo"}, want: Options{RW: []string{"/a"}, Program: []string{"sh", "-c", "echo"}}},
		{args: []string{"--help"}, want: Options{Help: true}},
		{args: []string{}, err: "no PROGRAM to run"},
		{args: []string{"--rw", "/a", "--"}, err: "no PROGRAM to run"},
		{args: []string{"--rw"}, err: "--rw needs a directory"},
		{args: []string{"--rw=", "prog"}, err: "--rw needs a directory, not an empty string"},
		{args: []string{"--wr", "/a", "prog"}, err: "unknown option --wr"},
	} {
		got, err := Parse(c.args)
		if c.err != "" {
			var ue *UsageError
			require.ErrorAs(t, err, &ue, "%q", c.args)
			assert.EqualError(t, err, c.err, "%q", c.args)
			continue
		}
		require.NoError(t, err, "%q", c.args)
		assert.Equal(t, c.want, got, "%q", c.args)
	}
	many := []string{}
	for range bpfsandbox.MaxFSMapEntries + 1 {
		many = append(many, "--ro", "/")
	}
	_, err := Parse(append(many, "prog"))
	assert.EqualError(t, err, fmt.Sprintf("%d --ro directories: at most %d", bpfsandbox.MaxFSMapEntries+1, bpfsandbox.MaxFSMapEntries))
}

// fake is a System that records what Run asked of it.
type fake struct {
	version    int
	versionErr error
	nnpErr     error
	applyErr   error
	execErr    error
	unprivBPF  string
	unprivErr  error
	applied    [][]string
	execed     []string
	execPath   string
	calls      []string // "nnp", "apply", "exec" in the order Run made them
}

func (f *fake) system() System {
	return System{
		ABIVersion: func() (int, error) { return f.version, f.versionErr },
		SetNoNewPrivs: func() error {
			f.calls = append(f.calls, "nnp")
			return f.nnpErr
		},
		Apply: func(rw, ro []string) error {
			f.calls = append(f.calls, "apply")
			f.applied = [][]string{rw, ro}
			return f.applyErr
		},
		UnprivBPF: func() (string, error) { return f.unprivBPF, f.unprivErr },
		LookPath: func(file string) (string, error) {
			if file == "missing" {
				return "", errors.New(`exec: "missing": executable file not found in $PATH`)
			}
			return "/usr/bin/" + file, nil
		},
		Exec: func(path string, argv, env []string) error {
			f.calls = append(f.calls, "exec")
			f.execPath, f.execed = path, argv
			return f.execErr
		},
	}
}

// run runs Run in its own goroutine (Run locks it to its thread) and
// returns the exit status and what it printed.
func run(t *testing.T, f *fake, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	done := make(chan int)
	go func() { done <- Run(args, &stderr, f.system()) }()
	return <-done, stderr.String()
}

func TestRunExecsTheProgram(t *testing.T) {
	rw, ro := t.TempDir(), t.TempDir()
	f := &fake{version: 3}
	code, out := run(t, f, "--rw", rw, "--ro", ro, "--", "sh", "-c", "echo hi")
	assert.Zero(t, code, out)
	assert.Empty(t, out)
	assert.Equal(t, [][]string{{rw}, {ro}}, f.applied)
	assert.Equal(t, "/usr/bin/sh", f.execPath)
	assert.Equal(t, []string{"sh", "-c", "echo hi"}, f.execed)
}

func TestRunMakesDirectoriesAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.Mkdir("sub", 0o755))
	f := &fake{version: 4}
	code, out := run(t, f, "--rw", "sub", "--rw", "./sub/../sub", "prog")
	require.Zero(t, code, out)
	assert.Equal(t, [][]string{{filepath.Join(dir, "sub"), filepath.Join(dir, "sub")}, nil}, f.applied)
}

// TestTooOldKernel: the message names what the running kernel lacks, and
// nothing is applied.
func TestTooOldKernel(t *testing.T) {
	for _, c := range []struct {
		version int
		err     error
		want    string
	}{
		{2, nil, "landlock-bpf-sandbox: the running kernel reports Landlock eBPF ABI version 2; this needs version 3 (BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath)\n"},
		{1, nil, "landlock-bpf-sandbox: the running kernel reports Landlock eBPF ABI version 1; this needs version 3 (BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath)\n"},
		{0, fmt.Errorf("seccomp(...): %w", unix.EINVAL), "landlock-bpf-sandbox: the running kernel has no Landlock eBPF rules (CONFIG_SECURITY_LANDLOCK_BPF): seccomp(2) does not know SECCOMP_APPEND_LANDLOCK_RULE (seccomp(...): invalid argument); this needs Landlock eBPF ABI version 3 (BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath)\n"},
	} {
		f := &fake{version: c.version, versionErr: c.err}
		code, out := run(t, f, "--rw", t.TempDir(), "prog")
		assert.Equal(t, ExitUnsupported, code)
		assert.Equal(t, c.want, out)
		assert.Nil(t, f.applied, "applied on a kernel that cannot")
		assert.Nil(t, f.execed, "executed unconfined")
	}
}

func TestRunUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--rw", "/nonexistent/landlock", "prog"}, "landlock-bpf-sandbox: --rw /nonexistent/landlock: no such directory\n"},
		{[]string{"--ro", "/nonexistent/landlock", "prog"}, "landlock-bpf-sandbox: --ro /nonexistent/landlock: no such directory\n"},
		{[]string{"--rw", file, "prog"}, "landlock-bpf-sandbox: --rw " + file + ": not a directory\n"},
		{[]string{"--bogus"}, "landlock-bpf-sandbox: unknown option --bogus\n" + Usage},
		{nil, "landlock-bpf-sandbox: no PROGRAM to run\n" + Usage},
	} {
		f := &fake{version: 3}
		code, out := run(t, f, c.args...)
		assert.Equal(t, ExitUsage, code, "%q", c.args)
		assert.Equal(t, c.want, out, "%q", c.args)
		assert.Nil(t, f.applied)
	}
}

func TestRunHelp(t *testing.T) {
	code, out := run(t, &fake{}, "-h")
	assert.Zero(t, code)
	assert.Equal(t, Usage, out)
}

func TestRunNotPermitted(t *testing.T) {
	f := &fake{version: 3, applyErr: fmt.Errorf("appending the Landlock rule with seccomp(SECCOMP_APPEND_LANDLOCK_RULE): %w", unix.EPERM)}
	code, out := run(t, f, "--rw", t.TempDir(), "prog")
	assert.Equal(t, ExitNotPermitted, code)
	assert.Contains(t, out, "landlock-bpf-sandbox: not permitted: appending the Landlock rule")
	assert.Contains(t, out, "; in Landlock eBPF ABI version 3, creating the map and loading the rule need CAP_BPF and appending the rule needs CAP_SYS_ADMIN (run as root)\n")
	assert.NotContains(t, out, "unprivileged_bpf_disabled", "version 3 has no unprivileged mode")
	assert.Nil(t, f.execed, "executed unconfined")
}

// TestNoNewPrivsFromVersion4: from ABI version 4 Run sets no_new_privs
// before it applies the rule (the append needs it without CAP_SYS_ADMIN,
// and PROGRAM inherits it); below, it does not.
func TestNoNewPrivsFromVersion4(t *testing.T) {
	for _, c := range []struct {
		version int
		want    []string
	}{
		{3, []string{"apply", "exec"}},
		{4, []string{"nnp", "apply", "exec"}},
		{5, []string{"nnp", "apply", "exec"}},
	} {
		f := &fake{version: c.version}
		code, out := run(t, f, "--rw", t.TempDir(), "prog")
		assert.Zero(t, code, out)
		assert.Equal(t, c.want, f.calls, "version %d", c.version)
	}
	f := &fake{version: 4, nnpErr: errors.New("prctl(PR_SET_NO_NEW_PRIVS, 1): EINVAL (invalid argument)")}
	code, out := run(t, f, "--rw", t.TempDir(), "prog")
	assert.Equal(t, ExitFailed, code)
	assert.Equal(t, "landlock-bpf-sandbox: setting no_new_privs: prctl(PR_SET_NO_NEW_PRIVS, 1): EINVAL (invalid argument)\n", out)
	assert.Equal(t, []string{"nnp"}, f.calls, "applied or executed without no_new_privs")
}

// TestRunNotPermittedVersion4: from version 4, an EPERM of bpf(2) names
// the sysctl to set, with its value; one of the append says what it
// needs.
func TestRunNotPermittedVersion4(t *testing.T) {
	bpfErr := &bpfsandbox.BPFError{Err: fmt.Errorf("creating a BPF_MAP_TYPE_LANDLOCK_FS map (type 34, 1 entries) with bpf(BPF_MAP_CREATE): %w", unix.EPERM)}
	loadErr := &bpfsandbox.BPFError{Err: fmt.Errorf("loading the Landlock rule (BPF_PROG_TYPE_LANDLOCK, 33) (EPERM): %w", unix.EPERM)}
	for _, c := range []struct {
		name      string
		applyErr  error
		unprivBPF string
		unprivErr error
		want      []string
	}{
		{"map, sysctl 2", fmt.Errorf("the --rw map: %w", bpfErr), "2", nil, []string{
			"landlock-bpf-sandbox: not permitted: the --rw map: creating a BPF_MAP_TYPE_LANDLOCK_FS map",
			"without CAP_BPF, creating the map and loading the rule need the sysctl kernel.unprivileged_bpf_disabled = 0 (it is 2): as root, sysctl -w kernel.unprivileged_bpf_disabled=0\n"}},
		{"load, sysctl 2", loadErr, "2", nil, []string{
			"landlock-bpf-sandbox: not permitted: loading the Landlock rule", "kernel.unprivileged_bpf_disabled = 0 (it is 2)"}},
		{"sysctl 1", bpfErr, "1", nil, []string{
			"kernel.unprivileged_bpf_disabled = 0, and it is 1, which cannot be changed until the next boot: boot with sysctl.kernel.unprivileged_bpf_disabled=0 on the kernel command line, or run as root\n"}},
		{"sysctl 0", bpfErr, "0", nil, []string{
			"(the sysctl kernel.unprivileged_bpf_disabled is 0 already: something else refused it)\n"}},
		{"sysctl unreadable", bpfErr, "", errors.New("open /proc/sys/kernel/unprivileged_bpf_disabled: no such file or directory"), []string{
			"need the sysctl kernel.unprivileged_bpf_disabled = 0 (reading it: open /proc/sys/kernel/unprivileged_bpf_disabled: no such file or directory)"}},
		{"append", fmt.Errorf("appending the Landlock rule with seccomp(SECCOMP_APPEND_LANDLOCK_RULE): %w", unix.EPERM), "0", nil, []string{
			"landlock-bpf-sandbox: not permitted: appending the Landlock rule",
			"in Landlock eBPF ABI version 4, appending the rule needs no_new_privs (which landlock-bpf-sandbox set) or CAP_SYS_ADMIN\n"}},
	} {
		f := &fake{version: 4, applyErr: c.applyErr, unprivBPF: c.unprivBPF, unprivErr: c.unprivErr}
		code, out := run(t, f, "--rw", t.TempDir(), "prog")
		assert.Equal(t, ExitNotPermitted, code, c.name)
		for _, w := range c.want {
			assert.Contains(t, out, w, c.name)
		}
		assert.Nil(t, f.execed, "%s: executed unconfined", c.name)
	}
}

func TestRunSetupFails(t *testing.T) {
	f := &fake{version: 3, applyErr: fmt.Errorf("creating a map: %w", unix.EINVAL)}
	code, out := run(t, f, "prog")
	assert.Equal(t, ExitFailed, code)
	assert.Equal(t, "landlock-bpf-sandbox: setting up the sandbox: creating a map: invalid argument\n", out)
	assert.Nil(t, f.execed, "executed unconfined")
}

func TestRunProgramNotFound(t *testing.T) {
	f := &fake{version: 3}
	code, out := run(t, f, "missing")
	assert.Equal(t, ExitNotFound, code)
	assert.Contains(t, out, "landlock-bpf-sandbox: missing: exec: ")
	assert.Nil(t, f.applied)
}

func TestRunExecFails(t *testing.T) {
	f := &fake{version: 3, execErr: unix.EPERM}
	code, out := run(t, f, "--ro", t.TempDir(), "prog")
	assert.Equal(t, ExitCannotExec, code)
	assert.Equal(t, "landlock-bpf-sandbox: executing /usr/bin/prog: operation not permitted (with --ro, PROGRAM must be beneath a --ro or --rw directory)\n", out)
	f = &fake{version: 3, execErr: unix.ENOENT}
	code, _ = run(t, f, "prog")
	assert.Equal(t, ExitNotFound, code)
}
