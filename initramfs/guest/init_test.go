package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// fakeSystem is a System that records what Init asks of it, in order, in
// journal: "mount <source> <target> <fstype>", "open <dev>", "emit <kind>",
// "close", "run <path>", "kmemleak <cmd>", "reboot".
type fakeSystem struct {
	cmdline string
	// consoleLevel is the console log level the runner set.
	consoleLevel int
	// mountErr, when set, says how a mount fails.
	mountErr func(source, target, fstype string) error
	openErr  error
	// emitErr, when set, makes Emit fail for the events it matches.
	emitErr  func(event.Event) error
	closeErr error
	runErr   error
	// kmemleak, when set, is the kernel's memory leak detector: it gets
	// Kmemleak's cmd (empty for a read), which the journal records as
	// "kmemleak <cmd>" ("kmemleak read"). Unset, the kernel has none.
	kmemleak func(cmd string) (string, error)

	mu      sync.Mutex
	journal []string
	// oom records SetOOMScoreAdj's calls, "pid adj", apart from the
	// journal.
	oom    []string
	events []event.Event
	mounts [][4]string // source, target, fstype, data
	flags  []uintptr
	ran    []*exec.Cmd
}

func (s *fakeSystem) record(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal = append(s.journal, fmt.Sprintf(format, args...))
}

func (s *fakeSystem) Cmdline() (string, error) { return s.cmdline, nil }

func (s *fakeSystem) Uname() (string, string, error) {
	return "6.12.0-landlock", "#1 SMP PREEMPT_DYNAMIC", nil
}

func (s *fakeSystem) Mount(source, target, fstype string, flags uintptr, data string) error {
	s.record("mount %s %s %s", source, target, fstype)
	s.mu.Lock()
	s.mounts = append(s.mounts, [4]string{source, target, fstype, data})
	s.flags = append(s.flags, flags)
	s.mu.Unlock()
	if s.mountErr != nil {
		return s.mountErr(source, target, fstype)
	}
	return nil
}

func (s *fakeSystem) Unmount(target string) error {
	s.record("umount %s", target)
	return nil
}

func (s *fakeSystem) OpenResults(dev string) (Results, error) {
	s.record("open %s", dev)
	if s.openErr != nil {
		return nil, s.openErr
	}
	return fakeResults{s}, nil
}

func (s *fakeSystem) Run(cmd *exec.Cmd) error {
	s.record("run %s", cmd.Path)
	s.mu.Lock()
	s.ran = append(s.ran, cmd)
	s.mu.Unlock()
	return s.runErr
}

func (s *fakeSystem) Kmemleak(cmd string) (string, error) {
	if s.kmemleak == nil {
		return "", fmt.Errorf("open /sys/kernel/debug/kmemleak: %w", fs.ErrNotExist)
	}
	s.record("kmemleak %s", or(cmd, "read"))
	return s.kmemleak(cmd)
}

func (s *fakeSystem) SetOOMScoreAdj(pid, adj int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oom = append(s.oom, fmt.Sprintf("%d %d", pid, adj))
	return nil
}

func (s *fakeSystem) SetConsoleLogLevel(level int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consoleLevel = level
	return nil
}

func (s *fakeSystem) Reboot() error {
	s.record("reboot")
	return nil
}

func (s *fakeSystem) all() ([]string, []event.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.journal...), append([]event.Event(nil), s.events...)
}

type fakeResults struct{ s *fakeSystem }

func (r fakeResults) Emit(e event.Event) error {
	if r.s.emitErr != nil {
		if err := r.s.emitErr(e); err != nil {
			return err
		}
	}
	r.s.record("emit %s", e.Kind)
	r.s.mu.Lock()
	r.s.events = append(r.s.events, e)
	r.s.mu.Unlock()
	return nil
}

func (r fakeResults) Close() error {
	r.s.record("close")
	return r.s.closeErr
}

