// Package e2e holds what the end-to-end tests of the harness's commands
// share: building the CLI, running it, and scratch copies of our series
// with one patch deliberately broken.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Repo is the repository's root.
func Repo(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "../../.."))
}

// Harness skips unless LANDLOCK_VMTEST_E2E=1, then builds the CLI.
func Harness(t *testing.T) string {
	t.Helper()
	if os.Getenv("LANDLOCK_VMTEST_E2E") != "1" {
		t.Skip("end-to-end test: builds and boots real kernels; run with make e2e (LANDLOCK_VMTEST_E2E=1)")
	}
	bin := filepath.Join(t.TempDir(), "landlock-vmtest")
	cmd := exec.Command("go", "build", "-o", bin, "./vmtest/cmd/landlock-vmtest")
	cmd.Dir = Repo(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// Out returns an empty directory for a run's OUT=, under the repository's
// out/e2e/ and named after the test. It is removed when the test passes and
// kept when it fails, so that a red run (in CI too) leaves the harness's
// results, logs and repro bundle behind.
func Out(t *testing.T) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(Repo(t), "out", "e2e", name)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept the failed run's OUT: %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// Result is one run of the CLI.
type Result struct {
	Code   int
	Output string
}

// Run runs the CLI command with env added to the environment.
func Run(t *testing.T, bin, command string, env ...string) Result {
	t.Helper()
	cmd := exec.Command(bin, command)
	cmd.Dir = Repo(t)
	cmd.Env = append(os.Environ(), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	r := Result{Output: buf.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("%s: exit %d\n%s", command, r.Code, lastLines(r.Output, 40))
	return r
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// The deliberate breakages of patch 3 of our series (seccomp,landlock:
// append rules), each a one-line change that keeps the hunk's counts.
const (
	// BreakBuild includes a header that does not exist.
	BreakBuild = "build"
	// BreakRuleLimit lowers the rule limit from 64 to 63, which
	// tests/seccompentry's TestRuleLimit notices.
	BreakRuleLimit = "rule-limit"
)

// BrokenPatch is the index of the patch BrokenSeries breaks.
const BrokenPatch = 3

// V1Patches is how many patches of our series make ABI version 1. The
// end-to-end tests of series-check and bisect run on that prefix: they
// test the tools, not the later patches, and every patch more is a kernel
// build more in each of them (make series-check checks the whole series).
const V1Patches = 5

// SeriesPrefix copies patches/ to a scratch directory (the patches and the
// series' *.config fragments) with a series file that names only its first
// n patches, and returns that series file.
func SeriesPrefix(t *testing.T, n int) string {
	t.Helper()
	return prefixCopy(t, n, nil)
}

// BrokenSeries is SeriesPrefix(t, V1Patches) with patch 3 broken as kind
// says.
func BrokenSeries(t *testing.T, kind string) string {
	t.Helper()
	var from, to string
	switch kind {
	case BreakBuild:
		from, to = "+#include <linux/overflow.h>\n", "+#include <linux/landlock_vmtest_no_such_header.h>\n"
	case BreakRuleLimit:
		from, to = "+#define LANDLOCK_BPF_MAX_RULES 64\n", "+#define LANDLOCK_BPF_MAX_RULES 63\n"
	default:
		t.Fatalf("unknown breakage %q", kind)
	}
	broken := false
	series := prefixCopy(t, V1Patches, func(name string, data []byte) []byte {
		if !strings.HasPrefix(name, "0003-") {
			return data
		}
		require.Contains(t, string(data), from, "patch 3 changed: update the breakage")
		broken = true
		return []byte(strings.Replace(string(data), from, to, 1))
	})
	require.True(t, broken, "no patch 0003-* in patches/")
	return series
}

// prefixCopy copies patches/ to a scratch directory, each file through
// edit when it is not nil, and writes a series file naming the first n
// patches of patches/series; it returns that file.
func prefixCopy(t *testing.T, n int, edit func(name string, data []byte) []byte) string {
	t.Helper()
	src := filepath.Join(Repo(t), "patches")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() == "series" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		if edit != nil {
			data = edit(e.Name(), data)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644))
	}
	data, err := os.ReadFile(filepath.Join(src, "series"))
	require.NoError(t, err)
	var lines []string
	kept := 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasSuffix(l, ".patch") && !strings.HasPrefix(l, "#") {
			if kept == n {
				continue
			}
			kept++
		}
		lines = append(lines, l)
	}
	require.Equal(t, n, kept, "patches/series has fewer than %d patches", n)
	series := filepath.Join(dst, "series")
	require.NoError(t, os.WriteFile(series, []byte(strings.Join(lines, "\n")), 0o644))
	return series
}

// LandlockBPFOption is the option the series adds, which its own fragment
// (patches/landlock-bpf.config) turns on.
const LandlockBPFOption = "CONFIG_SECURITY_LANDLOCK_BPF"

// SeriesWithOptionOff copies our series to a scratch directory (the series
// file and its patches: a series file names its patches relative to its
// own directory, and its *.config fragments are the ones beside it) with
// the series' fragments rewritten to turn LandlockBPFOption off:
// "CONFIG_SECURITY_LANDLOCK_BPF=y" becomes "# CONFIG_SECURITY_LANDLOCK_BPF
// is not set", the rest of each fragment is kept. It returns the scratch
// series file. (A CONFIG= fragment cannot do it: the same symbol set two
// ways is a config error.) The patches are byte for byte ours, so the
// patched tree is the cached one; the config differs, so the kernel is a
// build of its own, cached like any other.
func SeriesWithOptionOff(t *testing.T) string {
	t.Helper()
	src := filepath.Join(Repo(t), "patches")
	dst := t.TempDir()
	seriesFile := filepath.Join(src, "series")
	for _, p := range append([]string{seriesFile}, patchList(t, seriesFile)...) {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, filepath.Base(p)), data, 0o644))
	}
	frags, err := filepath.Glob(filepath.Join(src, "*.config"))
	require.NoError(t, err)
	on, off := LandlockBPFOption+"=y", "# "+LandlockBPFOption+" is not set"
	turned := 0
	for _, f := range frags {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		lines := strings.Split(string(data), "\n")
		for i, l := range lines {
			if strings.TrimSpace(l) == on {
				lines[i] = off
				turned++
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dst, filepath.Base(f)), []byte(strings.Join(lines, "\n")), 0o644))
	}
	require.Equal(t, 1, turned, "the series' fragments in %s must set %s exactly once", src, on)
	return filepath.Join(dst, "series")
}

