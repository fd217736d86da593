package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
)

func TestCmdlineAssembly(t *testing.T) {
	x86, err := machine.ByName("x86_64")
	require.NoError(t, err)
	c := Config{
		Machine:   x86,
		Kernel:    "/k/bzImage",
		Initramfs: "/k/initrd",
		Accel:     TCG,
		MemoryMB:  256,
		Append:    []string{"landlock_vmtest.shell"},
	}
	args, err := c.Cmdline("/tmp/results")
	require.NoError(t, err)
	line := strings.Join(args, " ")
	assert.Equal(t, "qemu-system-x86_64", args[0])
	for _, want := range []string{
		"-accel tcg -cpu max",
		"-m 256 -smp 1 -nodefaults",
		"-serial mon:stdio",
		"-no-reboot",
		"-chardev file,id=results,path=/tmp/results -serial chardev:results",
		"-kernel /k/bzImage",
		"-initrd /k/initrd",
	} {
		assert.Contains(t, line, want)
	}
	// The console must be the first serial port and the results the
	// second: the guest runner writes to ttyS1.
	assert.Less(t, strings.Index(line, "mon:stdio"), strings.Index(line, "chardev:results"))

	var appendArg string
	for i, a := range args {
		if a == "-append" {
			appendArg = args[i+1]
		}
	}
	assert.Equal(t, []string{"console=ttyS0", "panic=-1", "reboot=t", "landlock_vmtest.shell"}, strings.Fields(appendArg))

	c.Accel = KVM
	c.Append = nil
	args, err = c.Cmdline("")
	require.NoError(t, err)
	line = strings.Join(args, " ")
	assert.Contains(t, line, "-accel kvm -cpu host")
	assert.NotContains(t, line, "chardev")
	assert.NotContains(t, line, "-gdb")

	// GDB=1: the stub on a local port, the CPU stopped at reset.
	c.GDBPort = 4321
	args, err = c.Cmdline("")
	require.NoError(t, err)
	assert.Contains(t, strings.Join(args, " "), "-gdb tcp:127.0.0.1:4321 -S")
	c.GDBPort = 0
	for i, a := range args {
		if a == "-append" {
			assert.Equal(t, "console=ttyS0 panic=-1 reboot=t", args[i+1], "no trailing empty argument")
		}
	}

	c.Accel = "hvf"
	_, err = c.Cmdline("")
	assert.ErrorContains(t, err, `accelerator "hvf" cannot run the x86_64 machine`)
}

// TestCmdlineArm64: the arm64 machine's board, CPU, console, result port
// (a virtio console, named to the runner on the command line) and no
// x86 reboot argument; KVM is refused, as an x86 host has none for it.
func TestCmdlineArm64(t *testing.T) {
	arm, err := machine.ByName("arm64")
	require.NoError(t, err)
	c := Config{Machine: arm, Kernel: "/k/Image", Initramfs: "/k/initrd", Accel: TCG}
	args, err := c.Cmdline("/tmp/results")
	require.NoError(t, err)
	line := strings.Join(args, " ")
	assert.Equal(t, "qemu-system-aarch64", args[0])
	for _, want := range []string{
		"-M virt",
		"-accel tcg -cpu max",
		"-serial mon:stdio",
		"-chardev file,id=results,path=/tmp/results -device virtio-serial-device -device virtconsole,chardev=results",
		"-kernel /k/Image",
	} {
		assert.Contains(t, line, want)
	}
	var appendArg string
	for i, a := range args {
		if a == "-append" {
			appendArg = args[i+1]
		}
	}
	assert.Equal(t, []string{"console=ttyAMA0", "panic=-1", "landlock_vmtest.results=/dev/hvc0"}, strings.Fields(appendArg))

	c.Accel = KVM
	_, err = c.Cmdline("")
	assert.ErrorContains(t, err, `accelerator "kvm" cannot run the arm64 machine`)
}

func TestSlowdown(t *testing.T) {
	assert.Equal(t, 1, KVM.Slowdown())
	assert.Greater(t, TCG.Slowdown(), 1)
}

// fakeQEMU writes a script that stands in for QEMU in the probe.
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