// initRun runs Init.Main with sys and a manifest (none when m is empty)
// and returns the log, the console and Main's error.
func initRun(t *testing.T, sys *fakeSystem, m string, set func(*Init)) (logged, console string, err error) {
	t.Helper()
	dir := t.TempDir()
	var logBuf, out syncBuffer
	in := &Init{
		Sys:           sys,
		Log:           log.New(&logBuf, "landlock-vmtest runner: ", 0),
		Console:       &out,
		ManifestPath:  filepath.Join(dir, "manifest.json"),
		Test2JSON:     filepath.Join(dir, "no-test2json"),
		GcovDir:       filepath.Join(dir, "gcov"),
		KselftestRoot: filepath.Join(dir, "kselftest-root"),
	}
	if m != "" {
		require.NoError(t, os.WriteFile(in.ManifestPath, []byte(m), 0o644))
	}
	if set != nil {
		set(in)
	}
	err = in.Main()
	return logBuf.String(), out.String(), err
}

// kinds lists the events' kinds.
func kinds(events []event.Event) []event.Kind {
	var out []event.Kind
	for _, e := range events {
		out = append(out, e.Kind)
	}
	return out
}

// calls filters the journal's emit entries out: what is left are the
// System calls in order.
func calls(journal []string) []string {
	var out []string
	for _, j := range journal {
		if !strings.HasPrefix(j, "emit ") {
			out = append(out, j)
		}
	}
	return out
}

func TestInitRun(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	mixed := f.binary("mixed")
	m := fmt.Sprintf(`{"binaries": [{"package": %q, "path": %q, "dir": %q}], "timeout": "1m"}`, mixed.Package, mixed.Path, mixed.Dir)
	sys := &fakeSystem{cmdline: "console=ttyS0 quiet landlock_vmtest.other=1\n"}
	logged, console, err := initRun(t, sys, m, func(in *Init) { in.Test2JSON = f.test2json })
	require.NoError(t, err)
	assert.Empty(t, logged)

	journal, events := sys.all()
	assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1", "close", "reboot"}, calls(journal))
	// u-root's init quietened the console to warnings; the runner lets
	// the kernel's informational lines (a hung task's stack) through.
	assert.Equal(t, 7, sys.consoleLevel)
	// Every event is emitted between the open and the close.
	require.Equal(t, "open /dev/ttyS1", journal[4])
	require.Equal(t, []string{"close", "reboot"}, journal[len(journal)-2:])
	for _, j := range journal[5 : len(journal)-2] {
		assert.True(t, strings.HasPrefix(j, "emit "), j)
	}

	require.NotEmpty(t, events)
	hello := events[0]
	assert.Equal(t, event.KindHello, hello.Kind)
	assert.False(t, hello.Time.IsZero())
	assert.Equal(t, map[string]string{
		"release": "6.12.0-landlock",
		"version": "#1 SMP PREEMPT_DYNAMIC",
		"cmdline": "console=ttyS0 quiet landlock_vmtest.other=1",
		"cpus":    strconv.Itoa(runtime.NumCPU()),
	}, hello.Info)

	runs := split(t, events[1:])
	require.Len(t, runs, 1)
	assert.Equal(t, mixed.Package, runs[0].pkg)
	assert.Equal(t, map[string]string{"TestPass": "pass", "TestFail": "fail", "TestSkip": "skip", "": "fail"}, results(runs[0].tests))
	assert.Equal(t, 1, runs[0].exit.Code)
	assert.Contains(t, console, "landlock-vmtest: running "+mixed.Package+" (timeout 1m0s)")
	assert.NotContains(t, console, "GCOV")
}

