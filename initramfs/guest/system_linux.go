package guest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"

	hguest "github.com/hugelgupf/vmtest/guest"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// Linux is the real System.
type Linux struct{}

var _ System = Linux{}

// Cmdline reads /proc/cmdline.
func (Linux) Cmdline() (string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	return string(b), err
}

// Uname is uname(2)'s release and version.
func (Linux) Uname() (string, string, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", "", err
	}
	return unix.ByteSliceToString(uts.Release[:]), unix.ByteSliceToString(uts.Version[:]), nil
}

// Mount is mount(2).
func (Linux) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// Unmount is System.Unmount.
func (Linux) Unmount(target string) error {
	return unix.Unmount(target, unix.MNT_DETACH)
}

// OpenResults puts dev in raw mode and opens hugelgupf/vmtest's guest
// event emitter on it.
func (Linux) OpenResults(dev string) (Results, error) {
	if err := rawMode(dev); err != nil {
		return nil, err
	}
	ch, err := hguest.EventChannel[event.Event](dev)
	if err != nil {
		return nil, fmt.Errorf("opening result channel %s: %w", dev, err)
	}
	return ch, nil
}

// Run runs cmd.
func (Linux) Run(cmd *exec.Cmd) error { return cmd.Run() }

// Kmemleak writes cmd to, or reads, debugfs's kmemleak file (KmemleakFile).
func (Linux) Kmemleak(cmd string) (string, error) {
	if cmd == "" {
		b, err := os.ReadFile(KmemleakFile)
		return string(b), err
	}
	f, err := os.OpenFile(KmemleakFile, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(cmd); err != nil {
		f.Close()
		return "", fmt.Errorf("kmemleak %s: %w", cmd, err)
	}
	return "", f.Close()
}

// SetOOMScoreAdj writes /proc/PID/oom_score_adj (/proc/self for pid 0).
func (Linux) SetOOMScoreAdj(pid, adj int) error {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	return os.WriteFile("/proc/"+p+"/oom_score_adj", []byte(strconv.Itoa(adj)), 0)
}

// SetConsoleLogLevel is syslog(SYSLOG_ACTION_CONSOLE_LEVEL, NULL, level).
func (Linux) SetConsoleLogLevel(level int) error {
	if _, _, errno := unix.Syscall(unix.SYS_SYSLOG, unix.SYSLOG_ACTION_CONSOLE_LEVEL, 0, uintptr(level)); errno != 0 {
		return errno
	}
	return nil
}

// Reboot syncs and restarts. Power-off needs ACPI, which the lean x86_64
// guest kernel does not have; with -no-reboot, QEMU exits on a restart.
func (Linux) Reboot() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}

// rawMode puts the terminal dev in raw mode (no newline translation, no
// echo, 8 bits) at the fastest standard speed. A terminal that refuses the
// speed (a virtio console, /dev/hvc0, has none to speak of) is put in raw
// mode at its own speed: the speed is not worth failing the run for.
func rawMode(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("opening result channel %s: %w", dev, err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("result channel %s: %w", dev, err)
	}
	raw := *t
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8

	fast := raw
	fast.Cflag &^= unix.CBAUD
	fast.Cflag |= unix.B115200
	fast.Ispeed, fast.Ospeed = unix.B115200, unix.B115200
	if unix.IoctlSetTermios(fd, unix.TCSETS, &fast) == nil {
		return nil
	}
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return fmt.Errorf("result channel %s: setting raw mode: %w", dev, err)
	}
	return nil
}
