package pipeline

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/internal/e2e"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

// The end-to-end tests run the real harness: a real kernel (built by
// `make vmtest` just before, so cached), a real QEMU, real guest tests.
// `make e2e` runs them; they need LANDLOCK_VMTEST_E2E=1.

type e2eRun struct {
	code   int
	output string
	out    string
	last   string
}

func repoDir(t *testing.T) string { return e2e.Repo(t) }

// harness skips unless LANDLOCK_VMTEST_E2E=1, then builds the CLI.
func harness(t *testing.T) string { return e2e.Harness(t) }

func runHarness(t *testing.T, env ...string) e2eRun {
	t.Helper()
	bin := harness(t)
	out := e2e.Out(t)
	cmd := exec.Command(bin, "run")
	cmd.Dir = repoDir(t)
	// The kselftests and the KUnit suites are left out unless a test
	// asks for them (a later KSELFTESTS= or KUNIT= in env wins): the
	// closing lines count the Go tests.
	cmd.Env = append(os.Environ(), "OUT="+out, "KSELFTESTS=none", "KUNIT=none")
	cmd.Env = append(cmd.Env, env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	r := e2eRun{output: buf.String(), out: out}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	lines := strings.Split(strings.TrimRight(r.output, "\n"), "\n")
	r.last = lines[len(lines)-1]
	t.Logf("exit %d, last line %q", r.code, r.last)
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s", r.output)
	}
	return r
}

func (r e2eRun) check(t *testing.T, code exitcode.Code, closing string, contains ...string) {
	t.Helper()
	if !assert.Equal(t, int(code), r.code, "exit code (%s); output:\n%s", code, r.output) {
		return
	}
	assert.Equal(t, closing, r.last, "the closing line is the last line")
	for _, c := range contains {
		assert.Contains(t, r.output, c)
	}
}

// document reads the run's results.json.
func (r e2eRun) document(t *testing.T) results.Document {
	t.Helper()
	var doc results.Document
	b, err := os.ReadFile(filepath.Join(r.out, "results.json"))
	require.NoError(t, err, "output:\n%s", r.output)
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc
}

// assertOutputFiles checks that OUT has every file a booted run leaves,
// with the machine's kernel image under its name (bzImage, Image).
func (r e2eRun) assertOutputFiles(t *testing.T, image string) {
	t.Helper()
	for _, f := range []string{"results.json", "junit.xml", "console.log", "config", "repro.sh", "qemu-command", "kernel-cmdline", image, "initramfs.cpio"} {
		_, err := os.Stat(filepath.Join(r.out, f))
		assert.NoError(t, err, f)
	}
}

func guestPkg(name string) string {
	return "TESTS=./vmtest/pipeline/testdata/guest/" + name
}

func TestE2EPassingRunWritesEverything(t *testing.T) {
	r := runHarness(t, guestPkg("passing"))
	r.check(t, exitcode.OK, "1 passed, 0 failed, 0 skipped", "==> build", "<== boot: ok", "result: ok (exit 0)")
	r.assertOutputFiles(t, "bzImage")
	doc := r.document(t)
	assert.True(t, strings.HasPrefix(doc.Metadata.KernelRelease, "6.12"), doc.Metadata.KernelRelease)
	assert.NotEmpty(t, doc.Metadata.ConfigHash)
	assert.Contains(t, []string{"kvm", "tcg"}, doc.Metadata.Accelerator)
	var stages []string
	for _, s := range doc.Metadata.Stages {
		stages = append(stages, s.Name)
	}
	assert.Equal(t, []string{"tools", "source", "patch", "config", "build", "accel", "initramfs", "boot", "tests"}, stages)
	assert.Greater(t, doc.Metadata.FirstTestSeconds, 0.0)
	assert.NotEmpty(t, doc.Events)

	var ju results.JUnitTestSuites
	b, err := os.ReadFile(filepath.Join(r.out, "junit.xml"))
	require.NoError(t, err)
	require.NoError(t, xml.Unmarshal(b, &ju))

	repro, err := os.ReadFile(filepath.Join(r.out, "repro.sh"))
	require.NoError(t, err)
	assert.Contains(t, string(repro), filepath.Join(r.out, "bzImage"))
	console, err := os.ReadFile(filepath.Join(r.out, "console.log"))
	require.NoError(t, err)
	assert.Contains(t, string(console), "Linux version 6.12")
}

func TestE2EBrokenPatch(t *testing.T) {
	r := runHarness(t, "SERIES=kernel/series/testdata/broken/series")
	r.check(t, exitcode.PatchFailed, "0 passed, 0 failed, 0 skipped",
		"patch 2 (0002-landlock-fixture-context-does-not-match.patch) does not apply",
		"first failing hunk is #1 in security/landlock/setup.c",
		"+\tpr_info(\"Up and running (fixture).\\n\");")
}

func TestE2EMissingConfigSymbol(t *testing.T) {
	frag := filepath.Join(t.TempDir(), "missing.config")
	require.NoError(t, os.WriteFile(frag, []byte("CONFIG_E1000=y\nCONFIG_LANDLOCK_VMTEST_NO_SUCH_SYMBOL=y\n"), 0o644))
	r := runHarness(t, "CONFIG="+frag)
	r.check(t, exitcode.ConfigFailed, "0 passed, 0 failed, 0 skipped",
		"missing: CONFIG_E1000: requested y ("+frag+":1), got n (unsatisfied dependency? depends on PCI",
		"missing: CONFIG_LANDLOCK_VMTEST_NO_SUCH_SYMBOL: requested y",
		"not defined in any Kconfig file")
}

