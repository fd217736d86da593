// Command landlock-vmtest builds a kernel with the patch series applied,
// boots it under QEMU with a u-root initramfs, runs Go test binaries in the
// guest and reports. Knobs come from flags or, as `make vmtest` passes
// them, from environment variables of the same names (KERNEL_SRC, ACCEL,
// TESTS, OUT, ...).
//
//	landlock-vmtest [run]        build, boot, test, report
//	landlock-vmtest shell        the same kernel and initramfs, with a shell
//	landlock-vmtest exec -- CMD  run one command in the guest, its exit
//	                             status the command's (go test -exec)
//	landlock-vmtest tools        install the host tools a run needs
//	landlock-vmtest parse FILE   re-read a saved console log for splats
//	landlock-vmtest series-check build and test every patch of the series
//	landlock-vmtest bisect       find the patch or commit that broke TEST
//	landlock-vmtest cache-key    the content keys of a run's cache entries
//	                             (--step N: series-check's step N), name=value
//	landlock-vmtest cache        the cache's disk use; cache prune removes
//	                             what was not used for AGE (default 14d)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs"
	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/debug"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kunit"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/symbolize"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/boot"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/guestcmd"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/kselftest"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/seriescheck"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/vm"
)

func main() {
	os.Exit(int(run(os.Args[1:])))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	fmt.Fprintf(os.Stderr, "%s=%q: not a duration (use 90s, 5m)\n", name, v)
	os.Exit(int(exitcode.Usage))
	return 0
}

func envInt(name string) int {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: not a number\n", name, v)
		os.Exit(int(exitcode.Usage))
	}
	return n
}

