// Package initramfs packs the guest's initramfs in two layers: a base image
// made with u-root's mkuimage (u-root init, the guest runner as uinit,
// test2json, a shell), cached by the hash of its inputs; and a layer of
// test binaries (`go test -c`, static, for the guest's GOARCH) with their
// packages' testdata. The kernel unpacks concatenated cpio archives in
// order, so the initrd is the two files end to end and a warm run only
// rebuilds the tests.
package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
)

// Module is this repository's Go module path.
const Module = "github.com/landlock-vmtest/landlock-vmtest"

// baseCommands go into every base image. They are built with `go build`
// (static, stripped) and packed by mkuimage: mkuimage's own builders pass -a
// to the Go compiler, which throws away Go's build cache on every build.
// gosh (which /bin/sh links to) and ip are there for the kselftests:
// landlock's net_test runs system("ip link set dev lo up").
var baseCommands = []string{
	"github.com/u-root/u-root/cmds/core/init",
	Module + "/initramfs/runner",
	"cmd/test2json",
	"github.com/u-root/u-root/cmds/core/gosh",
	"github.com/u-root/u-root/cmds/core/ip",
}

// shellCommands are added for `make shell`.
var shellCommands = []string{
	"github.com/u-root/u-root/cmds/core/cat",
	"github.com/u-root/u-root/cmds/core/dmesg",
	"github.com/u-root/u-root/cmds/core/ls",
	"github.com/u-root/u-root/cmds/core/mount",
	"github.com/u-root/u-root/cmds/core/ps",
}

// BaseKey is the cache key of the base image Base makes (landlock-vmtest
// cache-key).
func BaseKey(repo, goarch string, shell bool) (string, error) {
	return baseKey(repo, goarch, baseCmds(shell))
}

func baseCmds(shell bool) []string {
	if shell {
		return append(append([]string{}, baseCommands...), shellCommands...)
	}
	return baseCommands
}

// Base returns the base image, building it when its inputs changed. repo is
// this repository's root; shell adds an interactive shell and a few tools.
// It reports whether it was built.
func Base(c *cache.Cache, repo, goarch string, shell bool) (string, bool, error) {
	cmds := baseCmds(shell)
	key, err := baseKey(repo, goarch, cmds)
	if err != nil {
		return "", false, err
	}
	dir := c.Path("initramfs", key)
	built, err := cache.Build(dir, func(tmp string) error {
		var files []string
		for _, cmd := range cmds {
			bin := filepath.Join(tmp, "bin", path.Base(cmd))
			if err := goBuild(repo, goarch, bin, cmd); err != nil {
				return err
			}
			files = append(files, bin+":bin/"+path.Base(cmd))
		}
		var logBuf bytes.Buffer
		l := llog.New(slog.LevelWarn, func(format string, args ...any) {
			fmt.Fprintf(&logBuf, format+"\n", args...)
		})
		err := uimage.Create(l,
			uimage.WithFiles(files...),
			uimage.WithInit("/bin/init"),
			uimage.WithUinit("/bin/runner"),
			// /bin/sh: system(3) in the kselftests. init never
			// starts it: the runner ends the VM.
			uimage.WithShell("/bin/gosh"),
			uimage.WithSkipLDD(),
			uimage.WithTempDir(tmp),
			uimage.WithCPIOOutput(filepath.Join(tmp, "base.cpio")),
		)
		if err != nil {
			return fmt.Errorf("mkuimage: %w\n%s", err, logBuf.String())
		}
		return os.RemoveAll(filepath.Join(tmp, "bin"))
	})
	if err != nil {
		return "", built, fmt.Errorf("building the base initramfs: %w", err)
	}
	return filepath.Join(dir, "base.cpio"), built, nil
}

// goEnv is the environment of every guest build: static, linux/goarch.
func goEnv(goarch string) []string {
	if goarch == "" {
		goarch = "amd64"
	}
	return append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
}

