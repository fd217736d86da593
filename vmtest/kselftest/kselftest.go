// Package kselftest builds upstream kselftests (directories of the kernel
// tree's tools/testing/selftests) for the guest: statically linked, so the
// u-root guest needs no libc, against the UAPI headers of the kernel under
// test (`make headers` of that tree), and cached by content. It lists the
// binaries for the guest runner, which runs them and converts their TAP
// output (package initramfs/guest/ktap).
package kselftest

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/machine"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest/ktap"
)

// Default is the KSELFTESTS default.
const Default = "landlock"

// SelftestsDir is where the kselftests are in a kernel tree.
const SelftestsDir = "tools/testing/selftests"

// GuestDir is where the kselftests go in the guest: GuestDir/<dir>/.
const GuestDir = "tests/kselftest"

// PackagePrefix starts the package name under which a kselftest binary is
// reported: "kselftest/landlock/fs_test".
const PackagePrefix = "kselftest/"

// ParseList parses the KSELFTESTS value: directories under
// tools/testing/selftests separated by spaces or commas. "none" (or
// nothing) means no kselftests.
func ParseList(s string) ([]string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(fields) == 1 && fields[0] == "none" {
		return nil, nil
	}
	seen := map[string]bool{}
	var dirs []string
	for _, f := range fields {
		clean := path.Clean(f)
		if f == "none" || path.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("KSELFTESTS: %q is not a directory under %s (use names like landlock, or none)", f, SelftestsDir)
		}
		if !seen[clean] {
			seen[clean] = true
			dirs = append(dirs, clean)
		}
	}
	return dirs, nil
}

// Request is what to build.
type Request struct {
	// Tree is the kernel tree under test (its UAPI headers and its
	// selftests are used); TreeKey identifies its content.
	Tree, TreeKey string
	// Dirs are the selftest directories, relative to SelftestsDir.
	Dirs []string
	// Jobs is make -j (0: the number of CPUs).
	Jobs int
	// CC is the C compiler ("" means the machine's gcc).
	CC string
	// Machine is the guest architecture the tests are built for (the
	// zero value is machine.Default).
	Machine machine.Machine
}

func (req Request) mach() machine.Machine { return machine.OrDefault(req.Machine) }

// Test is one kselftest binary.
type Test struct {
	// Dir is the selftest directory ("landlock"), Name the binary's name
	// ("fs_test").
	Dir, Name string
}

// Package is the name the binary's results are reported under.
func (t Test) Package() string { return PackagePrefix + t.Dir + "/" + t.Name }

// alone are the kselftests that must run beside no other test binary
// (contract.Binary.Alone), by directory and name, with why: the guest
// runs binaries side by side on SMP, and these change what is one per
// boot.
var alone = map[string]string{
	// bpf_test.c writes kernel.unprivileged_bpf_disabled (0, 2, then
	// the old value) and Yama's ptrace_scope in its tests, without the
	// Go tests' sysctl lock.
	"landlock/bpf_test": "writes kernel.unprivileged_bpf_disabled",
}

// Alone reports whether t must run beside no other binary, and why.
func (t Test) Alone() (string, bool) {
	why, ok := alone[t.Dir+"/"+t.Name]
	return why, ok
}

// Built is a finished build.
type Built struct {
	// Root is the cache entry; Root/<dir>/ holds each directory's
	// outputs (the tests and their helpers).
	Root string
	// Tests are the binaries to run, in directory then make order.
	Tests []Test
	// Cached is true when nothing was built.
	Cached bool
}

// Error is a failed build step.
type Error struct {
	// Dir is the selftest directory, or "" for the UAPI headers.
	Dir string
	// Command is the command that failed, as a shell line.
	Command string
	// Log is the build log, kept beside the cache entry.
	Log string
	// Tail is the end of the command's output.
	Tail string
	Err  error
}

func (e *Error) Error() string {
	what := "the UAPI headers"
	if e.Dir != "" {
		what = "kselftest " + e.Dir
	}
	return fmt.Sprintf("building %s: %s: %v (log: %s)\n%s", what, e.Command, e.Err, e.Log, e.Tail)
}

func (e *Error) Unwrap() error { return e.Err }

// MissingDirError is a KSELFTESTS directory the tree under test does not
// have: a usage error, not a build failure.
type MissingDirError struct {
	Dir, Tree string
}

func (e *MissingDirError) Error() string {
	return fmt.Sprintf("kselftest %s: no %s/%s/Makefile in %s (KSELFTESTS names directories of the tree under test, or none)", e.Dir, SelftestsDir, e.Dir, e.Tree)
}