// GitKernel returns a git repository of the Debian 6.12 source with the
// series of seriesFile applied as one commit per patch (git am), made
// once and kept under the user's cache directory: the bisection's
// worktree and build directory are keyed by its path, so later runs
// build incrementally.
func GitKernel(t *testing.T, seriesFile string) string {
	t.Helper()
	base, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(base, "landlock-vmtest-e2e", "linux-git")
	patches := patchList(t, seriesFile)
	want := strings.Join(subjects(t, patches), "\n")
	if got, err := os.ReadFile(filepath.Join(dir, ".git", "e2e-series")); err == nil && string(got) == want {
		if out, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) == 0 {
			return dir
		}
	}
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	sh := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@landlock-vmtest.invalid",
			"GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@landlock-vmtest.invalid")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
	}
	sh("tar", "-xf", "/usr/src/linux-source-6.12.tar.xz", "--strip-components=1")
	sh("git", "init", "-q")
	sh("git", "add", "-A", "-f", ".")
	sh("git", "commit", "-q", "-m", "Debian linux-source-6.12")
	for _, p := range patches {
		sh("git", "am", "-q", "--keep-cr", p)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".git", "e2e-series"), []byte(want), 0o644))
	return dir
}

func patchList(t *testing.T, seriesFile string) []string {
	data, err := os.ReadFile(seriesFile)
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, filepath.Join(filepath.Dir(seriesFile), strings.Fields(l)[0]))
		}
	}
	return out
}

// subjects identifies the fixture by the patches' content.
func subjects(t *testing.T, patches []string) []string {
	var out []string
	for _, p := range patches {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		out = append(out, filepath.Base(p)+" "+hash(data))
	}
	return out
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}