func TestE2EConfigConflict(t *testing.T) {
	frag := filepath.Join(t.TempDir(), "conflict.config")
	require.NoError(t, os.WriteFile(frag, []byte("# CONFIG_BPF_SYSCALL is not set\n"), 0o644))
	r := runHarness(t, "CONFIG="+frag)
	r.check(t, exitcode.ConfigFailed, "0 passed, 0 failed, 0 skipped", "CONFIG_BPF_SYSCALL is set two ways")
}

func TestE2EBuildFailure(t *testing.T) {
	r := runHarness(t, "SERIES=kernel/series/testdata/buildbreak/series")
	r.check(t, exitcode.BuildFailed, "0 passed, 0 failed, 0 skipped",
		"kernel build failed",
		`#error "landlock-vmtest fixture: this patch breaks the build on purpose"`)
	_, err := os.Stat(filepath.Join(r.out, "build.log"))
	assert.NoError(t, err, "the build log is kept in OUT")
}

func TestE2EFailingTest(t *testing.T) {
	r := runHarness(t, guestPkg("failing"))
	r.check(t, exitcode.TestsFailed, "1 passed, 1 failed, 0 skipped",
		"--- FAIL: github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline/testdata/guest/failing TestFails",
		"this fixture test fails on purpose")
}

func TestE2ECrashingBinary(t *testing.T) {
	r := runHarness(t, guestPkg("crashing"))
	r.check(t, exitcode.TestCrashed, "1 passed, 1 failed, 0 skipped",
		"test did not finish: binary killed by signal killed")
}

func TestE2EKernelPanic(t *testing.T) {
	r := runHarness(t, guestPkg("panic"))
	r.check(t, exitcode.KernelCrashed, "0 passed, 1 failed, 0 skipped",
		"kernel panic",
		"Kernel panic - not syncing: dumptest",
		"testdata/guest/panic")
}

func TestE2EKernelWarningFailsPassingTests(t *testing.T) {
	r := runHarness(t, guestPkg("warning"))
	r.check(t, exitcode.KernelCrashed, "3 passed, 0 failed, 0 skipped",
		"kernel splat: warning during github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline/testdata/guest/warning",
		"lkdtm_WARNING")
}

func TestE2EHungGuest(t *testing.T) {
	// The CPU is locked up in the kernel: the console goes silent until
	// the soft-lockup detector speaks (after 20 s or more), and the
	// silence watchdog ends the VM first.
	r := runHarness(t, guestPkg("softlockup"), "SILENCE_TIMEOUT=12s")
	r.check(t, exitcode.KernelCrashed, "0 passed, 1 failed, 0 skipped",
		"guest hung: the guest printed nothing for 12s")
}

func TestE2EVMTimeLimit(t *testing.T) {
	// With the lockup reported every ~26 s the console is never silent
	// for 40 s; the VM limit ends it, and the report quotes the lockup.
	r := runHarness(t, guestPkg("softlockup"), "VM_TIMEOUT=50s", "SILENCE_TIMEOUT=40s")
	r.check(t, exitcode.KernelCrashed, "0 passed, 1 failed, 0 skipped",
		"guest hung: the VM ran past its 50s limit",
		"soft lockup - CPU#0 stuck")
}

func TestE2ETestsFromAnotherModule(t *testing.T) {
	ext := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ext, "go.mod"), []byte("module example.com/external\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(ext, "testdata"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ext, "testdata", "greeting"), []byte("hello from testdata\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ext, "ext_test.go"), []byte(`package external

import (
	"os"
	"testing"
)

func TestInGuestWithTestdata(t *testing.T) {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Fatal("not in the guest")
	}
	b, err := os.ReadFile("testdata/greeting")
	if err != nil || string(b) != "hello from testdata\n" {
		t.Fatalf("testdata: %q, %v", b, err)
	}
}
`), 0o644))
	r := runHarness(t, "TESTS="+ext)
	r.check(t, exitcode.OK, "1 passed, 0 failed, 0 skipped", "example.com/external")
}

func TestE2EKselftests(t *testing.T) {
	// The upstream Landlock selftests of the patched tree, next to one Go
	// test package: all pass (fs_test's hostfs variants skip: UML only).
	r := runHarness(t, guestPkg("passing"), "KSELFTESTS=landlock")
	assert.Equal(t, int(exitcode.OK), r.code, "output:\n%s", r.output)
	assert.Regexp(t, `^\d+ passed, 0 failed, \d+ skipped$`, r.last)
	for _, bin := range []string{"base_test", "fs_test", "net_test", "ptrace_test", "scoped_abstract_unix_test", "scoped_signal_test", "scoped_test"} {
		assert.Contains(t, r.output, "kselftest/landlock/"+bin)
	}

	doc := r.document(t)
	tests := map[string]results.Test{}
	for _, p := range doc.Packages {
		if p.Name == "kselftest/landlock/fs_test" {
			for _, tc := range p.Tests {
				tests[tc.Name] = tc
			}
		}
	}
	assert.Equal(t, results.StatusPass, tests["layout1.rule_inside_mount_ns"].Status, "pivot_root works in the kselftest root")
	assert.Equal(t, results.StatusPass, tests["layout2_overlay.no_restriction"].Status, "overlayfs is in the kernel")
	assert.Equal(t, results.StatusSkip, tests["layout3_fs.hostfs.tag_inode_file"].Status)
	assert.Equal(t, "this filesystem is not supported (setup)", tests["layout3_fs.hostfs.tag_inode_file"].Note)

	ju, err := os.ReadFile(filepath.Join(r.out, "junit.xml"))
	require.NoError(t, err)
	assert.Contains(t, string(ju), `name="kselftest/landlock/net_test"`)
}

