package initramfs

import (
	"debug/elf"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/u-root/mkuimage/cpio"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
)

const packModule = "example.com/packfixture"

// packFixture writes a throwaway module: withtests (internal tests and a
// testdata tree), xonly (only an external test package) and notests.
// It sets the environment so that the go command builds it on its own.
func packFixture(t *testing.T) string {
	t.Helper()
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOTOOLCHAIN", "local")
	dir := t.TempDir()
	for name, content := range map[string]string{
		"go.mod": "module " + packModule + "\n\ngo 1.26\n",
		"withtests/w.go": `package withtests

func Answer() int { return 42 }
`,
		"withtests/w_test.go": `package withtests

import "testing"

func TestAnswer(t *testing.T) {
	if Answer() != 42 {
		t.Fatal("wrong answer")
	}
}
`,
		"withtests/testdata/input.txt":       "input\n",
		"withtests/testdata/nested/deep.txt": "deep\n",
		"xonly/x_test.go": `package xonly_test

import "testing"

func TestExternal(t *testing.T) {}
`,
		"notests/n.go": "package notests\n\nconst N = 1\n",
	} {
		writeFile(t, filepath.Join(dir, name), content, 0o644)
	}
	return dir
}

func TestListTestPackages(t *testing.T) {
	dir := packFixture(t)
	pkgs, err := ListTestPackages(dir, []string{"./..."})
	require.NoError(t, err)
	assert.Equal(t, []Package{
		{ImportPath: packModule + "/withtests", Dir: filepath.Join(dir, "withtests"), ModuleDir: dir},
		{ImportPath: packModule + "/xonly", Dir: filepath.Join(dir, "xonly"), ModuleDir: dir},
	}, pkgs)

	pkgs, err = ListTestPackages(dir, []string{packModule + "/xonly", "./notests"})
	require.NoError(t, err)
	assert.Equal(t, []Package{{ImportPath: packModule + "/xonly", Dir: filepath.Join(dir, "xonly"), ModuleDir: dir}}, pkgs)

	_, err = ListTestPackages(dir, []string{"./notests"})
	assert.ErrorContains(t, err, "no package with tests matches ./notests")

	_, err = ListTestPackages(dir, []string{"./withtests", "./missing"})
	assert.ErrorContains(t, err, "test package ./missing")
	assert.ErrorContains(t, err, "directory not found")

	_, err = ListTestPackages(filepath.Join(dir, "no-such-dir"), []string{"./..."})
	assert.ErrorContains(t, err, "go list ./...")
}

