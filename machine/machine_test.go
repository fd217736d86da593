package machine

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestByName(t *testing.T) {
	for name, want := range map[string]string{"": "x86_64", "x86_64": "x86_64", "amd64": "x86_64", "x86": "x86_64", "arm64": "arm64", "aarch64": "arm64"} {
		m, err := ByName(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, m.Name, name)
	}
	_, err := ByName("riscv64")
	assert.ErrorContains(t, err, "unknown ARCH=riscv64 (known: arm64, x86_64)")
}

// TestRecords: every machine says all that the harness reads of it, and
// the two known ones what their toolchains and QEMU need.
func TestRecords(t *testing.T) {
	for _, n := range Names() {
		m, err := ByName(n)
		require.NoError(t, err)
		for field, v := range map[string]string{
			"KernelArch": m.KernelArch, "SrcArch": m.SrcArch, "GOARCH": m.GOARCH,
			"ImageTarget": m.ImageTarget, "Image": m.Image, "ImageName": m.ImageName,
			"QEMU": m.QEMU, "QEMUPackage": m.QEMUPackage, "Console": m.Console,
			"ResultPort": m.ResultPort, "Fragment": m.Fragment, "UAPIDir": m.UAPIDir, "LibDir": m.LibDir,
		} {
			assert.NotEmpty(t, v, "%s.%s", n, field)
		}
		assert.NotZero(t, m.AuditArch, n)
		assert.Equal(t, "tcg", m.Accels[len(m.Accels)-1], "%s: TCG is the fallback", n)
		for _, a := range m.Accels {
			assert.NotEmpty(t, m.CPU[a], "%s: a CPU for %s", n, a)
		}
		assert.Equal(t, m.Native(), m.CrossPackage == "", "%s: a cross build names its compiler package", n)
		assert.FileExists(t, filepath.Join("..", "kernel", "configs", m.Fragment), "%s: its config fragment", n)
	}

	x86, _ := ByName("x86_64")
	assert.Equal(t, []string{"ARCH=x86_64"}, x86.MakeArgs())
	assert.Equal(t, []string{"-serial", "chardev:results"}, x86.ResultArgs("results"))
	assert.True(t, x86.CanUse("kvm"))
	assert.Equal(t, uint32(0xc000003e), x86.AuditArch)

	arm, _ := ByName("arm64")
	assert.Equal(t, []string{"ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"}, arm.MakeArgs())
	assert.Equal(t, []string{"-device", "virtio-serial-device", "-device", "virtconsole,chardev=r"}, arm.ResultArgs("r"))
	assert.False(t, arm.CanUse("kvm"))
	assert.Equal(t, uint32(0xc00000b7), arm.AuditArch)
	assert.Equal(t, "arch/arm64/boot/Image", arm.Image)
}

func TestOrDefault(t *testing.T) {
	assert.Equal(t, Default, OrDefault(Machine{}).Name)
	arm, _ := ByName("arm64")
	assert.Equal(t, "arm64", OrDefault(arm).Name)
}

// arm64's virt board (GICv2) takes 8 vCPUs; x86_64 says nothing and takes
// the kernel's limit.
func TestCPULimit(t *testing.T) {
	arm, err := ByName("arm64")
	require.NoError(t, err)
	x86, err := ByName("x86_64")
	require.NoError(t, err)
	assert.Equal(t, 8, arm.CPULimit(64))
	assert.Equal(t, 4, arm.CPULimit(4))
	assert.Equal(t, 64, x86.CPULimit(64))
}