// TestE2EKselftestsFollowRun: RUN= chooses kselftest_harness tests by name
// as it chooses Go tests; a binary with no matching test is not run.
func TestE2EKselftestsFollowRun(t *testing.T) {
	r := runHarness(t, "TESTS=./tests/seccompentry", "KSELFTESTS=landlock", `RUN=^TestRuleLimit$|^layout1\.rule_inside_mount_ns$`)
	r.check(t, exitcode.OK, "2 passed, 0 failed, 0 skipped")
	doc := r.document(t)
	ran := map[string][]string{}
	for _, p := range doc.Packages {
		for _, tc := range p.Tests {
			ran[p.Name] = append(ran[p.Name], tc.Name+" "+string(tc.Status))
		}
	}
	assert.Equal(t, map[string][]string{
		"github.com/landlock-vmtest/landlock-vmtest/tests/seccompentry": {"TestRuleLimit pass"},
		"kselftest/landlock/fs_test":                                    {"layout1.rule_inside_mount_ns pass"},
	}, ran, "only the matching tests ran")
}

func TestE2EKselftestsNoSuchDirectory(t *testing.T) {
	r := runHarness(t, "TESTS=./tests/seccompentry", "KSELFTESTS=landlock_vmtest_nosuch")
	r.check(t, exitcode.Usage, "0 passed, 0 failed, 0 skipped",
		"kselftest landlock_vmtest_nosuch: no tools/testing/selftests/landlock_vmtest_nosuch/Makefile in ",
		"result: usage error (exit 64)")
}

