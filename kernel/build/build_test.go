package build

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

func TestKbuildStep(t *testing.T) {
	for line, want := range map[string][]string{
		"  CC      kernel/fork.o":                {"CC", "kernel/fork.o"},
		"  CC [M]  fs/ext4/inode.o":              {"CC [M]", "fs/ext4/inode.o"},
		"  LD      vmlinux":                      {"LD", "vmlinux"},
		"  HOSTCC  scripts/basic/fixdep":         {"HOSTCC", "scripts/basic/fixdep"},
		"  AS      arch/x86/entry/entry_64.o":    {"AS", "arch/x86/entry/entry_64.o"},
		"  OBJCOPY arch/x86/boot/setup.bin":      {"OBJCOPY", "arch/x86/boot/setup.bin"},
		"  SYSHDR  arch/x86/include/generated/x": {"SYSHDR", "arch/x86/include/generated/x"},
		"  GEN_X86 a b":                          {"GEN_X86", "a"},
		"  UPD     include/generated/compile.h":  {"UPD", "include/generated/compile.h"},
		"  BTF [M] net/foo.ko":                   {"BTF [M]", "net/foo.ko"},
		"  CC      kernel/fork.o trailing words": {"CC", "kernel/fork.o"},
	} {
		m := kbuildStep.FindStringSubmatch(line)
		if assert.NotNil(t, m, "%q is a step", line) {
			assert.Equal(t, want, m[1:], line)
		}
	}
	for _, line := range []string{
		"make[1]: Entering directory '/build'",
		"kernel/fork.c:12:5: error: expected ';'",
		"   CC      three/spaces.o",
		"\tCC      tab.o",
		"  cc      lower.o",
		"  CC",
		"  CC      ",
		"  1CC     digit.o",
		"CC      no/indent.o",
		"  ***",
		"",
	} {
		assert.Nil(t, kbuildStep.FindStringSubmatch(line), "%q is not a step", line)
	}
}

const buildOutput = `make[1]: Entering directory '/out'
  SYNC    include/config/auto.conf
  HOSTCC  scripts/basic/fixdep
warning: something odd
  CC      kernel/fork.o
  LD      vmlinux
make[1]: Leaving directory '/out'`

func TestProgressConsume(t *testing.T) {
	p := newProgress(nil, 0, 0)
	defer p.stop()
	var log bytes.Buffer
	p.consume(strings.NewReader(buildOutput), &log)
	assert.Equal(t, buildOutput+"\n", log.String(), "every line goes to the log")
	assert.Equal(t, 4, p.steps())
	assert.Equal(t, "LD vmlinux", p.last)
	assert.Equal(t, 15*time.Second, p.every, "the default period")
}

func TestProgressLine(t *testing.T) {
	p := newProgress(nil, 0, time.Minute)
	defer p.stop()
	p.consume(strings.NewReader(buildOutput), &bytes.Buffer{})
	p.start = time.Now().Add(-90 * time.Second)
	assert.Equal(t, "  build: 4 steps, 1m30s, at LD vmlinux", p.line())

	p.expected = 8
	assert.Equal(t, "  build: 4/~8 steps (50%), 1m30s, at LD vmlinux", p.line())

	// More steps than the last build had: never claims to be done.
	p.expected = 3
	assert.Equal(t, "  build: 4/~3 steps (99%), 1m30s, at LD vmlinux", p.line())
	p.expected = 4
	assert.Equal(t, "  build: 4/~4 steps (99%), 1m30s, at LD vmlinux", p.line())

	fresh := newProgress(nil, 100, time.Minute)
	defer fresh.stop()
	fresh.start = time.Now().Add(-5 * time.Second)
	assert.Equal(t, "  build: 0/~100 steps (0%), 5s, at ", fresh.line())
}

func TestProgressConsumeLongLine(t *testing.T) {
	p := newProgress(nil, 0, time.Minute)
	defer p.stop()
	long := strings.Repeat("x", 200*1024)
	in := "  CC      a.o\n" + long + "\n  CC      b.o\n"
	var log bytes.Buffer
	p.consume(strings.NewReader(in), &log)
	assert.Equal(t, in, log.String(), "lines longer than the scanner's first buffer are kept")
	assert.Equal(t, 2, p.steps())
}

