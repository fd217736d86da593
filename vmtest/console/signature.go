package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Signature returns the title of the kernel report quoted in text, written
// the way syzkaller titles its reports: the class of the report and, when
// the report names one, the function it points at, e.g. "WARNING in
// insert_rule", "KASAN: slab-use-after-free Read in landlock_put_ruleset",
// "BUG: kernel NULL pointer dereference in landlock_merge_ruleset",
// "INFO: task hung in landlock_restrict_self" or "kernel panic: Fatal
// exception". It holds no timestamp, PID, CPU number, address or offset, so
// the same bug reported twice has the same signature.
//
// The report opens at the first line of text that matches the pattern
// table (see [Patterns]); text may carry printk timestamps, as a
// [Splat]'s Text does. The function comes from the headline (WARNING,
// KASAN, KFENCE, KMSAN), from the RIP or pc line of the register dump (x86
// "RIP: 0010:f+0x12/0x30", arm64 "pc : f+0x12/0x30"), from lockdep's "at:"
// lines, or from the first stack trace, in the order that suits the kind of
// report. Frames of the reporting machinery (dump_stack, print_report,
// kasan_report, __warn, report_bug, exc_invalid_op, lockdep's internals,
// the UBSAN handlers, panic, ...) and of a few primitives (locks, memcpy,
// refcount_*) are passed over; "?" frames are used only when the trace has
// no other; the ".isra.0", ".constprop.0", ".cold" suffixes and the system
// call wrappers' prefixes ("__x64_sys_", "__arm64_sys_", "__do_sys_") are
// dropped, so that x86 and arm64 reports of one bug agree.
//
// When no line of text matches the table, Signature returns its first
// non-blank line without its timestamp; for an empty text it returns "".
func Signature(text string) string {
	return parse(text).signature()
}

// Frames returns the frames of the first stack trace quoted in text, each
// as "function+0xoffset/0xsize" without the "?" mark, the address or the
// module name, in the order printed. The trace is the one after the first
// "Call Trace:" (x86) or "Call trace:" (arm64) line, or failing that the
// first run of frame lines (KFENCE prints no header). It spans the <IRQ>,
// <NMI> and <TASK> sections and the register dumps printed inside them. It
// returns nil when text holds no frame.
func Frames(text string) []string {
	var out []string
	for _, f := range parse(text).frames {
		out = append(out, f.text)
	}
	return out
}

// ReliableFrames returns the frames of Frames that the unwinder vouched
// for: those not printed with a leading "?".
func ReliableFrames(text string) []string {
	var out []string
	for _, f := range parse(text).frames {
		if !f.questionable {
			out = append(out, f.text)
		}
	}
	return out
}

// Fingerprint returns a short, stable hash of a signature: the first 16 hex
// digits of its SHA-256. Reports with the same signature, from two tests or
// two runs, have the same fingerprint.
func Fingerprint(signature string) string {
	sum := sha256.Sum256([]byte(signature))
	return hex.EncodeToString(sum[:8])
}

// describe fills in the signature, fingerprint and frames of s from its
// text.
func describe(s *Splat) {
	p := parse(s.Text)
	s.Signature = p.signature()
	s.Fingerprint = Fingerprint(s.Signature)
	s.Frames = nil
	for _, f := range p.frames {
		s.Frames = append(s.Frames, f.text)
	}
}

// frame is one stack frame of a trace.
type frame struct {
	// text is "function+0xoffset/0xsize".
	text string
	// name is the function's name without its compiler suffix.
	name string
	// questionable is set for "? function+..." frames, which the unwinder
	// found on the stack but could not vouch for.
	questionable bool
	// irq is set for frames printed inside an <IRQ>, <NMI> or <SOFTIRQ>
	// section (x86).
	irq bool
}

// parsed is a report's text taken apart.
type parsed struct {
	// lines are the lines of the text without their timestamps.
	lines []string
	// head is the index in lines of the headline, -1 if none matched.
	head int
	// pat is the pattern the headline matched.
	pat *Pattern
	// frames is the first stack trace after the headline.
	frames []frame
}