func run(args []string) exitcode.Code {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run", "shell", "exec", "cache-key", "series-check", "bisect", "bisect-step":
	case "parse":
		return parse(args, os.Stdout)
	case "tools":
		return tools()
	case "cache":
		return cacheCmd(args)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q (run, shell, exec, series-check, bisect, tools, parse, cache, cache-key)\n", cmd)
		return exitcode.Usage
	}

	repo, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	o := pipeline.Options{
		Repo:        repo,
		Timeout:     envDuration("TIMEOUT"),
		BootTimeout: envDuration("BOOT_TIMEOUT"),
		Silence:     envDuration("SILENCE_TIMEOUT"),
		VMTimeout:   envDuration("VM_TIMEOUT"),
		Jobs:        envInt("JOBS"),
		MemoryMB:    envInt("MEM"),
		CPUs:        envInt("SMP"),
		Count:       envInt("COUNT"),
		Retry:       envInt("RETRY"),
		Shell:       cmd == "shell",
		Stdout:      os.Stdout,
	}
	fs := flag.NewFlagSet("landlock-vmtest", flag.ContinueOnError)
	arch := fs.String("arch", os.Getenv("ARCH"), "guest architecture: "+strings.Join(machine.Names(), " or ")+"; empty means "+machine.Default+" (ARCH)")
	fs.StringVar(&o.KernelSrc, "kernel-src", os.Getenv("KERNEL_SRC"), "kernel tree to build instead of Debian's linux-source-6.12 (KERNEL_SRC); never modified")
	fs.StringVar(&o.Series, "series", env("SERIES", filepath.Join(repo, "patches/series")), "series file of the patches to apply (SERIES)")
	fs.StringVar(&o.Configs, "configs", env("CONFIGS", filepath.Join(repo, "kernel/configs")), "directory of config fragments (CONFIGS)")
	extra := fs.String("config", os.Getenv("CONFIG"), "more config fragment files, space-separated (CONFIG)")
	cmdline := fs.String("cmdline", os.Getenv("CMDLINE"), "extra kernel command-line arguments, space-separated, after the harness's own (CMDLINE); e.g. lsm=capability boots with Landlock left out of the LSM list")
	tests := fs.String("tests", env("TESTS", "./tests/..."), "test packages: import paths or directories, space-separated (TESTS)")
	kselftests := fs.String("kselftests", kselftestsEnv(), "kselftest directories under the tree's tools/testing/selftests, space- or comma-separated; none (or set but empty) for none (KSELFTESTS)")
	fs.StringVar(&o.Run, "run", os.Getenv("RUN"), "-test.run regexp for every Go test binary; it also chooses the kselftest_harness tests by name, fixture.variant.test (RUN)")
	defOut := "out"
	if cmd == "series-check" || cmd == "bisect" || cmd == "exec" {
		defOut = filepath.Join("out", cmd)
	}
	if cmd == "exec" {
		// go test -exec runs it in the package's directory.
		defOut = filepath.Join(repo, defOut)
	}
	if a := os.Getenv("ARCH"); a != "" && a != machine.Default {
		// Another architecture's run keeps the default run's files.
		defOut = filepath.Join(defOut, a)
	}
	if os.Getenv("DEBUG") == "1" {
		// So does the debug flavour's.
		defOut = filepath.Join(defOut, "debug")
	}
	fs.StringVar(&o.Out, "out", env("OUT", defOut), "output directory (OUT)")
	var bo bisectFlags
	if cmd == "bisect" || cmd == "bisect-step" {
		bo.register(fs)
	}
	stepN, merge := -1, false
	if cmd == "cache-key" {
		fs.IntVar(&stepN, "step", -1, "the keys of series-check's step N: the series' first N patches")
	}
	if cmd == "series-check" {
		fs.IntVar(&stepN, "step", -1, "run one step alone, N: 0 the base tree, N the series' first N patches (with a build of the first N-1 for the warnings' baseline); series-check --merge joins the steps' OUT directories")
		fs.BoolVar(&merge, "merge", false, "join the reports of steps run alone (series-check --merge DIR...) into the sequential check's table and exit code, in OUT")
	}
	fs.StringVar(&o.CacheDir, "cache", os.Getenv("CACHE_DIR"), "cache directory (CACHE_DIR; default $XDG_CACHE_HOME/landlock-vmtest)")
	fs.StringVar(&o.Accel, "accel", os.Getenv("ACCEL"), "kvm or tcg; empty probes (ACCEL)")
	icount := fs.String("icount", os.Getenv("ICOUNT"), "QEMU's -icount shift, 0-10: the guest's clock follows its instructions, 2^shift ns each (TCG only); empty for the host's clock (ICOUNT)")
	fs.BoolVar(&o.Verbose, "v", os.Getenv("V") == "1", "echo the guest console (V=1)")
	fs.BoolVar(&o.Coverage, "coverage", os.Getenv("COVERAGE") == "1", "build the kernel with GCOV for the code the series touches and write a coverage report in OUT/coverage (COVERAGE=1)")
	defKUnit := kunit.Default
	if cmd == "exec" {
		// A command, not the suite: the boot runs no KUnit unless asked.
		defKUnit = "none"
	}
	kunitGlob := fs.String("kunit", env("KUNIT", defKUnit), "KUnit suites the kernel runs as it boots, one kunit.filter_glob (suite[.case], e.g. landlock_fs.test_*); none for no KUnit (KUNIT)")
	fs.BoolVar(&o.GDB, "gdb", os.Getenv("GDB") == "1", "start QEMU with its gdb stub, the guest stopped until gdb continues it, the kernel with nokaslr and no VM watchdog; the run prints the gdb command (GDB=1)")
	fs.BoolVar(&o.Debug, "debug", os.Getenv("DEBUG") == "1", "build and boot the debug flavour: KASAN, lockdep, UBSAN, list and atomic-sleep debugging, kmemleak, line tables (kernel/debug/debug.config), with longer timeouts (DEBUG=1)")
	if err := fs.Parse(args); err != nil {
		return exitcode.Usage
	}
	if cmd == "exec" {
		if fs.NArg() == 0 {
			fmt.Fprintln(os.Stderr, "usage: landlock-vmtest exec [flags] -- CMD [ARGS]")
			return exitcode.Usage
		}
		if *arch == "" {
			*arch = archOf(fs.Arg(0))
		}
	}
	if o.Machine, err = machine.ByName(*arch); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	switch o.Accel {
	case "", "kvm", "tcg":
	default:
		fmt.Fprintf(os.Stderr, "ACCEL=%s: use kvm or tcg (or leave it empty to probe)\n", o.Accel)
		return exitcode.Usage
	}
	if o.Icount, err = vm.ParseIcount(*icount); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	if o.Icount != nil && o.Accel == "kvm" {
		fmt.Fprintf(os.Stderr, "ICOUNT=%s: QEMU counts instructions only under TCG; leave ACCEL empty or set ACCEL=tcg\n", *icount)
		return exitcode.Usage
	}
	if _, err := os.Stat(o.Series); err != nil && os.Getenv("SERIES") == "" {
		o.Series = ""
	}
	if err := checkCPUs(o.CPUs, o.Machine); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	if o.Retry < 0 {
		fmt.Fprintf(os.Stderr, "RETRY=%d: the most reruns of a failed test, 0 or more\n", o.Retry)
		return exitcode.Usage
	}
	if _, err := regexp.Compile(o.Run); err != nil {
		fmt.Fprintf(os.Stderr, "RUN=%s: %v\n", o.Run, err)
		return exitcode.Usage
	}
	o.Tests = strings.Fields(*tests)
	if o.Kselftests, err = kselftest.ParseList(*kselftests); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	if o.KUnit, err = kunit.ParseGlob(*kunitGlob); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	o.ExtraConfigs = strings.Fields(*extra)
	if o.Debug {
		// Last, so that its settings win; every command that builds
		// (run, series-check, bisect) merges CONFIG=.
		o.ExtraConfigs = append(o.ExtraConfigs, filepath.Join(repo, debug.Fragment))
	}
	o.Cmdline = strings.Fields(*cmdline)
	if o.Out, err = filepath.Abs(o.Out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}

	// SIGQUIT too: go test sends it to an -exec program past -timeout.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()
	if o.Coverage && cmd != "run" {
		fmt.Fprintf(os.Stderr, "COVERAGE=1 works with run (make vmtest) only, not with %s\n", cmd)
		return exitcode.Usage
	}
	switch cmd {
	case "series-check":
		if merge {
			if stepN >= 0 {
				fmt.Fprintln(os.Stderr, "series-check: --step runs one step, --merge joins steps that ran: one or the other")
				return exitcode.Usage
			}
			if fs.NArg() == 0 {
				fmt.Fprintln(os.Stderr, "usage: landlock-vmtest series-check --merge DIR... (the OUT directories of series-check --step runs)")
				return exitcode.Usage
			}
			_, code := seriescheck.Merge(seriescheck.MergeOptions{Dirs: fs.Args(), Out: o.Out, Stdout: os.Stdout})
			return code
		}
		if o.Series == "" {
			fmt.Fprintln(os.Stderr, "series-check: no series (SERIES= a series file, a directory of patches or an mbox)")
			return exitcode.Usage
		}
		so := seriescheck.Options{Run: o, Series: o.Series, Stdout: os.Stdout}
		if stepN >= 0 {
			_, code := seriescheck.CheckStep(ctx, so, stepN)
			return code
		}
		_, code := seriescheck.Check(ctx, so)
		return code
	case "cache-key":
		keys, err := pipeline.Keys(o, stepN)
		if err != nil {
			fmt.Fprintf(os.Stderr, "cache-key: %v\n", err)
			return exitcode.Of(err)
		}
		for _, k := range keys {
			fmt.Printf("%s=%s\n", k.Name, k.Value)
		}
		return exitcode.OK
	case "exec":
		wd, err := os.Getwd()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitcode.Usage
		}
		return exitcode.Code(guestcmd.Exec(ctx, guestcmd.Options{Run: o, Name: fs.Arg(0), Args: fs.Args()[1:], Dir: wd, Stdout: os.Stdout, Stderr: os.Stderr}))
	case "bisect":
		return bisectCmd(ctx, o, bo)
	case "bisect-step":
		return bisectStep(ctx, o, bo)
	}
	return pipeline.New(o).Execute(ctx).Code
}

