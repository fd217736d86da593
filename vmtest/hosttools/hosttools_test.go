package hosttools

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/machine"
)

// fakeHost has the commands and files in have; installing a package adds
// what the needs say it provides.
type fakeHost struct {
	have    map[string]bool
	root    bool
	ran     [][]string
	failRun string
}

func (f *fakeHost) host(needs []Need) Host {
	return Host{
		LookPath: func(c string) (string, error) {
			if f.have[c] {
				return "/usr/bin/" + c, nil
			}
			return "", errors.New("not found")
		},
		Stat: func(p string) (os.FileInfo, error) {
			if f.have[p] {
				return nil, nil
			}
			return nil, os.ErrNotExist
		},
		IsRoot: func() bool { return f.root },
		Run: func(_ io.Writer, name string, args ...string) error {
			f.ran = append(f.ran, append([]string{name}, args...))
			if f.failRun != "" && strings.Contains(strings.Join(args, " "), f.failRun) {
				return errors.New("exit status 100")
			}
			if len(args) > 0 && args[0] == "install" {
				for _, n := range needs {
					for _, p := range args {
						if p == n.Package {
							f.have[n.String()] = true
						}
					}
				}
			}
			return nil
		},
	}
}

func TestNothingMissing(t *testing.T) {
	needs := For(Request{Machine: x86(t), DebianSource: true})
	f := &fakeHost{have: map[string]bool{}, root: true}
	for _, n := range needs {
		f.have[n.String()] = true
	}
	pkgs, err := f.host(needs).Ensure(needs, io.Discard)
	require.NoError(t, err)
	assert.Empty(t, pkgs)
	assert.Empty(t, f.ran, "nothing is run when nothing is missing")
}

func TestInstallsMissingAsRoot(t *testing.T) {
	needs := For(Request{Machine: x86(t), DebianSource: true})
	f := &fakeHost{have: map[string]bool{}, root: true}
	for _, n := range needs {
		f.have[n.String()] = true
	}
	delete(f.have, "qemu-system-x86_64")
	delete(f.have, "/usr/include/libelf.h")
	delete(f.have, "/usr/src/linux-source-6.12.tar.xz")
	pkgs, err := f.host(needs).Ensure(needs, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"libelf-dev", "linux-source-6.12", "qemu-system-x86"}, pkgs)
	require.Len(t, f.ran, 2)
	assert.Equal(t, []string{"apt-get", "update"}, f.ran[0])
	assert.Equal(t, []string{"apt-get", "install", "-y", "--no-install-recommends", "libelf-dev", "linux-source-6.12", "qemu-system-x86"}, f.ran[1])
}

func TestNotRootPrintsTheCommand(t *testing.T) {
	needs := For(Request{Machine: x86(t), DebianSource: false})
	f := &fakeHost{have: map[string]bool{}, root: false}
	for _, n := range needs {
		f.have[n.String()] = true
	}
	delete(f.have, "ccache")
	_, err := f.host(needs).Ensure(needs, io.Discard)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Empty(t, f.ran)
	assert.Contains(t, err.Error(), "ccache (ccache)")
	assert.Contains(t, err.Error(), "sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends ccache'")
}

func TestInstallFailureNamesCommand(t *testing.T) {
	needs := For(Request{Machine: x86(t), DebianSource: true})
	f := &fakeHost{have: map[string]bool{}, root: true, failRun: "linux-source-6.12"}
	for _, n := range needs {
		f.have[n.String()] = true
	}
	delete(f.have, "/usr/src/linux-source-6.12.tar.xz")
	_, err := f.host(needs).Ensure(needs, io.Discard)
	var me *MissingError
	require.ErrorAs(t, err, &me)
	assert.Contains(t, err.Error(), "apt-get install: exit status 100")
	assert.Contains(t, err.Error(), "apt-get install -y --no-install-recommends linux-source-6.12")
}

func TestKernelSrcDoesNotNeedDebianSource(t *testing.T) {
	for _, n := range For(Request{Machine: x86(t), DebianSource: false}) {
		assert.NotEqual(t, "linux-source-6.12", n.Package)
	}
	assert.Contains(t, Packages(For(Request{Machine: x86(t), DebianSource: true})), "linux-source-6.12")
}

func x86(t *testing.T) machine.Machine {
	t.Helper()
	m, err := machine.ByName("x86_64")
	require.NoError(t, err)
	return m
}

