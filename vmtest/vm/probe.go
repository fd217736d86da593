package vm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/machine"
)

// ProbeMarker is what a kernel prints when it booted all the way to looking
// for its root file system: the probe boots the kernel with no initramfs
// and waits for this panic.
const ProbeMarker = "Kernel panic - not syncing"

// Probe is the accelerator probe: it boots the kernel under KVM with no
// initramfs for at most timeout and keeps KVM only when the kernel got as
// far as its root-fs panic. /dev/kvm existing is not enough: on some hosts
// it opens, and guests hang on it. The verdict and why come back; TCG is
// the fallback.
type Probe struct {
	// Machine is the guest architecture; QEMU, when set, replaces its
	// QEMU binary.
	Machine machine.Machine
	QEMU    string
	Kernel  string
	Timeout time.Duration
	// CacheFile, if set, remembers the verdict for this kernel, QEMU and
	// host boot, so that warm runs do not pay the probe.
	CacheFile string
}

// Run runs the probe.
func (p Probe) Run(ctx context.Context) (Accel, string) {
	if p.Machine.Name != "" && !p.Machine.CanUse(string(KVM)) {
		return TCG, fmt.Sprintf("the %s machine has no KVM on this host", p.Machine.Name)
	}
	if p.CacheFile != "" {
		if b, err := os.ReadFile(p.CacheFile); err == nil {
			acc, why, _ := strings.Cut(string(b), "\n")
			if acc == string(KVM) || acc == string(TCG) {
				return Accel(acc), why + " (probe result cached for this host boot)"
			}
		}
	}
	acc, why := p.run(ctx)
	if p.CacheFile != "" {
		if err := os.MkdirAll(filepath.Dir(p.CacheFile), 0o755); err == nil {
			_ = os.WriteFile(p.CacheFile, []byte(string(acc)+"\n"+why), 0o644)
		}
	}
	return acc, why
}

func (p Probe) run(ctx context.Context) (Accel, string) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	qemu, console := p.QEMU, "ttyS0"
	if p.Machine.Name != "" {
		console = p.Machine.Console
		if qemu == "" {
			qemu = p.Machine.QEMU
		}
	}
	args := append(append([]string(nil), p.Machine.Machine...),
		"-accel", "kvm", "-cpu", "host", "-m", "128", "-nodefaults",
		"-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
		"-kernel", p.Kernel, "-append", "console="+console+" panic=-1 loglevel=1")
	cmd := exec.CommandContext(ctx, qemu, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	text := out.String()
	if strings.Contains(text, ProbeMarker) {
		return KVM, fmt.Sprintf("KVM probe booted the kernel in %s", took)
	}
	if ctx.Err() != nil {
		return TCG, fmt.Sprintf("KVM probe: the kernel did not boot under KVM within %s; using TCG", p.Timeout)
	}
	return TCG, fmt.Sprintf("KVM probe failed (%v): %s; using TCG", err, firstLine(text))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return "no output"
	}
	return s
}