// kselftestsEnv is KSELFTESTS, or its default when unset: set but empty
// means none, like "none".
func kselftestsEnv() string {
	if v, ok := os.LookupEnv("KSELFTESTS"); ok {
		return v
	}
	return kselftest.Default
}

// repoRoot finds this repository: the directory with go.mod and
// kernel/configs above the working directory, or else above the
// executable (bin/landlock-vmtest run from another module's directory, as
// go test -exec does).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if r, ok := repoAbove(dir); ok {
		return r, nil
	}
	if exe, err := os.Executable(); err == nil {
		if r, ok := repoAbove(filepath.Dir(exe)); ok {
			return r, nil
		}
	}
	return "", fmt.Errorf("run landlock-vmtest from inside the landlock-vmtest repository, or run its bin/landlock-vmtest (no go.mod with kernel/configs above %s)", dir)
}

func repoAbove(dir string) (string, bool) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "kernel", "configs")); err == nil {
				return d, true
			}
		}
		if d == filepath.Dir(d) {
			return "", false
		}
	}
}

// archOf is the machine an executable command is for, "" (the default)
// when it is no ELF file or not on the host: GOARCH=arm64 go test -exec
// boots the arm64 guest.
func archOf(cmd string) string {
	if !strings.Contains(cmd, "/") {
		return ""
	}
	goarch, err := initramfs.ELFMachine(cmd)
	if err != nil {
		return ""
	}
	for _, n := range machine.Names() {
		if m, err := machine.ByName(n); err == nil && m.GOARCH == goarch {
			return n
		}
	}
	return ""
}