func TestInitShell(t *testing.T) {
	t.Parallel()
	for _, cmdline := range []string{"console=ttyS0 landlock_vmtest.shell", "landlock_vmtest.shell=1 quiet"} {
		sys := &fakeSystem{cmdline: cmdline, runErr: errors.New("exit status 1")}
		logged, console, err := initRun(t, sys, `{"binaries": [], "timeout": "1m"}`, nil)
		require.NoError(t, err, cmdline)
		journal, events := sys.all()
		assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "run /bin/gosh", "reboot"}, journal, cmdline)
		assert.Empty(t, events, "no result channel, no tests in shell mode")
		require.Len(t, sys.ran, 1)
		cmd := sys.ran[0]
		assert.Equal(t, []string{"/bin/gosh"}, cmd.Args)
		assert.Same(t, os.Stdin, cmd.Stdin)
		assert.Same(t, os.Stdout, cmd.Stdout)
		assert.Same(t, os.Stderr, cmd.Stderr)
		assert.Contains(t, cmd.Env, "TERM=linux")
		assert.Contains(t, cmd.Env, contract.GuestEnv+"=1")
		assert.Contains(t, console, "landlock-vmtest: shell mode; tests are in /tests, run one with: cd /tests/<n> && ./<pkg>.test -test.v; exit ends the VM\n")
		assert.Equal(t, "landlock-vmtest runner: shell: exit status 1\n", logged)
	}

	// A flag that only starts like it is another flag.
	sys := &fakeSystem{cmdline: "landlock_vmtest.shellfish"}
	_, _, _ = initRun(t, sys, "", nil)
	journal, _ := sys.all()
	assert.NotContains(t, journal, "run /bin/gosh")
	assert.Contains(t, journal, "open /dev/ttyS1")
}

func TestInitUnreadableManifest(t *testing.T) {
	t.Parallel()
	for name, m := range map[string]string{
		"absent":     "",
		"bad JSON":   `{"binaries": [`,
		"no timeout": `{"binaries": []}`,
	} {
		sys := &fakeSystem{}
		logged, _, err := initRun(t, sys, m, nil)
		require.NoError(t, err, "%s: an unreadable manifest is reported to the host, not a runner error", name)
		assert.Empty(t, logged, name)
		journal, events := sys.all()
		assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1", "emit hello", "emit error", "close", "reboot"}, journal, name)
		require.Len(t, events, 2, name)
		assert.Empty(t, events[1].Binary, name)
		assert.False(t, events[1].Time.IsZero(), name)
		assert.Contains(t, events[1].Error, "test manifest", name)
	}
}

func TestInitResultPort(t *testing.T) {
	t.Parallel()
	for cmdline, want := range map[string]string{
		"":                                  "/dev/ttyS1",
		"console=ttyS0":                     "/dev/ttyS1",
		"landlock_vmtest.results=/dev/hvc0": "/dev/hvc0",
		"console=hvc1 landlock_vmtest.results=/dev/hvc0 quiet\n":              "/dev/hvc0",
		"landlock_vmtest.results=":                                            "/dev/ttyS1",
		"landlock_vmtest.results":                                             "/dev/ttyS1",
		"landlock_vmtest.resultsx=/dev/hvc0":                                  "/dev/ttyS1",
		"landlock_vmtest.results=/dev/hvc0 landlock_vmtest.results=/dev/hvc1": "/dev/hvc1",
	} {
		assert.Equal(t, want, ResultPort(cmdline), "%q", cmdline)
		sys := &fakeSystem{cmdline: cmdline}
		_, _, err := initRun(t, sys, "", nil)
		require.NoError(t, err, "%q", cmdline)
		journal, _ := sys.all()
		assert.Contains(t, journal, "open "+want, "%q", cmdline)
	}
	assert.Equal(t, contract.DefaultResultPort, ResultPort(""))
}

