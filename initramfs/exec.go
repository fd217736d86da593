package initramfs

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
)

// Command is what `landlock-vmtest exec` runs in the guest.
type Command struct {
	// Name is the command as given: a path (it has a slash) to a host
	// file, packed and run at its absolute path, or a name the guest's
	// PATH finds.
	Name string
	Args []string
	// Dir is the host's working directory, absolute: the command runs in
	// the same directory in the guest, with its testdata/ if it has one.
	Dir string
	// LibDirs are where the shared libraries of a dynamic executable are
	// looked for after its own run paths (the machine's multiarch
	// directories).
	LibDirs []string
}

// Limits on what PackCommand packs: an argument such as "/" must not pull
// the host into the guest.
const (
	maxPackedFiles = 20000
	maxPackedBytes = 512 << 20
)

// Pack is what PackCommand gives: the manifest's binary and the host files
// to pack (guest path, relative, to host path).
type Pack struct {
	Binary contract.Binary
	Files  map[string]string
	// Notes say what was packed beyond the command, one line each.
	Notes []string
}

// outputFlags are the Go test flags that name a file the binary writes,
// relative to -test.outputdir (or the working directory) when not
// absolute; go test reads them after the binary ends (the coverage
// profile, -test.testlogfile for its test cache).
var outputFlags = []string{
	"-test.coverprofile", "-test.cpuprofile", "-test.memprofile", "-test.blockprofile",
	"-test.mutexprofile", "-test.trace", "-test.testlogfile",
}

// inputFlags are the Go test flags whose value is a directory the binary
// reads: packed like an argument.
var inputFlags = []string{"-test.gocoverdir", "-test.fuzzcachedir"}

// PackCommand says how c runs in the guest: the command itself when it is
// a host file, every argument (or -flag=value's value) that names an
// existing host file or directory, the working directory's testdata/, and
// for each dynamic ELF executable among them its interpreter and shared
// libraries, all at their host paths. The files a Go test binary's flags
// name as its output (-test.coverprofile=, ...) come back to the host
// (Binary.Collect).
func PackCommand(c Command) (*Pack, error) {
	if !filepath.IsAbs(c.Dir) {
		return nil, fmt.Errorf("exec: the working directory %q is not absolute", c.Dir)
	}
	p := &packer{files: map[string]string{}, libDirs: c.LibDirs}
	b := contract.Binary{Package: "exec", Kind: contract.KindExec, Path: c.Name, Dir: c.Dir, Args: c.Args}
	if strings.Contains(c.Name, "/") {
		host := abs(c.Dir, c.Name)
		st, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("exec: the command %s: %w", c.Name, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("exec: the command %s is not a file", c.Name)
		}
		if err := p.add(host); err != nil {
			return nil, err
		}
		b.Path = host
	}
	outDir := c.Dir
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "-test.outputdir="); ok {
			outDir = abs(c.Dir, v)
		}
	}
	for _, a := range c.Args {
		v := a
		if name, val, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "-") {
			if slices.Contains(outputFlags, name) {
				b.Collect = append(b.Collect, abs(outDir, val))
				continue
			}
			if name == "-test.outputdir" {
				// Where the profiles go: made, not packed (go test
				// gives the directory it runs in, a whole module).
				b.Dirs = append(b.Dirs, outDir)
				continue
			}
			if strings.HasPrefix(name, "-test.") && !slices.Contains(inputFlags, name) {
				// -test.run=., -test.bench=.: patterns and
				// numbers, not paths.
				continue
			}
			v = val
		}
		host := abs(c.Dir, v)
		if host == c.Dir || strings.HasPrefix(c.Dir, host+"/") {
			// "." or a directory above: the whole tree the command
			// runs in is no argument to pack.
			continue
		}
		dir, err := p.addIfThere(host)
		if err != nil {
			return nil, fmt.Errorf("exec: the argument %s: %w", a, err)
		}
		if dir {
			b.Dirs = append(b.Dirs, host)
		}
	}
	if _, err := p.addIfThere(filepath.Join(c.Dir, "testdata")); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if len(p.files) > 0 {
		p.notes = append([]string{fmt.Sprintf("%d host file(s) packed, %.1f MiB", len(p.files), float64(p.bytes)/(1<<20))}, p.notes...)
	}
	return &Pack{Binary: b, Files: p.files, Notes: p.notes}, nil
}