// parse splits text into lines, finds the headline and the first trace.
func parse(text string) parsed {
	p := parsed{head: -1}
	if text == "" {
		return p
	}
	for _, l := range strings.Split(text, "\n") {
		p.lines = append(p.lines, splitLine(l).body)
	}
	for i, l := range p.lines {
		if pat := match(l); pat != nil {
			p.head, p.pat = i, pat
			break
		}
	}
	p.frames = firstTrace(p.lines[max(p.head, 0):])
	return p
}

// funcToken matches "function+0xoffset/0xsize"; its group is the function.
const funcToken = `([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+`

var (
	// frameRe matches a frame line of a trace: indented, with an optional
	// old-style "[<address>]", an optional "?", the frame, an optional
	// "[module]" and an optional arm64 "(C)"-style mark.
	frameRe = regexp.MustCompile(`^\s+(?:\[<?[0-9a-fx]+>?\]\s+)?(\?\s+)?(` + funcToken + `)(?:\s+\[[\w-]+\])?(?:\s+\([A-Z]\))?\s*$`)
	// markerRe matches the section markers of an x86 trace.
	markerRe = regexp.MustCompile(`^\s*<(/?)(TASK|IRQ|NMI|SOFTIRQ|EOI)>\s*$`)
	// ripRe matches the line naming the instruction the report is about:
	// x86 "RIP: 0010:f+0x1/0x2" (a kernel address: user space RIPs have no
	// symbol), arm64 "pc : f+0x1/0x2", and older "IP:" and "PC is at".
	ripRe = regexp.MustCompile(`^(?:RIP: [0-9a-f]{4}:(?:\[<[0-9a-f]+>\]\s*)*|pc : (?:\[<[0-9a-f]+>\]\s*)?|PC is at |IP: (?:\[<[0-9a-f]+>\]\s*)*)` + funcToken)
	// atRe matches the places lockdep names: "..., at: f+0x1/0x2" and a
	// "[<address>] f+0x1/0x2" line.
	atRe = regexp.MustCompile(`(?:\bat: |^\[<[0-9a-f]+>\] )(?:\[<[0-9a-f]+>\] )?` + funcToken)
	// funcRe finds a frame anywhere in a line.
	funcRe = regexp.MustCompile(funcToken)
	// offsetRe matches the "+0xoffset/0xsize" of a frame.
	offsetRe = regexp.MustCompile(`\+0x[0-9a-f]+/0x[0-9a-f]+`)
)

// firstTrace returns the frames of the first trace in lines.
func firstTrace(lines []string) []frame {
	start := -1
	for i, l := range lines {
		if callTraceRe.MatchString(l) {
			start = i + 1
			break
		}
	}
	if start < 0 {
		for i, l := range lines {
			if frameRe.MatchString(l) {
				start = i
				break
			}
		}
	}
	if start < 0 {
		// No trace: a lockdep report that names only where its locks
		// were taken ("lock held when returning to user space") has
		// those places as its frames.
		var out []frame
		for _, l := range lines {
			if m := atRe.FindStringSubmatch(l); m != nil {
				f := funcRe.FindString(m[0])
				out = append(out, frame{text: f, name: baseName(m[1])})
			}
		}
		return out
	}
	var out []frame
	depth, irq := 0, false
	for _, l := range lines[start:] {
		if m := frameRe.FindStringSubmatch(l); m != nil {
			out = append(out, frame{text: m[2], name: baseName(m[3]), questionable: m[1] != "", irq: irq})
			continue
		}
		if m := markerRe.FindStringSubmatch(l); m != nil {
			switch {
			case m[2] == "EOI":
				irq = false
			case m[1] == "":
				depth++
				irq = m[2] != "TASK"
			case m[2] == "TASK":
				return out
			default:
				depth--
				irq = false
			}
			continue
		}
		if depth > 0 && !callTraceRe.MatchString(l) && !endMarkerRe.MatchString(l) {
			// A register dump inside a section.
			continue
		}
		break
	}
	return out
}

// baseName drops a compiler suffix (".isra.0", ".constprop.0", ".cold",
// ".part.0", ...) from a function name.
func baseName(fn string) string {
	name, _, _ := strings.Cut(fn, ".")
	return name
}