// TestE2ECoverage builds the GCOV kernel (its own cache entry), runs the
// seccomp entry's tests and checks the report: lcov's files, the HTML, and
// per-patch counts of the lines the series adds, which these tests must
// reach (patch 3 is the seccomp entry itself).
func TestE2ECoverage(t *testing.T) {
	// The series' KUnit cases are lines of patch 3 too: KUnit on, as
	// make vmtest has it, runs them.
	r := runHarness(t, "TESTS=./tests/seccompentry", "COVERAGE=1", "KUNIT=")
	require.Equal(t, 0, r.code, "output:\n%s", r.output)
	for _, f := range []string{"index.html", "lcov.info", "patches.md", "patches.json"} {
		assert.FileExists(t, filepath.Join(r.out, "coverage", f))
	}
	assert.Contains(t, r.output, "coverage of the lines the series adds:")
	data, err := os.ReadFile(filepath.Join(r.out, "coverage", "patches.json"))
	require.NoError(t, err)
	var doc struct {
		Patches []struct {
			Patch string `json:"patch"`
			Lines struct {
				Hit   int `json:"hit"`
				Found int `json:"found"`
			} `json:"lines"`
		} `json:"patches"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	ours, err := series.Read(filepath.Join(repoDir(t), "patches", "series"))
	require.NoError(t, err)
	require.Len(t, doc.Patches, len(ours.Patches), "one entry per patch of patches/series")
	p3 := doc.Patches[2]
	assert.True(t, strings.HasPrefix(p3.Patch, "0003-"), p3.Patch)
	assert.Positive(t, p3.Lines.Found)
	assert.Greater(t, p3.Lines.Hit*2, p3.Lines.Found, "the seccomp entry's tests run most of patch 3's lines")
	lcov, err := os.ReadFile(filepath.Join(r.out, "coverage", "lcov.info"))
	require.NoError(t, err)
	assert.Contains(t, string(lcov), "security/landlock/bpf_seccomp.c")
	assert.Contains(t, string(lcov), "kernel/seccomp.c")
}

// checkAllPassed checks a run that must exit 0 with test passed and every
// test of the results (test's subtests are counted too) passed, none
// skipped, so the closing line is "N passed, 0 failed, 0 skipped" with N
// the tests of results.json. A skip fails with skipMeans (what the skip
// says about the kernel) and the test's own reason. It returns the
// results.
func (r e2eRun) checkAllPassed(t *testing.T, test, skipMeans string) results.Document {
	t.Helper()
	exited0 := assert.Equal(t, int(exitcode.OK), r.code, "exit code; output:\n%s", r.output)
	doc := r.document(t)
	n, found := 0, false
	for _, p := range doc.Packages {
		for _, tc := range p.Tests {
			n++
			if tc.Name == test {
				found = true
			}
			switch tc.Status {
			case results.StatusSkip:
				t.Errorf("%s skipped: %s (the test says: %s)", tc.Name, skipMeans, tc.Note)
			case results.StatusPass:
			default:
				t.Errorf("%s: %s", tc.Name, tc.Status)
			}
		}
	}
	require.True(t, found, "%s did not run; output:\n%s", test, r.output)
	if exited0 {
		assert.Equal(t, fmt.Sprintf("%d passed, 0 failed, 0 skipped", n), r.last, "the closing line is the last line")
	}
	return doc
}

// TestE2ELandlockLeftOutOfLSM boots the kernel make vmtest built (cached)
// with CMDLINE=lsm=capability. In 6.12 (security/security.c) capability is
// an LSM_ORDER_FIRST module, enabled whatever lsm= says, and every module
// lsm= does not name is disabled: Landlock, the only other LSM of the
// guest kernel (CONFIG_LSM="landlock"), is left out, as on a distribution
// kernel booted with an lsm= without it. The kernel then prints
// "LSM: initializing lsm=capability" instead of "...=capability,landlock".
// seccompentry's TestNotEnabledAtBoot skips when Landlock is enabled and
// otherwise checks that the series' seccomp(2) operations give EOPNOTSUPP;
// TestCgroupAttachNotEnabledAtBoot does the same for attaching a Landlock
// program to a cgroup.
func TestE2ELandlockLeftOutOfLSM(t *testing.T) {
	r := runHarness(t, "CMDLINE=lsm=capability", "TESTS=./tests/seccompentry", "RUN=^Test(CgroupAttach)?NotEnabledAtBoot$")
	r.checkAllPassed(t, "TestNotEnabledAtBoot", "Landlock was still enabled at boot, lsm=capability did not leave it out")
	r.checkAllPassed(t, "TestCgroupAttachNotEnabledAtBoot", "Landlock was still enabled at boot, or the kernel has no cgroup manager")

	// The user's lsm= is the last argument, and the kernel took it.
	kcmd, err := os.ReadFile(filepath.Join(r.out, "kernel-cmdline"))
	require.NoError(t, err)
	args := strings.Fields(string(kcmd))
	require.NotEmpty(t, args)
	assert.Equal(t, "lsm=capability", args[len(args)-1], "kernel-cmdline: %s", kcmd)
	repro, err := os.ReadFile(filepath.Join(r.out, "repro.sh"))
	require.NoError(t, err)
	assert.Contains(t, string(repro), " lsm=capability'", "repro.sh boots with the same command line")
	console, err := os.ReadFile(filepath.Join(r.out, "console.log"))
	require.NoError(t, err)
	assert.Contains(t, string(console), "LSM: initializing lsm=capability\n", "the kernel enabled capability only")
	assert.NotContains(t, string(console), "landlock: Up and running", "Landlock did not initialise")
}

// TestE2EUnprivBPFDisabledOne boots the kernel make vmtest built (cached)
// with CMDLINE=sysctl.kernel.unprivileged_bpf_disabled=1. The kernel
// writes the sysctl itself before it starts init (do_sysctl_args, with a
// private mount of proc), and 1 is the one value that cannot be changed
// again until the next boot (bpf_unpriv_handler), so no guest test of a
// normal boot may write it. seccompentry's TestUnprivBPFDisabledOne skips
// unless the sysctl reads 1 (and below ABI version 4), and then checks
// that nobody's load of a Landlock program and create of a file system
// map get EPERM. One short boot of one test: the test must have passed,
// not skipped, and the kernel must not have refused the parameter.
func TestE2EUnprivBPFDisabledOne(t *testing.T) {
	const arg = "sysctl.kernel.unprivileged_bpf_disabled=1"
	r := runHarness(t, "CMDLINE="+arg, "TESTS=./tests/seccompentry", "RUN=^TestUnprivBPFDisabledOne$")
	r.checkAllPassed(t, "TestUnprivBPFDisabledOne", "the sysctl did not read 1 (the kernel did not take "+arg+"), or the kernel is below Landlock eBPF ABI version 4")

	kcmd, err := os.ReadFile(filepath.Join(r.out, "kernel-cmdline"))
	require.NoError(t, err)
	args := strings.Fields(string(kcmd))
	require.NotEmpty(t, args)
	assert.Equal(t, arg, args[len(args)-1], "kernel-cmdline: %s", kcmd)
	console, err := os.ReadFile(filepath.Join(r.out, "console.log"))
	require.NoError(t, err)
	assert.NotContains(t, string(console), "sysctl parameter 'kernel.unprivileged_bpf_disabled=1", "the kernel refused or failed to set the parameter")
}

// TestE2EFirstRuleOfTheBoot: the hooks of actions stay off until the first
// rule is appended or the first Landlock program is attached to a cgroup
// (patch 0026), so each of these must be the first of its boot to show
// that the switch comes before the rule takes effect: a boot that runs
// only TestDeniedOpenOnlyInTheThreadThatAppended (the open right after
// the boot's first append is EPERM), and one that runs only
// TestExistingTask (a task started before the boot's first cgroup attach
// is denied its next write). In make vmtest other tests come first.
func TestE2EFirstRuleOfTheBoot(t *testing.T) {
	for _, c := range []struct{ pkg, test string }{
		{"./tests/seccompentry", "TestDeniedOpenOnlyInTheThreadThatAppended"},
		{"./tests/cgroupmgr", "TestExistingTask"},
	} {
		t.Run(c.test, func(t *testing.T) {
			r := runHarness(t, "TESTS="+c.pkg, "RUN=^"+c.test+"$")
			r.checkAllPassed(t, c.test, "the kernel lacks the ABI version the test needs")
		})
	}
}

// TestE2ESeriesWithTheOptionOff builds the kernel with the whole series
// applied but CONFIG_SECURITY_LANDLOCK_BPF=n, from a scratch copy of the
// series whose own fragment unsets the option (e2e.SeriesWithOptionOff),
// and runs bpftype's TestDebugFlagWithoutTheOption, which runs only on such
// a kernel (it skips where the program type loads). That is a second
// kernel: the first run builds it, in about 5-6 minutes here (ccache
// barely helps, since another config means another
// include/generated/autoconf.h, which every file includes). The patched
// tree is make vmtest's, and the build directory is keyed by the patches'
// names and content and the merged settings, not by the scratch
// directory's path, so a second run finds the kernel built
// (TestSeriesWithOptionOffIsCachedOnce checks the keys on the host).
func TestE2ESeriesWithTheOptionOff(t *testing.T) {
	seriesFile := e2e.SeriesWithOptionOff(t)
	r := runHarness(t, "SERIES="+seriesFile, "TESTS=./tests/bpftype", "RUN=^TestDebugFlagWithoutTheOption$")
	doc := r.checkAllPassed(t, "TestDebugFlagWithoutTheOption", "the kernel has Landlock eBPF rules, it was built with "+e2e.LandlockBPFOption+"=y")

	ours, err := series.Read(filepath.Join(repoDir(t), "patches", "series"))
	require.NoError(t, err)
	assert.Equal(t, ours.Names(), doc.Metadata.Series, "the whole series is applied")
	config, err := os.ReadFile(filepath.Join(r.out, "config"))
	require.NoError(t, err)
	assert.Contains(t, string(config), "\n# "+e2e.LandlockBPFOption+" is not set\n")
	assert.Contains(t, string(config), "\nCONFIG_SECURITY_LANDLOCK=y\n")
	if strings.Contains(r.output, "<== build: ok") && !strings.Contains(r.output, "cached: ") {
		t.Logf("the kernel without %s was built (not cached): the next run reuses it", e2e.LandlockBPFOption)
	}
}

// TestE2EArm64 is the machine record's proof: ARCH=arm64 cross-compiles
// the kernel (Debian's gcc-aarch64-linux-gnu), builds the guest for
// GOARCH=arm64, boots qemu-system-aarch64 -M virt under TCG with the
// result channel on a virtio console, and runs the smoke tests and the
// series' tests there, with the same results files as on x86_64. The
// first run builds the arm64 kernel (about 7 minutes here); later runs
// find it cached.
func TestE2EArm64(t *testing.T) {
	r := runHarness(t, "ARCH=arm64", "TESTS=./tests/smoke ./tests/bpftype ./tests/hooks ./tests/seccompentry ./tests/iouring ./tests/landlockbpf")
	require.Equal(t, int(exitcode.OK), r.code, "output:\n%s", r.output)
	assert.Regexp(t, `^\d+ passed, 0 failed, \d+ skipped$`, r.last)
	r.assertOutputFiles(t, "Image")
	doc := r.document(t)
	assert.Equal(t, "arm64", doc.Metadata.Machine)
	assert.Equal(t, "tcg", doc.Metadata.Accelerator, "an x86 host has no KVM for arm64")
	var pkgs []string
	for _, p := range doc.Packages {
		pkgs = append(pkgs, path.Base(p.Name))
		assert.Equal(t, results.StatusPass, p.Status, p.Name)
	}
	assert.Equal(t, []string{"bpftype", "hooks", "iouring", "landlockbpf", "seccompentry", "smoke"}, pkgs)

	config, err := os.ReadFile(filepath.Join(r.out, "config"))
	require.NoError(t, err)
	assert.Contains(t, string(config), "\nCONFIG_ARM64=y\n")
	assert.Contains(t, string(config), "\nCONFIG_SECURITY_LANDLOCK_BPF=y\n")
	kcmd, err := os.ReadFile(filepath.Join(r.out, "kernel-cmdline"))
	require.NoError(t, err)
	// KUNIT=none (runHarness's) boots with the executor off.
	assert.Equal(t, "console=ttyAMA0 panic=-1 landlock_vmtest.results=/dev/hvc0 kunit.enable=0\n", string(kcmd))
	qcmd, err := os.ReadFile(filepath.Join(r.out, "qemu-command"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(qcmd), "qemu-system-aarch64 "), "%s", qcmd)
	console, err := os.ReadFile(filepath.Join(r.out, "console.log"))
	require.NoError(t, err)
	assert.Contains(t, string(console), "Machine model: linux,dummy-virt")
}

// flakyPkg is the import path of the flaky guest fixture.
const flakyPkg = "github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline/testdata/guest/flaky"

// junit reads the run's junit.xml.
func (r e2eRun) junit(t *testing.T) results.JUnitTestSuites {
	t.Helper()
	var ju results.JUnitTestSuites
	b, err := os.ReadFile(filepath.Join(r.out, "junit.xml"))
	require.NoError(t, err, "output:\n%s", r.output)
	require.NoError(t, xml.Unmarshal(b, &ju))
	return ju
}

// testOf returns the named test of the named package of doc.
func testOf(t *testing.T, doc results.Document, pkg, name string) results.Test {
	t.Helper()
	for _, p := range doc.Packages {
		if p.Name != pkg {
			continue
		}
		for _, tc := range p.Tests {
			if tc.Name == name {
				return tc
			}
		}
	}
	require.FailNow(t, "test not in results.json", "%s %s", pkg, name)
	return results.Test{}
}

// caseOf returns the named test case of ju.
func caseOf(t *testing.T, ju results.JUnitTestSuites, name string) results.JUnitTestCase {
	t.Helper()
	for _, s := range ju.Suites {
		for _, c := range s.TestCases {
			if c.Name == name {
				return c
			}
		}
	}
	require.FailNow(t, "test case not in junit.xml", name)
	return results.JUnitTestCase{}
}

// TestE2EFlakyTestRetried: with RETRY=1 the fixture's TestFlaky, which
// fails on its first run in a boot, runs again alone in the same boot
// and passes: it is flaky, the run exits 0, the closing line counts it
// among the passed and the line before names it; results.json keeps both
// runs (the failed one's output too) and junit.xml has it as a passing
// test case with a Surefire flakyFailure.
func TestE2EFlakyTestRetried(t *testing.T) {
	r := runHarness(t, guestPkg("flaky"), "RETRY=1")
	r.check(t, exitcode.OK, "2 passed, 0 failed, 0 skipped",
		"1 flaky (failed, then passed on a retry; counted as passed): "+flakyPkg+" TestFlaky\n2 passed, 0 failed, 0 skipped",
		"--- FLAKY: "+flakyPkg+" TestFlaky",
		"this fixture test fails on its first run in a boot",
		"result: ok (exit 0): all tests passed, 1 of them flaky")

	doc := r.document(t)
	assert.Equal(t, 1, doc.Summary.Flaky)
	assert.Equal(t, 2, doc.Summary.Passed)
	assert.Zero(t, doc.Summary.Failed)
	assert.False(t, doc.Summary.TestsFailed)
	fl := testOf(t, doc, flakyPkg, "TestFlaky")
	assert.Equal(t, results.StatusFlaky, fl.Status)
	require.Len(t, fl.Attempts, 2, "the first run and one retry")
	assert.Equal(t, results.StatusFail, fl.Attempts[0].Status)
	assert.Contains(t, strings.Join(fl.Attempts[0].Output, "\n"), "this fixture test fails on its first run in a boot")
	assert.Equal(t, results.StatusPass, fl.Attempts[1].Status)
	assert.Contains(t, strings.Join(fl.Attempts[1].Output, "\n"), "this fixture test passes on its second run in a boot")
	assert.Contains(t, fl.Output, "=== RETRY TestFlaky (retry 1 of 1)")
	passes := testOf(t, doc, flakyPkg, "TestPasses")
	assert.Equal(t, results.StatusPass, passes.Status)
	assert.Empty(t, passes.Attempts, "a passing test is not run again")
	var retries []event.Retry
	for _, e := range doc.Events {
		if e.Kind == event.KindBinaryStart && e.Retry != nil {
			retries = append(retries, *e.Retry)
		}
	}
	assert.Equal(t, []event.Retry{{Test: "TestFlaky", Attempt: 1, Of: 1}}, retries)

	ju := r.junit(t)
	assert.Zero(t, ju.Failures)
	assert.Equal(t, 2, ju.Tests)
	c := caseOf(t, ju, "TestFlaky")
	assert.Nil(t, c.Failure, "a flaky test is a passing test case")
	require.Len(t, c.FlakyFailures, 1)
	assert.Equal(t, "flaky", c.FlakyFailures[0].Type)
	assert.Contains(t, c.FlakyFailures[0].SystemOut, "this fixture test fails on its first run in a boot")

	console, err := os.ReadFile(filepath.Join(r.out, "console.log"))
	require.NoError(t, err)
	assert.Contains(t, string(console), "landlock-vmtest: retrying "+flakyPkg+" TestFlaky (retry 1 of 1, timeout ")
}

// TestE2EFlakyTestWithoutRetry is the companion of the test above: with
// RETRY=0 (the default) the same test fails the run, and nothing of
// RETRY= shows in the files.
func TestE2EFlakyTestWithoutRetry(t *testing.T) {
	r := runHarness(t, guestPkg("flaky"), "RETRY=0")
	r.check(t, exitcode.TestsFailed, "1 passed, 1 failed, 0 skipped",
		"--- FAIL: "+flakyPkg+" TestFlaky",
		"this fixture test fails on its first run in a boot")
	assert.NotContains(t, r.output, "flaky (failed, then passed on a retry")

	doc := r.document(t)
	assert.Zero(t, doc.Summary.Flaky)
	fl := testOf(t, doc, flakyPkg, "TestFlaky")
	assert.Equal(t, results.StatusFail, fl.Status)
	assert.Empty(t, fl.Attempts)
	for _, e := range doc.Events {
		assert.Nil(t, e.Retry, "no rerun")
	}
	b, err := os.ReadFile(filepath.Join(r.out, "results.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"flaky"`)
	assert.NotContains(t, string(b), `"attempts"`)

	ju := r.junit(t)
	assert.Equal(t, 1, ju.Failures)
	c := caseOf(t, ju, "TestFlaky")
	require.NotNil(t, c.Failure)
	assert.Empty(t, c.FlakyFailures)
	assert.Empty(t, c.RerunFailures)
}

