package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/internal/e2e"
)

// gdbLine is the gdb command GDB=1 prints: its port and vmlinux.
var gdbLine = regexp.MustCompile(`^  gdb .*-ex 'target remote 127\.0\.0\.1:(\d+)' (\S+)$`)

// TestE2EGDB drives gdb in batch mode against a GDB=1 run: a breakpoint
// in the series' seccomp(2) entry point, a guest test that appends a
// rule, the breakpoint hit, gdb detached, the run ending green.
func TestE2EGDB(t *testing.T) {
	bin := harness(t)
	dir := e2e.Out(t)
	cmd := exec.Command(bin, "run")
	cmd.Dir = repoDir(t)
	cmd.Env = append(os.Environ(), "OUT="+dir, "KSELFTESTS=none", "KUNIT=none", "GDB=1",
		"TESTS=./tests/seccompentry", "RUN=^TestNestedParentLevelDenies$")
	pr, pw := io.Pipe()
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	out := io.MultiWriter(&lockedWriter{mu: &mu, w: &buf}, pw)
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	output := func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }

	// The build is cached: the command comes within seconds of the start.
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := gdbLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
		close(found)
	}()
	var m []string
	select {
	case m = <-found:
	case <-time.After(30 * time.Minute):
	}
	if m == nil {
		_ = cmd.Process.Kill()
		require.FailNow(t, "no gdb command in the output", "%s", output())
	}
	port, vmlinux := m[1], m[2]

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gdb := exec.CommandContext(ctx, "gdb", "-batch", "-nx",
		"-ex", "target remote 127.0.0.1:"+port,
		"-ex", "break landlock_bpf_seccomp_append",
		"-ex", "continue",
		"-ex", "backtrace 3",
		"-ex", "delete",
		"-ex", "detach",
		vmlinux)
	gout, err := gdb.CombinedOutput()
	t.Logf("gdb:\n%s", gout)
	require.NoError(t, err, "gdb")
	assert.Regexp(t, `Breakpoint 1, 0x[0-9a-f]+ in landlock_bpf_seccomp_append \(\)`, string(gout))
	assert.Contains(t, string(gout), "#0  ")

	select {
	case err = <-done:
	case <-time.After(15 * time.Minute):
		_ = cmd.Process.Kill()
		require.FailNow(t, "the run did not end after gdb detached", "%s", output())
	}
	require.NoError(t, err, "the run after gdb detached:\n%s", output())
	o := output()
	assert.Contains(t, o, "GDB=1: QEMU waits for a debugger on 127.0.0.1:"+port+", the kernel booted with nokaslr")
	assert.Contains(t, o, "result: ok (exit 0)")
	// The repro bundle is the run without the debugger.
	qemu, err := os.ReadFile(filepath.Join(dir, "qemu-command"))
	require.NoError(t, err)
	assert.NotContains(t, string(qemu), "-gdb")
	assert.NotContains(t, strings.Fields(string(qemu)), "-S")
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
