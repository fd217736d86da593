package console

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stamp gives each line a printk timestamp, starting at start seconds and
// counting up by one microsecond per line.
func stamp(start float64, lines ...string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = fmt.Sprintf("[%12.6f] %s", start+float64(i)/1e6, l)
	}
	return out
}

// feed feeds every line to m.
func feed(m *Monitor, lines ...string) {
	for _, l := range lines {
		m.Feed(l)
	}
}

// bodies returns the lines of a splat's text without their timestamps.
func bodies(s Splat) []string {
	var out []string
	for _, l := range strings.Split(s.Text, "\n") {
		out = append(out, splitLine(l).body)
	}
	return out
}

// warning is a short WARN report as printed by Linux 6.12.
func warning(start float64) []string {
	return stamp(start,
		"------------[ cut here ]------------",
		"WARNING: CPU: 0 PID: 42 at security/landlock/fs.c:100 hook_file_open+0x10/0x20",
		"Modules linked in:",
		"CPU: 0 UID: 0 PID: 42 Comm: landlock.test Not tainted 6.12.0 #1 ",
		"RIP: 0010:hook_file_open+0x10/0x20",
		"Call Trace:",
		" <TASK>",
		" ? __warn+0x84/0x130",
		" security_file_open+0x45/0x100",
		" </TASK>",
		"---[ end trace 0000000000000000 ]---",
	)
}

func TestRunningTestIsAttached(t *testing.T) {
	current := ""
	m := New(func() string { return current })
	feed(m, stamp(0.5, "Run /init as init process")...)

	current = "TestFirst"
	feed(m, warning(1)...)
	current = "TestSecond/sub"
	report := stamp(2,
		"BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
		"in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 43, name: landlock.test",
	)
	feed(m, report[0])
	// The name is taken when the headline arrives, not later.
	current = "TestThird"
	feed(m, report[1])
	current = ""
	feed(m, stamp(3, "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100")...)

	splats := m.Splats()
	require.Len(t, splats, 3)
	assert.Equal(t, KindWarning, splats[0].Kind)
	assert.Equal(t, "TestFirst", splats[0].Test)
	assert.Equal(t, KindBug, splats[1].Kind)
	assert.Equal(t, "TestSecond/sub", splats[1].Test)
	assert.Equal(t, KindPanic, splats[2].Kind)
	assert.Equal(t, "", splats[2].Test)
}

func TestRunningIsOnlyAskedForHeadlines(t *testing.T) {
	calls := 0
	m := New(func() string { calls++; return "TestX" })
	feed(m, stamp(1, "ordinary", "lines", "only")...)
	assert.Equal(t, 0, calls)
	feed(m, warning(2)...)
	assert.Equal(t, 1, calls)
}

func TestNilRunning(t *testing.T) {
	m := New(nil)
	feed(m, warning(1)...)
	require.Len(t, m.Splats(), 1)
	assert.Equal(t, "", m.Splats()[0].Test)
}

// isClosed tells whether ch is closed, without blocking.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestFatalClosesChannel(t *testing.T) {
	m := New(nil)
	assert.False(t, isClosed(m.Fatal()))
	assert.False(t, m.Failed())

	feed(m, warning(1)...)
	assert.False(t, isClosed(m.Fatal()), "a WARNING is not fatal")
	assert.True(t, m.Failed())

	feed(m, stamp(2, "Kernel panic - not syncing: kernel: panic_on_warn set ...")...)
	assert.True(t, isClosed(m.Fatal()))
	splats := m.Splats()
	require.Len(t, splats, 2)
	assert.True(t, splats[1].Fatal)
	assert.False(t, splats[0].Fatal)

	// A second panic must not close the channel again.
	assert.NotPanics(t, func() {
		feed(m, stamp(3, "Kernel panic - not syncing: again")...)
	})
}

