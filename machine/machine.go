// Package machine is the record of one guest architecture, as kunit_tool's
// QemuArchParams is: what the kernel build, the guest build and QEMU need
// to know about it. Everything architecture-specific in the harness reads
// a Machine; adding an architecture is adding one here (and its config
// fragment, kernel/configs/arch/<Name>.config).
package machine

import (
	"fmt"
	"sort"
	"strings"
)

// Machine describes one guest architecture.
type Machine struct {
	// Name is what ARCH= takes and what output and cache paths carry.
	Name string
	// KernelArch is the kernel's ARCH= for make, and SrcArch its
	// directory under arch/ in the tree.
	KernelArch, SrcArch string
	// CrossCompile is the kernel's CROSS_COMPILE= prefix, "" for a
	// native build.
	CrossCompile string
	// CrossPackage is the Debian package of the cross compiler.
	CrossPackage string
	// GOARCH is the guest's Go architecture (test binaries, the runner).
	GOARCH string
	// ImageTarget is the make target of the bootable image, Image its
	// path in the build directory, and ImageName the file name OUT keeps
	// it as.
	ImageTarget, Image, ImageName string
	// QEMU is the QEMU binary and QEMUPackage its Debian package.
	QEMU, QEMUPackage string
	// Machine are the QEMU arguments that choose the board ("" none).
	Machine []string
	// MaxCPUs, when set, is the most vCPUs the board takes (SMP=).
	MaxCPUs int
	// CPU is QEMU's -cpu for each accelerator the machine runs under.
	CPU map[string]string
	// Accels are the accelerators this machine can use on this host, in
	// the order the probe tries them; TCG is always last.
	Accels []string
	// Console is the guest's console device (console=), on QEMU's first
	// -serial.
	Console string
	// ResultPort is the guest device the runner writes its events to.
	ResultPort string
	// ResultDevice are the QEMU arguments that attach the host's result
	// chardev (its id is substituted for %s) as ResultPort.
	ResultDevice []string
	// Cmdline are kernel arguments the machine needs to end QEMU (run
	// with -no-reboot) when the guest reboots.
	Cmdline []string
	// IcountCmdline are kernel arguments the machine needs under QEMU's
	// instruction counting (ICOUNT=) for a clock that counts finer than
	// jiffies.
	IcountCmdline []string
	// Fragment is the machine's config fragment, relative to the
	// directory of config fragments (kernel/configs).
	Fragment string
	// UAPIDir is the architecture's UAPI header directory in the tree.
	UAPIDir string
	// AuditArch is the AUDIT_ARCH_* value seccomp reports for the
	// machine's native syscalls.
	AuditArch uint32
	// LibDir is Debian's multiarch library directory of the machine.
	LibDir string
}