func TestProbe(t *testing.T) {
	cases := []struct {
		name    string
		script  string
		want    Accel
		whyPart string
	}{
		{"kvm boots", `echo "Linux version 6.12"; echo "Kernel panic - not syncing: VFS: Unable to mount root fs"`, KVM, "booted the kernel"},
		// What this machine does: /dev/kvm opens, the guest never
		// prints anything.
		{"kvm hangs", `echo "SeaBIOS"; exec sleep 30`, TCG, "did not boot under KVM within"},
		{"kvm refused", `echo "Could not access KVM kernel module: Permission denied" >&2; exit 1`, TCG, "Could not access KVM kernel module"},
		{"kernel dies early", `echo "Linux version 6.12"; exit 0`, TCG, "KVM probe failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Probe{QEMU: fakeQEMU(t, tc.script), Kernel: "/nonexistent", Timeout: 2 * time.Second}
			got, why := p.Run(context.Background())
			assert.Equal(t, tc.want, got)
			assert.Contains(t, why, tc.whyPart)
		})
	}
}

func TestProbeCache(t *testing.T) {
	cacheFile := filepath.Join(t.TempDir(), "probe", "key")
	marker := filepath.Join(t.TempDir(), "ran")
	p := Probe{
		QEMU:      fakeQEMU(t, `touch `+marker+`; echo "Kernel panic - not syncing"`),
		Kernel:    "/nonexistent",
		Timeout:   2 * time.Second,
		CacheFile: cacheFile,
	}
	got, _ := p.Run(context.Background())
	require.Equal(t, KVM, got)
	require.NoError(t, os.Remove(marker))

	got, why := p.Run(context.Background())
	assert.Equal(t, KVM, got)
	assert.Contains(t, why, "cached")
	_, err := os.Stat(marker)
	assert.True(t, os.IsNotExist(err), "a cached verdict does not run QEMU again")
}

func TestReadEvents(t *testing.T) {
	stream := strings.Join([]string{
		"noise before the runner starts",
		`{"hugelgupf_vmtest_guest_action":"guestevent","Actual":{"Kind":"hello","Info":{"release":"6.12.117"}}}` + "\r",
		`{"hugelgupf_vmtest_guest_action":"guestevent","Actual":{"Kind":"test","Binary":"p","Test":{"Action":"run","Package":"p","Test":"TestA"}}}`,
		`{not json`,
		`{"hugelgupf_vmtest_guest_action":"done","Actual":{"Kind":""}}`,
	}, "\n") + "\n"
	var (
		got  []event.Event
		done bool
	)
	err := readEvents(strings.NewReader(stream), func(ev event.Event) { got = append(got, ev) }, func() { done = true })
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, event.KindHello, got[0].Kind)
	assert.Equal(t, "6.12.117", got[0].Info["release"])
	assert.Equal(t, "TestA", got[1].Test.Test)
	assert.True(t, done)

	// Without the done marker the stream ends but done stays false: the
	// caller tells a dead guest from a finished one by it.
	done = false
	err = readEvents(strings.NewReader(strings.SplitAfterN(stream, "\n", 3)[0]), func(event.Event) {}, func() { done = true })
	require.NoError(t, err)
	assert.False(t, done)

	err = readEvents(strings.NewReader(`{"hugelgupf_vmtest_guest_action":"guestevent","Actual":{"Kind":7}}`+"\n"), func(event.Event) {}, func() {})
	assert.ErrorContains(t, err, "malformed result event")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestReadEventsEIOIsEnd(t *testing.T) {
	// Reading the pty master after QEMU closed the slave gives EIO: that
	// is the end of the stream, not an error.
	eio := &os.PathError{Op: "read", Path: "/dev/ptmx", Err: syscall.EIO}
	assert.NoError(t, readEvents(errReader{eio}, func(event.Event) {}, func() {}))
	other := &os.PathError{Op: "read", Path: "/dev/ptmx", Err: errors.New("something else")}
	assert.Error(t, readEvents(errReader{other}, func(event.Event) {}, func() {}))
}