// syscallPrefixes are the prefixes of system call wrappers, which differ by
// architecture; the title names the system call.
var syscallPrefixes = []string{
	"__do_compat_sys_", "__do_sys_", "__x64_sys_", "__ia32_sys_", "__arm64_compat_sys_", "__arm64_sys_",
	"__se_compat_sys_", "__se_sys_", "____sys_", "___sys_", "__sys_", "ksys_", "SyS_", "sys_",
}

// titleName is the name of a function as a title has it.
func titleName(name string) string {
	for _, p := range syscallPrefixes {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" {
			return rest
		}
	}
	return name
}

// anchored compiles alternatives into one expression matching whole names.
func anchored(alts ...string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + strings.Join(alts, `|`) + `)$`)
}

// machineryRe matches the functions that print, trap or detect a report
// rather than cause it, and the primitives (locks, string and memory
// functions, reference counts) a bug is reported from but not in.
var machineryRe = anchored(
	// Stack dumps and report printing.
	`dump_stack(?:_lvl)?`, `show_stack`, `dump_backtrace`, `show_regs`, `__show_regs`, `show_trace_log_lvl`,
	`print_report`, `print_address_description`, `print_tainted`, `print_hex_dump\w*`,
	// Sanitizers.
	`_*kasan\w*`, `__asan_\w+`, `__hwasan_\w+`, `_*kmsan\w*`, `__msan_\w+`, `_*kfence\w*`, `_*kcsan\w*`, `__tsan_\w+`,
	`_*ubsan\w*`, `check_memory_region\w*`, `check_heap_object`, `__check_object_size`,
	// WARN, BUG and the traps behind them.
	`__warn`, `__warn_printk`, `warn_slowpath\w*`, `report_bug`, `handle_bug`, `fixup_bug`, `do_trap`, `do_error_trap`,
	`exc_\w+`, `asm_exc_\w+`, `die`, `__die\w*`, `die_addr`, `oops_\w+`, `page_fault_oops`, `kernelmode_fixup_or_oops`,
	`__bad_area_nosemaphore`, `bad_area_nosemaphore`, `do_user_addr_fault`, `handle_page_fault`,
	`bug_handler`, `brk_handler`, `call_break_hook`, `do_debug_exception`, `arm64_notify_die`, `do_mem_abort`,
	`do_translation_fault`, `do_page_fault`, `do_kernel_fault`, `__do_kernel_fault`, `die_kernel_fault`, `do_bad_area`,
	`el[01]\w*`, `do_el[01]_\w+`,
	// Panic.
	`panic`, `vpanic`, `nmi_panic`, `__stack_chk_fail`,
	// Sleeping and list checks.
	`__might_resched`, `__might_sleep`, `__might_fault`, `might_fault`, `__cant_sleep`, `__cant_migrate`,
	`__list_\w+_valid\w*`,
	// Lockdep.
	`_*lock_acquire\w*`, `_*lock_release`, `lock_acquired`, `lock_contended`, `lock_is_held_type`, `lockdep_\w+`,
	`print_circular_bug\w*`, `check_noncircular`, `check_prev_add`, `check_prevs_add`, `validate_chain`, `check_deadlock`,
	`print_deadlock_bug`, `print_usage_bug`, `print_bad_irq_dependency`, `check_irq_usage`, `mark_lock\w*`, `mark_usage`,
	`mark_held_locks`, `print_unlock_imbalance_bug`, `debug_check_no_locks\w*`, `debug_show_all_locks`,
	// Watchdogs and backtraces of other CPUs.
	`watchdog_\w+`, `nmi_cpu_backtrace\w*`, `nmi_trigger_cpumask_backtrace`, `arch_trigger_cpumask_backtrace`,
	`trigger_single_cpu_backtrace`, `dump_cpu_task`, `rcu_dump_cpu_stacks`, `print_cpu_stall\w*`, `check_cpu_stall`,
	// Primitives.
	`_raw_\w+`, `do_raw_\w+`, `\w*queued_spin_lock_slowpath`, `_*mutex_\w+`, `rt_mutex_\w+`,
	`down_(?:read|write)\w*`, `up_(?:read|write)`, `rwsem_\w+`, `osq_\w+`,
	`_*mem(?:cpy|set|move|cmp|chr)\w*`, `str(?:n?cpy|scpy|lcpy|n?len|n?cmp|n?chr|str|dup)`,
	`_*copy_(?:to|from)_user\w*`, `refcount_\w+`, `kref_\w+`,
)