// goBuild builds one command for the guest.
func goBuild(dir, goarch, out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = goEnv(goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// baseKey hashes what goes into the base image: the Go toolchain, the
// commands, the target architecture, the module's dependency list and the
// sources of every package of this module the commands are built from
// (baseInputs: `go list -deps`, so a new import of the runner is in the
// key the moment it is written).
func baseKey(repo, goarch string, cmds []string) (string, error) {
	h := sha256.New()
	goVersion, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	fmt.Fprintf(h, "base-v4\x00%s\x00%s\x00%s\x00", goVersion, strings.Join(cmds, ","), goarch)
	inputs, err := baseInputs(repo, goarch, cmds)
	if err != nil {
		return "", err
	}
	files := append([]string{"go.mod", "go.sum"}, inputs...)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return "", fmt.Errorf("hashing initramfs input: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// baseInputs are the source files, relative to repo, of the packages of
// repo's own module that the commands are built from, for goarch as the
// guest build sees them (build tags included). Packages of other modules
// are pinned by go.sum.
func baseInputs(repo, goarch string, cmds []string) ([]string, error) {
	args := append([]string{"list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}}{{"\t"}}{{.}}{{end}}{{range .EmbedFiles}}{{"\t"}}{{.}}{{end}}{{end}}{{end}}`}, cmds...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repo
	cmd.Env = goEnv(goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing the initramfs commands' packages (go list -deps): %w\n%s", err, stderr.String())
	}
	var files []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Split(line, "\t")
		if len(fields) < 2 {
			continue
		}
		rel, err := filepath.Rel(repo, fields[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		for _, f := range fields[1:] {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	sort.Strings(files)
	return files, nil
}

// Package is a Go package whose test binary goes into the guest.
type Package struct {
	ImportPath string
	Dir        string
	// ModuleDir is the root of the package's module ("" when go list
	// gives none): the testdata/ directories between it and Dir are
	// packed too, for tests that read ../testdata.
	ModuleDir string
	// Alone is set when a test file of the package has the line
	// contract.AloneDirective: its binary runs beside no other.
	Alone bool
}

// ListTestPackages resolves patterns (import paths, directories, "./tests/...")
// with `go list`, run in dir, and keeps the packages that have tests. A
// directory outside dir's module (another module on disk) is listed from
// inside that directory, so test packages of other projects work too.
func ListTestPackages(dir string, patterns []string) ([]Package, error) {
	byDir := map[string][]string{}
	var dirs []string
	for _, pat := range patterns {
		wd, rel := dir, pat
		if filepath.IsAbs(pat) || strings.HasPrefix(pat, ".") {
			abs := pat
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(dir, pat)
			}
			base, dots := strings.CutSuffix(abs, "/...")
			if r, err := filepath.Rel(dir, base); err != nil || strings.HasPrefix(r, "..") {
				wd, rel = base, "."
				if dots {
					rel = "./..."
				}
			}
		}
		if _, ok := byDir[wd]; !ok {
			dirs = append(dirs, wd)
		}
		byDir[wd] = append(byDir[wd], rel)
	}
	var pkgs []Package
	for _, wd := range dirs {
		found, err := listIn(wd, byDir[wd])
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, found...)
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no package with tests matches %s", strings.Join(patterns, " "))
	}
	return pkgs, nil
}

func listIn(dir string, patterns []string) ([]Package, error) {
	args := append([]string{"list", "-e", "-json=ImportPath,Dir,Module,TestGoFiles,XTestGoFiles,Error"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = goEnv("")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s (in %s): %w\n%s", strings.Join(patterns, " "), dir, err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []Package
	for {
		var p struct {
			ImportPath, Dir           string
			TestGoFiles, XTestGoFiles []string
			Module                    *struct{ Dir string }
			Error                     *struct{ Err string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading go list output: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("test package %s: %s", p.ImportPath, p.Error.Err)
		}
		if len(p.TestGoFiles)+len(p.XTestGoFiles) == 0 {
			continue
		}
		pkg := Package{ImportPath: p.ImportPath, Dir: p.Dir}
		if p.Module != nil {
			pkg.ModuleDir = p.Module.Dir
		}
		alone, err := hasAloneDirective(p.Dir, append(p.TestGoFiles, p.XTestGoFiles...))
		if err != nil {
			return nil, fmt.Errorf("test package %s: %w", p.ImportPath, err)
		}
		pkg.Alone = alone
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

// Tests compiles the packages' test binaries (static, for goarch) into work and
// returns the manifest for the guest, with paths as the guest sees them,
// and the host files to pack under /tests. Each package is built in its
// own directory, so that a package of another module builds in that module.
func Tests(work, goarch string, pkgs []Package, m contract.Manifest) (*contract.Manifest, map[string]string, error) {
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, nil, fmt.Errorf("test binary directory: %w", err)
	}
	files := map[string]string{}
	m.Binaries = nil
	for i, p := range pkgs {
		name := fmt.Sprintf("%02d-%s.test", i, path.Base(p.ImportPath))
		out := filepath.Join(bin, name)
		// Built from the package's own directory, so that a package of
		// another module builds in that module.
		cmd := exec.Command("go", "test", "-c", "-o", out, "-trimpath", "-ldflags=-s -w", ".")
		cmd.Dir = p.Dir
		cmd.Env = goEnv(goarch)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("go test -c %s: %w\n%s", p.ImportPath, err, b)
		}
		gdir := fmt.Sprintf("tests/%02d", i)
		files[gdir+"/"+name] = out
		dir, err := addTestdata(files, p, gdir)
		if err != nil {
			return nil, nil, err
		}
		m.Binaries = append(m.Binaries, contract.Binary{
			Package: p.ImportPath,
			Path:    "/" + gdir + "/" + name,
			Dir:     "/" + dir,
			Alone:   p.Alone,
		})
	}
	return &m, files, nil
}

// addTestdata adds the package's testdata/ tree, if any, under gdir, and
// returns the guest directory the binary runs in: gdir, or, when a
// directory above the package in its module has a testdata/ too (tests
// that open ../testdata/...), gdir/<the package's path in the module>,
// with those testdata/ trees at their places in the module under gdir.
func addTestdata(files map[string]string, p Package, gdir string) (string, error) {
	var above []string
	if p.ModuleDir != "" {
		// A package inside a testdata/ directory (a fixture of ours)
		// is nobody's ../testdata reader.
		rel, err := filepath.Rel(p.ModuleDir, p.Dir)
		inTestdata := slices.Contains(strings.Split(filepath.ToSlash(rel), "/"), "testdata")
		if err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !inTestdata {
			for d := filepath.Dir(p.Dir); ; d = filepath.Dir(d) {
				if isDir(filepath.Join(d, "testdata")) {
					above = append(above, d)
				}
				if d == p.ModuleDir || d == filepath.Dir(d) {
					break
				}
			}
			if len(above) > 0 {
				for _, d := range above {
					r, _ := filepath.Rel(p.ModuleDir, d)
					if err := packTree(files, filepath.Join(d, "testdata"), path.Join(gdir, filepath.ToSlash(r), "testdata")); err != nil {
						return "", err
					}
				}
				gdir = path.Join(gdir, filepath.ToSlash(rel))
			}
		}
	}
	if td := filepath.Join(p.Dir, "testdata"); isDir(td) {
		if err := packTree(files, td, gdir+"/testdata"); err != nil {
			return "", err
		}
	}
	return gdir, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// packTree adds every file under the host directory src at guest dir dst.
func packTree(files map[string]string, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("packing testdata: %w", err)
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		files[dst+"/"+filepath.ToSlash(rel)] = p
		return nil
	})
}

// hasAloneDirective reports whether one of the files (names in dir) has a
// line that is contract.AloneDirective, alone or followed by a space and
// its reason, from its first column as a //go: directive is (an indented
// one, in a block comment or a string, is not a directive).
func hasAloneDirective(dir string, files []string) (bool, error) {
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return false, fmt.Errorf("reading %s for %s: %w", f, contract.AloneDirective, err)
		}
		for line := range strings.Lines(string(b)) {
			rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), contract.AloneDirective)
			if ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
				return true, nil
			}
		}
	}
	return false, nil
}
