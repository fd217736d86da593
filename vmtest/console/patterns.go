// Package console watches the serial console of a test kernel for kernel
// error reports ("splats"): BUG, WARNING, Oops, sanitizer reports, lockups,
// RCU stalls, hung tasks and panics.
//
// A [Monitor] is fed the console one line at a time while the guest runs.
// When a line opens a report, the monitor records a [Splat] carrying the
// report's kind, the name of the test that was running at that moment and
// the quoted text of the report, so that the host can fail the run even if
// every test passed. [Scan] does the same for a console log saved to a file.
//
// Each report also gets a [Signature], a title in syzkaller's style ("WARNING
// in insert_rule") free of what varies between runs, its [Fingerprint], and
// the [Frames] of its stack trace, so that one bug seen in several tests or
// runs can be counted once.
package console

import (
	"regexp"
	"strings"
)

// Kind names a class of kernel report.
type Kind string

// The kinds of report recognised by the pattern table.
const (
	// KindPanic is "Kernel panic - not syncing: ...". The guest stops.
	KindPanic Kind = "panic"
	// KindKASAN is a Kernel Address Sanitizer report ("BUG: KASAN: ...").
	KindKASAN Kind = "kasan"
	// KindKFENCE is a KFENCE report ("BUG: KFENCE: ...").
	KindKFENCE Kind = "kfence"
	// KindKCSAN is a Kernel Concurrency Sanitizer report ("BUG: KCSAN: ...").
	KindKCSAN Kind = "kcsan"
	// KindKMSAN is a Kernel Memory Sanitizer report ("BUG: KMSAN: ...").
	KindKMSAN Kind = "kmsan"
	// KindLockdepLimit is lockdep running out of room for its tables
	// ("BUG: MAX_LOCKDEP_ENTRIES too low!"). It turns lock checking off
	// but says nothing about the code under test, so it does not fail the
	// run.
	KindLockdepLimit Kind = "lockdep-limit"
	// KindNullDeref is "BUG: kernel NULL pointer dereference, address: ..."
	// (arm64: "Unable to handle kernel NULL pointer dereference at virtual
	// address ...").
	KindNullDeref Kind = "null-deref"
	// KindPageFault is "BUG: unable to handle page fault for address: ..."
	// (arm64: "Unable to handle kernel paging request at virtual address
	// ..." and the like).
	KindPageFault Kind = "page-fault"
	// KindBug is any other line starting with "BUG: ", e.g. "BUG: scheduling
	// while atomic" or "BUG: sleeping function called from invalid context".
	KindBug Kind = "bug"
	// KindKernelBUG is a BUG()/BUG_ON() hit: "kernel BUG at file:line!".
	KindKernelBUG Kind = "kernel-bug"
	// KindWarning is a WARN()/WARN_ON() hit:
	// "WARNING: CPU: N PID: N at file:line func".
	KindWarning Kind = "warning"
	// KindLockdep is a lock dependency validator report, e.g.
	// "WARNING: possible circular locking dependency detected".
	KindLockdep Kind = "lockdep"
	// KindGPF is a general protection fault taken in kernel mode.
	KindGPF Kind = "gpf"
	// KindOops is an oops header such as "Oops: Oops: 0002 [#1] SMP" when
	// no more specific headline came before it.
	KindOops Kind = "oops"
	// KindUBSAN is an Undefined Behaviour Sanitizer report ("UBSAN: ...").
	KindUBSAN Kind = "ubsan"
	// KindSoftLockup is "watchdog: BUG: soft lockup - CPU#N stuck for Ns!".
	KindSoftLockup Kind = "soft-lockup"
	// KindHardLockup is "watchdog: Watchdog detected hard LOCKUP on cpu N".
	KindHardLockup Kind = "hard-lockup"
	// KindRCUStall is an RCU CPU stall warning.
	KindRCUStall Kind = "rcu-stall"
	// KindHungTask is "INFO: task X:N blocked for more than N seconds.".
	KindHungTask Kind = "hung-task"
	// KindKmemleak is an object the kernel's memory leak detector found
	// unreferenced: "unreferenced object 0x... (size N):". The detector
	// prints to its debugfs file, not to the console: the guest runner
	// sends that file after the tests ([Leaks]).
	KindKmemleak Kind = "kmemleak"
	// KindOOM is the OOM killer at work: "X invoked oom-killer:
	// gfp_mask=...", then the memory state and "Out of memory: Killed
	// process N (comm)". The test it kills fails by its own exit; the
	// report, kept to say why, does not fail the run by itself.
	KindOOM Kind = "oom"
	// KindInitramfs is "Initramfs unpacking failed: ...": the guest's
	// files are not all there (an archive too big for the guest's
	// memory: MEM=).
	KindInitramfs Kind = "initramfs"
)

