package bpffuzz

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// runChild is the child part: on one locked thread, random seccomp(2)
// calls among which real appends of rules that allow everything, up to
// the 64-rule limit and past it; after each append, a round of file system
// operations that must end as they did without rules, and twice an exec
// that inherits the rules. It writes its report where the parent said.
func runChild(t *testing.T) {
	seed, err := strconv.ParseUint(os.Getenv(envChildSeed), 10, 64)
	require.NoError(t, err, envChildSeed)
	budget, err := time.ParseDuration(os.Getenv(envChildBudget))
	require.NoError(t, err, envChildBudget)
	out := os.Getenv(envChildReport)
	require.NotEmpty(t, out, envChildReport)

	fx := newFixtures(t)
	seeds := seedRules(fx.mapFD)
	ruleFDs := []int{fx.ruleFD}
	for _, s := range seeds {
		if !s.allows {
			continue
		}
		fd, errno := loadRetry(&loadInput{Insns: s.insns, License: []byte("GPL\x00"), Attach: landlockbpf.AttachLandlockFS, ProgFlags: s.flags})
		if errno != 0 && s.flags != 0 {
			continue // logged by the parent
		}
		require.Zero(t, errno, "loading the seed rule %s: %v", s.name, errno)
		t.Cleanup(func() { unix.Close(fd) })
		ruleFDs = append(ruleFDs, fd)
	}
	dir := t.TempDir()

	// The rules go to the thread of this goroutine, which stays locked:
	// when the goroutine ends, Go ends the thread, rules and all. The
	// goroutine does not touch t.
	done := make(chan *report, 1)
	deadline := time.Now().Add(budget)
	go func() {
		runtime.LockOSThread()
		done <- fuzzChild(newGen(seed, seeds), deadline, fx, ruleFDs, dir)
	}()
	rep := <-done

	t.Logf("%d calls: %s; %d rules appended; %d rounds of file system operations; %d execs",
		rep.Calls, rep.Seccomp, rep.Appended, rep.FSOps, rep.Execs)
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644), "writing the report")
}

// maxChildCalls bounds the calls of a child that has not reached the
// 64-rule limit by its deadline.
const maxChildCalls = 100000

// fuzzChild is the part that runs on the locked thread.
func fuzzChild(g *gen, deadline time.Time, fx *fixtures, ruleFDs []int, dir string) *report {
	rep := newReport()
	base := fsOps(dir)
	appended := 0
	// Go on past the deadline, within a bound, until the limit is
	// reached and refused once.
	e2big := 0
	for i := 0; time.Now().Before(deadline) || e2big == 0 && i < maxChildCalls; i++ {
		c := g.seccompCall(fx, true, ruleFDs)
		if g.chance(0.5) {
			// Half the calls append a rule: the limit comes soon.
			c = seccompCall{fd: uint32(pick(g, ruleFDs)), kind: "landlock allow rule", rule: true}
		}
		if c.flags == 0 && c.rule && appended >= landlockbpf.MaxRules {
			e2big++
		}
		start := time.Now()
		ok := c.check(rep, appended)
		rep.timed(time.Since(start), func() string { return fmt.Sprintf("seccomp call %d: %s", i, c) })
		if !ok && i%32 != 0 {
			continue
		}
		if ok {
			appended++
		}
		if got := fsOps(dir); !slices.Equal(got, base) {
			rep.violate("with %d rules that allow everything, the file system operations end otherwise than without rules:\n  without: %s\n  with:    %s",
				appended, strings.Join(base, " "), strings.Join(got, " "))
		}
		rep.FSOps++
		if ok && (appended == 1 || appended == landlockbpf.MaxRules) {
			if err := execSelf(); err != nil {
				rep.violate("with %d rules that allow everything, exec of the test binary: %v", appended, err)
			}
			rep.Execs++
		}
	}
	rep.Appended = appended
	if appended != landlockbpf.MaxRules || e2big == 0 {
		rep.violate("%d rules appended, %d appends past the limit: want %d, and E2BIG past it", appended, e2big, landlockbpf.MaxRules)
	}
	return rep
}

