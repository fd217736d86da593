// Command runner is the guest side of landlock-vmtest: u-root's init starts
// it as uinit. It mounts what the tests need, opens the result channel on
// the second serial port, runs the test binaries of /tests/manifest.json
// through the guest package, sends the "done" marker and reboots (QEMU runs
// with -no-reboot, so the VM ends). With landlock_vmtest.shell on the
// kernel command line it does nothing, and init goes on to a shell.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	hguest "github.com/hugelgupf/vmtest/guest"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest"
)

// resultPort is the guest side of the result channel: the second 8250
// UART, which needs no driver beyond the serial console's.
const resultPort = "/dev/ttyS1"

func main() {
	log.SetPrefix("landlock-vmtest runner: ")
	log.SetFlags(0)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if hasFlag(string(cmdline), "landlock_vmtest.shell") {
		shell()
		return
	}
	err := run(string(cmdline))
	if err != nil {
		log.Printf("error: %v", err)
	}
	unix.Sync()
	// With -no-reboot, QEMU exits when the guest reboots. Power-off needs
	// ACPI, which the lean guest kernel does not have.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		log.Printf("reboot: %v", err)
	}
}

func hasFlag(cmdline, flag string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == flag || strings.HasPrefix(f, flag+"=") {
			return true
		}
	}
	return false
}

func mountDebugfs() {
	if err := unix.Mount("debugfs", "/sys/kernel/debug", "debugfs", 0, ""); err != nil && err != unix.EBUSY {
		log.Printf("mounting debugfs: %v", err)
	}
}

func run(cmdline string) error {
	mountDebugfs()
	if err := rawSerial(resultPort); err != nil {
		return err
	}
	ch, err := hguest.EventChannel[event.Event](resultPort)
	if err != nil {
		return fmt.Errorf("opening result channel %s: %w", resultPort, err)
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	hello := event.Event{Kind: event.KindHello, Time: time.Now(), Info: map[string]string{
		"release": unix.ByteSliceToString(uts.Release[:]),
		"version": unix.ByteSliceToString(uts.Version[:]),
		"cmdline": strings.TrimSpace(cmdline),
	}}
	if err := ch.Emit(hello); err != nil {
		return fmt.Errorf("sending hello: %w", err)
	}
	m, err := contract.ReadManifest(contract.ManifestPath)
	if err != nil {
		_ = ch.Emit(event.Event{Kind: event.KindError, Time: time.Now(), Error: err.Error()})
	} else {
		r := &guest.Runner{Test2JSON: "/bin/test2json", Emit: ch.Emit, Log: os.Stdout}
		if m.HasKselftests() {
			if err := makeRoot(kselftestRoot); err != nil {
				// The kselftests still run, in the real root; those
				// that pivot_root(2) will fail and say why.
				log.Printf("kselftests run in the initramfs root: %v", err)
			} else {
				r.KselftestRoot = kselftestRoot
			}
		}
		if err := r.Run(context.Background(), m); err != nil {
			_ = ch.Emit(event.Event{Kind: event.KindError, Time: time.Now(), Error: err.Error()})
		}
		if m.Coverage {
			n, err := guest.SendCoverage(guest.GcovDir, ch.Emit)
			if err != nil {
				log.Printf("sending coverage counters: %v", err)
			} else {
				fmt.Printf("landlock-vmtest: sent the GCOV counters of %d file(s)\n", n)
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

// kselftestRoot is where makeRoot puts the root for the kselftests.
const kselftestRoot = "/kselftest-root"

// makeRoot makes a root for the kselftests at dir: a tmpfs holding bind
// mounts (recursive: /proc, /sys, /dev, /tmp come with their submounts) of
// every top-level directory of /, and the same top-level symlinks. Chrooted
// there, a process's root is a mount with a parent, as on a disk-booted
// system, which pivot_root(2) needs; and it is its own filesystem, not
// rootfs: with a bind mount of rootfs's root instead, the old root that
// fs_test's rule_inside_mount_ns moves under the new one would be the very
// inode at the top of every path, and its rule would allow "/".
func makeRoot(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := unix.Mount("kselftest-root", dir, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", dir, err)
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return fmt.Errorf("listing /: %w", err)
	}
	for _, e := range entries {
		src, dst := "/"+e.Name(), filepath.Join(dir, e.Name())
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
			if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("bind-mounting %s on %s: %w", src, dst, err)
			}
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s private: %w", dir, err)
	}
	return nil
}

// rawSerial puts the result port in raw mode (no newline translation, no
// echo) at the fastest standard speed.
func rawSerial(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("opening result channel %s: %w", dev, err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("result channel %s: %w", dev, err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.B115200
	t.Ispeed, t.Ospeed = unix.B115200, unix.B115200
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("result channel %s: setting raw mode: %w", dev, err)
	}
	return nil
}

// shell runs the interactive shell on the console; when it ends, the
// guest reboots (QEMU exits).
func shell() {
	mountDebugfs()
	fmt.Println("landlock-vmtest: shell mode; tests are in /tests, run one with: cd /tests/<n> && ./<pkg>.test -test.v; exit ends the VM")
	cmd := exec.Command("/bin/gosh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "TERM=linux", contract.GuestEnv+"=1")
	if err := cmd.Run(); err != nil {
		log.Printf("shell: %v", err)
	}
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}
