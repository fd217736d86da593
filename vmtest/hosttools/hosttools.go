// Package hosttools finds the host programs, headers and packages a run
// needs and installs the missing ones with apt-get (as root), or says the
// exact command to run.
package hosttools

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/machine"
)

// Need is one thing the harness needs from the host.
type Need struct {
	// Command is a program looked up in PATH, or "" when Path is used.
	Command string
	// Path is a file that must exist (a header, a tarball).
	Path string
	// Package is the Debian package that provides it.
	Package string
}

func (n Need) String() string {
	if n.Command != "" {
		return n.Command
	}
	return n.Path
}

// Request says what a command will do, for For.
type Request struct {
	// Machine is the guest architecture: its QEMU and, for a cross
	// build, its compiler and libraries.
	Machine machine.Machine
	// DebianSource is true when the kernel comes from Debian's
	// linux-source package (no KERNEL_SRC).
	DebianSource bool
	// Coverage is COVERAGE=1: lcov and gcov.
	Coverage bool
	// Kselftests is true when kselftests are built: libcap's static
	// library for the machine, which they link.
	Kselftests bool
	// Git is true for the commands that drive git (bisect, tools).
	Git bool
	// GDB is GDB=1: the debugger for the machine's kernel.
	GDB bool
	// BTF is a config that asks for CONFIG_DEBUG_INFO_BTF: pahole
	// (Debian's dwarves), which the kernel's link runs, and which
	// Kconfig reads the version of at config time.
	BTF bool
	// Review is series-check's review checks: sparse, codespell's
	// dictionary for checkpatch.pl --codespell, docutils (Review).
	Review bool
}

// For is what a command needs from the host: the one list every command
// (run, shell, series-check, bisect, tools) asks for.
func For(req Request) []Need {
	needs := []Need{
		{Command: req.Machine.QEMU, Package: req.Machine.QEMUPackage},
		{Command: "gcc", Package: "gcc"},
		{Command: "make", Package: "make"},
		{Command: "flex", Package: "flex"},
		{Command: "bison", Package: "bison"},
		{Command: "bc", Package: "bc"},
		{Command: "cpio", Package: "cpio"},
		{Command: "ccache", Package: "ccache"},
		{Command: "patch", Package: "patch"},
		{Command: "perl", Package: "perl"},
		{Command: "xz", Package: "xz-utils"},
		{Command: "gzip", Package: "gzip"},
		{Command: "tar", Package: "tar"},
		{Path: "/usr/include/libelf.h", Package: "libelf-dev"},
		{Path: "/usr/include/openssl/ssl.h", Package: "libssl-dev"},
	}
	if !req.Machine.Native() {
		needs = append(needs, Need{Command: req.Machine.CrossCompile + "gcc", Package: req.Machine.CrossPackage})
	}
	if req.DebianSource {
		needs = append(needs, Need{Path: "/usr/src/linux-source-6.12.tar.xz", Package: "linux-source-6.12"})
	}
	if req.Coverage {
		// lcov's geninfo and genhtml, and gcov, which geninfo runs.
		needs = append(needs,
			Need{Command: "geninfo", Package: "lcov"},
			Need{Command: "genhtml", Package: "lcov"},
			Need{Command: "gcov", Package: "gcc"})
	}
	if req.Kselftests {
		// -lcap, linked statically, for the machine's architecture.
		pkg := "libcap-dev"
		if !req.Machine.Native() {
			pkg += ":" + req.Machine.Name
		}
		needs = append(needs, Need{Path: req.Machine.LibDir + "/libcap.a", Package: pkg})
	}
	if req.Git {
		needs = append(needs, Need{Command: "git", Package: "git"})
	}
	if req.GDB {
		needs = append(needs, GDB(req.Machine))
	}
	if req.BTF {
		needs = append(needs, Need{Command: "pahole", Package: "dwarves"})
	}
	if req.Review {
		needs = append(needs, Review()...)
	}
	return needs
}

// CodespellDictionary is where Debian's codespell keeps the dictionary
// that checkpatch.pl --codespell reads.
const CodespellDictionary = "/usr/lib/python3/dist-packages/codespell_lib/data/dictionary.txt"

// Review are the tools of series-check's review checks beyond
// checkpatch.pl and W=1. A check whose tool is missing is not run, and
// says so: series-check asks for them with TryEnsure.
func Review() []Need {
	return []Need{
		{Command: "sparse", Package: "sparse"},
		{Path: CodespellDictionary, Package: "codespell"},
		{Command: "docutils", Package: "python3-docutils"},
	}
}

// Host is how the host is looked at and changed; tests replace it.
type Host struct {
	LookPath func(string) (string, error)
	Stat     func(string) (os.FileInfo, error)
	IsRoot   func() bool
	// Run runs a command with its output to log.
	Run func(log io.Writer, name string, args ...string) error
}

