package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// The guest's paths, Init's defaults.
const (
	// DefaultTest2JSON is where the initramfs has test2json.
	DefaultTest2JSON = "/bin/test2json"
	// DefaultKselftestRoot is where Init makes the root for the
	// kselftests (makeRoot).
	DefaultKselftestRoot = "/kselftest-root"
	// shellPath is the interactive shell of shell mode.
	shellPath = "/bin/gosh"
	// debugfsDir is where debugfs goes (the GCOV counters are there).
	debugfsDir = "/sys/kernel/debug"
	// cgroup2Dir is where the cgroup v2 hierarchy goes, over the tmpfs
	// u-root's init leaves there (the series' cgroup tests use it).
	cgroup2Dir = "/sys/fs/cgroup"
	// bpffsDir and tracefsDir are where BPF test suites expect the BPF
	// file system (pinned objects) and tracefs.
	bpffsDir   = "/sys/fs/bpf"
	tracefsDir = "/sys/kernel/tracing"
	// tmpDir is where u-root's init mounts a tmpfs.
	tmpDir = "/tmp"
	// consoleLogLevel is the kernel's own default (CONSOLE_LOGLEVEL_DEFAULT):
	// messages up to informational reach the console.
	consoleLogLevel = 7
)

// Init is the guest side of a run, as u-root's init starts it (uinit).
// Main mounts what the tests need, opens the result channel, runs the test
// binaries of the manifest, sends the "done" marker and reboots. With
// contract.ShellFlag on the kernel command line it runs an interactive
// shell instead, and reboots when it ends.
type Init struct {
	// Sys is the operating system.
	Sys System
	// Log receives the runner's own problems (log.Default() when nil;
	// the runner's main gives it the "landlock-vmtest runner: " prefix).
	Log *log.Logger
	// Console receives progress lines (os.Stdout when nil).
	Console io.Writer

	// The paths below are the guest's when empty: contract.ManifestPath,
	// DefaultTest2JSON, GcovDir, DefaultKselftestRoot.
	ManifestPath  string
	Test2JSON     string
	GcovDir       string
	KselftestRoot string
	// Sleep is time.Sleep when nil (tests make it return at once).
	Sleep func(time.Duration)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (in *Init) log() *log.Logger {
	if in.Log == nil {
		return log.Default()
	}
	return in.Log
}

func (in *Init) console() io.Writer {
	if in.Console == nil {
		return os.Stdout
	}
	return in.Console
}

// Main is the whole run. Every problem is logged, and the machine reboots
// at the end; Main returns (the error that ended the run early, already
// logged) only when the reboot failed, or with a fake System.
func (in *Init) Main() error {
	cmdline, _ := in.Sys.Cmdline()
	if hasFlag(cmdline, contract.ShellFlag) {
		in.shell()
		return nil
	}
	err := in.run(cmdline)
	if err != nil {
		in.log().Printf("error: %v", err)
	}
	if rerr := in.Sys.Reboot(); rerr != nil {
		in.log().Printf("reboot: %v", rerr)
	}
	return err
}

// hasFlag reports whether the kernel command line has flag, alone or with
// a value.
func hasFlag(cmdline, flag string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == flag || strings.HasPrefix(f, flag+"=") {
			return true
		}
	}
	return false
}

// flagValue is the value of flag=value on the kernel command line (the
// last one, as the kernel's own parameters), or "" without one.
func flagValue(cmdline, flag string) string {
	v := ""
	for _, f := range strings.Fields(cmdline) {
		if s, ok := strings.CutPrefix(f, flag+"="); ok {
			v = s
		}
	}
	return v
}

// ResultPort is the guest device of the result channel that the kernel
// command line names (contract.ResultPortFlag), or
// contract.DefaultResultPort.
func ResultPort(cmdline string) string {
	return or(flagValue(cmdline, contract.ResultPortFlag), contract.DefaultResultPort)
}

// mountFilesystems mounts debugfs, the cgroup v2 hierarchy, the BPF file
// system and tracefs, where test suites look for them. One already mounted
// is no problem; a kernel without the file system (ENODEV), or without the
// directory sysfs makes for it (ENOENT, bpffs and tracefs), has none to
// mount, silently; any
// other failure is logged and the run goes on.
func (in *Init) mountFilesystems() {
	if err := in.Sys.Mount("debugfs", debugfsDir, "debugfs", 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
		in.log().Printf("mounting debugfs: %v", err)
	}
	for _, m := range []struct {
		source, dir, fstype string
		// sysfsDir: sysfs or debugfs makes dir only when the kernel
		// has the file system.
		sysfsDir bool
	}{
		{"cgroup2", cgroup2Dir, "cgroup2", false},
		{"bpf", bpffsDir, "bpf", true},
		{"tracefs", tracefsDir, "tracefs", true},
	} {
		err := in.Sys.Mount(m.source, m.dir, m.fstype, unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		if err != nil && !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.ENODEV) && !(m.sysfsDir && errors.Is(err, syscall.ENOENT)) {
			in.log().Printf("mounting %s on %s: %v", m.fstype, m.dir, err)
		}
	}
}