// The extra frames some reports pass over, as syzkaller does.
var (
	// hangSkipRe: where a hung task sleeps.
	hangSkipRe = regexp.MustCompile(`sched|_lock|_slowlock|down|rwsem|completion|kthread|wait|synchronize|context_switch|__switch_to|cancel_delayed_work|rcu_barrier`)
	// stallSkipRe: the timer interrupt and RCU's own work.
	stallSkipRe = regexp.MustCompile(`rcu|apic_timer_interrupt`)
	// ubsanSkipRe: UBSAN's handlers.
	ubsanSkipRe = regexp.MustCompile(`ubsan|overflow`)
	// freeSkipRe: the allocator, for double and invalid frees.
	freeSkipRe = regexp.MustCompile(`^(?:k[vz]?free\w*|kmem_cache_free\w*|slab_free\w*|__slab_free|vfree|vunmap|free_large_kmalloc)$`)
	// refcountSkipRe: the users of refcounts that warn.
	refcountSkipRe = regexp.MustCompile(`refcount|kobject_`)
	// allocSkipRe: the allocators and kmemleak's own hook, which a leak's
	// backtrace starts with; the title names their caller.
	allocSkipRe = anchored(`kmemleak_\w+`, `_*slab_\w+`, `_*kmalloc\w*`, `_*kmem_cache_alloc\w*`, `k[vz]?[mcz]alloc\w*`,
		`kcalloc\w*`, `_*krealloc\w*`, `_*vmalloc\w*`, `kstrn?dup\w*`, `kmemdup\w*`, `_*alloc_pages\w*`,
		`pcpu_alloc\w*`, `_*alloc_percpu\w*`, `mempool_alloc\w*`, `__do_kmalloc\w*`, `kmalloc_trace\w*`)
	// irqEntryRe: the arm64 functions an interrupt enters the kernel by;
	// the interrupted code is below them.
	irqEntryRe = regexp.MustCompile(`^(?:el[01]h?_64_irq\w*|el[01]_interrupt|gic_handle_irq|call_on_irq_stack|do_interrupt_handler)$`)
)

// ripName returns the function of the first kernel RIP or pc line after the
// headline, or "".
func (p parsed) ripName() string {
	for _, l := range p.lines[p.head:] {
		if m := ripRe.FindStringSubmatch(l); m != nil {
			return baseName(m[1])
		}
	}
	return ""
}

// atNames returns the functions lockdep names with "at:", in order.
func (p parsed) atNames() []string {
	var out []string
	for _, l := range p.lines[p.head:] {
		if m := atRe.FindStringSubmatch(l); m != nil {
			out = append(out, baseName(m[1]))
		}
	}
	return out
}

// traceNames returns the names of the trace's frames worth a title: the
// reliable ones, or every one when none is reliable. For a stall, the frames
// of the interrupt that reported it are left out.
func (p parsed) traceNames(stall bool) []string {
	frames := p.frames
	if stall {
		var task []frame
		for _, f := range frames {
			if !f.irq {
				task = append(task, f)
			}
		}
		for i := len(task) - 1; i >= 0; i-- {
			if irqEntryRe.MatchString(task[i].name) {
				task = task[i+1:]
				break
			}
		}
		frames = task
	}
	var reliable, all []string
	for _, f := range frames {
		all = append(all, f.name)
		if !f.questionable {
			reliable = append(reliable, f.name)
		}
	}
	if len(reliable) > 0 {
		return reliable
	}
	return all
}

// pick returns the title name of the first candidate that is neither
// machinery nor matched by extra (which may be nil), or "".
func pick(extra *regexp.Regexp, cands ...[]string) string {
	for _, cs := range cands {
		for _, c := range cs {
			if c == "" || machineryRe.MatchString(c) || extra != nil && extra.MatchString(c) {
				continue
			}
			return titleName(c)
		}
	}
	return ""
}

