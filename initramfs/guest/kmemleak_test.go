package guest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// leakReport is a kmemleak file's content in 6.12's format
// (mm/kmemleak.c, print_unreferenced()).
const leakReport = `unreferenced object 0xffff888004a1c2c0 (size 32):
  comm "seccompentry.te", pid 112, jiffies 4294893480
  hex dump (first 32 bytes):
    01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 5e1c3a10):
    kmemleak_alloc+0x4a/0x80
    __kmalloc_cache_noprof+0x1b9/0x2f0
    landlock_bpf_append+0x8c/0x3c0
    __do_sys_seccomp+0x2d7/0x3b0
    do_syscall_64+0x6e/0x140
`

// With kmemleak, the runner scans and clears before the tests, waits for
// the last binary's allocations to be old enough, scans twice and sends
// what is left with the binaries that ran.
func TestInitKmemleak(t *testing.T) {
	t.Parallel()
	sys := &fakeSystem{kmemleak: func(cmd string) (string, error) {
		if cmd == "" {
			return leakReport, nil
		}
		return "", nil
	}}
	var slept []time.Duration
	m := `{"binaries": [{"package": "example.com/a", "path": "/no/a", "dir": "/"}, {"package": "example.com/b", "path": "/no/b", "dir": "/"}], "timeout": "1m"}`
	logged, console, err := initRun(t, sys, m, func(in *Init) { in.Sleep = func(d time.Duration) { slept = append(slept, d) } })
	require.NoError(t, err)
	journal, events := sys.all()
	assert.Equal(t, []string{"mount debugfs /sys/kernel/debug debugfs", "mount cgroup2 /sys/fs/cgroup cgroup2", "mount bpf /sys/fs/bpf bpf", "mount tracefs /sys/kernel/tracing tracefs", "open /dev/ttyS1",
		"kmemleak scan", "kmemleak clear", "kmemleak scan", "kmemleak scan", "kmemleak read", "close", "reboot"}, calls(journal))
	require.Len(t, slept, 1, "logged:\n%s", logged)
	assert.True(t, slept[0] > 0 && slept[0] <= kmemleakMinAge, "%s", slept[0])
	last := events[len(events)-1]
	assert.Equal(t, event.KindKmemleak, last.Kind)
	assert.Equal(t, leakReport, last.Text)
	assert.Equal(t, map[string]string{"binaries": "example.com/a example.com/b"}, last.Info)
	assert.Contains(t, console, "landlock-vmtest: kmemleak: 1 suspected leak(s) after 2 test binar(ies)\n")
}

// Nothing left after the tests: no event, and the console says so.
func TestInitKmemleakNoLeak(t *testing.T) {
	t.Parallel()
	sys := &fakeSystem{kmemleak: func(string) (string, error) { return "", nil }}
	_, console, err := initRun(t, sys, `{"binaries": [], "timeout": "1m"}`, func(in *Init) { in.Sleep = func(time.Duration) {} })
	require.NoError(t, err)
	_, events := sys.all()
	assert.Equal(t, []event.Kind{event.KindHello}, kinds(events))
	assert.Contains(t, console, "landlock-vmtest: kmemleak: 0 suspected leak(s) after 0 test binar(ies)\n")
}

// A kernel without kmemleak: nothing is asked of it after the first try,
// nothing is logged, nothing is sent.
func TestInitNoKmemleak(t *testing.T) {
	t.Parallel()
	sys := &fakeSystem{}
	logged, console, err := initRun(t, sys, `{"binaries": [], "timeout": "1m"}`, nil)
	require.NoError(t, err)
	assert.Empty(t, logged)
	assert.NotContains(t, console, "kmemleak")
	journal, events := sys.all()
	for _, j := range journal {
		assert.False(t, strings.HasPrefix(j, "kmemleak"), j)
	}
	assert.Equal(t, []event.Kind{event.KindHello}, kinds(events))
}

// A scan that fails after the tests is an error event, not a silent pass.
func TestInitKmemleakScanFails(t *testing.T) {
	t.Parallel()
	scans := 0
	sys := &fakeSystem{kmemleak: func(cmd string) (string, error) {
		if cmd == "scan" {
			if scans++; scans > 1 {
				return "", errors.New("write /sys/kernel/debug/kmemleak: device or resource busy")
			}
		}
		return "", nil
	}}
	logged, _, err := initRun(t, sys, `{"binaries": [], "timeout": "1m"}`, func(in *Init) { in.Sleep = func(time.Duration) {} })
	require.NoError(t, err)
	_, events := sys.all()
	last := events[len(events)-1]
	assert.Equal(t, event.KindError, last.Kind)
	assert.Equal(t, "kmemleak: no scan after the tests: write /sys/kernel/debug/kmemleak: device or resource busy", last.Error)
	assert.Contains(t, logged, fmt.Sprintf("runner: %s", last.Error))
}