// run is the test run: hello, the tests' events, error events, the
// memory leaks kmemleak suspects after them (on a kernel that has it), the
// coverage counters when the manifest asks, then the "done" marker. It
// returns an error only when the result channel failed.
func (in *Init) run(cmdline string) error {
	// u-root's init keeps only messages above notice for the console;
	// the reports the host reads off it have informational parts (the
	// stack of a hung task, lockdep's locks held), so back to the
	// kernel's default: everything but debug.
	if err := in.Sys.SetConsoleLogLevel(consoleLogLevel); err != nil {
		in.log().Printf("setting the console log level to %d: %v", consoleLogLevel, err)
	}
	in.mountFilesystems()
	port := ResultPort(cmdline)
	ch, err := in.Sys.OpenResults(port)
	if err != nil {
		return err
	}
	release, version, _ := in.Sys.Uname()
	hello := event.Event{Kind: event.KindHello, Time: time.Now(), Info: map[string]string{
		"release": release,
		"version": version,
		"cmdline": strings.TrimSpace(cmdline),
		"cpus":    strconv.Itoa(runtime.NumCPU()),
	}}
	if err := ch.Emit(hello); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	m, err := contract.ReadManifest(or(in.ManifestPath, contract.ManifestPath))
	if err != nil {
		_ = ch.Emit(event.Event{Kind: event.KindError, Time: time.Now(), Error: err.Error()})
	} else {
		r := &Runner{Test2JSON: or(in.Test2JSON, DefaultTest2JSON), Emit: ch.Emit, Log: in.console()}
		// A test that exhausts the guest's memory must cost its own
		// binary, not the runner: the OOM killer takes the runner last,
		// and the binaries (whose children inherit theirs) as usual.
		if err := in.Sys.SetOOMScoreAdj(0, -1000); err != nil {
			in.log().Printf("keeping the runner from the OOM killer: %v", err)
		} else {
			r.Started = func(pid int) {
				if err := in.Sys.SetOOMScoreAdj(pid, 0); err != nil {
					in.log().Printf("oom_score_adj of test binary %d: %v", pid, err)
				}
			}
		}
		if m.HasCommand() {
			// exec packs the host files at their host paths, /tmp's
			// among them (go test's binaries are there): the tmpfs
			// u-root's init mounted on /tmp hides them. Without it,
			// /tmp is the initramfs's, as writable.
			if err := in.Sys.Unmount(tmpDir); err != nil && !errors.Is(err, syscall.EINVAL) {
				in.log().Printf("unmounting the tmpfs on %s, which hides the command's files there: %v", tmpDir, err)
			}
		}
		if m.HasKselftests() {
			root := or(in.KselftestRoot, DefaultKselftestRoot)
			if err := makeRoot(in.Sys, "/", root); err != nil {
				// The kselftests still run, in the real root; those
				// that pivot_root(2) will fail and say why.
				in.log().Printf("kselftests run in the initramfs root: %v", err)
			} else {
				r.KselftestRoot = root
			}
		}
		leaks := in.forgetLeaks()
		if err := r.Run(context.Background(), m); err != nil {
			_ = ch.Emit(event.Event{Kind: event.KindError, Time: time.Now(), Error: err.Error()})
		}
		if leaks {
			var ran []string
			for _, b := range m.Binaries {
				ran = append(ran, b.Package)
			}
			if err := in.reportLeaks(ran, time.Now(), ch.Emit); err != nil {
				in.log().Printf("sending the kmemleak report: %v", err)
			}
		}
		if m.Coverage {
			n, err := SendCoverage(or(in.GcovDir, GcovDir), ch.Emit)
			if err != nil {
				in.log().Printf("sending coverage counters: %v", err)
			} else {
				fmt.Fprintf(in.console(), "landlock-vmtest: sent the GCOV counters of %d file(s)\n", n)
			}
		}
	}
	// Close sends the "done" marker: without it the host knows the guest
	// did not finish.
	if err := ch.Close(); err != nil {
		return fmt.Errorf("closing result channel: %w", err)
	}
	return nil
}

// shell runs the interactive shell on the console; when it ends, the
// guest reboots (QEMU exits).
func (in *Init) shell() {
	in.mountFilesystems()
	fmt.Fprintln(in.console(), "landlock-vmtest: shell mode; tests are in /tests, run one with: cd /tests/<n> && ./<pkg>.test -test.v; exit ends the VM")
	cmd := exec.Command(shellPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "TERM=linux", contract.GuestEnv+"=1")
	if err := in.Sys.Run(cmd); err != nil {
		in.log().Printf("shell: %v", err)
	}
	_ = in.Sys.Reboot()
}

// makeRoot makes a root for the kselftests at dir: a tmpfs holding bind
// mounts (recursive: /proc, /sys, /dev, /tmp come with their submounts) of
// every top-level directory of top ("/"), and the same top-level symlinks.
// Chrooted there, a process's root is a mount with a parent, as on a
// disk-booted system, which pivot_root(2) needs; and it is its own
// filesystem, not rootfs: with a bind mount of rootfs's root instead, the
// old root that fs_test's rule_inside_mount_ns moves under the new one
// would be the very inode at the top of every path, and its rule would
// allow "/".
func makeRoot(sys System, top, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := sys.Mount("kselftest-root", dir, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", dir, err)
	}
	entries, err := os.ReadDir(top)
	if err != nil {
		return fmt.Errorf("listing %s: %w", top, err)
	}
	for _, e := range entries {
		src, dst := filepath.Join(top, e.Name()), filepath.Join(dir, e.Name())
		if src == dir {
			continue
		}
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return fmt.Errorf("reading symlink %s: %w", src, err)
			}
			if err := os.Symlink(target, dst); err != nil {
				return fmt.Errorf("creating symlink %s: %w", dst, err)
			}
		case e.IsDir():
			if err := os.Mkdir(dst, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", dst, err)
			}
			if err := sys.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("bind-mounting %s on %s: %w", src, dst, err)
			}
		}
	}
	if err := sys.Mount("", dir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s private: %w", dir, err)
	}
	return nil
}