// goTestOutput is what a failing Go test binary prints.
var goTestOutput = []string{
	"=== RUN   TestRestrictSelf",
	"=== PAUSE TestRestrictSelf",
	"=== CONT  TestRestrictSelf",
	"    restrict_test.go:71: BUG: expected EACCES, got <nil>",
	"    restrict_test.go:72: WARNING: CPU: 0 PID: 1 at nothing",
	"--- FAIL: TestRestrictSelf (0.02s)",
	"panic: runtime error: invalid memory address or nil pointer dereference [recovered]",
	"\tpanic: runtime error: invalid memory address or nil pointer dereference",
	"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4f2b31]",
	"",
	"goroutine 18 [running]:",
	"testing.tRunner.func1.2({0x51e0a0, 0x6b7d10})",
	"\t/usr/lib/go/src/testing/testing.go:1632 +0x230",
	"FAIL\tgithub.com/landlock-vmtest/landlock-vmtest/guest\t0.031s",
	"FAIL",
}

func TestGoTestOutputIsNotASplat(t *testing.T) {
	for _, withKernel := range []bool{false, true} {
		t.Run(fmt.Sprintf("kernel-lines=%v", withKernel), func(t *testing.T) {
			m := New(func() string { return "TestRestrictSelf" })
			if withKernel {
				feed(m, stamp(0.1, "Linux version 6.12.0", "Run /init as init process")...)
			}
			feed(m, goTestOutput...)
			assert.Empty(t, m.Splats())
			assert.False(t, m.Failed())
			assert.False(t, isClosed(m.Fatal()))
		})
	}
}

func TestUnstampedLinesAfterStampedOnesCannotOpenReports(t *testing.T) {
	lines := []string{
		"BUG: printed by a user space program",
		"Kernel panic - not syncing: quoted by a user space program",
	}

	// A kernel booted with printk.time=0 stamps nothing: such lines are
	// kernel lines.
	m := New(nil)
	feed(m, lines...)
	assert.Len(t, m.Splats(), 2)

	// Once the kernel is known to stamp its lines, they are user space.
	m = New(nil)
	feed(m, stamp(1, "Run /init as init process")...)
	feed(m, lines...)
	assert.Empty(t, m.Splats())
	assert.False(t, isClosed(m.Fatal()))
}

func TestUserSpaceLinesInsideAReportAreLeftOut(t *testing.T) {
	w := warning(1)
	var mixed []string
	for i, l := range w {
		mixed = append(mixed, l)
		if i%3 == 1 {
			mixed = append(mixed, "=== RUN   TestOther", "", "--- PASS: TestOther (0.00s)")
		}
	}
	m := New(nil)
	feed(m, mixed...)
	feed(m, stamp(2, "after the report")...)
	splats := m.Splats()
	require.Len(t, splats, 1)
	assert.Equal(t, strings.Join(w, "\n"), splats[0].Text)
}