func TestShellQuote(t *testing.T) {
	assert.Equal(t, "-append", ShellQuote("-append"))
	assert.Equal(t, "'console=ttyS0 panic=-1'", ShellQuote("console=ttyS0 panic=-1"))
	assert.Equal(t, `'it'\''s'`, ShellQuote("it's"))
	assert.Equal(t, "''", ShellQuote(""))
}

// TestIcount: ICOUNT= gives QEMU's -icount with sleep=off under TCG, is
// refused under KVM, and only shifts QEMU takes are accepted.
func TestIcount(t *testing.T) {
	x86, err := machine.ByName("x86_64")
	require.NoError(t, err)
	ic, err := ParseIcount("3")
	require.NoError(t, err)
	c := Config{Machine: x86, Kernel: "/k/bzImage", Initramfs: "/k/initrd", Accel: TCG, Icount: ic}
	args, err := c.Cmdline("")
	require.NoError(t, err)
	assert.Contains(t, strings.Join(args, " "), "-accel tcg,thread=single -cpu max -icount shift=3,sleep=off")
	assert.Contains(t, strings.Join(args, " "), "tsc_early_khz=1000000 tsc=reliable", "the x86 guest's TSC rate under -icount")

	c.Icount = nil
	args, err = c.Cmdline("")
	require.NoError(t, err)
	assert.NotContains(t, strings.Join(args, " "), "-icount")
	assert.NotContains(t, strings.Join(args, " "), "tsc_early_khz")

	c.Accel, c.Icount = KVM, ic
	_, err = c.Cmdline("")
	assert.ErrorContains(t, err, "ICOUNT=3: QEMU counts instructions only under TCG, and this run uses kvm")

	for _, s := range []string{"", "0", "10"} {
		_, err := ParseIcount(s)
		assert.NoError(t, err, "ICOUNT=%q", s)
	}
	none, _ := ParseIcount("")
	assert.Nil(t, none, "ICOUNT= empty means no instruction counting")
	for _, s := range []string{"-1", "11", "auto", "2x"} {
		_, err := ParseIcount(s)
		assert.ErrorContains(t, err, "ICOUNT="+s+": want the shift of QEMU's -icount, 0 to 10", "ICOUNT=%q", s)
	}
}

// TestSMP: SMP=N gives QEMU N vCPUs; under TCG each runs on a host thread
// of its own (MTTCG) unless instructions are counted, which needs the one
// TCG thread; KVM takes no thread option.
func TestSMP(t *testing.T) {
	x86, err := machine.ByName("x86_64")
	require.NoError(t, err)
	for _, tc := range []struct {
		accel  Accel
		cpus   int
		icount bool
		want   string
	}{
		{TCG, 0, false, "-accel tcg -cpu max -m 512 -smp 1 "},
		{TCG, 1, false, "-accel tcg -cpu max -m 512 -smp 1 "},
		{TCG, 2, false, "-accel tcg,thread=multi -cpu max -m 512 -smp 2,sockets=2 "},
		{TCG, 2, true, "-accel tcg,thread=single -cpu max -icount shift=0,sleep=off -m 512 -smp 2,sockets=2 "},
		{KVM, 4, false, "-accel kvm -cpu host -m 512 -smp 4,sockets=4 "},
	} {
		c := Config{Machine: x86, Kernel: "/k/bzImage", Initramfs: "/k/initrd", Accel: tc.accel, CPUs: tc.cpus}
		if tc.icount {
			c.Icount = &Icount{}
		}
		args, err := c.Cmdline("")
		require.NoError(t, err)
		assert.Contains(t, strings.Join(args, " "), tc.want, "%+v", tc)
	}
}

// Without SMP=, KVM gets the host's CPUs and TCG one fewer, within the
// limit and never none.
func TestDefaultCPUs(t *testing.T) {
	assert.Equal(t, 2, DefaultCPUs(KVM, 2, 64))
	assert.Equal(t, 1, DefaultCPUs(TCG, 2, 64))
	assert.Equal(t, 1, DefaultCPUs(TCG, 1, 64))
	assert.Equal(t, 15, DefaultCPUs(TCG, 16, 64))
	assert.Equal(t, 8, DefaultCPUs(TCG, 16, 8))
	assert.Equal(t, 64, DefaultCPUs(KVM, 128, 64))
}
