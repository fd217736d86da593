package fsmap

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// The helper process: this test binary, executed again with helperEnv
// set, runs the steps given as its arguments in order on one thread and
// writes one line per step to its standard output, "<step>\t<result>"
// (ok or an errno name). The steps:
//
//	open_write=P   open P write-only
//	mkdir=P        mkdir P
//	rename=A:B     rename A to B
//	chmod=P        chmod P 0600
//	setxattr=P     set user.x on P
//	mmap_shared=P  open P read-write, map it shared and writable
const helperEnv = "LANDLOCK_VMTEST_FSMAP_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		runtime.LockOSThread()
		for _, step := range os.Args[1:] {
			fmt.Printf("%s\t%s\n", step, ll.ResultName(helperStep(step)))
		}
		os.Exit(0)
	}
	// The main thread never exits: a goroutine that unshared its mount
	// namespace or appended a rule while locked to it would leave them
	// behind when it ended (TestNoReferenceLoop waits for namespaces to
	// end). Keeping the main goroutine on it keeps every other goroutine
	// off it.
	runtime.LockOSThread()
	os.Exit(m.Run())
}

func helperStep(step string) error {
	name, arg, _ := strings.Cut(step, "=")
	switch name {
	case "open_write":
		return openClose(arg, unix.O_WRONLY)
	case "mkdir":
		return unix.Mkdir(arg, 0o755)
	case "rename":
		from, to, _ := strings.Cut(arg, ":")
		return unix.Rename(from, to)
	case "chmod":
		return unix.Chmod(arg, 0o600)
	case "setxattr":
		return unix.Setxattr(arg, "user.x", []byte("2"), 0)
	case "mmap_shared":
		fd, err := unix.Open(arg, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		mem, err := unix.Mmap(fd, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		return unix.Munmap(mem)
	}
	return fmt.Errorf("unknown step %q", step)
}

// TestWriteOnlyBeneathAsCgroupProgram: the canonical rule attached to a
// cgroup (BPF_CGROUP_LANDLOCK_FS) judges a task in it as the same rule
// appended by the task does, for a subset of the rows: open for write,
// mkdir, rename, chmod, setxattr, shared writable mmap.
func TestWriteOnlyBeneathAsCgroupProgram(t *testing.T) {
	skipUnlessV3(t)
	if why := ll.SkipUnlessCgroup2(); why != "" {
		t.Skip(why)
	}
	top := ll.NewCgroupHierarchy(t)
	cg := top.Mkdir(t, "sandbox")
	exe, err := os.Executable()
	require.NoError(t, err)
	base := t.TempDir()

	type row struct {
		name    string
		step    func(w *world) string
		want    string
		outside bool
	}
	rows := []row{
		{"open_write", func(w *world) string { return "open_write=" + filepath.Join(w.d, "f") }, "ok", false},
		{"open_write", func(w *world) string { return "open_write=" + filepath.Join(w.out, "f") }, "EPERM", true},
		{"mkdir", func(w *world) string { return "mkdir=" + filepath.Join(w.d, "n") }, "ok", false},
		{"mkdir", func(w *world) string { return "mkdir=" + filepath.Join(w.out, "n") }, "EPERM", true},
		{"rename", func(w *world) string { return "rename=" + filepath.Join(w.d, "e") + ":" + filepath.Join(w.d, "e2") }, "ok", false},
		{"rename", func(w *world) string { return "rename=" + filepath.Join(w.out, "e") + ":" + filepath.Join(w.d, "e3") }, "EPERM", true},
		{"chmod", func(w *world) string { return "chmod=" + filepath.Join(w.d, "f") }, "ok", false},
		{"chmod", func(w *world) string { return "chmod=" + filepath.Join(w.out, "f") }, "EPERM", true},
		{"setxattr", func(w *world) string { return "setxattr=" + filepath.Join(w.d, "f") }, "ok", false},
		{"setxattr", func(w *world) string { return "setxattr=" + filepath.Join(w.out, "f") }, "EPERM", true},
		{"mmap_shared", func(w *world) string { return "mmap_shared=" + filepath.Join(w.d, "a/b/c/f") }, "ok", false},
		{"mmap_shared", func(w *world) string { return "mmap_shared=" + filepath.Join(w.out, "a/b/c/f") }, "EPERM", true},
	}

	var (
		setupErr, runErr error
		out, errOut      bytes.Buffer
		steps            []string
	)
	// The world and the helper are made on a thread with its own mount
	// namespace, which the helper inherits (the fork happens on the
	// locked thread). No rule is appended to any thread of the test.
	ll.RunOnRuleThread(func() {
		w := newWorld(base)
		defer w.close()
		if setupErr = w.err; setupErr != nil {
			return
		}
		m, err := bpfsandbox.NewFSMap(1)
		if setupErr = err; err != nil {
			return
		}
		defer m.Close()
		if setupErr = m.Add(w.d); setupErr != nil {
			return
		}
		prog, err := ll.Load(bpfsandbox.Rule(m, nil))
		if setupErr = err; err != nil {
			return
		}
		defer prog.Close()
		if setupErr = ll.ProgAttach(cg.FD, prog.FD(), ll.AttachCgroupLandlockFS, 0, 0); setupErr != nil {
			setupErr = fmt.Errorf("BPF_PROG_ATTACH to %s: %w", cg.Path, setupErr)
			return
		}
		defer ll.ProgDetach(cg.FD, prog.FD(), ll.AttachCgroupLandlockFS, 0)
		for _, r := range rows {
			steps = append(steps, r.step(w))
		}
		cmd := exec.Command(exe, steps...)
		cmd.Env = append(os.Environ(), helperEnv+"=1")
		cmd.Stdout, cmd.Stderr = &out, &errOut
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD}
		runErr = cmd.Run()
	})
	require.NoError(t, setupErr, "setup")
	require.NoError(t, runErr, "the helper in %s: %s", cg.Path, errOut.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, len(rows), "the helper's report:\n%s", out.String())
	for i, r := range rows {
		where := "in_D"
		if r.outside {
			where = "outside"
		}
		t.Run(r.name+"_"+where, func(t *testing.T) {
			step, res, _ := strings.Cut(lines[i], "\t")
			require.Equal(t, steps[i], step)
			assert.Equal(t, r.want, res, "%s under the cgroup program", step)
		})
	}
}