func TestReportBoundaries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		// want holds, for each splat, the kind and the bodies of the
		// first and last quoted lines.
		want [][3]string
	}{{
		name: "end trace closes a warning",
		lines: append(warning(1), stamp(2,
			"RIP: 0010:executive_summary+0x0/0x10",
			"landlock: later message")...),
		want: [][3]string{{"warning", "------------[ cut here ]------------", "---[ end trace 0000000000000000 ]---"}},
	}, {
		name: "blank line after the stack",
		lines: stamp(1,
			"INFO: task landlock.test:252 blocked for more than 122 seconds.",
			"      Not tainted 6.12.0 #1",
			"task:landlock.test   state:D stack:0     pid:252   tgid:248   ppid:1      flags:0x00004002",
			"Call Trace:",
			" <TASK>",
			" __schedule+0x3e7/0xb30",
			" </TASK>",
			"",
			"Showing all locks held in the system:"),
		want: [][3]string{{"hung-task", "INFO: task landlock.test:252 blocked for more than 122 seconds.", " </TASK>"}},
	}, {
		name: "unrelated printk after the stack",
		lines: stamp(1,
			"BUG: scheduling while atomic: landlock.test/231/0x00000002",
			"Modules linked in:",
			"CPU: 0 UID: 0 PID: 231 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"Call Trace:",
			" <TASK>",
			" __schedule_bug+0x5a/0x70",
			" </TASK>",
			"clocksource: Switched to clocksource hpet",
			" indented but after the end"),
		want: [][3]string{{"bug", "BUG: scheduling while atomic: landlock.test/231/0x00000002", " </TASK>"}},
	}, {
		name: "registers and more stacks continue a report",
		lines: stamp(1,
			"watchdog: Watchdog detected hard LOCKUP on cpu 1",
			"Modules linked in:",
			"Call Trace:",
			" <NMI>",
			" </NMI>",
			"RIP: 0033:0x40f1ce",
			"RAX: ffffffffffffffda RBX: 0000000000000003 RCX: 000000000040f1ce",
			"NMI backtrace for cpu 0",
			"CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Not tainted 6.12.0 #1 ",
			"Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.3-debian-1.16.3-2 04/01/2014",
			"Call Trace:",
			" <TASK>",
			" </TASK>",
			"random: crng init done"),
		want: [][3]string{{"hard-lockup", "watchdog: Watchdog detected hard LOCKUP on cpu 1", " </TASK>"}},
	}, {
		name: "oops header joins the BUG line before it",
		lines: stamp(1,
			"BUG: unable to handle page fault for address: ffffffffff600000",
			"#PF: supervisor read access in kernel mode",
			"Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI",
			"Call Trace:",
			" </TASK>",
			"Modules linked in:",
			"CR2: ffffffffff600000",
			"---[ end trace 0000000000000000 ]---"),
		want: [][3]string{{"page-fault", "BUG: unable to handle page fault for address: ffffffffff600000", "---[ end trace 0000000000000000 ]---"}},
	}, {
		name: "kernel BUG with its oops",
		lines: stamp(1,
			"------------[ cut here ]------------",
			"kernel BUG at security/landlock/ruleset.c:200!",
			"Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
			"Call Trace:",
			" </TASK>",
			"---[ end trace 0000000000000000 ]---"),
		want: [][3]string{{"kernel-bug", "------------[ cut here ]------------", "---[ end trace 0000000000000000 ]---"}},
	}, {
		name: "oops after a finished stack is a new report",
		lines: stamp(1,
			"BUG: scheduling while atomic: a/1/0x00000002",
			"Call Trace:",
			" </TASK>",
			"Oops: Oops: 0002 [#2] PREEMPT SMP NOPTI",
			"Call Trace:",
			" </TASK>",
			"---[ end trace 0000000000000000 ]---"),
		want: [][3]string{
			{"bug", "BUG: scheduling while atomic: a/1/0x00000002", " </TASK>"},
			{"oops", "Oops: Oops: 0002 [#2] PREEMPT SMP NOPTI", "---[ end trace 0000000000000000 ]---"},
		},
	}, {
		name: "a new headline closes a report still printing",
		lines: stamp(1,
			"INFO: task a:1 blocked for more than 122 seconds.",
			"      Not tainted 6.12.0 #1",
			"INFO: task b:2 blocked for more than 122 seconds."),
		want: [][3]string{
			{"hung-task", "INFO: task a:1 blocked for more than 122 seconds.", "      Not tainted 6.12.0 #1"},
			{"hung-task", "INFO: task b:2 blocked for more than 122 seconds.", "INFO: task b:2 blocked for more than 122 seconds."},
		},
	}, {
		name: "panic interrupts a warning",
		lines: stamp(1,
			"WARNING: CPU: 0 PID: 1 at kernel/fork.c:1080 copy_process+0x1c2/0x2100",
			"Modules linked in:",
			"Kernel panic - not syncing: kernel: panic_on_warn set ...",
			"CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.12.0 #1 ",
			"Call Trace:",
			" </TASK>",
			"Kernel Offset: disabled",
			"---[ end Kernel panic - not syncing: kernel: panic_on_warn set ... ]---",
			"after the end"),
		want: [][3]string{
			{"warning", "WARNING: CPU: 0 PID: 1 at kernel/fork.c:1080 copy_process+0x1c2/0x2100", "Modules linked in:"},
			{"panic", "Kernel panic - not syncing: kernel: panic_on_warn set ...", "---[ end Kernel panic - not syncing: kernel: panic_on_warn set ... ]---"},
		},
	}, {
		name: "sanitizer report spans blank lines and stacks",
		lines: stamp(1,
			"==================================================================",
			"BUG: KASAN: slab-out-of-bounds in f+0x1/0x2",
			"Write of size 1 at addr ffff888004b71e60 by task a/1",
			"",
			"Call Trace:",
			" </TASK>",
			"",
			"Allocated by task 1:",
			" kasan_save_stack+0x30/0x50",
			"",
			"The buggy address belongs to the object at ffff888004b71e00",
			"==================================================================",
			"Disabling lock debugging due to kernel taint"),
		want: [][3]string{{"kasan", "==================================================================", "=================================================================="}},
	}, {
		name: "lockdep report spans blank lines before its stack",
		lines: stamp(1,
			"======================================================",
			"WARNING: possible circular locking dependency detected",
			"6.12.0 #1 Not tainted",
			"------------------------------------------------------",
			"landlock.test/231 is trying to acquire lock:",
			"",
			"but task is already holding lock:",
			"",
			"stack backtrace:",
			"CPU: 0 UID: 0 PID: 231 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"Call Trace:",
			" </TASK>",
			"landlock: later message"),
		want: [][3]string{{"lockdep", "======================================================", " </TASK>"}},
	}, {
		name: "message printed between cut here and WARNING is quoted",
		lines: stamp(1,
			"------------[ cut here ]------------",
			"refcount_t: underflow; use-after-free.",
			"WARNING: CPU: 0 PID: 1 at lib/refcount.c:28 refcount_warn_saturate+0xc2/0x110",
			"---[ end trace 0000000000000000 ]---"),
		want: [][3]string{{"warning", "------------[ cut here ]------------", "---[ end trace 0000000000000000 ]---"}},
	}, {
		name: "a separator long before the headline is not quoted",
		lines: stamp(1,
			"------------[ cut here ]------------",
			"one", "two", "three", "four", "five",
			"WARNING: CPU: 0 PID: 1 at lib/refcount.c:28 refcount_warn_saturate+0xc2/0x110",
			"---[ end trace 0000000000000000 ]---"),
		want: [][3]string{{"warning", "WARNING: CPU: 0 PID: 1 at lib/refcount.c:28 refcount_warn_saturate+0xc2/0x110", "---[ end trace 0000000000000000 ]---"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(nil)
			feed(m, tc.lines...)
			splats := m.Splats()
			require.Len(t, splats, len(tc.want))
			for i, w := range tc.want {
				b := bodies(splats[i])
				assert.Equalf(t, Kind(w[0]), splats[i].Kind, "splat %d kind", i)
				assert.Equalf(t, w[1], b[0], "splat %d first line", i)
				assert.Equalf(t, w[2], b[len(b)-1], "splat %d last line", i)
			}
		})
	}
}