// one makes a candidate list of a single name.
func one(name string) []string {
	return []string{name}
}

// in appends " in fn" to title, when there is a function.
func in(title, fn string) string {
	if fn == "" {
		return title
	}
	return title + " in " + fn
}

// Headlines taken apart for their titles.
var (
	warningHeadRe  = regexp.MustCompile(`^WARNING: CPU: \d+ PID: \d+ at (\S+)(?: ` + funcToken + `)?`)
	kasanHeadRe    = regexp.MustCompile(`^BUG: KASAN: ([\w-]+(?: or [\w-]+)?)(?: in ` + funcToken + `)?`)
	kasanAccessRe  = regexp.MustCompile(`^(Read|Write) (?:of size|at addr)`)
	kfenceHeadRe   = regexp.MustCompile(`^BUG: KFENCE: (.+?)(?: in ` + funcToken + `)?\s*$`)
	kfenceAccessRe = regexp.MustCompile(`^(use-after-free|out-of-bounds) (?:read|write)$`)
	kmsanHeadRe    = regexp.MustCompile(`^BUG: KMSAN: ([\w-]+)(?: in ` + funcToken + `)?`)
	kernelBUGRe    = regexp.MustCompile(`^[Kk]ernel BUG at (\S+)`)
	ubsanHeadRe    = regexp.MustCompile(`^UBSAN: (.+?)(?: (?:in|at) (\S+))?\s*$`)
	oopsHeadRe     = regexp.MustCompile(`^(?:Internal error: )?(?:Oops(?::| -) )?(?:Oops: )?(.*?):? ?[0-9a-f]{4,16} \[#\d+\]`)
	// taskRe matches a "comm/pid " naming the task, as lockdep and a few
	// BUGs print it.
	taskRe = regexp.MustCompile(`^\S+/\d+ `)
	// bracketRe matches a bracketed number, as in "in preemptible
	// [00000000] code".
	bracketRe = regexp.MustCompile(`\s*\[[0-9a-fx]+\]`)
)

// bugNoFunc lists the BUG titles syzkaller gives no function.
var bugNoFunc = map[string]bool{
	"Bad page state":        true,
	"Bad page map":          true,
	"Bad rss-counter state": true,
	"workqueue lockup":      true,
}

// bugSkip gives, for the BUG titles starting with prefix, the frames to
// pass over besides the machinery.
var bugSkip = []struct {
	prefix string
	skip   *regexp.Regexp
}{
	{"scheduling while atomic", regexp.MustCompile(`schedule`)},
	{"spinlock ", regexp.MustCompile(`spin_|_lock|_unlock`)},
	{"rwlock ", regexp.MustCompile(`spin_|_lock|_unlock`)},
	{"using ", regexp.MustCompile(`preempt|debug_|processor_id|this_cpu`)},
}

// lockdepAt lists the lockdep titles whose function is the first place the
// report names with "at:" (the lock being taken, released or freed).
var lockdepAt = []string{
	"possible circular locking dependency detected",
	"possible recursive locking detected",
	"possible irq lock inversion dependency detected",
	"bad unlock balance detected",
	"bad contention detected",
	"held lock freed",
	"still has locks held",
	"lock held when returning to user space",
}