// The machines the harness knows.
var machines = map[string]Machine{
	"x86_64": {
		Name:        "x86_64",
		KernelArch:  "x86_64",
		SrcArch:     "x86",
		GOARCH:      "amd64",
		ImageTarget: "bzImage",
		Image:       "arch/x86/boot/bzImage",
		ImageName:   "bzImage",
		QEMU:        "qemu-system-x86_64",
		QEMUPackage: "qemu-system-x86",
		CPU:         map[string]string{"kvm": "host", "tcg": "max"},
		Accels:      []string{"kvm", "tcg"},
		Console:     "ttyS0",
		// Under -icount the TSC counts the guest's virtual
		// nanoseconds: 1 GHz exactly. The guest has no HPET or ACPI
		// PM timer to calibrate it against, and marks it unstable
		// unless told its rate (it then keeps jiffies, 4 ms a tick).
		IcountCmdline: []string{"tsc_early_khz=1000000", "tsc=reliable"},
		// The second 8250 UART: no driver beyond the console's.
		ResultPort:   "/dev/ttyS1",
		ResultDevice: []string{"-serial", "chardev:%s"},
		// Without ACPI the kernel's default reboot methods take
		// minutes to give up; a triple fault ends QEMU at once.
		Cmdline:   []string{"reboot=t"},
		Fragment:  "arch/x86_64.config",
		UAPIDir:   "arch/x86/include/uapi",
		AuditArch: 0xc000003e,
		LibDir:    "/usr/lib/x86_64-linux-gnu",
	},
	"arm64": {
		Name:         "arm64",
		KernelArch:   "arm64",
		SrcArch:      "arm64",
		CrossCompile: "aarch64-linux-gnu-",
		CrossPackage: "gcc-aarch64-linux-gnu",
		GOARCH:       "arm64",
		ImageTarget:  "Image",
		Image:        "arch/arm64/boot/Image",
		ImageName:    "Image",
		QEMU:         "qemu-system-aarch64",
		QEMUPackage:  "qemu-system-arm",
		Machine:      []string{"-M", "virt"},
		// virt's default interrupt controller, a GICv2, serves 8.
		MaxCPUs: 8,
		CPU:     map[string]string{"tcg": "max"},
		// An x86 host has no KVM for arm64 guests.
		Accels:  []string{"tcg"},
		Console: "ttyAMA0",
		// QEMU 7.2's virt board has one non-secure UART: the result
		// channel is a virtio console on virtio-mmio, which needs no
		// PCI.
		ResultPort:   "/dev/hvc0",
		ResultDevice: []string{"-device", "virtio-serial-device", "-device", "virtconsole,chardev=%s"},
		// PSCI's SYSTEM_RESET ends QEMU under -no-reboot.
		Fragment:  "arch/arm64.config",
		UAPIDir:   "arch/arm64/include/uapi",
		AuditArch: 0xc00000b7,
		LibDir:    "/usr/lib/aarch64-linux-gnu",
	},
}

// Default is the machine of a run that names none: the host's own.
const Default = "x86_64"

// ByName returns the machine called name ("" is Default).
func ByName(name string) (Machine, error) {
	if name == "" {
		name = Default
	}
	// The kernel's and Go's names are accepted too.
	switch name {
	case "x86", "amd64":
		name = "x86_64"
	case "aarch64":
		name = "arm64"
	}
	m, ok := machines[name]
	if !ok {
		return Machine{}, fmt.Errorf("unknown ARCH=%s (known: %s)", name, strings.Join(Names(), ", "))
	}
	return m, nil
}

// Names lists the machines, sorted.
func Names() []string {
	var names []string
	for n := range machines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Native reports whether the kernel builds with the host's own compiler.
func (m Machine) Native() bool { return m.CrossCompile == "" }

// CanUse reports whether the machine can run under accel.
func (m Machine) CanUse(accel string) bool {
	for _, a := range m.Accels {
		if a == accel {
			return true
		}
	}
	return false
}

// ResultArgs are the QEMU arguments that attach chardev id as the
// result port.
func (m Machine) ResultArgs(id string) []string {
	out := make([]string, len(m.ResultDevice))
	for i, a := range m.ResultDevice {
		if strings.Contains(a, "%s") {
			a = fmt.Sprintf(a, id)
		}
		out[i] = a
	}
	return out
}

// MakeArgs are the make variables of a kernel build for the machine.
func (m Machine) MakeArgs() []string {
	args := []string{"ARCH=" + m.KernelArch}
	if m.CrossCompile != "" {
		args = append(args, "CROSS_COMPILE="+m.CrossCompile)
	}
	return args
}

// OrDefault is m, or the Default machine when m is the zero value (a
// request that names no machine).
func OrDefault(m Machine) Machine {
	if m.Name != "" {
		return m
	}
	return machines[Default]
}

// CPULimit is the most vCPUs a guest of m may have: its board's MaxCPUs,
// or limit (the kernel's) when the board says nothing or more.
func (m Machine) CPULimit(limit int) int {
	if m.MaxCPUs > 0 && m.MaxCPUs < limit {
		return m.MaxCPUs
	}
	return limit
}