// TestForEveryCommand: what each kind of run asks for, from the one list.
func TestForEveryCommand(t *testing.T) {
	arm, err := machine.ByName("arm64")
	require.NoError(t, err)
	pkgs := func(req Request) []string { return Packages(For(req)) }

	base := pkgs(Request{Machine: x86(t)})
	assert.Contains(t, base, "qemu-system-x86")
	assert.NotContains(t, base, "libcap-dev", "no kselftests, no libcap")
	assert.NotContains(t, base, "lcov")
	assert.NotContains(t, base, "git")

	assert.Contains(t, pkgs(Request{Machine: x86(t), Kselftests: true}), "libcap-dev")
	assert.Contains(t, pkgs(Request{Machine: x86(t), Coverage: true}), "lcov")
	assert.Contains(t, pkgs(Request{Machine: x86(t), Git: true}), "git")

	cross := pkgs(Request{Machine: arm, Kselftests: true})
	assert.Contains(t, cross, "qemu-system-arm")
	assert.Contains(t, cross, "gcc-aarch64-linux-gnu")
	assert.Contains(t, cross, "libcap-dev:arm64")
	assert.NotContains(t, cross, "qemu-system-x86")
	for _, n := range For(Request{Machine: arm, Kselftests: true}) {
		if n.Package == "libcap-dev:arm64" {
			assert.Equal(t, "/usr/lib/aarch64-linux-gnu/libcap.a", n.Path)
		}
	}
}

// TestEnsureAddsForeignArchitecture: a package of another architecture
// makes dpkg know it before apt-get update, and the command printed for a
// user who is not root says so.
func TestEnsureAddsForeignArchitecture(t *testing.T) {
	var ran []string
	h := Host{
		LookPath: func(string) (string, error) { return "/bin/x", nil },
		Stat:     func(string) (os.FileInfo, error) { return nil, os.ErrNotExist },
		IsRoot:   func() bool { return true },
		Run: func(_ io.Writer, name string, args ...string) error {
			ran = append(ran, strings.Join(append([]string{name}, args...), " "))
			return nil
		},
	}
	_, err := h.Ensure([]Need{{Path: "/usr/lib/aarch64-linux-gnu/libcap.a", Package: "libcap-dev:arm64"}}, io.Discard)
	require.Error(t, err, "the fake host never gets the file")
	require.GreaterOrEqual(t, len(ran), 3)
	assert.Equal(t, "dpkg --add-architecture arm64", ran[0])
	assert.Equal(t, "apt-get update", ran[1])
	assert.Contains(t, ran[2], "libcap-dev:arm64")

	h.IsRoot = func() bool { return false }
	_, err = h.Ensure([]Need{{Path: "/x", Package: "libcap-dev:arm64"}}, io.Discard)
	assert.ErrorContains(t, err, "dpkg --add-architecture arm64 && apt-get update && apt-get install")
}

// TestReviewTools: series-check's review tools are in the one list when
// asked for, and TryEnsure installs them like the others but says why
// one is missing instead of failing.
func TestReviewTools(t *testing.T) {
	assert.NotContains(t, Packages(For(Request{Machine: x86(t)})), "sparse")
	pkgs := Packages(For(Request{Machine: x86(t), Review: true}))
	for _, p := range []string{"sparse", "codespell", "python3-docutils"} {
		assert.Contains(t, pkgs, p)
	}

	needs := Review()
	f := &fakeHost{have: map[string]bool{}, root: true}
	assert.Empty(t, f.host(needs).TryEnsure(needs, io.Discard), "installed")
	assert.Len(t, f.ran, 2)

	// apt-get fails for docutils: the others are there, docutils says why.
	f = &fakeHost{have: map[string]bool{"sparse": true, CodespellDictionary: true}, root: true, failRun: "python3-docutils"}
	missing := f.host(needs).TryEnsure(needs, io.Discard)
	require.Len(t, missing, 1)
	assert.Contains(t, missing["docutils"], "docutils not installed (Debian's python3-docutils): apt-get install: exit status 100")

	// Not root: nothing run, the command to run named.
	f = &fakeHost{have: map[string]bool{}, root: false}
	missing = f.host(needs).TryEnsure(needs, io.Discard)
	assert.Len(t, missing, 3)
	assert.Empty(t, f.ran)
	assert.Contains(t, missing["sparse"], "not root, so not installing them; to install it: sudo sh -c 'apt-get update && apt-get install -y --no-install-recommends codespell python3-docutils sparse'")
}