// signature builds the title of the parsed report.
func (p parsed) signature() string {
	if p.pat == nil {
		for _, l := range p.lines {
			if t := strings.TrimSpace(l); t != "" && !separatorRe.MatchString(t) {
				return t
			}
		}
		return ""
	}
	head := strings.TrimSpace(p.lines[p.head])
	trace := p.traceNames(false)
	switch p.pat.Kind {
	case KindPanic:
		return panicTitle(head)
	case KindWarning:
		return p.warningTitle(head, trace)
	case KindKASAN:
		m := kasanHeadRe.FindStringSubmatch(head)
		if m == nil {
			return head
		}
		kind := m[1]
		var skip *regexp.Regexp
		if strings.Contains(kind, "double-free") || strings.Contains(kind, "invalid-free") {
			kind, skip = "invalid-free", freeSkipRe
		} else {
			for _, l := range p.lines[p.head+1:] {
				if a := kasanAccessRe.FindStringSubmatch(l); a != nil {
					kind += " " + a[1]
					break
				}
			}
		}
		return in("KASAN: "+kind, pick(skip, one(baseName(m[2])), trace))
	case KindKFENCE:
		m := kfenceHeadRe.FindStringSubmatch(head)
		if m == nil {
			return head
		}
		kind := m[1]
		if a := kfenceAccessRe.FindStringSubmatch(kind); a != nil {
			kind = a[1]
		}
		return in("KFENCE: "+kind, pick(nil, one(baseName(m[2])), trace))
	case KindKCSAN:
		return "KCSAN: " + offsetRe.ReplaceAllString(strings.TrimPrefix(head, "BUG: KCSAN: "), "")
	case KindKMSAN:
		m := kmsanHeadRe.FindStringSubmatch(head)
		if m == nil {
			return head
		}
		return in("KMSAN: "+m[1], pick(nil, one(baseName(m[2])), trace))
	case KindLockdepLimit:
		return head
	case KindNullDeref:
		return in("BUG: kernel NULL pointer dereference", pick(nil, one(p.ripName()), trace))
	case KindPageFault:
		return in("BUG: unable to handle kernel paging request", pick(nil, one(p.ripName()), trace))
	case KindBug:
		return p.bugTitle(head, trace)
	case KindKernelBUG:
		target := strings.TrimSuffix(kernelBUGRe.FindStringSubmatch(head)[1], "!")
		var fromHead string
		if m := funcRe.FindStringSubmatch(target); m != nil {
			fromHead, target = baseName(m[1]), ""
		}
		if fn := pick(nil, one(fromHead), one(p.ripName()), trace); fn != "" || target == "" {
			return in("kernel BUG", fn)
		}
		return in("kernel BUG", fileName(target))
	case KindLockdep:
		return p.lockdepTitle(head, trace)
	case KindGPF:
		return in("general protection fault", pick(nil, one(p.ripName()), trace))
	case KindOops:
		return in(oopsTitle(head), pick(nil, one(p.ripName()), trace))
	case KindUBSAN:
		m := ubsanHeadRe.FindStringSubmatch(head)
		if m == nil {
			return head
		}
		kind := ubsanKind(m[1])
		var fromHead, file string
		if f := funcRe.FindStringSubmatch(m[2]); f != nil {
			fromHead = baseName(f[1])
		} else if m[2] != "" {
			file = fileName(m[2])
		}
		if fn := pick(ubsanSkipRe, one(fromHead), trace); fn != "" {
			return in("UBSAN: "+kind, fn)
		}
		return in("UBSAN: "+kind, file)
	case KindSoftLockup:
		return in("BUG: soft lockup", pick(nil, one(p.ripName()), p.traceNames(true)))
	case KindHardLockup:
		return in("BUG: hard lockup", pick(nil, one(p.ripName()), p.traceNames(true)))
	case KindRCUStall:
		return in("INFO: rcu detected stall", pick(stallSkipRe, one(p.ripName()), p.traceNames(true)))
	case KindHungTask:
		return in("INFO: task hung", pick(hangSkipRe, trace))
	case KindKmemleak:
		return in("memory leak", pick(allocSkipRe, trace))
	case KindOOM:
		if m := oomHeadRe.FindStringSubmatch(head); m != nil {
			return fmt.Sprintf("out of memory: %s invoked the OOM killer (%s, order %s)", m[1], m[2], m[3])
		}
	}
	return head
}

// oomHeadRe is the OOM killer's headline: the task that asked, its
// allocation's flags and order.
var oomHeadRe = regexp.MustCompile(`^(.+) invoked oom-killer: gfp_mask=0x[0-9a-f]+\(([^)]*)\), order=(\d+)`)

// panicTitle is "kernel panic: " and the panic's message, without what
// varies from one panic to the next.
func panicTitle(head string) string {
	msg := strings.TrimSpace(strings.TrimPrefix(head, "Kernel panic - not syncing:"))
	msg = strings.TrimPrefix(msg, "kernel: ")
	msg = strings.TrimSpace(strings.TrimSuffix(msg, "..."))
	if i := strings.Index(msg, "Attempted to kill init!"); i >= 0 {
		// The exit code follows.
		msg = msg[i : i+len("Attempted to kill init!")]
	}
	msg = offsetRe.ReplaceAllString(msg, "")
	if msg == "" {
		return "kernel panic"
	}
	return "kernel panic: " + msg
}