// TestE2ERetryStillFailing: a test that fails every time runs RETRY times
// more and still fails the run, with every run's output kept.
func TestE2ERetryStillFailing(t *testing.T) {
	r := runHarness(t, guestPkg("failing"), "RETRY=2")
	r.check(t, exitcode.TestsFailed, "1 passed, 1 failed, 0 skipped",
		"--- FAIL: github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline/testdata/guest/failing TestFails",
		"note: failed in every run: the first and 2 retry(s)")
	doc := r.document(t)
	fails := testOf(t, doc, "github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline/testdata/guest/failing", "TestFails")
	assert.Equal(t, results.StatusFail, fails.Status)
	require.Len(t, fails.Attempts, 3)
	assert.Equal(t, 3, strings.Count(strings.Join(fails.Output, "\n"), "this fixture test fails on purpose"), "every run's output")
	c := caseOf(t, r.junit(t), "TestFails")
	require.NotNil(t, c.Failure)
	assert.Len(t, c.RerunFailures, 2)
}

// TestE2EDebugFlavour builds the debug kernel (DEBUG=1: KASAN, lockdep,
// UBSAN, kmemleak, its own build directory) and runs the series' guest
// tests on it once: every package passes, no splat, and the guest runner
// scanned for leaks after the last binary and found none.
func TestE2EDebugFlavour(t *testing.T) {
	r := runHarness(t, "DEBUG=1")
	require.Equal(t, int(exitcode.OK), r.code, "output:\n%s", r.output)
	assert.Regexp(t, `^\d+ passed, 0 failed, \d+ skipped$`, r.last)
	doc := r.document(t)
	assert.Equal(t, "debug", doc.Metadata.Flavour)
	assert.Empty(t, doc.Metadata.Splats)
	for _, p := range doc.Packages {
		assert.Equal(t, results.StatusPass, p.Status, p.Name)
	}
	config, err := os.ReadFile(filepath.Join(r.out, "config"))
	require.NoError(t, err)
	for _, sym := range []string{"CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_KMEMLEAK", "CONFIG_UBSAN_BOUNDS", "CONFIG_DEBUG_LIST", "CONFIG_DEBUG_INFO_REDUCED", "CONFIG_SECURITY_LANDLOCK_BPF"} {
		assert.Contains(t, string(config), "\n"+sym+"=y\n")
	}
	console, err := os.ReadFile(filepath.Join(r.out, "console.log"))
	require.NoError(t, err)
	assert.Regexp(t, `landlock-vmtest: kmemleak: 0 suspected leak\(s\) after \d+ test binar\(ies\)`, string(console))
}

