package iouring

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// uapiProbe prints, from the kernel's own io_uring UAPI header, every
// number of ring_test.go.
const uapiProbe = `#include <stdio.h>
#include <stddef.h>
#include <linux/io_uring.h>
#define P(name, value) printf("%s %lld\n", name, (long long)(value))
int main(void)
{
	P("offSQRing", IORING_OFF_SQ_RING);
	P("offCQRing", IORING_OFF_CQ_RING);
	P("offSQEs", IORING_OFF_SQES);
	P("setupSQPoll", IORING_SETUP_SQPOLL);
	P("featSingleMmap", IORING_FEAT_SINGLE_MMAP);
	P("enterGetEvents", IORING_ENTER_GETEVENTS);
	P("enterSQWakeup", IORING_ENTER_SQ_WAKEUP);
	P("enterExtArg", IORING_ENTER_EXT_ARG);
	P("sqNeedWakeup", IORING_SQ_NEED_WAKEUP);
	P("sqeAsync", IOSQE_ASYNC);
	P("opNop", IORING_OP_NOP);
	P("opOpenat", IORING_OP_OPENAT);
	P("opClose", IORING_OP_CLOSE);
	P("opRead", IORING_OP_READ);
	P("registerIOWQMaxWorkers", IORING_REGISTER_IOWQ_MAX_WORKERS);
	P("sqeSize", sizeof(struct io_uring_sqe));
	P("cqeSize", sizeof(struct io_uring_cqe));
	P("paramsSize", sizeof(struct io_uring_params));
	P("getEventsArgSize", sizeof(struct io_uring_getevents_arg));
	P("sqeOffFd", offsetof(struct io_uring_sqe, fd));
	P("sqeOffOff", offsetof(struct io_uring_sqe, off));
	P("sqeOffAddr", offsetof(struct io_uring_sqe, addr));
	P("sqeOffLen", offsetof(struct io_uring_sqe, len));
	P("sqeOffOpenFlags", offsetof(struct io_uring_sqe, open_flags));
	P("sqeOffUserData", offsetof(struct io_uring_sqe, user_data));
	P("sqeOffFileIndex", offsetof(struct io_uring_sqe, file_index));
	P("sqeOffAddr3", offsetof(struct io_uring_sqe, addr3));
	return 0;
}
`

// TestNumbersMatchUAPIHeader checks the numbers and the layout of
// ring_test.go against Debian's 6.12 source: its io_uring UAPI header
// (compiled into a probe) and the system call tables of x86_64 and arm64.
func TestNumbersMatchUAPIHeader(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs the kernel source")
	}
	if os.Getenv("LANDLOCK_VMTEST_GUEST") == "1" {
		t.Skip("host test: reads the kernel source")
	}
	if _, err := os.Stat(source.DefaultTarball); err != nil {
		t.Skipf("needs Debian's linux-source-6.12 (%v): make vmtest installs it", err)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skipf("needs gcc: %v", err)
	}
	c, err := cache.Default(os.Getenv("CACHE_DIR"))
	require.NoError(t, err)
	tree, err := source.Debian(c, source.DefaultTarball)
	require.NoError(t, err)

	dir := t.TempDir()
	inc := filepath.Join(dir, "include", "linux")
	require.NoError(t, os.MkdirAll(inc, 0o755))
	h, err := os.ReadFile(filepath.Join(tree.Dir, "include/uapi/linux/io_uring.h"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(inc, "io_uring.h"), h, 0o644))
	src := filepath.Join(dir, "probe.c")
	require.NoError(t, os.WriteFile(src, []byte(uapiProbe), 0o644))
	bin := filepath.Join(dir, "probe")
	out, err := exec.Command("gcc", "-I", filepath.Join(dir, "include"), "-o", bin, src).CombinedOutput()
	require.NoError(t, err, "compiling the probe against %s:\n%s", tree.Dir, out)
	out, err = exec.Command(bin).Output()
	require.NoError(t, err)
	got := map[string]int64{}
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		name, value, ok := strings.Cut(line, " ")
		require.True(t, ok, line)
		v, err := strconv.ParseInt(value, 10, 64)
		require.NoError(t, err, line)
		got[name] = v
	}
	want := map[string]int64{
		"offSQRing": offSQRing, "offCQRing": offCQRing, "offSQEs": offSQEs,
		"setupSQPoll": setupSQPoll, "featSingleMmap": featSingleMmap,
		"enterGetEvents": enterGetEvents, "enterSQWakeup": enterSQWakeup, "enterExtArg": enterExtArg,
		"sqNeedWakeup": sqNeedWakeup, "sqeAsync": sqeAsync,
		"opNop": opNop, "opOpenat": opOpenat, "opClose": opClose, "opRead": opRead,
		"registerIOWQMaxWorkers": registerIOWQMaxWorkers,
		"sqeSize":                sqeSize, "cqeSize": cqeSize, "paramsSize": 120, "getEventsArgSize": 24,
		"sqeOffFd": 4, "sqeOffOff": 8, "sqeOffAddr": 16, "sqeOffLen": 24, "sqeOffOpenFlags": 28,
		"sqeOffUserData": 32, "sqeOffFileIndex": 44, "sqeOffAddr3": 48,
	}
	for name, w := range want {
		if assert.Contains(t, got, name) {
			assert.Equal(t, w, got[name], "%s: ring_test.go says %d, the 6.12 header %d", name, w, got[name])
		}
	}

	// The system call tables of the guest's architectures: x86_64, and
	// arm64, whose table is the generic one (in 6.12,
	// arch/arm64/tools/syscall_64.tbl links to scripts/syscall.tbl). Both
	// are checked on any host, and the numbers of ring_test.go against the
	// table of the GOARCH this binary was built for.
	for _, a := range []struct{ goarch, name, table string }{
		{"amd64", "x86_64", "arch/x86/entry/syscalls/syscall_64.tbl"},
		{"arm64", "arm64", "arch/arm64/tools/syscall_64.tbl"},
	} {
		nrs := syscallTable(t, filepath.Join(tree.Dir, a.table))
		assert.Equal(t, int64(425), nrs["io_uring_setup"], "%s io_uring_setup", a.name)
		assert.Equal(t, int64(426), nrs["io_uring_enter"], "%s io_uring_enter", a.name)
		assert.Equal(t, int64(427), nrs["io_uring_register"], "%s io_uring_register", a.name)
		if a.goarch == runtime.GOARCH {
			assert.Equal(t, int64(sysSetup), nrs["io_uring_setup"], "sysSetup against the %s table", a.name)
			assert.Equal(t, int64(sysEnter), nrs["io_uring_enter"], "sysEnter against the %s table", a.name)
			assert.Equal(t, int64(sysRegister), nrs["io_uring_register"], "sysRegister against the %s table", a.name)
		}
	}
}

// syscallTable reads a kernel system call table (number, ABI, name,
// entry point per line) and returns the number of each name.
func syscallTable(t *testing.T, path string) map[string]int64 {
	t.Helper()
	tbl, err := os.Open(path)
	require.NoError(t, err)
	defer tbl.Close()
	nrs := map[string]int64{}
	sc := bufio.NewScanner(tbl)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if nr, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
			nrs[fields[2]] = nr
		}
	}
	require.NoError(t, sc.Err())
	return nrs
}