// execSelf runs the test binary with no test, from the calling thread: the
// new process inherits its rules, through fork, execve and exit.
func execSelf() error {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LANDLOCK_FUZZ_CHILD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// fsOps runs one round of file system operations in dir, one for each
// hook of the spec's table or near, and returns "name=outcome" for each.
// Without rules and with rules that allow everything, the outcomes must
// be the same.
func fsOps(dir string) []string {
	var res []string
	rec := func(name string, err error) {
		var errno unix.Errno
		switch {
		case err == nil:
			res = append(res, name+"=ok")
		case errors.As(err, &errno):
			res = append(res, name+"="+errnoName(errno))
		default:
			res = append(res, name+"="+err.Error())
		}
	}
	f := filepath.Join(dir, "f")
	buf := make([]byte, 16)

	fd, err := unix.Open(f, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	rec("create", err)
	if err == nil {
		_, err = unix.Write(fd, []byte("landlock-vmtest fuzz\n"))
		rec("write", err)
		_, err = unix.Pread(fd, buf, 0)
		rec("pread", err)
		_, err = unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
		rec("ioctl", err)
		_, err = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		rec("fcntl", err)
		rec("flock", unix.Flock(fd, unix.LOCK_EX))
		rec("funlock", unix.Flock(fd, unix.LOCK_UN))
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		rec("setlk", unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk))
		lk.Type = unix.F_UNLCK
		rec("unlk", unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk))
		rec("ftruncate", unix.Ftruncate(fd, 4096))
		if m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ, unix.MAP_SHARED); err == nil {
			rec("mmap-shared", nil)
			rec("mprotect-shared", unix.Mprotect(m, unix.PROT_READ|unix.PROT_WRITE))
			unix.Munmap(m)
		} else {
			rec("mmap-shared", err)
		}
		if m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE); err == nil {
			rec("mmap-exec", nil)
			unix.Munmap(m)
		} else {
			rec("mmap-exec", err)
		}
		rec("scm_rights", passFD(fd))
		unix.Close(fd)
	}
	if m, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
		rec("mmap-anon", nil)
		rec("mprotect-anon", unix.Mprotect(m, unix.PROT_READ|unix.PROT_EXEC))
		unix.Munmap(m)
	} else {
		rec("mmap-anon", err)
	}

	fd, err = unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	rec("open", err)
	if err == nil {
		unix.Close(fd)
	}
	var st unix.Stat_t
	rec("stat", unix.Stat(f, &st))
	var sfs unix.Statfs_t
	rec("statfs", unix.Statfs(dir, &sfs))
	rec("access", unix.Faccessat(unix.AT_FDCWD, f, unix.R_OK, 0))
	rec("chmod", unix.Chmod(f, 0o600))
	rec("truncate", unix.Truncate(f, 0))
	_, err = unix.Getxattr(f, "user.fuzz", buf)
	rec("getxattr", err)
	rec("setxattr", unix.Setxattr(f, "user.fuzz", []byte("x"), 0))
	_, err = unix.Listxattr(f, buf)
	rec("listxattr", err)
	rec("removexattr", unix.Removexattr(f, "user.fuzz"))

	l, g, d, s, p := filepath.Join(dir, "l"), filepath.Join(dir, "g"), filepath.Join(dir, "d"), filepath.Join(dir, "s"), filepath.Join(dir, "p")
	rec("link", unix.Link(f, l))
	rec("unlink", unix.Unlink(l))
	rec("rename", unix.Rename(f, g))
	rec("rename-back", unix.Rename(g, f))
	rec("mkdir", unix.Mkdir(d, 0o755))
	rec("rmdir", unix.Rmdir(d))
	rec("symlink", unix.Symlink("f", s))
	_, err = unix.Readlink(s, buf)
	rec("readlink", err)
	fd, err = unix.Open(s, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	rec("open-symlink", err)
	if err == nil {
		unix.Close(fd)
	}
	rec("lstat", unix.Lstat(s, &st))
	rec("unlink-symlink", unix.Unlink(s))
	rec("mkfifo", unix.Mknod(p, unix.S_IFIFO|0o600, 0))
	rec("unlink-fifo", unix.Unlink(p))

	fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	rec("opendir", err)
	if err == nil {
		_, err = unix.Getdents(fd, make([]byte, 4096))
		rec("getdents", err)
		unix.Close(fd)
	}
	return res
}

// passFD sends fd over a socket pair and receives it (the file_receive
// hook).
func passFD(fd int) error {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	if err := unix.Sendmsg(sp[0], []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
		return err
	}
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(sp[1], make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return err
	}
	n := 0
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			return err
		}
		for _, f := range fds {
			unix.Close(f)
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("received %d fds, want 1", n)
	}
	return nil
}

// TestFSOpsWithoutRules runs a round of the child's file system
// operations on the host too, twice, and checks that the outcomes are
// stable, which the child's comparison relies on.
func TestFSOpsWithoutRules(t *testing.T) {
	dir := t.TempDir()
	a, b := fsOps(dir), fsOps(dir)
	require.Equal(t, a, b)
	t.Logf("%s", strings.Join(a, " "))
}