// Pattern is one entry of the table of report headlines.
type Pattern struct {
	// Kind names what the pattern detects.
	Kind Kind
	// Re matches the headline line after its printk timestamp has been
	// removed. Every expression is anchored at the start of the line.
	Re *regexp.Regexp
	// Fatal is set when the guest will not continue after the line (a
	// panic): the host may stop the virtual machine at once.
	Fatal bool
	// Fails is set when a match is a splat that fails the run.
	Fails bool
	// Inner is set for oops headers, which the kernel prints in the middle
	// of a report opened by another headline ("BUG: kernel NULL pointer
	// dereference" is followed by "Oops: ..."). Such a line joins the open
	// report as long as that report has not yet printed its call trace.
	Inner bool
	// Delimited is set for sanitizer reports, which the kernel frames with
	// lines of '=' characters and which contain blank lines and several
	// stack traces: they end only at the closing line of '='.
	Delimited bool
}

// lockdepHeadlines are the titles lockdep prints after "WARNING: " in
// kernel/locking/lockdep.c.
var lockdepHeadlines = []string{
	`possible circular locking dependency detected`,
	`possible recursive locking detected`,
	`inconsistent lock state`,
	`possible irq lock inversion dependency detected`,
	`\S+-safe -> \S+-unsafe lock order detected`,
	`suspicious RCU usage`,
	`bad unlock balance detected!`,
	`bad contention detected!`,
	`held lock freed!`,
	`lock held when returning to user space!`,
	`Nested lock was not taken`,
	`chain_key collision`,
	`.+/\d+ still has locks held!`,
}

// dieCounter matches the end of an oops header: the "[#1]" die counter and
// the words naming the configuration, such as "PREEMPT SMP NOPTI".
const dieCounter = `\[#\d+\](?: [A-Z][A-Z0-9_=]*)*\s*$`

// patterns is the table of headlines, most specific first: the first entry
// that matches a line decides its kind. It is never written after
// initialisation.
var patterns = []Pattern{
	{Kind: KindPanic, Fatal: true, Fails: true,
		Re: regexp.MustCompile(`^Kernel panic - not syncing`)},
	{Kind: KindInitramfs, Fails: true,
		Re: regexp.MustCompile(`^Initramfs unpacking failed: `)},
	{Kind: KindKASAN, Fails: true, Delimited: true,
		Re: regexp.MustCompile(`^BUG: KASAN: \S`)},
	{Kind: KindKFENCE, Fails: true, Delimited: true,
		Re: regexp.MustCompile(`^BUG: KFENCE: \S`)},
	{Kind: KindKCSAN, Fails: true, Delimited: true,
		Re: regexp.MustCompile(`^BUG: KCSAN: \S`)},
	{Kind: KindKMSAN, Fails: true, Delimited: true,
		Re: regexp.MustCompile(`^BUG: KMSAN: \S`)},
	{Kind: KindLockdepLimit,
		Re: regexp.MustCompile(`^BUG: MAX_\w+ too low!`)},
	{Kind: KindNullDeref, Fails: true,
		Re: regexp.MustCompile(`^(?:BUG: (?:unable to handle )?kernel NULL pointer dereference` +
			`|Unable to handle kernel NULL pointer dereference at virtual address )`)},
	{Kind: KindPageFault, Fails: true,
		Re: regexp.MustCompile(`^(?:BUG: unable to handle (?:page fault|kernel paging request)` +
			`|Unable to handle kernel (?:paging request|access to user memory|execute from non-executable memory` +
			`|write to read-only memory|read from unreadable memory)\b.* at virtual address )`)},
	{Kind: KindBug, Fails: true,
		Re: regexp.MustCompile(`^BUG: \S`)},
	{Kind: KindKernelBUG, Fails: true,
		Re: regexp.MustCompile(`^[Kk]ernel BUG at \S`)},
	{Kind: KindWarning, Fails: true,
		Re: regexp.MustCompile(`^WARNING: CPU: \d+ PID: \d+ at \S`)},
	{Kind: KindLockdep, Fails: true,
		Re: regexp.MustCompile(`^WARNING: (?:` + strings.Join(lockdepHeadlines, `|`) + `)`)},
	{Kind: KindGPF, Fails: true, Inner: true,
		Re: regexp.MustCompile(`^(?:Oops: )?(?:segment-related )?general protection fault\b.*` + dieCounter)},
	{Kind: KindOops, Fails: true, Inner: true,
		Re: regexp.MustCompile(`^(?:(?:Internal error: )?Oops(?::| -) .*` +
			`|Internal error: .*` +
			`|[a-z][a-z0-9 ,/-]*: [0-9a-f]{4,16} )` + dieCounter)},
	{Kind: KindUBSAN, Fails: true,
		Re: regexp.MustCompile(`^UBSAN: \S`)},
	{Kind: KindSoftLockup, Fails: true,
		Re: regexp.MustCompile(`^(?:NMI )?watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s!`)},
	{Kind: KindHardLockup, Fails: true,
		Re: regexp.MustCompile(`^(?:NMI )?watchdog: Watchdog detected hard LOCKUP on cpu \d+`)},
	{Kind: KindRCUStall, Fails: true,
		Re: regexp.MustCompile(`^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?\b`)},
	{Kind: KindHungTask, Fails: true,
		Re: regexp.MustCompile(`^INFO: task .+:\d+ blocked for more than \d+ seconds\.`)},
	{Kind: KindOOM,
		Re: regexp.MustCompile(`^\S.* invoked oom-killer: gfp_mask=0x[0-9a-f]+`)},
	{Kind: KindKmemleak, Fails: true,
		Re: regexp.MustCompile(`^unreferenced object 0x[0-9a-f]+ \(size \d+\):`)},
}