func TestSplatFields(t *testing.T) {
	m := New(func() string { return "TestX" })
	feed(m, stamp(1, "booting")...)
	feed(m, "[    2.000000] BUG: kernel NULL pointer dereference, address: 0000000000000010\r\n")
	splats := m.Splats()
	require.Len(t, splats, 1)
	assert.Equal(t, Splat{
		Kind:        KindNullDeref,
		Test:        "TestX",
		Title:       "BUG: kernel NULL pointer dereference, address: 0000000000000010",
		Signature:   "BUG: kernel NULL pointer dereference",
		Fingerprint: Fingerprint("BUG: kernel NULL pointer dereference"),
		Text:        "[    2.000000] BUG: kernel NULL pointer dereference, address: 0000000000000010",
		Fails:       true,
		Line:        2,
	}, splats[0])
}

func TestLongReportIsTruncated(t *testing.T) {
	m := New(nil)
	lines := stamp(1, "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x0/0x1", "Call Trace:")
	for i := 0; i < 2*MaxReportLines; i++ {
		lines = append(lines, stamp(2, fmt.Sprintf(" frame%d+0x0/0x1", i))...)
	}
	feed(m, lines...)
	splats := m.Splats()
	require.Len(t, splats, 1)
	assert.True(t, splats[0].Truncated)
	assert.Len(t, strings.Split(splats[0].Text, "\n"), MaxReportLines)
}