func TestTests(t *testing.T) {
	dir := packFixture(t)
	pkgs, err := ListTestPackages(dir, []string{"./..."})
	require.NoError(t, err)
	work := t.TempDir()
	in := contract.Manifest{
		Binaries: []contract.Binary{{Package: "stale", Path: "/stale", Dir: "/"}},
		Timeout:  contract.Duration(7 * time.Minute),
		Args:     []string{"-test.run=^TestAnswer$"},
		Env:      map[string]string{"K": "V"},
	}
	m, files, err := Tests(work, "amd64", pkgs, in)
	require.NoError(t, err)

	assert.Equal(t, []contract.Binary{
		{Package: packModule + "/withtests", Path: "/tests/00/00-withtests.test", Dir: "/tests/00"},
		{Package: packModule + "/xonly", Path: "/tests/01/01-xonly.test", Dir: "/tests/01"},
	}, m.Binaries, "the given binaries are replaced")
	assert.Equal(t, in.Timeout, m.Timeout)
	assert.Equal(t, in.Args, m.Args)
	assert.Equal(t, in.Env, m.Env)
	assert.Len(t, in.Binaries, 1, "the caller's manifest is not changed")

	assert.Equal(t, map[string]string{
		"tests/00/00-withtests.test":        filepath.Join(work, "bin", "00-withtests.test"),
		"tests/00/testdata/input.txt":       filepath.Join(dir, "withtests", "testdata", "input.txt"),
		"tests/00/testdata/nested/deep.txt": filepath.Join(dir, "withtests", "testdata", "nested", "deep.txt"),
		"tests/01/01-xonly.test":            filepath.Join(work, "bin", "01-xonly.test"),
	}, files)
	for _, b := range m.Binaries {
		assert.Equal(t, b.Dir, path.Dir(b.Path), "a binary runs next to its testdata")
		assert.Contains(t, files, strings.TrimPrefix(b.Path, "/"))
	}

	// The binaries are static linux/amd64 test binaries.
	for _, name := range []string{"00-withtests.test", "01-xonly.test"} {
		p := filepath.Join(work, "bin", name)
		ef, err := elf.Open(p)
		require.NoError(t, err, name)
		assert.Equal(t, elf.EM_X86_64, ef.Machine, name)
		for _, prog := range ef.Progs {
			assert.NotEqual(t, elf.PT_INTERP, prog.Type, "%s is dynamically linked", name)
		}
		ef.Close()
	}
	out, err := exec.Command(filepath.Join(work, "bin", "00-withtests.test"), "-test.list", ".").Output()
	require.NoError(t, err)
	assert.Equal(t, "TestAnswer\n", string(out))

	// The test layer made from them has what the manifest names.
	archive := filepath.Join(t.TempDir(), "tests.cpio")
	require.NoError(t, WriteTests(archive, m, files))
	recs, content := readArchive(t, archive)
	checkDirsFirst(t, recs)
	for _, b := range m.Binaries {
		r, ok := byName(recs)[strings.TrimPrefix(b.Path, "/")]
		if assert.True(t, ok, b.Path) {
			assert.NotZero(t, r.Mode&0o111, "%s is executable", b.Path)
		}
	}
	assert.Equal(t, "deep\n", string(content["tests/00/testdata/nested/deep.txt"]))
}

func TestTestsCompileError(t *testing.T) {
	dir := packFixture(t)
	writeFile(t, filepath.Join(dir, "withtests", "broken_test.go"), "package withtests\n\nfunc broken() { undefined() }\n", 0o644)
	_, _, err := Tests(t.TempDir(), "amd64", []Package{{ImportPath: packModule + "/withtests", Dir: filepath.Join(dir, "withtests")}},
		contract.Manifest{Timeout: contract.Duration(time.Minute)})
	assert.ErrorContains(t, err, "go test -c "+packModule+"/withtests")
	assert.ErrorContains(t, err, "undefined")
}

// fakeRepo is a module whose command imports one of its packages and not
// another: what baseKey reads.
func fakeRepo(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	writeFile(t, filepath.Join(repo, "go.mod"), "module example.com/fake\n\ngo 1.22\n", 0o644)
	writeFile(t, filepath.Join(repo, "go.sum"), "", 0o644)
	writeFile(t, filepath.Join(repo, "cmd", "init", "main.go"), "package main\n\nimport _ \"example.com/fake/lib\"\n\nfunc main() {}\n", 0o644)
	writeFile(t, filepath.Join(repo, "lib", "a.go"), "package lib\n", 0o644)
	writeFile(t, filepath.Join(repo, "other", "a.go"), "package other\n", 0o644)
	return repo
}