// TestE2EDebugSplats provokes real reports on the debug kernel (the
// debugsplats fixture, through LKDTM): each is reported with its title,
// its frames decoded to file:line from the build's vmlinux, and the same
// WARNING in two tests is one group.
func TestE2EDebugSplats(t *testing.T) {
	r := runHarness(t, "DEBUG=1", guestPkg("debugsplats"))
	r.check(t, exitcode.KernelCrashed, "6 passed, 0 failed, 0 skipped", "\ndecoded:\n", "drivers/misc/lkdtm/heap.c:")
	doc := r.document(t)
	pkg := "github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline/testdata/guest/debugsplats "
	bySig := map[string]results.SplatGroup{}
	for _, g := range doc.Metadata.SplatGroups {
		bySig[g.Signature] = g
	}
	// source is the decoded file:line of the first frame in fn of the
	// group's first splat, "" when there is none.
	source := func(g results.SplatGroup, fn string) string {
		for _, f := range doc.Metadata.Splats[g.Splats[0]].Decoded {
			if strings.HasPrefix(f.Frame, fn+"+") {
				return f.Source
			}
		}
		return ""
	}
	for _, c := range []struct {
		signature, kind, test, fn, file string
		count                           int
	}{
		{"KASAN: slab-use-after-free Read in lkdtm_READ_AFTER_FREE", "kasan", "TestKASAN", "lkdtm_READ_AFTER_FREE", "drivers/misc/lkdtm/heap.c:", 1},
		{"lock held when returning to user space in lkdtm_do_action", "lockdep", "TestLockdep", "lkdtm_do_action", "drivers/misc/lkdtm/core.c:", 1},
		{"WARNING in lkdtm_WARNING", "warning", "TestWarningA", "lkdtm_do_action", "drivers/misc/lkdtm/core.c:", 2},
		{"UBSAN: array-index-out-of-bounds in lkdtm_ARRAY_BOUNDS", "ubsan", "TestUBSAN", "lkdtm_ARRAY_BOUNDS", "drivers/misc/lkdtm/bugs.c:", 1},
		{"WARNING in lkdtm_CORRUPT_LIST_ADD", "warning", "TestListCorruption", "lkdtm_CORRUPT_LIST_ADD", "include/linux/list.h:", 1},
	} {
		g, ok := bySig[c.signature]
		if !assert.Truef(t, ok, "no splat group %q in %v", c.signature, doc.Metadata.SplatGroups) {
			continue
		}
		assert.Equal(t, c.kind, g.Kind, c.signature)
		assert.Equal(t, c.count, g.Count, c.signature)
		// The report may reach the console just after its test's end
		// event: then it counts for the package.
		assert.Contains(t, []string{pkg + c.test, strings.TrimSpace(pkg)}, g.Tests[0], c.signature)
		assert.Regexp(t, `^`+regexp.QuoteMeta(c.file)+`\d+$`, source(g, c.fn), "%s: frame %s decoded", c.signature, c.fn)
	}
	if g, ok := bySig["WARNING in lkdtm_WARNING"]; ok {
		assert.Equal(t, []string{pkg + "TestWarningA", pkg + "TestWarningB"}, g.Tests, "one bug, two tests")
	}
}