// parse re-reads a saved console log offline and prints its splats, each
// with its title, fingerprint and frames, and with --vmlinux their source
// lines (faddr2line of the build's source tree, or of --source).
func parse(args []string, w io.Writer) exitcode.Code {
	fs := flag.NewFlagSet("landlock-vmtest parse", flag.ContinueOnError)
	vmlinux := fs.String("vmlinux", "", "the kernel's vmlinux, built with debug info: decode the frames to file:line")
	src := fs.String("source", "", "the kernel source tree the vmlinux was built from (default: the \"source\" link beside the vmlinux, as O= builds have)")
	arch := fs.String("arch", os.Getenv("ARCH"), "the kernel's architecture: "+strings.Join(machine.Names(), " or ")+" (ARCH)")
	usage := func() exitcode.Code {
		fmt.Fprintln(os.Stderr, "usage: landlock-vmtest parse CONSOLE.LOG [--vmlinux PATH [--source DIR] [--arch ARCH]]")
		return exitcode.Usage
	}
	// The log may come before the flags or after them.
	var logs []string
	for {
		if err := fs.Parse(args); err != nil {
			return usage()
		}
		if fs.NArg() == 0 {
			break
		}
		logs, args = append(logs, fs.Arg(0)), fs.Args()[1:]
	}
	if len(logs) != 1 {
		return usage()
	}
	f, err := os.Open(logs[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	defer f.Close()
	found, err := console.Scan(f, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Infra
	}
	splats := results.DescribeSplats(results.FromConsole(found))
	if *vmlinux != "" {
		m, err := machine.ByName(*arch)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitcode.Usage
		}
		if *src == "" {
			*src = filepath.Join(filepath.Dir(*vmlinux), "source")
		}
		sym, err := symbolize.New(*src, *vmlinux, m.CrossCompile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "no faddr2line (give the source tree with --source): %v\n", err)
			return exitcode.Usage
		}
		if splats, err = boot.DecodeSplats(context.Background(), sym, splats); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitcode.Infra
		}
	}
	failed := 0
	for i, s := range splats {
		fmt.Fprintf(w, "%s (%s, fingerprint %s, line %d):\n%s\n", s.Signature, s.Kind, s.Fingerprint, found[i].Line, textutil.Indent(s.Text))
		if d := s.SourcesText(); d != "" {
			fmt.Fprintf(w, "decoded:\n%s\n", textutil.Indent(d))
		}
		fmt.Fprintln(w)
		if found[i].Fails {
			failed++
		}
	}
	fmt.Fprintf(w, "%d splat(s), %d failing\n", len(splats), failed)
	if failed > 0 {
		return exitcode.KernelCrashed
	}
	return exitcode.OK
}

// tools installs what a run needs (the tools stage on its own).
func tools() exitcode.Code {
	m, err := machine.ByName(os.Getenv("ARCH"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Usage
	}
	dirs, err := kselftest.ParseList(kselftestsEnv())
	// git for bisecting a git tree.
	needs := hosttools.For(hosttools.Request{
		Machine:      m,
		DebianSource: os.Getenv("KERNEL_SRC") == "",
		Coverage:     os.Getenv("COVERAGE") == "1",
		Kselftests:   err != nil || len(dirs) > 0,
		Git:          true,
		// For GDB=1 and its e2e test.
		GDB: true,
		BTF: pipeline.WantsBTF(strings.Fields(os.Getenv("CONFIG"))),
		// series-check's review checks (sparse, codespell, docutils).
		Review: true,
	})
	pkgs, err := hosttools.Real().Ensure(needs, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Infra
	}
	if len(pkgs) > 0 {
		fmt.Printf("installed %s\n", strings.Join(pkgs, " "))
	}
	return exitcode.OK
}

// checkCPUs says what is wrong with SMP=n for machine m: 0 (unset) chooses
// by the accelerator; otherwise 1 to the board's and the kernel's limit.
func checkCPUs(n int, m machine.Machine) error {
	limit := m.CPULimit(vm.MaxCPUs)
	if n < 0 || n > limit {
		return fmt.Errorf("SMP=%d: the %s guest's vCPUs, 1 to %d (unset: the host's CPUs under KVM, one fewer under TCG, at most %d)", n, m.Name, limit, limit)
	}
	return nil
}