func TestBaseKey(t *testing.T) {
	repo := fakeRepo(t)
	cmds := []string{"example.com/fake/cmd/init"}
	key := func() string {
		t.Helper()
		k, err := baseKey(repo, "amd64", cmds)
		require.NoError(t, err)
		return k
	}
	k1 := key()
	assert.Len(t, k1, 24)
	assert.Equal(t, k1, key(), "stable")

	withShell, err := baseKey(repo, "amd64", append(append([]string{}, cmds...), "example.com/fake/other"))
	require.NoError(t, err)
	assert.NotEqual(t, k1, withShell, "the commands are part of the key")
	arm, err := baseKey(repo, "arm64", cmds)
	require.NoError(t, err)
	assert.NotEqual(t, k1, arm, "the architecture is part of the key")

	writeFile(t, filepath.Join(repo, "lib", "a.go"), "package lib // changed\n", 0o644)
	k3 := key()
	assert.NotEqual(t, k1, k3, "a source of an imported package is part of the key")

	writeFile(t, filepath.Join(repo, "lib", "b.go"), "package lib\n", 0o644)
	k4 := key()
	assert.NotEqual(t, k3, k4, "a new source file is part of the key")

	writeFile(t, filepath.Join(repo, "other", "a.go"), "package other // changed\n", 0o644)
	assert.Equal(t, k4, key(), "a package the commands do not import is not")

	// A new import: the package it brings in is in the key from then on,
	// with nobody listing it by hand.
	writeFile(t, filepath.Join(repo, "lib", "b.go"), "package lib\n\nimport _ \"example.com/fake/other\"\n", 0o644)
	k5 := key()
	assert.NotEqual(t, k4, k5)
	writeFile(t, filepath.Join(repo, "other", "a.go"), "package other // changed again\n", 0o644)
	assert.NotEqual(t, k5, key(), "a newly imported package is part of the key")

	writeFile(t, filepath.Join(repo, "go.sum"), "other sums\n", 0o644)
	k6 := key()
	writeFile(t, filepath.Join(repo, "go.sum"), "more sums\n", 0o644)
	assert.NotEqual(t, k6, key(), "go.sum is part of the key")

	writeFile(t, filepath.Join(repo, "lib", "c.go"), "package lib\n\nimport _ \"example.com/fake/absent\"\n", 0o644)
	_, err = baseKey(repo, "amd64", cmds)
	assert.ErrorContains(t, err, "go list -deps")
}

// TestBaseInputsAreTheRunnersImports checks the real key's inputs against
// the runner's imports found another way (parsing the sources): every
// non-test Go file of every package of this module the runner imports,
// directly or not, is hashed, and no other package's.
func TestBaseInputsAreTheRunnersImports(t *testing.T) {
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	got, err := baseInputs(repo, "amd64", baseCommands)
	require.NoError(t, err)

	guestCtx := build.Default
	guestCtx.GOOS, guestCtx.GOARCH = "linux", "amd64"
	want := map[string]bool{}
	seen := map[string]bool{}
	var walk func(pkg string)
	walk = func(pkg string) {
		if seen[pkg] || !strings.HasPrefix(pkg, Module+"/") {
			return
		}
		seen[pkg] = true
		dir := strings.TrimPrefix(pkg, Module+"/")
		matches, err := filepath.Glob(filepath.Join(repo, dir, "*.go"))
		require.NoError(t, err)
		for _, m := range matches {
			if strings.HasSuffix(m, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), m, nil, parser.ImportsOnly|parser.ParseComments)
			require.NoError(t, err)
			if ok, _ := guestCtx.MatchFile(filepath.Dir(m), filepath.Base(m)); !ok {
				continue
			}
			want[dir+"/"+filepath.Base(m)] = true
			for _, imp := range f.Imports {
				walk(strings.Trim(imp.Path.Value, `"`))
			}
		}
	}
	walk(Module + "/initramfs/runner")
	var wantList []string
	for f := range want {
		wantList = append(wantList, f)
	}
	sort.Strings(wantList)
	assert.Equal(t, wantList, got, "the base image's key must hash exactly the runner's own packages")
	assert.Contains(t, got, "contract/event/event.go", "the contract the runner speaks is in the key")
}