// TestE2EKUnit: the default KUnit suites, Landlock's own and the series',
// run as the kernel boots; their results are package kunit of
// results.json, JUnit and the closing line, beside the Go tests.
func TestE2EKUnit(t *testing.T) {
	r := runHarness(t, guestPkg("passing"), "KUNIT=")
	doc := r.document(t)
	var kunit *results.Package
	for i := range doc.Packages {
		if doc.Packages[i].Name == "kunit" {
			kunit = &doc.Packages[i]
		}
	}
	require.NotNil(t, kunit, "no kunit package; output:\n%s", r.output)
	assert.Equal(t, results.StatusPass, kunit.Status)
	for _, name := range []string{
		"landlock_fs", "landlock_fs/test_no_more_access",
		"landlock_bpf_actions", "landlock_bpf_actions/test_mask_actions", "landlock_bpf_actions/test_prot_actions",
		"landlock_bpf_rules", "landlock_bpf_rules/test_new_level_copies", "landlock_bpf_rules/test_new_level_on_top",
		"landlock_bpf_rules/test_rule_limit",
	} {
		assert.Equal(t, results.StatusPass, testOf(t, doc, "kunit", name).Status, name)
	}
	// The closing line counts the suites and their cases with the Go
	// test: 1 of its own.
	assert.Equal(t, 1+kunit.Passed, doc.Summary.Passed)
	r.check(t, exitcode.OK, fmt.Sprintf("%d passed, 0 failed, 0 skipped", 1+kunit.Passed), "result: ok (exit 0)")
	assert.Regexp(t, `(?m)^ok\s+kunit\s+\d+ passed, 0 failed, 0 skipped`, r.output)
	cmdline, err := os.ReadFile(filepath.Join(r.out, "kernel-cmdline"))
	require.NoError(t, err)
	assert.Contains(t, string(cmdline), "kunit.enable=1 kunit.filter_glob=landlock*")

	ju := r.junit(t)
	found := false
	for _, s := range ju.Suites {
		if s.Name == "kunit" {
			found = true
			assert.Equal(t, kunit.Passed, s.Tests)
			assert.Zero(t, s.Failures)
		}
	}
	assert.True(t, found, "no kunit suite in junit.xml")
}