// consume drains its input even when a line is too long to scan, so the
// build writing into the pipe never blocks.
func TestProgressConsumeDrains(t *testing.T) {
	p := newProgress(nil, 0, time.Minute)
	defer p.stop()
	in := "  CC      a.o\n" + strings.Repeat("y", 2*1024*1024) + "\n  CC      b.o\n"
	r := strings.NewReader(in)
	p.consume(r, &bytes.Buffer{})
	assert.Zero(t, r.Len(), "all input read")
	assert.GreaterOrEqual(t, p.steps(), 1)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestProgressTicks(t *testing.T) {
	var out lockedBuffer
	p := newProgress(&out, 0, 5*time.Millisecond)
	p.consume(strings.NewReader("  CC      kernel/fork.o\n"), &bytes.Buffer{})
	assert.Eventually(t, func() bool {
		return strings.Contains(out.String(), "  build: 1 steps, ")
	}, 10*time.Second, time.Millisecond)
	p.stop()
	p.stop() // stopping twice is fine
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		assert.True(t, strings.HasPrefix(l, "  build: "), "%q", l)
	}
}

func writeLog(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "build.log")
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return p
}

func logLines(n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("  CC      file%d.o", i))
	}
	return out
}

func TestExcerptFirstError(t *testing.T) {
	lines := logLines(100)
	lines[40] = "kernel/fork.c:12:5: error: expected ';' before 'return'"
	lines[41] = "   12 |  return x"
	lines[70] = "kernel/exit.c:1:1: error: a later error"
	got := Excerpt(writeLog(t, lines), 10)
	assert.Equal(t, strings.Join(lines[37:47], "\n"), got, "three lines before the first error, ten in all")
	assert.NotContains(t, got, "a later error")

	// max beyond the end of the log.
	got = Excerpt(writeLog(t, lines), 1000)
	assert.Equal(t, strings.Join(lines[37:], "\n"), got)

	// An error on the first lines.
	lines = logLines(20)
	lines[1] = "make[2]: *** [scripts/Makefile.build:229: kernel/fork.o] Error 1"
	assert.Equal(t, strings.Join(lines[0:5], "\n"), Excerpt(writeLog(t, lines), 5))
}

func TestExcerptErrorKinds(t *testing.T) {
	for _, errLine := range []string{
		"drivers/x.c:3:10: fatal error: missing.h: No such file or directory",
		"ld: vmlinux.o: in function `f': undefined reference to `g'",
		"make[1]: *** [Makefile:1234: vmlinux] Error 2",
		"make: *** [Makefile:224: __sub-make] Error 2",
		"a.c:1:1: error: boom",
	} {
		lines := logLines(50)
		lines[25] = errLine
		got := Excerpt(writeLog(t, lines), 4)
		assert.Equal(t, strings.Join(lines[22:26], "\n"), got, errLine)
	}
}

func TestExcerptNoError(t *testing.T) {
	lines := logLines(50)
	assert.Equal(t, strings.Join(lines[42:], "\n"), Excerpt(writeLog(t, lines), 8), "the last lines")
	assert.Equal(t, strings.Join(lines[:3], "\n"), Excerpt(writeLog(t, lines[:3]), 8))
	assert.Equal(t, "", Excerpt(filepath.Join(t.TempDir(), "absent.log"), 8))
}

func fragments(t *testing.T, text string) *kconfig.Fragments {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.config")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	f, err := kconfig.Merge(p)
	require.NoError(t, err)
	return f
}