// A result channel that does not open, or fails, is logged, and the guest
// still reboots.
func TestInitResultChannelErrors(t *testing.T) {
	t.Parallel()
	m := `{"binaries": [], "timeout": "1m"}`
	boom := errors.New("boom")

	sys := &fakeSystem{openErr: fmt.Errorf("opening result channel /dev/ttyS1: %w", boom)}
	logged, _, err := initRun(t, sys, m, nil)
	require.ErrorIs(t, err, boom)
	assert.Equal(t, "landlock-vmtest runner: error: opening result channel /dev/ttyS1: boom\n", logged)
	journal, _ := sys.all()
	assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1", "reboot"}, journal)

	sys = &fakeSystem{emitErr: func(event.Event) error { return boom }}
	logged, _, err = initRun(t, sys, m, nil)
	require.ErrorIs(t, err, boom)
	assert.Equal(t, "landlock-vmtest runner: error: sending hello: boom\n", logged)
	journal, _ = sys.all()
	assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1", "reboot"}, journal)

	sys = &fakeSystem{closeErr: boom}
	logged, _, err = initRun(t, sys, m, nil)
	require.ErrorIs(t, err, boom)
	assert.Equal(t, "landlock-vmtest runner: error: closing result channel: boom\n", logged)
	journal, _ = sys.all()
	assert.Equal(t, []string{"close", "reboot"}, journal[len(journal)-2:])

	// debugfs or cgroup2 already mounted is no problem, and so is a
	// kernel without cgroups (ENODEV for cgroup2); another failure is
	// logged and the run goes on.
	for _, tc := range []struct {
		err  error
		want string
	}{
		{unix.EBUSY, ""},
		{unix.ENODEV, "landlock-vmtest runner: mounting debugfs: no such device\n"},
		{unix.ENOENT, "landlock-vmtest runner: mounting debugfs: no such file or directory\n" +
			"landlock-vmtest runner: mounting cgroup2 on /sys/fs/cgroup: no such file or directory\n"},
		{unix.EPERM, "landlock-vmtest runner: mounting debugfs: operation not permitted\n" +
			"landlock-vmtest runner: mounting cgroup2 on /sys/fs/cgroup: operation not permitted\n" +
			"landlock-vmtest runner: mounting bpf on /sys/fs/bpf: operation not permitted\n" +
			"landlock-vmtest runner: mounting tracefs on /sys/kernel/tracing: operation not permitted\n"},
	} {
		sys = &fakeSystem{mountErr: func(string, string, string) error { return tc.err }}
		logged, _, err = initRun(t, sys, m, nil)
		require.NoError(t, err)
		assert.Equal(t, tc.want, logged)
		journal, _ = sys.all()
		assert.Equal(t, []string{"close", "reboot"}, journal[len(journal)-2:])
	}
}

func TestInitCoverage(t *testing.T) {
	t.Parallel()
	for _, coverage := range []bool{false, true} {
		sys := &fakeSystem{}
		m := fmt.Sprintf(`{"binaries": [], "timeout": "1m", "coverage": %v}`, coverage)
		var gcov string
		logged, console, err := initRun(t, sys, m, func(in *Init) {
			gcov = in.GcovDir
			require.NoError(t, os.MkdirAll(filepath.Join(gcov, "kernel"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(gcov, "kernel", "fork.gcda"), []byte("counters"), 0o644))
		})
		require.NoError(t, err)
		assert.Empty(t, logged)
		journal, events := sys.all()
		if !coverage {
			assert.Equal(t, []event.Kind{event.KindHello}, kinds(events))
			assert.NotContains(t, console, "GCOV")
			continue
		}
		assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1", "emit hello", "emit coverage", "close", "reboot"}, journal)
		require.Len(t, events, 2)
		require.NotNil(t, events[1].Chunk)
		assert.Equal(t, event.Chunk{Path: "kernel/fork.gcda", Part: 0, Parts: 1, Data: []byte("counters")}, *events[1].Chunk)
		assert.Contains(t, console, "landlock-vmtest: sent the GCOV counters of 1 file(s)\n")
	}
}

// The kselftests get their root; when it cannot be made, they run in the
// real root. Coverage comes after the tests' events, before the end.
func TestInitKselftests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := script(t, dir, "base_test", "echo 'TAP version 13'; echo '1..1'; echo 'ok 1 a.b'\n")
	m := fmt.Sprintf(`{"binaries": [{"package": %q, "path": %q, "dir": %q, "kind": "kselftest"}], "timeout": "1m", "coverage": true}`, b.Package, b.Path, b.Dir)
	sys := &fakeSystem{mountErr: func(source, target, fstype string) error {
		if fstype == "tmpfs" {
			return unix.EPERM
		}
		return nil
	}}
	var root string
	logged, console, err := initRun(t, sys, m, func(in *Init) { root = in.KselftestRoot })
	require.NoError(t, err)
	assert.Equal(t, "landlock-vmtest runner: kselftests run in the initramfs root: mounting a tmpfs on "+root+": operation not permitted\n", logged)
	journal, events := sys.all()
	assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1", "mount kselftest-root " + root + " tmpfs", "close", "reboot"}, calls(journal))

	ks := kinds(events)
	require.Equal(t, event.KindHello, ks[0])
	last := len(ks) - 1
	for ks[last] == event.KindCoverage {
		last--
	}
	assert.Less(t, last, len(ks)-1, "coverage events at the end: %v", ks)
	runs := split(t, events[1:last+1])
	require.Len(t, runs, 1)
	assert.Equal(t, map[string]string{"a.b": "pass", "": "pass"}, results(runs[0].tests))
	assert.Equal(t, 0, runs[0].exit.Code)
	assert.Contains(t, console, "landlock-vmtest: "+b.Package+": TAP plan 1, 1 passed, 0 failed, 0 skipped")
	assert.Contains(t, events[len(events)-1].Error, "no .gcda file")
}