// Patterns returns a copy of the table of report headlines, in the order in
// which they are tried.
func Patterns() []Pattern {
	return append([]Pattern(nil), patterns...)
}

// Match reports which pattern, if any, matches a console line taken on its
// own. The line may carry a printk timestamp prefix and a trailing carriage
// return.
func Match(line string) (Pattern, bool) {
	p := match(splitLine(line).body)
	if p == nil {
		return Pattern{}, false
	}
	return *p, true
}

// match returns the first pattern matching body, a line without its
// timestamp, or nil.
func match(body string) *Pattern {
	for i := range patterns {
		if patterns[i].Re.MatchString(body) {
			return &patterns[i]
		}
	}
	return nil
}

// timestampRe matches the prefix printk puts before each console line: an
// optional "<level>" (as seen in /dev/kmsg dumps), the "[seconds.micros]"
// time and an optional "[  T123]" caller id, then the one separating space.
var timestampRe = regexp.MustCompile(`^(?:<\d+>)?\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?`)

// line is one console line split into its parts.
type line struct {
	// raw is the line without line-ending characters.
	raw string
	// body is raw without the timestamp prefix.
	body string
	// stamped tells whether raw had a timestamp prefix.
	stamped bool
}

// splitLine removes carriage returns and newlines from both ends of s and
// splits off its timestamp prefix.
func splitLine(s string) line {
	raw := strings.Trim(s, "\r\n")
	l := line{raw: raw, body: raw}
	if loc := timestampRe.FindStringIndex(raw); loc != nil {
		l.body = raw[loc[1]:]
		l.stamped = true
	}
	return l
}

// blank tells whether the line has nothing but white space after its
// timestamp.
func (l line) blank() bool {
	return strings.TrimSpace(l.body) == ""
}

// endMarkerRe matches the lines that close a report: "---[ end trace
// 0000000000000000 ]---", UBSAN's "---[ end trace ]---" and "---[ end Kernel
// panic - not syncing: ... ]---".
var endMarkerRe = regexp.MustCompile(`^-+\[ end (?:trace|Kernel panic)\b`)

// separatorRe matches the lines the kernel prints just before a report: the
// "cut here" line of WARN and BUG, and the rows of '=' that frame sanitizer
// and lockdep reports.
var separatorRe = regexp.MustCompile(`^(?:-+\[ cut here \]-+|={20,})\s*$`)

// delimiterRe matches the row of '=' that closes a sanitizer report.
var delimiterRe = regexp.MustCompile(`^={20,}\s*$`)

// callTraceRe matches the header of a stack trace.
var callTraceRe = regexp.MustCompile(`^Call [Tt]race:`)

// continuationRe matches the lines that may follow a stack trace inside the
// same report: further frames (indented), register dumps, another CPU's
// backtrace, lockdep's irq event stamps, the oops trailer and the panic
// trailer. A line after a stack trace that matches none of these ends the
// report.
var continuationRe = regexp.MustCompile(`^(?:` +
	`\s` +
	`|Call [Tt]race:` +
	`|(?:RIP|EIP|RSP|ESP|Code|RAX|RBX|RCX|RDX|RSI|RDI|RBP|R\d\d|EAX|EBX|ECX|EDX|ESI|EDI|EBP|DS|ES|FS|GS|CS|SS|CR\d|DR\d|PKRU|ORIG_RAX|EFLAGS): ` +
	`|(?:pc|lr|sp) : |x\d+\s*: ` +
	`|CPU: \d+ ` +
	`|Hardware name: ` +
	`|Modules linked in:` +
	`|Tainted: ` +
	`|Workqueue: ` +
	`|irq event stamp: |hardirqs last|softirqs last` +
	`|NMI backtrace for cpu ` +
	`|Sending NMI from CPU ` +
	`|Task dump for CPU ` +
	`|task:\S` +
	`|rcu: ` +
	`|Kernel Offset: ` +
	`|Shutting down cpus with NMI` +
	`|Rebooting in ` +
	`|-+\[ end ` +
	`)`)
