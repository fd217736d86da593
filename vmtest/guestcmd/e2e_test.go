package guestcmd_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/internal/e2e"
)

// run runs cmd and returns its stdout, its stderr and its exit code.
func run(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	t.Logf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), code, stdout.String(), stderr.String())
	return stdout.String(), stderr.String(), code
}

// TestE2EExecCommand runs commands in the guest of the cached kernel: the
// streams apart and byte for byte, a host file the command names packed
// in, its exit status the harness's, a signal's as a shell gives it.
func TestE2EExecCommand(t *testing.T) {
	bin := e2e.Harness(t)
	out := e2e.Out(t)
	in := filepath.Join(t.TempDir(), "input.txt")
	require.NoError(t, os.WriteFile(in, []byte("from the host\n"), 0o644))

	cmd := exec.Command(bin, "exec", "--", "/bin/sh", "-c", `cat "$1"; echo to-stderr >&2; echo "$LANDLOCK_VMTEST_GUEST $(pwd)"; exit 3`, "sh", in)
	cmd.Dir = e2e.Repo(t)
	cmd.Env = append(os.Environ(), "OUT="+out)
	stdout, stderr, code := run(t, cmd)
	assert.Equal(t, 3, code, "the command's exit status")
	assert.Equal(t, "from the host\n1 "+e2e.Repo(t)+"\n", stdout, "the packed file, the guest marker and the host's working directory")
	assert.Equal(t, "to-stderr\n", stderr)
	assert.FileExists(t, filepath.Join(out, "console.log"))
	log, err := os.ReadFile(filepath.Join(out, "exec.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "==> boot", "the stage lines go to the log")

	cmd = exec.Command(bin, "exec", "--", "/bin/sh", "-c", "kill -SEGV $$")
	cmd.Dir = e2e.Repo(t)
	cmd.Env = append(os.Environ(), "OUT="+out)
	_, _, code = run(t, cmd)
	assert.Equal(t, 128+11, code, "killed by SIGSEGV")

	// The kernel's trouble is the harness's exit code, whatever the
	// command's: a WARN with the command exiting 0, a panic.
	for provoke, why := range map[string]string{"WARNING": "kernel splat: warning during exec", "PANIC": "kernel panic"} {
		cmd = exec.Command(bin, "exec", "--", "/bin/sh", "-c", "echo "+provoke+" > /sys/kernel/debug/provoke-crash/DIRECT")
		cmd.Dir = e2e.Repo(t)
		cmd.Env = append(os.Environ(), "OUT="+out)
		_, stderr, code = run(t, cmd)
		assert.Equal(t, 6, code, provoke)
		assert.Contains(t, stderr, why)
		assert.Contains(t, stderr, filepath.Join(out, "console.log"), "where to look")
	}

	// cache-key names the build the runs above booted: the keys a CI
	// cache is saved under are the harness's own.
	cmd = exec.Command(bin, "cache-key")
	cmd.Dir = e2e.Repo(t)
	keys, _, code := run(t, cmd)
	require.Equal(t, 0, code)
	c, err := cache.Default(os.Getenv("CACHE_DIR"))
	require.NoError(t, err)
	var build string
	for _, l := range strings.Split(keys, "\n") {
		if v, ok := strings.CutPrefix(l, "build="); ok {
			build = v
		}
	}
	require.NotEmpty(t, build, keys)
	assert.True(t, cache.Done(c.Path("build", build)), "the build cache-key names is the one the runs used")
	assert.Contains(t, keys, "\nkey=")

	cmd = exec.Command(bin, "exec", "--", "no-such-command")
	cmd.Dir = e2e.Repo(t)
	cmd.Env = append(os.Environ(), "OUT="+out)
	_, stderr, code = run(t, cmd)
	assert.Equal(t, 127, code, "a command the guest cannot find")
	assert.Contains(t, stderr, "no-such-command")
}

// testModule is a Go module outside this one whose tests read their
// testdata/ and say whether they run in the guest.
var testModule = map[string]string{
	"go.mod":            "module example.com/guestpkg\n\ngo 1.22\n",
	"testdata/data.txt": "packed",
	"pkg_test.go": `package guestpkg

import (
	"os"
	"testing"
)

func TestInGuest(t *testing.T) {
	if os.Getenv("LANDLOCK_VMTEST_GUEST") != "1" {
		t.Fatal("not in the guest")
	}
	b, err := os.ReadFile("testdata/data.txt")
	if err != nil || string(b) != "packed" {
		t.Fatalf("testdata: %q, %v", b, err)
	}
	t.Log("release", os.Getenv("LANDLOCK_VMTEST_KERNEL_RELEASE"))
}

func TestFails(t *testing.T) { t.Fatal("fails on purpose") }
`,
}

// TestE2EExecGoTest runs go test with -exec: a package of this repository
// and one of another module (the harness found from its executable), its
// testdata/, -run, -count and -v as on the host, a failure failing go
// test, a coverage profile coming back.
func TestE2EExecGoTest(t *testing.T) {
	bin := e2e.Harness(t)
	out := e2e.Out(t)
	// The harness binary in the repository's bin/, where a user has it:
	// from another module's directory, that is how it finds the
	// repository.
	exe := filepath.Join(e2e.Repo(t), "bin", "landlock-vmtest-e2e-exec")
	data, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(exe, data, 0o755))
	t.Cleanup(func() { os.Remove(exe) })
	env := append(os.Environ(), "OUT="+out, "CGO_ENABLED=0")
	gotest := func(dir string, args ...string) (string, int) {
		cmd := exec.Command("go", append([]string{"test", "-exec", exe + " exec --"}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		stdout, stderr, code := run(t, cmd)
		return stdout + stderr, code
	}

	o, code := gotest(e2e.Repo(t), "-count=2", "-v", "-run", "^TestKernelIsTheOneBuilt$", "./tests/smoke")
	assert.Equal(t, 0, code)
	assert.Equal(t, 2, strings.Count(o, "--- PASS: TestKernelIsTheOneBuilt"), "-count=2 runs it twice")
	assert.NotContains(t, o, "TestRunsAsRootWithCapSysAdmin", "-run chose one test")

	mod := filepath.Join(t.TempDir(), "guestpkg")
	for name, body := range testModule {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(mod, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644))
	}
	cover := filepath.Join(t.TempDir(), "cover.out")
	o, code = gotest(mod, "-count=1", "-v", "-run", "^TestInGuest$", "-coverprofile="+cover, ".")
	assert.Equal(t, 0, code)
	assert.Contains(t, o, "--- PASS: TestInGuest")
	assert.Contains(t, o, "release 6.12")
	assert.FileExists(t, cover, "the profile the binary wrote in the guest")

	o, code = gotest(mod, "-count=1", "-run", "^TestFails$", ".")
	assert.Equal(t, 1, code)
	assert.Contains(t, o, "fails on purpose")
	assert.Contains(t, o, "FAIL\texample.com/guestpkg")
}