// compiler identifies the compiler and the machine's libcap for the cache
// key.
func compiler(cc, libDir string) string {
	out, err := exec.Command(cc, "--version").Output()
	if err != nil {
		return cc + "?"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	libcap := "libcap?"
	if sum, err := cache.FileSHA256(filepath.Join(libDir, "libcap.a")); err == nil {
		libcap = sum
	}
	return first + "\x00" + libcap
}

// Key is the cache key of a build of req: the tree's key, the selftest
// directories' content (with the shared harness files), the compiler.
func Key(req Request) (string, error) {
	m := req.mach()
	parts := []string{"kselftest-v1", req.TreeKey, compiler(req.cc(), m.LibDir), strings.Join(req.Dirs, ",")}
	if m.Name != machine.Default {
		parts = append(parts, m.Name)
	}
	h, err := hashInputs(req.Tree, req.Dirs)
	if err != nil {
		return "", err
	}
	return cache.Key(append(parts, h)...), nil
}

func (req Request) cc() string {
	if req.CC == "" {
		return req.mach().CrossCompile + "gcc"
	}
	return req.CC
}

func (req Request) jobs() int {
	if req.Jobs <= 0 {
		return runtime.NumCPU()
	}
	return req.Jobs
}

// hashInputs hashes the files of each selftest directory and the files
// directly in tools/testing/selftests (lib.mk, kselftest_harness.h, ...).
func hashInputs(tree string, dirs []string) (string, error) {
	var parts []string
	add := func(p string, recursive bool) error {
		return filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("hashing kselftest sources: %w", err)
			}
			if d.IsDir() {
				if f != p && !recursive {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			sum, err := cache.FileSHA256(f)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(tree, f)
			parts = append(parts, rel, sum)
			return nil
		})
	}
	top := filepath.Join(tree, SelftestsDir)
	if err := add(top, false); err != nil {
		return "", err
	}
	for _, d := range dirs {
		dir := filepath.Join(top, d)
		if st, err := os.Stat(filepath.Join(dir, "Makefile")); err != nil || !st.Mode().IsRegular() {
			return "", &MissingDirError{Dir: d, Tree: tree}
		}
		if err := add(dir, true); err != nil {
			return "", err
		}
	}
	return cache.Key(parts...), nil
}

// testsFile lists the tests in a cache entry, one "dir name" a line.
const testsFile = "tests.txt"

// Build builds req's directories into the cache unless that was done.
// The log of the last build attempt is kept beside the entry
// (<entry>.log), also when it failed.
func Build(ctx context.Context, c *cache.Cache, req Request) (*Built, error) {
	key, err := Key(req)
	if err != nil {
		return nil, err
	}
	root := c.Path("kselftest", key)
	logPath := root + ".log"
	built, err := cache.Build(root, func(tmp string) error {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return fmt.Errorf("kselftest build log: %w", err)
		}
		log, err := os.Create(logPath)
		if err != nil {
			return fmt.Errorf("kselftest build log: %w", err)
		}
		defer log.Close()
		return build(ctx, req, tmp, log, logPath)
	})
	if err != nil {
		return nil, err
	}
	tests, err := readTests(filepath.Join(root, testsFile))
	if err != nil {
		return nil, err
	}
	return &Built{Root: root, Tests: tests, Cached: !built}, nil
}

// Commands are the make commands of a build into out: the UAPI headers,
// then for each directory its build and the listing of its tests.
func Commands(req Request, out string) [][]string {
	hdrs := filepath.Join(out, "headers")
	m := req.mach()
	cmds := [][]string{append([]string{"make", "-C", req.Tree, "O=" + hdrs, "-j" + strconv.Itoa(req.jobs())}, append(archArgs(m), "headers")...)}
	for _, d := range req.Dirs {
		args := append([]string{
			"-C", filepath.Join(req.Tree, SelftestsDir, d)}, archArgs(m)...)
		args = append(args,
			"OUTPUT="+filepath.Join(out, d),
			"KHDR_INCLUDES=-isystem "+filepath.Join(hdrs, "usr", "include"),
			"CC="+req.cc(),
			// On the command line, -static wins over the Makefiles' own
			// LDFLAGS: everything is linked statically.
			"LDFLAGS=-static",
		)
		cmds = append(cmds,
			append([]string{"make", "-j" + strconv.Itoa(req.jobs())}, args...),
			append([]string{"make", "-s", "--no-print-directory", "COLLECTION=" + d}, append(args, "emit_tests")...),
		)
	}
	return cmds
}

// archArgs are the make variables of a cross build (none for the host's
// own machine, whose commands stay as they were).
func archArgs(m machine.Machine) []string {
	if m.Native() {
		return nil
	}
	return m.MakeArgs()
}