func abs(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

type packer struct {
	files   map[string]string
	bytes   int64
	libDirs []string
	notes   []string
}

// unpackable are host trees no argument packs: the guest has its own.
var unpackable = []string{"/", "/proc", "/sys", "/dev", "/run"}

// addIfThere packs path if it exists: a file, or a directory's tree. It
// reports whether path is a directory it packed.
func (p *packer) addIfThere(path string) (bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, nil
	}
	for _, u := range unpackable {
		if path == u || (u != "/" && strings.HasPrefix(path, u+"/")) {
			return false, nil
		}
	}
	if !st.IsDir() {
		if st.Mode().IsRegular() {
			return false, p.add(path)
		}
		return false, nil
	}
	return true, filepath.WalkDir(path, func(f string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("packing %s: %w", path, err)
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
				return p.add(f)
			}
		}
		return nil
	})
}

// add packs the regular file at host path f (absolute), and if it is a
// dynamic ELF executable or library, what it needs to load.
func (p *packer) add(f string) error {
	rel := strings.TrimPrefix(f, "/")
	if _, ok := p.files[rel]; ok {
		return nil
	}
	st, err := os.Stat(f)
	if err != nil {
		return fmt.Errorf("packing %s: %w", f, err)
	}
	p.files[rel] = f
	p.bytes += st.Size()
	if len(p.files) > maxPackedFiles || p.bytes > maxPackedBytes {
		return fmt.Errorf("packing %s: more than %d files or %d MiB for the guest; name less on the command line", f, maxPackedFiles, maxPackedBytes>>20)
	}
	return p.addLoader(f)
}

// addLoader packs the interpreter and the shared libraries (DT_NEEDED,
// through DT_RUNPATH, DT_RPATH and the library directories) of the ELF
// file f; a file that is no ELF or is static needs nothing.
func (p *packer) addLoader(f string) error {
	e, err := elf.Open(f)
	if err != nil {
		return nil
	}
	defer e.Close()
	for _, prog := range e.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return fmt.Errorf("reading the interpreter of %s: %w", f, err)
		}
		interp := strings.TrimRight(string(b), "\x00")
		if err := p.add(interp); err != nil {
			return fmt.Errorf("%s needs its interpreter: %w", f, err)
		}
	}
	needed, err := e.DynString(elf.DT_NEEDED)
	if err != nil || len(needed) == 0 {
		return nil
	}
	var dirs []string
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		paths, _ := e.DynString(tag)
		for _, rp := range paths {
			for _, d := range filepath.SplitList(rp) {
				dirs = append(dirs, strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(f)))
			}
		}
	}
	dirs = append(dirs, p.libDirs...)
	for _, lib := range needed {
		found := ""
		for _, d := range dirs {
			if c := filepath.Join(d, lib); isFile(c) {
				found = c
				break
			}
		}
		if found == "" {
			return fmt.Errorf("%s needs %s, found in none of %s: %w", f, lib, strings.Join(dirs, " "), fs.ErrNotExist)
		}
		if err := p.add(found); err != nil {
			return err
		}
	}
	p.notes = append(p.notes, fmt.Sprintf("%s is dynamic: its loader and %d librar(ies) packed", filepath.Base(f), len(needed)))
	return nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// ErrNotELF is returned by ELFMachine for a file that is not ELF.
var ErrNotELF = errors.New("not an ELF file")

// ELFMachine is the GOARCH an ELF executable is for ("amd64", "arm64"), so
// that exec can boot the machine a cross-compiled binary needs.
func ELFMachine(path string) (string, error) {
	e, err := elf.Open(path)
	if err != nil {
		return "", ErrNotELF
	}
	defer e.Close()
	switch e.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("%s is an ELF file for %s, which no machine here runs", path, e.Machine)
}