func TestBase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the base image")
	}
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(repo, "initramfs", "runner", "main.go"))
	require.NoError(t, err, "the repository root")
	c, err := cache.Default(t.TempDir())
	require.NoError(t, err)

	img, built, err := Base(c, repo, "amd64", false)
	require.NoError(t, err)
	assert.True(t, built, "a fresh cache builds")
	assert.Equal(t, c.Root, filepath.Dir(filepath.Dir(filepath.Dir(img))), "the image is in the cache: %s", img)
	assert.Equal(t, "base.cpio", filepath.Base(img))
	assert.True(t, cache.Done(filepath.Dir(img)))
	entries, err := os.ReadDir(filepath.Dir(img))
	require.NoError(t, err)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	assert.ElementsMatch(t, []string{"base.cpio", ".landlock-vmtest-done"}, left, "the built commands are not kept beside the image")

	recs, content := readArchive(t, img)
	checkDirsFirst(t, recs)
	recByName := byName(recs)
	for _, bin := range []string{"bin/init", "bin/runner", "bin/test2json", "bin/gosh", "bin/ip"} {
		r, ok := recByName[bin]
		if !assert.True(t, ok, "%s in the base image; have %v", bin, names(recs)) {
			continue
		}
		assert.Equal(t, uint64(cpio.S_IFREG), r.Mode&cpio.S_IFMT, bin)
		assert.NotZero(t, r.Mode&0o111, "%s is executable", bin)
		assert.True(t, strings.HasPrefix(string(content[bin]), "\x7fELF"), "%s is an ELF binary", bin)
	}
	// u-root's init runs /init; it starts /bin/uinit, our runner. The
	// kselftests' system(3) needs /bin/sh.
	for link, target := range map[string]string{"init": "bin/init", "bin/uinit": "bin/runner", "bin/sh": "bin/gosh"} {
		r, ok := recByName[link]
		if !assert.True(t, ok, "%s in the base image", link) {
			continue
		}
		assert.Equal(t, uint64(cpio.S_IFLNK), r.Mode&cpio.S_IFMT, "%s is a symlink", link)
		dest := string(content[link])
		if !path.IsAbs(dest) {
			dest = path.Join(path.Dir(link), dest)
		}
		assert.Equal(t, target, strings.TrimPrefix(dest, "/"), "%s points to %s", link, content[link])
	}
	assert.NotContains(t, recByName, "bin/ls", "no shell tools unless asked")

	img2, built, err := Base(c, repo, "amd64", false)
	require.NoError(t, err)
	assert.False(t, built, "the second call finds the image in the cache")
	assert.Equal(t, img, img2)
}

