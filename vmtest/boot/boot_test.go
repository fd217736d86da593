package boot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/vm"
)

// TestVMConfigAppendsCmdlineLast: CMDLINE's arguments come after the
// harness's own on the guest kernel's command line (a user's lsm= is the
// one the kernel keeps), in the shell's boot too, and the repro bundle
// has them.
func TestVMConfigAppendsCmdlineLast(t *testing.T) {
	harness := []string{"console=ttyS0", "panic=-1", "reboot=t"}
	for _, tc := range []struct {
		name    string
		shell   bool
		kunit   string
		cmdline []string
		want    []string
	}{
		{"none", false, "", nil, append(harness[:3:3], "kunit.enable=0")},
		{"run", false, "landlock*", []string{"lsm=capability", "lsm.debug"}, append(harness[:3:3], "kunit.enable=1", "kunit.filter_glob=landlock*", "lsm=capability", "lsm.debug")},
		{"shell", true, "", []string{"lsm=capability"}, append(harness[:3:3], "landlock_vmtest.shell", "kunit.enable=0", "lsm=capability")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			m, err := machine.ByName("x86_64")
			require.NoError(t, err)
			cfg := vmConfig(Request{Machine: m, Out: out, Shell: tc.shell, KUnit: tc.kunit, Cmdline: tc.cmdline, Stdout: io.Discard}, filepath.Join(out, "initramfs.cpio"), vm.TCG)
			args, err := cfg.Cmdline("")
			require.NoError(t, err)
			var appendArg string
			for i, a := range args {
				if a == "-append" {
					appendArg = args[i+1]
				}
			}
			assert.Equal(t, tc.want, strings.Fields(appendArg))

			require.NoError(t, vm.WriteRepro(cfg, out))
			kcmd, err := os.ReadFile(filepath.Join(out, "kernel-cmdline"))
			require.NoError(t, err)
			assert.Equal(t, strings.Join(tc.want, " ")+"\n", string(kcmd))
			quoted := vm.ShellQuote(strings.Join(tc.want, " "))
			for _, f := range []string{"repro.sh", "qemu-command"} {
				b, err := os.ReadFile(filepath.Join(out, f))
				require.NoError(t, err)
				assert.Contains(t, string(b), " -append "+quoted+" ", f)
			}
		})
	}
}

// The VM's derived limit gives each binary one more run for each retry
// RETRY= allows; without RETRY it is as it was.
func TestVMTimeout(t *testing.T) {
	assert.Equal(t, 15*time.Second+3*90*time.Second, vmTimeout(15*time.Second, time.Minute, 3, 0))
	assert.Equal(t, 15*time.Second+3*3*90*time.Second, vmTimeout(15*time.Second, time.Minute, 3, 2))
}

// A timeout left unset is the default times the accelerator's slowdown
// times the kernel flavour's (DEBUG=1); one that is set is kept as it is.
func TestScaledByFlavour(t *testing.T) {
	tcg := time.Duration(vm.TCG.Slowdown())
	assert.Equal(t, time.Minute*tcg, scaled(0, time.Minute, vm.TCG, 0))
	assert.Equal(t, time.Minute*tcg, scaled(0, time.Minute, vm.TCG, 1))
	assert.Equal(t, 6*time.Minute*tcg, scaled(0, time.Minute, vm.TCG, 6))
	assert.Equal(t, 6*time.Minute, scaled(0, time.Minute, vm.KVM, 6))
	assert.Equal(t, 5*time.Second, scaled(5*time.Second, time.Minute, vm.TCG, 6))
}

func TestGDBCommand(t *testing.T) {
	x86, err := machine.ByName("x86_64")
	require.NoError(t, err)
	arm, err := machine.ByName("arm64")
	require.NoError(t, err)
	dir := t.TempDir()
	assert.Equal(t, "gdb -ex 'target remote 127.0.0.1:4321' "+dir+"/vmlinux", GDBCommand(x86, dir, 4321))
	assert.Equal(t, "gdb-multiarch -ex 'target remote 127.0.0.1:4321' "+dir+"/vmlinux", GDBCommand(arm, dir, 4321))
	// With the build's gdb scripts, gdb may load them.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinux-gdb.py"), nil, 0o644))
	assert.Equal(t, "gdb -iex 'add-auto-load-safe-path "+dir+"' -ex 'target remote 127.0.0.1:4321' "+dir+"/vmlinux", GDBCommand(x86, dir, 4321))
	// A build made in a mirror: its sources are listed from its own tree.
	require.NoError(t, os.WriteFile(filepath.Join(dir, build.MirrorSource), []byte("/c/mirror/k/src\n"), 0o644))
	assert.Equal(t, "gdb -iex 'add-auto-load-safe-path "+dir+"' -ex 'set substitute-path /c/mirror/k/src "+dir+"/source' -ex 'target remote 127.0.0.1:4321' "+dir+"/vmlinux", GDBCommand(x86, dir, 4321))
}

// GDB=1: the stub and nokaslr, before the user's arguments; the repro
// bundle is written before and has neither.
func TestDebugger(t *testing.T) {
	m, err := machine.ByName("x86_64")
	require.NoError(t, err)
	out := t.TempDir()
	req := Request{Machine: m, Out: out, GDB: true, Cmdline: []string{"lsm=capability"}, Stdout: io.Discard,
		Kernel: &build.Result{Dir: out, Config: filepath.Join(out, "config")}}
	cfg := vmConfig(req, filepath.Join(out, "initramfs.cpio"), vm.TCG)
	require.NoError(t, debugger(&cfg, req))
	assert.Positive(t, cfg.GDBPort)
	assert.Equal(t, []string{"kunit.enable=0", "nokaslr", "lsm=capability"}, cfg.Append)
	assert.Equal(t, vm.NoLimit, cfg.BootTimeout)
	assert.Equal(t, vm.NoLimit, cfg.Silence)
}

func TestMemoryFor(t *testing.T) {
	dir := t.TempDir()
	sized := func(mib int64) string {
		p := filepath.Join(dir, fmt.Sprintf("initrd-%d", mib))
		f, err := os.Create(p)
		require.NoError(t, err)
		require.NoError(t, f.Truncate(mib<<20))
		require.NoError(t, f.Close())
		return p
	}
	assert.Equal(t, 1024, memoryFor(1024, sized(400), 2), "MEM= wins")
	assert.Equal(t, DefaultMemoryMB, memoryFor(0, sized(108), 1), "our own suite's archive fits the default")
	assert.Equal(t, 640, memoryFor(0, sized(173), 1), "twice the archive and the kernel's share, in 128 MiB steps")
	assert.Equal(t, DefaultMemoryMB, memoryFor(0, filepath.Join(dir, "none"), 0))
	assert.Equal(t, DefaultMemoryMB+perCPUMB, memoryFor(0, sized(108), 2), "a binary more at a time, more memory")
	assert.Equal(t, 896, memoryFor(0, sized(173), 2))
	assert.Equal(t, DefaultMemoryMB+7*perCPUMB, memoryFor(0, sized(108), 64), "no more past 8 vCPUs")
}

// The boot's note says how many CPUs the guest found, and says so plainly
// when the kernel brought up fewer than QEMU has.
func TestCPUsNote(t *testing.T) {
	assert.Equal(t, "1 CPU", cpusNote("1", 1))
	assert.Equal(t, "2 CPUs", cpusNote("2", 2))
	assert.Contains(t, cpusNote("1", 2), "1 CPU(s) of the 2 vCPUs QEMU has")
	assert.Equal(t, "CPUs unknown", cpusNote("", 2))
}