func TestMakeRoot(t *testing.T) {
	t.Parallel()
	top := t.TempDir()
	for _, d := range []string{"bin", "proc", "tests"} {
		require.NoError(t, os.Mkdir(filepath.Join(top, d), 0o755))
	}
	require.NoError(t, os.Symlink("bin", filepath.Join(top, "sbin")))
	require.NoError(t, os.WriteFile(filepath.Join(top, "init"), nil, 0o755))
	dir := filepath.Join(top, "kselftest-root")

	sys := &fakeSystem{}
	require.NoError(t, makeRoot(sys, top, dir))
	j := func(name string) string { return filepath.Join(top, name) }
	assert.Equal(t, [][4]string{
		{"kselftest-root", dir, "tmpfs", "mode=0755"},
		{j("bin"), filepath.Join(dir, "bin"), "", ""},
		{j("proc"), filepath.Join(dir, "proc"), "", ""},
		{j("tests"), filepath.Join(dir, "tests"), "", ""},
		{"", dir, "", ""},
	}, sys.mounts, "the root itself is not bind-mounted into itself")
	assert.Equal(t, []uintptr{0, unix.MS_BIND | unix.MS_REC, unix.MS_BIND | unix.MS_REC, unix.MS_BIND | unix.MS_REC, unix.MS_PRIVATE | unix.MS_REC}, sys.flags)
	target, err := os.Readlink(filepath.Join(dir, "sbin"))
	require.NoError(t, err)
	assert.Equal(t, "bin", target)
	assert.NoFileExists(t, filepath.Join(dir, "init"), "files are not copied")

	sys = &fakeSystem{mountErr: func(source, _, _ string) error {
		if source == j("proc") {
			return unix.EINVAL
		}
		return nil
	}}
	dir2 := filepath.Join(t.TempDir(), "root")
	err = makeRoot(sys, top, dir2)
	assert.EqualError(t, err, "bind-mounting "+j("proc")+" on "+filepath.Join(dir2, "proc")+": invalid argument")
}

func TestHasFlag(t *testing.T) {
	assert.True(t, hasFlag("a landlock_vmtest.shell b", contract.ShellFlag))
	assert.True(t, hasFlag("landlock_vmtest.shell=0", contract.ShellFlag), "any value")
	assert.False(t, hasFlag("landlock_vmtest.shellx", contract.ShellFlag))
	assert.False(t, hasFlag("", contract.ShellFlag))
}

func TestInitCommandUnhidesTmp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := fmt.Sprintf(`{"binaries": [{"package": "exec", "kind": "exec", "path": "/bin/sh", "dir": %q, "args": ["-c", "echo hi"]}], "timeout": "1m"}`, dir)
	sys := &fakeSystem{}
	logged, _, err := initRun(t, sys, m, nil)
	require.NoError(t, err)
	assert.Empty(t, logged)
	journal, events := sys.all()
	assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1", "umount /tmp", "close", "reboot"}, calls(journal))
	assert.Equal(t, "hi\n", streams(events)[event.Stdout])
}