// TestE2EKUnitNoSuite: a KUNIT= glob no built-in suite matches fails the
// run as a test failure that says so.
func TestE2EKUnitNoSuite(t *testing.T) {
	r := runHarness(t, guestPkg("passing"), "KUNIT=no_such_suite*")
	r.check(t, exitcode.TestsFailed, "1 passed, 1 failed, 0 skipped",
		"--- FAIL: kunit no_such_suite*",
		"KUnit ran no suite: none built into this kernel matches KUNIT=no_such_suite*")
}

// TestE2EHungTask: a real hung-task report (LKDTM's HUNG_TASK in a child,
// the detector's timeout lowered to 2 s) fails a run whose test passed,
// titled as syzkaller titles it.
func TestE2EHungTask(t *testing.T) {
	r := runHarness(t, guestPkg("hungtask"))
	r.check(t, exitcode.KernelCrashed, "1 passed, 0 failed, 0 skipped",
		"blocked for more than 2 seconds.", "kernel splat: ")
	doc := r.document(t)
	require.NotEmpty(t, doc.Metadata.Splats, "output:\n%s", r.output)
	s := doc.Metadata.Splats[0]
	assert.Equal(t, "hung-task", s.Kind)
	assert.Contains(t, s.Signature, "INFO: task hung in lkdtm_HUNG_TASK")
	assert.Contains(t, s.Text, "lkdtm_HUNG_TASK")
}

// Every symbol of the BPF suites' profile is set as it asks, on top of the
// series: the run is stopped at the config stage by one symbol that does
// not exist, and that symbol is the only one the stage reports missing.
// (Building the profile takes ten minutes here; its configuration is what
// rots when the series or the base fragments change.)
func TestE2EBPFSuitesProfileConfigures(t *testing.T) {
	stop := filepath.Join(t.TempDir(), "stop.config")
	require.NoError(t, os.WriteFile(stop, []byte("CONFIG_LANDLOCK_VMTEST_NO_SUCH_SYMBOL=y\n"), 0o644))
	profile := filepath.Join(repoDir(t), "kernel", "configs", "profiles", "bpf-suites.config")
	r := runHarness(t, "CONFIG="+profile+" "+stop)
	r.check(t, exitcode.ConfigFailed, "0 passed, 0 failed, 0 skipped", "missing: CONFIG_LANDLOCK_VMTEST_NO_SUCH_SYMBOL: requested y")
	assert.Equal(t, 1, strings.Count(r.output, "missing: CONFIG_"), "only the deliberate symbol is missing; output:\n%s", r.output)
}
