package guest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
)

// The runner tests run real test binaries: a throwaway module with a few
// packages is written to a temporary directory and compiled once per test
// process with `go test -c`.

const fixtureModule = "example.com/guestfixture"

var fixtureSources = map[string]string{
	"go.mod": "module " + fixtureModule + "\n\ngo 1.26\n",

	// mixed has one passing, one failing and one skipped test.
	"mixed/mixed_test.go": `package mixed

import "testing"

func TestPass(t *testing.T) { t.Log("passing") }

func TestFail(t *testing.T) { t.Error("failing on purpose") }

func TestSkip(t *testing.T) { t.Skip("skipping on purpose") }
`,

	// env checks what the runner passes to a binary: the manifest's
	// environment, the guest marker, and the working directory (where
	// testdata/ is). TestOther fails, so -test.run must keep it out.
	"env/env_test.go": `package env

import (
	"os"
	"testing"
)

func TestEnv(t *testing.T) {
	if got := os.Getenv("FIXTURE_VALUE"); got != "from-manifest" {
		t.Errorf("FIXTURE_VALUE = %q", got)
	}
	if got := os.Getenv("LANDLOCK_VMTEST_GUEST"); got != "1" {
		t.Errorf("LANDLOCK_VMTEST_GUEST = %q", got)
	}
	b, err := os.ReadFile("testdata/marker.txt")
	if err != nil {
		t.Fatalf("testdata not found from the working directory: %v", err)
	}
	if string(b) != "marker\n" {
		t.Errorf("marker = %q", b)
	}
}

func TestOther(t *testing.T) { t.Fatal("-test.run should have excluded TestOther") }
`,
	"env/testdata/marker.txt": "marker\n",

	// sleepy runs past any short timeout.
	"sleepy/sleepy_test.go": `package sleepy

import (
	"testing"
	"time"
)

func TestSleep(t *testing.T) { time.Sleep(time.Hour) }
`,

	// leftover starts children that outlive it and keep its stdout:
	// one in its process group, one in a session of its own.
	"leftover/leftover_test.go": `package leftover

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

func start(t *testing.T, attr *syscall.SysProcAttr) {
	cmd := exec.Command("sleep", "30")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func TestInGroup(t *testing.T) { start(t, nil) }

func TestOwnSession(t *testing.T) {
	if os.Getenv("LEFTOVER_SESSION") == "1" {
		start(t, &syscall.SysProcAttr{Setsid: true})
	}
}
`,

	// flaky is for RETRY=: TestFlaky fails on its first run and passes
	// once $FLAKY_MARKER exists (its first run creates it);
	// TestAlwaysFails fails every time, through its subtest sub.
	"flaky/flaky_test.go": `package flaky

import (
	"os"
	"testing"
)

func TestPasses(t *testing.T) {}

func TestFlaky(t *testing.T) {
	marker := os.Getenv("FLAKY_MARKER")
	if marker == "" {
		t.Fatal("FLAKY_MARKER is not set")
	}
	if _, err := os.Stat(marker); err != nil {
		if err := os.WriteFile(marker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Fatal("failing on the first run")
	}
	t.Log("passing on a later run")
}

func TestAlwaysFails(t *testing.T) {
	t.Run("sub", func(t *testing.T) { t.Error("the subtest fails every time") })
	t.Run("other", func(t *testing.T) {})
}
`,

	// hangs has a failing test, then one that runs past any short
	// timeout: a binary that crashed, whose failed test is not rerun.
	"hangs/hangs_test.go": `package hangs

import (
	"testing"
	"time"
)

func TestFails(t *testing.T) { t.Error("failing before the hang") }

func TestHangs(t *testing.T) { time.Sleep(time.Hour) }
`,

	// crash kills itself with SIGKILL in the middle of a test.
	"crash/crash_test.go": `package crash

import (
	"os"
	"syscall"
	"testing"
)

func TestKill(t *testing.T) {
	t.Log("about to die")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
`,

	// pairone and pairtwo each leave a mark in $PAIR_DIR, then wait for
	// the other's: both pass only when they run at the same time.
	"pairone/pair_test.go": pairSource("pairone", "pairtwo"),
	"pairtwo/pair_test.go": pairSource("pairtwo", "pairone"),

	// brief takes a moment: long enough for a binary started beside it
	// to show in the order of the events.
	"brief/brief_test.go": `package brief

import (
	"testing"
	"time"
)

func TestBrief(t *testing.T) { time.Sleep(300 * time.Millisecond) }
`,
}

// pairSource is a test package self that marks $PAIR_DIR/self and then
// waits, up to $PAIR_WAIT (a duration), for $PAIR_DIR/other.
func pairSource(self, other string) string {
	return `package ` + self + `

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestMeet(t *testing.T) {
	dir := os.Getenv("PAIR_DIR")
	wait, err := time.ParseDuration(os.Getenv("PAIR_WAIT"))
	if dir == "" || err != nil {
		t.Fatalf("PAIR_DIR=%q PAIR_WAIT: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "` + self + `"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "` + other + `")); err == nil {
			return
		}
	}
	t.Fatal("` + other + ` did not run beside me")
}
`
}

type fixtureSet struct {
	// src is the module's directory.
	src string
	// bin holds <pkg>.test for every package.
	bin string
	// test2json is the path of a test2json program.
	test2json string
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixtureSet
	fixtureErr  error
	fixtureRoot string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureRoot != "" {
		_ = os.RemoveAll(fixtureRoot)
	}
	os.Exit(code)
}

// fixtureEnv is the environment for building the throwaway module: it
// must not see a go.work, needs no network and uses this toolchain.
func fixtureEnv() []string {
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
}

func buildFixture() (*fixtureSet, error) {
	root, err := os.MkdirTemp("", "guest-fixture-")
	if err != nil {
		return nil, err
	}
	fixtureRoot = root
	fs := &fixtureSet{src: filepath.Join(root, "src"), bin: filepath.Join(root, "bin")}
	for name, content := range fixtureSources {
		p := filepath.Join(fs.src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(fs.bin, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "test", "-c", "-o", fs.bin+string(filepath.Separator), "./...")
	cmd.Dir = fs.src
	cmd.Env = fixtureEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go test -c: %w\n%s", err, out)
	}

	out, err := exec.Command("go", "env", "GOTOOLDIR").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOTOOLDIR: %w", err)
	}
	fs.test2json = filepath.Join(strings.TrimSpace(string(out)), "test2json")
	if _, err := os.Stat(fs.test2json); err != nil {
		fs.test2json = filepath.Join(root, "test2json")
		cmd := exec.Command("go", "build", "-o", fs.test2json, "cmd/test2json")
		cmd.Env = fixtureEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build cmd/test2json: %w\n%s", err, out)
		}
	}
	return fs, nil
}

// fixture returns the compiled fixture, building it on first use.
func fixture(t *testing.T) *fixtureSet {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles test binaries")
	}
	fixtureOnce.Do(func() { fixtureVal, fixtureErr = buildFixture() })
	if fixtureErr != nil {
		t.Fatalf("building the fixture: %v", fixtureErr)
	}
	return fixtureVal
}

// binary describes the fixture package pkg ("mixed") for a manifest; it
// runs in the package's source directory.
func (f *fixtureSet) binary(pkg string) contract.Binary {
	return contract.Binary{
		Package: fixtureModule + "/" + pkg,
		Path:    filepath.Join(f.bin, pkg+".test"),
		Dir:     filepath.Join(f.src, pkg),
	}
}