func TestKey(t *testing.T) {
	tree := &source.Tree{Key: "plain:abc"}
	base := Request{Tree: tree, Fragments: fragments(t, "CONFIG_SECURITY_LANDLOCK=y\n")}
	k := Key(base)
	assert.Len(t, k, 24)
	assert.Equal(t, k, Key(base), "stable")

	same := base
	same.Fragments = fragments(t, "# a comment\n\nCONFIG_SECURITY_LANDLOCK=y\n")
	same.Jobs = 7
	same.ProgressEvery = time.Hour
	same.Log = &bytes.Buffer{}
	assert.Equal(t, k, Key(same), "comments, jobs and logging do not change the build")

	keys := map[string]string{"base": k}
	differ := func(what string, r Request) {
		t.Helper()
		got := Key(r)
		for prev, pk := range keys {
			assert.NotEqual(t, pk, got, "%s: same key as %s", what, prev)
		}
		keys[what] = got
	}
	r := base
	r.Fragments = fragments(t, "CONFIG_SECURITY_LANDLOCK=y\nCONFIG_BPF=y\n")
	differ("another setting", r)
	r = base
	r.Fragments = fragments(t, "# CONFIG_SECURITY_LANDLOCK is not set\n")
	differ("another value", r)
	r = base
	r.Extra = []string{"W=1"}
	differ("extra", r)
	r.Extra = []string{"W=1", "C=1"}
	differ("more extra", r)
	r = base
	r.Tree = &source.Tree{Key: "plain:def"}
	differ("tree", r)
}

func TestBuilderPaths(t *testing.T) {
	c, err := cache.Default(t.TempDir())
	require.NoError(t, err)
	req := Request{Tree: &source.Tree{Key: "k"}, Fragments: fragments(t, "CONFIG_X=y\n")}
	b := New(c, req)
	key := Key(req)
	assert.Equal(t, key, b.res.Key)
	assert.Equal(t, c.Path("build", key), b.res.Dir)
	assert.Equal(t, filepath.Join(b.res.Dir, "arch/x86/boot/bzImage"), b.res.Image)
	assert.Equal(t, filepath.Join(b.res.Dir, ".config"), b.res.Config)
	assert.Equal(t, filepath.Join(b.res.Dir, "build.log"), b.res.Log)
	assert.False(t, b.Cached())
}

// A finished build with the same key is returned without running make:
// the tree's directory does not even exist.
func TestCachedBuild(t *testing.T) {
	c, err := cache.Default(t.TempDir())
	require.NoError(t, err)
	req := Request{Tree: &source.Tree{Key: "k", Dir: filepath.Join(t.TempDir(), "absent")}, Fragments: fragments(t, "CONFIG_X=y\n")}
	dir := c.Path("build", Key(req))
	files := map[string]string{
		"arch/x86/boot/bzImage":         "kernel image",
		"include/config/kernel.release": "6.12.0-test\n",
		".config":                       "abc",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	require.NoError(t, cache.MarkDone(dir))

	res, err := Build(c, req)
	require.NoError(t, err)
	assert.True(t, res.Cached)
	assert.Equal(t, "6.12.0-test", res.Release)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", res.ConfigHash)
	assert.Equal(t, filepath.Join(dir, "arch/x86/boot/bzImage"), res.Image)
	assert.NoFileExists(t, filepath.Join(dir, "config.log"), "configure did not run")

	require.NoError(t, os.Remove(filepath.Join(dir, "arch/x86/boot/bzImage")))
	_, err = New(c, req).Compile()
	assert.ErrorContains(t, err, "kernel image missing from finished build")
}

func TestRememberSteps(t *testing.T) {
	c, err := cache.Default(t.TempDir())
	require.NoError(t, err)
	m := &maker{c: c}
	assert.Equal(t, 0, m.expectedSteps(), "no build yet")
	m.rememberSteps(4321)
	assert.Equal(t, 4321, m.expectedSteps())
	require.NoError(t, os.WriteFile(m.stepsFile(), []byte("garbage"), 0o644))
	assert.Equal(t, 0, m.expectedSteps())
}

func TestErrors(t *testing.T) {
	inner := errors.New("exit status 2")
	be := &Error{Log: "/cache/build.log", Excerpt: "a.c:1: error: x", Err: inner}
	assert.Equal(t, "kernel build failed: exit status 2 (log: /cache/build.log)\na.c:1: error: x", be.Error())
	assert.ErrorIs(t, be, inner)
	var got *Error
	assert.True(t, errors.As(fmt.Errorf("wrapped: %w", be), &got))

	ce := &ConfigError{Err: inner, Log: "/cache/config.log"}
	assert.Equal(t, "kernel config: exit status 2", ce.Error())
	assert.ErrorIs(t, ce, inner)
	assert.False(t, errors.As(error(ce), &got), "a config failure is not a build failure")
}