func build(ctx context.Context, req Request, out string, log io.Writer, logPath string) error {
	cmds := Commands(req, out)
	run := func(dir string, argv []string, stdout io.Writer) error {
		fmt.Fprintf(log, "$ %s\n", shellLine(argv))
		var tail tailBuffer
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stderr = io.MultiWriter(log, &tail)
		cmd.Stdout = io.MultiWriter(log, &tail)
		if stdout != nil {
			cmd.Stdout = io.MultiWriter(stdout, log)
		}
		if err := cmd.Run(); err != nil {
			return &Error{Dir: dir, Command: shellLine(argv), Log: logPath, Tail: tail.String(), Err: err}
		}
		return nil
	}
	if err := run("", cmds[0], nil); err != nil {
		return err
	}
	var tests []Test
	for i, d := range req.Dirs {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return fmt.Errorf("kselftest %s: %w", d, err)
		}
		if err := run(d, cmds[1+2*i], nil); err != nil {
			return err
		}
		var list bytes.Buffer
		if err := run(d, cmds[2+2*i], &list); err != nil {
			return err
		}
		found, err := listed(d, list.String(), filepath.Join(out, d))
		if err != nil {
			return err
		}
		tests = append(tests, found...)
	}
	// Only the headers' include tree is worth keeping (the log says what
	// was built); the objects of the headers build are not.
	if err := os.RemoveAll(filepath.Join(out, "headers")); err != nil {
		return fmt.Errorf("cleaning the headers build: %w", err)
	}
	var b strings.Builder
	for _, t := range tests {
		fmt.Fprintf(&b, "%s %s\n", t.Dir, t.Name)
	}
	return os.WriteFile(filepath.Join(out, testsFile), []byte(b.String()), 0o644)
}

// listed reads emit_tests' "collection:name" lines and checks that each
// test was built, and statically.
func listed(dir, list, out string) ([]Test, error) {
	var tests []Test
	for _, l := range strings.Split(list, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		_, name, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("kselftest %s: unexpected line from make emit_tests: %q", dir, l)
		}
		if err := checkStatic(filepath.Join(out, name)); err != nil {
			return nil, fmt.Errorf("kselftest %s: %w", dir, err)
		}
		tests = append(tests, Test{Dir: dir, Name: name})
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("kselftest %s: make emit_tests listed no test", dir)
	}
	return tests, nil
}

// checkStatic checks that p is a statically linked ELF executable: the
// guest has no dynamic loader and no libc, and no shell for scripts.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("test %s: not a built ELF binary (scripts cannot run in the guest): %w", filepath.Base(p), err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("test %s is dynamically linked; the guest has no libc", filepath.Base(p))
		}
	}
	return nil
}

func readTests(p string) ([]Test, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the kselftest list: %w", err)
	}
	var tests []Test
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		dir, name, ok := strings.Cut(l, " ")
		if !ok {
			return nil, fmt.Errorf("%s: bad line %q", p, l)
		}
		tests = append(tests, Test{Dir: dir, Name: name})
	}
	return tests, nil
}

// Add adds the built tests to a manifest and their directories' files
// (tests and helpers such as landlock's "true") to files (guest path →
// host path), under GuestDir/<dir>/. Object files are left out.
func (b *Built) Add(m *contract.Manifest, files map[string]string) error {
	dirs := map[string]bool{}
	for _, t := range b.Tests {
		gdir := GuestDir + "/" + t.Dir
		harness, err := usesHarness(filepath.Join(b.Root, t.Dir, t.Name))
		if err != nil {
			return fmt.Errorf("kselftest %s: %w", t.Dir, err)
		}
		_, isAlone := t.Alone()
		m.Binaries = append(m.Binaries, contract.Binary{
			Package: t.Package(),
			Path:    "/" + gdir + "/" + t.Name,
			Dir:     "/" + gdir,
			Kind:    contract.KindKselftest,
			Harness: harness,
			Alone:   isAlone,
		})
		if dirs[t.Dir] {
			continue
		}
		dirs[t.Dir] = true
		host := filepath.Join(b.Root, t.Dir)
		err = filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("packing kselftest %s: %w", t.Dir, err)
			}
			if !d.Type().IsRegular() || strings.HasSuffix(p, ".o") || strings.HasSuffix(p, ".d") {
				return nil
			}
			rel, err := filepath.Rel(host, p)
			if err != nil {
				return err
			}
			files[gdir+"/"+filepath.ToSlash(rel)] = p
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// usesHarness reports whether the binary at p is built on
// kselftest_harness.h (it holds the harness's usage text), so that the
// guest may list its tests and run some of them.
func usesHarness(p string) (bool, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return false, err
	}
	return bytes.Contains(data, []byte(ktap.HarnessMarker)), nil
}

func shellLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t'\"$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// tailBuffer keeps the last lines written to it.
type tailBuffer struct{ lines []string }

const tailLines = 30

func (t *tailBuffer) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		t.lines = append(t.lines, l)
	}
	if n := len(t.lines); n > tailLines {
		t.lines = t.lines[n-tailLines:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.Join(t.lines, "\n") }