// A directory pattern outside dir's module is listed, and built, in its
// own module.
func TestTestsFromAnotherModule(t *testing.T) {
	dir := packFixture(t)
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "go.mod"), "module example.com/othermodule\n\ngo 1.26\n", 0o644)
	writeFile(t, filepath.Join(other, "pkg", "p_test.go"), "package pkg\n\nimport \"testing\"\n\nfunc TestOther(t *testing.T) {}\n", 0o644)

	pkgs, err := ListTestPackages(dir, []string{"./xonly", other + "/...", "./withtests"})
	require.NoError(t, err)
	assert.ElementsMatch(t, []Package{
		{ImportPath: packModule + "/xonly", Dir: filepath.Join(dir, "xonly"), ModuleDir: dir},
		{ImportPath: packModule + "/withtests", Dir: filepath.Join(dir, "withtests"), ModuleDir: dir},
		{ImportPath: "example.com/othermodule/pkg", Dir: filepath.Join(other, "pkg"), ModuleDir: other},
	}, pkgs)

	rel, err := filepath.Rel(dir, filepath.Join(other, "pkg"))
	require.NoError(t, err)
	pkgs, err = ListTestPackages(dir, []string{rel})
	require.NoError(t, err, "a relative path into another module")
	assert.Equal(t, []Package{{ImportPath: "example.com/othermodule/pkg", Dir: filepath.Join(other, "pkg"), ModuleDir: other}}, pkgs)

	work := t.TempDir()
	m, files, err := Tests(work, "amd64", pkgs, contract.Manifest{Timeout: contract.Duration(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, []contract.Binary{{Package: "example.com/othermodule/pkg", Path: "/tests/00/00-pkg.test", Dir: "/tests/00"}}, m.Binaries)
	assert.Equal(t, map[string]string{"tests/00/00-pkg.test": filepath.Join(work, "bin", "00-pkg.test")}, files)
	out, err := exec.Command(filepath.Join(work, "bin", "00-pkg.test"), "-test.list", ".").Output()
	require.NoError(t, err)
	assert.Equal(t, "TestOther\n", string(out))
}

// A package whose tests open ../testdata (cilium/ebpf's link, btf, ...)
// runs at its place in its module, the module's testdata/ above it.
func TestTestsWithTestdataAbove(t *testing.T) {
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "go.mod"), "module example.com/above\n\ngo 1.26\n", 0o644)
	writeFile(t, filepath.Join(other, "testdata", "shared.elf"), "elf", 0o644)
	writeFile(t, filepath.Join(other, "a", "b", "testdata", "own.txt"), "own", 0o644)
	writeFile(t, filepath.Join(other, "a", "b", "b_test.go"), "package b\n\nimport \"testing\"\n\nfunc TestB(t *testing.T) {}\n", 0o644)
	writeFile(t, filepath.Join(other, "a", "a_test.go"), "package a\n\nimport \"testing\"\n\nfunc TestA(t *testing.T) {}\n", 0o644)
	pkgs, err := ListTestPackages(other, []string{"./a/b", "./a"})
	require.NoError(t, err)
	work := t.TempDir()
	m, files, err := Tests(work, "amd64", pkgs, contract.Manifest{Timeout: contract.Duration(time.Minute)})
	require.NoError(t, err)
	require.Len(t, m.Binaries, 2)
	assert.Equal(t, "/tests/00/a/b", m.Binaries[0].Dir)
	assert.Equal(t, "/tests/00/00-b.test", m.Binaries[0].Path)
	assert.Equal(t, "/tests/01/a", m.Binaries[1].Dir)
	delete(files, "tests/00/00-b.test")
	delete(files, "tests/01/01-a.test")
	assert.Equal(t, map[string]string{
		"tests/00/testdata/shared.elf":  filepath.Join(other, "testdata", "shared.elf"),
		"tests/00/a/b/testdata/own.txt": filepath.Join(other, "a", "b", "testdata", "own.txt"),
		"tests/01/testdata/shared.elf":  filepath.Join(other, "testdata", "shared.elf"),
	}, files)
}

// A test file with contract.AloneDirective on a line of its own, from the
// first column (a reason may follow), marks the package's binary Alone;
// the directive inside other text, indented (in a string), or with more
// letters after it, does not.
func TestAloneDirective(t *testing.T) {
	dir := packFixture(t)
	writeFile(t, filepath.Join(dir, "xonly", "alone_test.go"), "package xonly_test\n\n"+contract.AloneDirective+" it writes a sysctl\n", 0o644)
	writeFile(t, filepath.Join(dir, "withtests", "near_test.go"), "package withtests\n\n// see "+contract.AloneDirective+"\n"+contract.AloneDirective+"ly\nconst s = `\n\t"+contract.AloneDirective+"\n`\n", 0o644)
	pkgs, err := ListTestPackages(dir, []string{"./..."})
	require.NoError(t, err)
	require.Len(t, pkgs, 2)
	assert.False(t, pkgs[0].Alone, pkgs[0].ImportPath)
	assert.True(t, pkgs[1].Alone, pkgs[1].ImportPath)

	m, _, err := Tests(t.TempDir(), "amd64", pkgs, contract.Manifest{})
	require.NoError(t, err)
	assert.False(t, m.Binaries[0].Alone)
	assert.True(t, m.Binaries[1].Alone, "the manifest carries the directive")
}
