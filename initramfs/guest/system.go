package guest

import (
	"os/exec"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// System is the operating system as Init needs it, and no more: the
// kernel's facts, mounts, the result channel, a command on the console,
// and the end of the machine. Linux (system_linux.go) is the real one;
// tests use a fake.
//
// The test binaries themselves are not run through System: Runner starts
// them with os/exec, which the tests exercise on the host for real.
type System interface {
	// Cmdline returns the kernel command line (/proc/cmdline).
	Cmdline() (string, error)
	// Uname returns the running kernel's release and version.
	Uname() (release, version string, err error)
	// Mount is mount(2).
	Mount(source, target, fstype string, flags uintptr, data string) error
	// Unmount is umount2(2) with MNT_DETACH.
	Unmount(target string) error
	// OpenResults puts the terminal dev in raw mode (no newline
	// translation, no echo) and opens the result channel on it.
	OpenResults(dev string) (Results, error)
	// Run runs cmd to its end (the interactive shell on the console).
	Run(cmd *exec.Cmd) error
	// Kmemleak writes cmd ("scan", "clear") to the kernel's memory leak
	// detector, or with an empty cmd reads what it suspects; an error
	// that wraps fs.ErrNotExist means the kernel has no kmemleak
	// (CONFIG_DEBUG_KMEMLEAK) or it is off.
	Kmemleak(cmd string) (string, error)
	// SetOOMScoreAdj writes adj to the oom_score_adj of process pid, 0
	// for the caller: the runner makes itself the OOM killer's last
	// choice (-1000) and each test binary an ordinary one (0) again.
	SetOOMScoreAdj(pid, adj int) error
	// SetConsoleLogLevel sets the kernel's console log level: messages
	// of a lower level number than level reach the console.
	SetConsoleLogLevel(level int) error
	// Reboot flushes the filesystems and restarts the machine (QEMU runs
	// with -no-reboot, so that ends the VM). It returns only if that
	// failed.
	Reboot() error
}

// Results is the result channel to the host.
type Results interface {
	// Emit sends one event.
	Emit(event.Event) error
	// Close sends the "done" marker, without which the host knows the
	// guest did not finish, and closes the channel.
	Close() error
}