func TestLongLineIsClipped(t *testing.T) {
	m := New(nil)
	feed(m, "BUG: "+strings.Repeat("x", 3*MaxLineBytes))
	splats := m.Splats()
	require.Len(t, splats, 1)
	assert.LessOrEqual(t, len(splats[0].Text), MaxLineBytes+3)
}

func TestTooManySplatsAreCounted(t *testing.T) {
	m := New(nil)
	for i := 0; i < MaxSplats+3; i++ {
		feed(m, warning(float64(i))...)
	}
	assert.Len(t, m.Splats(), MaxSplats)
	assert.Equal(t, 3, m.Dropped())
	assert.True(t, m.Failed())

	feed(m, stamp(1000, "Kernel panic - not syncing: dropped but still fatal")...)
	assert.True(t, isClosed(m.Fatal()))
}

func TestNonFailingKind(t *testing.T) {
	m := New(nil)
	feed(m, stamp(1,
		"BUG: MAX_LOCKDEP_ENTRIES too low!",
		"turning off the locking correctness validator.",
		"CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.0 #1 ",
		"Call Trace:",
		" </TASK>",
		"landlock: Up and running.")...)
	splats := m.Splats()
	require.Len(t, splats, 1)
	assert.Equal(t, KindLockdepLimit, splats[0].Kind)
	assert.False(t, splats[0].Fails)
	assert.False(t, m.Failed())
}

func TestSplatsReturnsACopy(t *testing.T) {
	m := New(nil)
	feed(m, warning(1)...)
	s := m.Splats()
	s[0].Kind = "changed"
	s[0].Frames[0] = "changed"
	assert.Equal(t, KindWarning, m.Splats()[0].Kind)
	assert.Equal(t, "__warn+0x84/0x130", m.Splats()[0].Frames[0])
}

func TestSignatureFollowsTheReport(t *testing.T) {
	// A report read while it is still printing gets the signature of
	// what has come so far, then of the whole report.
	m := New(nil)
	w := warning(1)
	feed(m, w[:2]...)
	s := m.Splats()
	require.Len(t, s, 1)
	assert.Equal(t, "WARNING in hook_file_open", s[0].Signature)
	assert.Empty(t, s[0].Frames)
	feed(m, w[2:]...)
	s = m.Splats()
	assert.Equal(t, "WARNING in hook_file_open", s[0].Signature)
	assert.Equal(t, []string{"__warn+0x84/0x130", "security_file_open+0x45/0x100"}, s[0].Frames)
}

func TestConcurrentFeedAndRead(t *testing.T) {
	m := New(func() string { return "TestConcurrent" })
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			feed(m, warning(float64(i))...)
		}
		feed(m, stamp(99, "Kernel panic - not syncing: done")...)
	}()
	go func() {
		defer wg.Done()
		for !isClosed(m.Fatal()) {
			_ = m.Splats()
			_ = m.Failed()
			_ = m.Dropped()
		}
	}()
	wg.Wait()
	assert.Len(t, m.Splats(), 51)
}

func TestScan(t *testing.T) {
	log := strings.Join(warning(1), "\r\n") + "\r\n" +
		strings.Join(stamp(2, "Kernel panic - not syncing: Fatal exception"), "\n") // no final newline
	splats, err := Scan(strings.NewReader(log), func() string { return "TestScan" })
	require.NoError(t, err)
	require.Len(t, splats, 2)
	assert.Equal(t, KindWarning, splats[0].Kind)
	assert.Equal(t, "TestScan", splats[0].Test)
	assert.Equal(t, 2, splats[0].Line)
	assert.Equal(t, KindPanic, splats[1].Kind)
	assert.True(t, splats[1].Fatal)
	assert.Equal(t, 12, splats[1].Line)
}

// failingReader returns its data and then an error.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestScanReturnsReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := &failingReader{data: strings.Join(warning(1), "\n") + "\n", err: boom}
	splats, err := Scan(r, nil)
	assert.ErrorIs(t, err, boom)
	assert.Len(t, splats, 1)
}

var _ io.Reader = (*failingReader)(nil)