// Real is the running host.
func Real() Host {
	return Host{
		LookPath: exec.LookPath,
		Stat:     os.Stat,
		IsRoot:   func() bool { return os.Geteuid() == 0 },
		Run: func(log io.Writer, name string, args ...string) error {
			cmd := exec.Command(name, args...)
			cmd.Stdout, cmd.Stderr = log, log
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			return cmd.Run()
		},
	}
}

// Missing returns the needs the host does not meet.
func (h Host) Missing(needs []Need) []Need {
	var out []Need
	for _, n := range needs {
		if n.Command != "" {
			if _, err := h.LookPath(n.Command); err != nil {
				out = append(out, n)
			}
			continue
		}
		if _, err := h.Stat(n.Path); err != nil {
			out = append(out, n)
		}
	}
	return out
}

// GDB is the debugger for a kernel of machine m: the host's gdb for its
// own architecture, gdb-multiarch for another.
func GDB(m machine.Machine) Need {
	if m.Native() {
		return Need{Command: "gdb", Package: "gdb"}
	}
	return Need{Command: "gdb-multiarch", Package: "gdb-multiarch"}
}

// Packages are the distinct packages of needs, sorted.
func Packages(needs []Need) []string {
	seen := map[string]bool{}
	var pkgs []string
	for _, n := range needs {
		if !seen[n.Package] {
			seen[n.Package] = true
			pkgs = append(pkgs, n.Package)
		}
	}
	sort.Strings(pkgs)
	return pkgs
}

// InstallCommand is the command that installs pkgs.
func InstallCommand(pkgs []string) []string {
	return append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...)
}

// MissingError says what is missing and the exact command that installs it.
type MissingError struct {
	Missing []Need
	// Command is what the user should run.
	Command string
	// Err is why the harness could not install them itself.
	Err error
}

func (e *MissingError) Error() string {
	names := make([]string, len(e.Missing))
	for i, n := range e.Missing {
		names[i] = fmt.Sprintf("%s (%s)", n, n.Package)
	}
	return fmt.Sprintf("missing host tools: %s\n%v\nrun as root:\n  %s",
		strings.Join(names, ", "), e.Err, e.Command)
}

// Ensure installs whatever of needs is missing. It returns the packages it
// installed, or a *MissingError that names the command to run.
func (h Host) Ensure(needs []Need, log io.Writer) ([]string, error) {
	missing := h.Missing(needs)
	if len(missing) == 0 {
		return nil, nil
	}
	pkgs := Packages(missing)
	install := InstallCommand(pkgs)
	human := "apt-get update && " + strings.Join(install, " ")
	for _, a := range foreignArches(pkgs) {
		human = "dpkg --add-architecture " + a + " && " + human
	}
	if !h.IsRoot() {
		return nil, &MissingError{Missing: missing, Command: "sudo sh -c '" + human + "'", Err: fmt.Errorf("not root, so not installing them")}
	}
	fmt.Fprintf(log, "installing %s\n", strings.Join(pkgs, " "))
	// A package of another architecture (libcap-dev:arm64) needs that
	// architecture known to dpkg first.
	for _, a := range foreignArches(pkgs) {
		if err := h.Run(log, "dpkg", "--add-architecture", a); err != nil {
			return nil, &MissingError{Missing: missing, Command: human, Err: fmt.Errorf("dpkg --add-architecture %s: %w", a, err)}
		}
	}
	if err := h.Run(log, "apt-get", "update"); err != nil {
		return nil, &MissingError{Missing: missing, Command: human, Err: fmt.Errorf("apt-get update: %w", err)}
	}
	if err := h.Run(log, install[0], install[1:]...); err != nil {
		return nil, &MissingError{Missing: missing, Command: human, Err: fmt.Errorf("apt-get install: %w", err)}
	}
	if still := h.Missing(needs); len(still) > 0 {
		return nil, &MissingError{Missing: still, Command: human, Err: fmt.Errorf("still missing after apt-get install")}
	}
	return pkgs, nil
}

// TryEnsure installs whatever of needs is missing, as Ensure does, but
// fails for none of them: it returns why each need still missing is, by
// its String (command or path); nil when none is.
func (h Host) TryEnsure(needs []Need, log io.Writer) map[string]string {
	_, err := h.Ensure(needs, log)
	if err == nil {
		return nil
	}
	why := err.Error()
	var me *MissingError
	if errors.As(err, &me) {
		why = fmt.Sprintf("%v; to install it: %s", me.Err, me.Command)
	}
	out := map[string]string{}
	for _, n := range h.Missing(needs) {
		out[n.String()] = fmt.Sprintf("%s not installed (Debian's %s): %s", n, n.Package, why)
	}
	return out
}

// foreignArches are the architectures pkgs name (libcap-dev:arm64), by
// Debian's name for them.
func foreignArches(pkgs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pkgs {
		if _, a, ok := strings.Cut(p, ":"); ok && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