// warningTitle is "WARNING in f", f from the WARNING line, the RIP or pc
// line or the trace; "WARNING: refcount bug in f" and "WARNING: locking
// bug in f" for the warnings of lib/refcount.c and lockdep.
func (p parsed) warningTitle(head string, trace []string) string {
	m := warningHeadRe.FindStringSubmatch(head)
	if m == nil {
		return head
	}
	where, fromHead := m[1], baseName(m[2])
	if f := funcRe.FindStringSubmatch(where); f != nil {
		// "WARNING: CPU: 0 PID: 1 at f+0x1/0x2", without the file.
		where, fromHead = "", baseName(f[1])
	}
	file, _, _ := strings.Cut(where, ":")
	title, skip := "WARNING", (*regexp.Regexp)(nil)
	switch {
	case strings.HasSuffix(file, "lib/refcount.c"):
		title, skip = "WARNING: refcount bug", refcountSkipRe
	case strings.HasSuffix(file, "kernel/locking/lockdep.c"):
		title = "WARNING: locking bug"
	}
	if fn := pick(skip, one(fromHead), one(p.ripName()), trace); fn != "" || file == "" {
		return in(title, fn)
	}
	return in(title, path.Base(file))
}

// bugTitle is the title of a "BUG: ..." line of no more specific kind: its
// words up to what varies (a colon, "at", a comma, " - ", "on CPU", "in
// process"), and the function of the trace.
func (p parsed) bugTitle(head string, trace []string) string {
	rest := taskRe.ReplaceAllString(strings.TrimPrefix(head, "BUG: "), "")
	rest = bracketRe.ReplaceAllString(rest, "")
	for _, sep := range []string{": ", " at ", ", ", " - ", " on CPU", " in process ", " for address"} {
		if i := strings.Index(rest, sep); i >= 0 {
			rest = rest[:i]
		}
	}
	rest = strings.TrimRight(rest, "!. ")
	if bugNoFunc[rest] {
		return "BUG: " + rest
	}
	var skip *regexp.Regexp
	for _, b := range bugSkip {
		if strings.HasPrefix(rest, b.prefix) {
			skip = b.skip
		}
	}
	fn := pick(skip, one(p.ripName()), trace)
	if rest == "still has locks held" {
		fn = pick(nil, p.atNames(), trace)
	}
	return in("BUG: "+rest, fn)
}

// lockdepTitle is lockdep's headline without "WARNING: ", the task and the
// final "!", and the function: the place the report names for a deadlock,
// else the first of the trace.
func (p parsed) lockdepTitle(head string, trace []string) string {
	what := taskRe.ReplaceAllString(strings.TrimPrefix(head, "WARNING: "), "")
	what = strings.TrimRight(what, "! ")
	for _, a := range lockdepAt {
		if what == a {
			return in(what, pick(nil, p.atNames(), trace))
		}
	}
	return in(what, pick(nil, trace))
}

// oopsTitle names an oops header: "Oops", "invalid opcode", "divide
// error", "kernel BUG" (arm64 "Oops - BUG"), ...
func oopsTitle(head string) string {
	m := oopsHeadRe.FindStringSubmatch(head)
	if m == nil {
		return "Oops"
	}
	what := strings.TrimSpace(m[1])
	switch {
	case what == "" || what == "Oops":
		return "Oops"
	case what == "BUG":
		return "kernel BUG"
	case strings.HasPrefix(what, "UBSAN: "):
		// A UBSAN trap: "UBSAN: array index out of bounds".
		return "UBSAN: " + ubsanKind(strings.TrimPrefix(what, "UBSAN: "))
	default:
		return what
	}
}

// ubsanKind writes a UBSAN check the way its reports do:
// "array-index-out-of-bounds".
func ubsanKind(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", "-"))
}

// fileName is the base name of the file in "path/file.c:line:col".
func fileName(s string) string {
	file, _, _ := strings.Cut(s, ":")
	return path.Base(file)
}
