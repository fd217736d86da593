package kselftest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
)

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "landlock", want: []string{"landlock"}},
		{in: "landlock, seccomp  landlock", want: []string{"landlock", "seccomp"}},
		{in: "none"},
		{in: ""},
		{in: " , "},
		{in: "net/forwarding", want: []string{"net/forwarding"}},
		{in: "landlock none", err: true},
		{in: "../landlock", err: true},
		{in: "/abs", err: true},
		{in: ".", err: true},
	} {
		got, err := ParseList(tc.in)
		if tc.err {
			require.Error(t, err, tc.in)
			require.Contains(t, err.Error(), "KSELFTESTS")
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestCommands(t *testing.T) {
	req := Request{Tree: "/src", Dirs: []string{"landlock", "seccomp"}, Jobs: 2}
	got := Commands(req, "/out")
	require.Equal(t, [][]string{
		{"make", "-C", "/src", "O=/out/headers", "-j2", "headers"},
		{"make", "-j2", "-C", "/src/tools/testing/selftests/landlock", "OUTPUT=/out/landlock",
			"KHDR_INCLUDES=-isystem /out/headers/usr/include", "CC=gcc", "LDFLAGS=-static"},
		{"make", "-s", "--no-print-directory", "COLLECTION=landlock", "-C", "/src/tools/testing/selftests/landlock", "OUTPUT=/out/landlock",
			"KHDR_INCLUDES=-isystem /out/headers/usr/include", "CC=gcc", "LDFLAGS=-static", "emit_tests"},
		{"make", "-j2", "-C", "/src/tools/testing/selftests/seccomp", "OUTPUT=/out/seccomp",
			"KHDR_INCLUDES=-isystem /out/headers/usr/include", "CC=gcc", "LDFLAGS=-static"},
		{"make", "-s", "--no-print-directory", "COLLECTION=seccomp", "-C", "/src/tools/testing/selftests/seccomp", "OUTPUT=/out/seccomp",
			"KHDR_INCLUDES=-isystem /out/headers/usr/include", "CC=gcc", "LDFLAGS=-static", "emit_tests"},
	}, got)
	require.Equal(t, "make -C /src 'KHDR_INCLUDES=-isystem /x'", shellLine([]string{"make", "-C", "/src", "KHDR_INCLUDES=-isystem /x"}))
}

// fakeTree writes a kernel tree whose top Makefile makes a fake UAPI
// header and whose selftest directory "fake" builds hello_test (which
// includes the header) and a helper, and lists hello_test.
func fakeTree(t *testing.T, helloSource, extraMake string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	tree := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(tree, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("Makefile", "headers:\n\tmkdir -p $(O)/usr/include/linux\n\techo '#define FAKE_UAPI 42' > $(O)/usr/include/linux/fake.h\n")
	write("tools/testing/selftests/lib.mk", "# shared\n")
	write("tools/testing/selftests/fake/Makefile",
		"all: $(OUTPUT)/hello_test $(OUTPUT)/helper\n"+
			"$(OUTPUT)/%: %.c\n\t$(CC) $(KHDR_INCLUDES) $(LDFLAGS) -o $@ $<\n"+
			"emit_tests:\n\t@echo \"$(COLLECTION):hello_test\"\n"+extraMake)
	write("tools/testing/selftests/fake/hello_test.c", helloSource)
	write("tools/testing/selftests/fake/helper.c", "int main(void) { return 0; }\n")
	return tree
}

const helloOK = "#include <linux/fake.h>\nint main(void) { return FAKE_UAPI - 42; }\n"

func TestBuildFakeTree(t *testing.T) {
	tree := fakeTree(t, helloOK, "")
	c := &cache.Cache{Root: t.TempDir()}
	req := Request{Tree: tree, TreeKey: "fake-tree", Dirs: []string{"fake"}, Jobs: 1}
	b, err := Build(context.Background(), c, req)
	require.NoError(t, err)
	require.False(t, b.Cached)
	require.Equal(t, []Test{{Dir: "fake", Name: "hello_test"}}, b.Tests)
	require.Equal(t, "kselftest/fake/hello_test", b.Tests[0].Package())
	require.NoFileExists(t, filepath.Join(b.Root, "headers", "usr", "include", "linux", "fake.h"), "the headers build is not kept")

	// The binary is static and runs on the host too.
	out, err := exec.Command(filepath.Join(b.Root, "fake", "hello_test")).CombinedOutput()
	require.NoError(t, err, string(out))

	m := &contract.Manifest{Binaries: []contract.Binary{{Package: "example.com/go"}}}
	files := map[string]string{}
	require.NoError(t, b.Add(m, files))
	require.Equal(t, contract.Binary{
		Package: "kselftest/fake/hello_test",
		Path:    "/tests/kselftest/fake/hello_test",
		Dir:     "/tests/kselftest/fake",
		Kind:    contract.KindKselftest,
	}, m.Binaries[1])
	require.Equal(t, map[string]string{
		"tests/kselftest/fake/hello_test": filepath.Join(b.Root, "fake", "hello_test"),
		"tests/kselftest/fake/helper":     filepath.Join(b.Root, "fake", "helper"),
	}, files)

	again, err := Build(context.Background(), c, req)
	require.NoError(t, err)
	require.True(t, again.Cached)
	require.Equal(t, b.Tests, again.Tests)

	// A change of the selftest's sources is a new entry.
	require.NoError(t, os.WriteFile(filepath.Join(tree, SelftestsDir, "fake", "helper.c"), []byte("int main(void) { return 1; }\n"), 0o644))
	changed, err := Build(context.Background(), c, req)
	require.NoError(t, err)
	require.False(t, changed.Cached)
	require.NotEqual(t, b.Root, changed.Root)
}

func TestBuildCompileError(t *testing.T) {
	tree := fakeTree(t, "int main(void) { return missing_symbol; }\n", "")
	c := &cache.Cache{Root: t.TempDir()}
	_, err := Build(context.Background(), c, Request{Tree: tree, TreeKey: "k", Dirs: []string{"fake"}, Jobs: 1})
	var be *Error
	require.True(t, errors.As(err, &be), "%v", err)
	require.Equal(t, "fake", be.Dir)
	require.Contains(t, be.Command, "make -j1 -C "+filepath.Join(tree, SelftestsDir, "fake"))
	require.Contains(t, be.Tail, "missing_symbol")
	require.Contains(t, err.Error(), "building kselftest fake: make ")
	log, rerr := os.ReadFile(be.Log)
	require.NoError(t, rerr, "the log is kept after a failed build")
	require.Contains(t, string(log), "missing_symbol")
	require.Contains(t, string(log), "$ make -C "+tree)
}

func TestBuildDynamicBinaryRefused(t *testing.T) {
	// The Makefile links hello_test without $(LDFLAGS): dynamically.
	tree := fakeTree(t, helloOK, "")
	mk := filepath.Join(tree, SelftestsDir, "fake", "Makefile")
	b, err := os.ReadFile(mk)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(mk, []byte(strings.Replace(string(b), " $(LDFLAGS)", "", 1)), 0o644))
	_, err = Build(context.Background(), &cache.Cache{Root: t.TempDir()}, Request{Tree: tree, TreeKey: "k", Dirs: []string{"fake"}, Jobs: 1})
	require.ErrorContains(t, err, "kselftest fake: test hello_test is dynamically linked; the guest has no libc")
}

func TestBuildMissingDirectory(t *testing.T) {
	tree := fakeTree(t, helloOK, "")
	_, err := Build(context.Background(), &cache.Cache{Root: t.TempDir()}, Request{Tree: tree, TreeKey: "k", Dirs: []string{"nosuch"}})
	require.ErrorContains(t, err, "kselftest nosuch: no tools/testing/selftests/nosuch/Makefile in "+tree)
	var missing *MissingDirError
	require.ErrorAs(t, err, &missing)
	require.Equal(t, "nosuch", missing.Dir)
}

func TestBuildHeadersError(t *testing.T) {
	tree := fakeTree(t, helloOK, "")
	require.NoError(t, os.WriteFile(filepath.Join(tree, "Makefile"), []byte("headers:\n\t@echo 'no headers here' >&2; false\n"), 0o644))
	_, err := Build(context.Background(), &cache.Cache{Root: t.TempDir()}, Request{Tree: tree, TreeKey: "k", Dirs: []string{"fake"}, Jobs: 1})
	require.ErrorContains(t, err, "building the UAPI headers: make -C "+tree)
	require.ErrorContains(t, err, "no headers here")
}

// TestBuildRealTree builds the selftests of a real kernel tree when
// LANDLOCK_VMTEST_KSELFTEST_TREE names one (slow: the UAPI headers and
// every test of KSELFTESTS, default landlock). With a patched tree of the
// cache (trees/<key>), it fills the entry the pipeline uses.
func TestBuildRealTree(t *testing.T) {
	tree := os.Getenv("LANDLOCK_VMTEST_KSELFTEST_TREE")
	if tree == "" {
		t.Skip("set LANDLOCK_VMTEST_KSELFTEST_TREE to a kernel tree")
	}
	dirs, err := ParseList(os.Getenv("KSELFTESTS"))
	require.NoError(t, err)
	if len(dirs) == 0 {
		dirs = []string{Default}
	}
	c, err := cache.Default(os.Getenv("CACHE_DIR"))
	require.NoError(t, err)
	// The key of a patched tree of the cache, as the pipeline names it.
	key := "patched:" + filepath.Base(tree)
	b, err := Build(context.Background(), c, Request{Tree: tree, TreeKey: key, Dirs: dirs, Jobs: 2})
	require.NoError(t, err)
	t.Logf("%s (cached %v): %v", b.Root, b.Cached, b.Tests)
}

func TestUsesHarness(t *testing.T) {
	dir := t.TempDir()
	with := filepath.Join(dir, "with")
	without := filepath.Join(dir, "without")
	require.NoError(t, os.WriteFile(with, []byte("\x7fELF...\t-l       list all tests\n\t-r name  run specified test\n..."), 0o755))
	require.NoError(t, os.WriteFile(without, []byte("\x7fELF... ok 1 plain\n"), 0o755))
	ok, err := usesHarness(with)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = usesHarness(without)
	require.NoError(t, err)
	require.False(t, ok)
	_, err = usesHarness(filepath.Join(dir, "missing"))
	require.Error(t, err)
}

// The kselftests that write what is one per boot run alone; the others
// run beside other binaries.
func TestAlone(t *testing.T) {
	why, ok := Test{Dir: "landlock", Name: "bpf_test"}.Alone()
	assert.True(t, ok)
	assert.Contains(t, why, "unprivileged_bpf_disabled")
	for _, name := range []string{"base_test", "fs_test", "net_test", "ptrace_test", "scoped_test"} {
		_, ok := Test{Dir: "landlock", Name: name}.Alone()
		assert.False(t, ok, name)
	}
}
