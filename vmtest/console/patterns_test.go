package console

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// patternCases lists, for each kind, headlines that must open a report of
// that kind and nearby lines that must not. The positive lines follow the
// printk formats of Linux 6.12 (and a few older spellings still seen).
var patternCases = []struct {
	kind Kind
	pos  []string
	neg  []string
}{
	{
		kind: KindPanic,
		pos: []string{
			"Kernel panic - not syncing: Fatal exception",
			"[    1.512001] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
			"[   12.000000] Kernel panic - not syncing: softlockup: hung tasks\r",
			"Kernel panic - not syncing: kernel: panic_on_warn set ...",
		},
		neg: []string{
			"---[ end Kernel panic - not syncing: Fatal exception ]---",
			"panic: runtime error: invalid memory address or nil pointer dereference",
			"[    0.100000] test: simulated Kernel panic - not syncing: in the middle",
			"kernel panic - not syncing",
		},
	},
	{
		kind: KindKASAN,
		pos: []string{
			"BUG: KASAN: slab-use-after-free in landlock_put_ruleset+0x3a/0x90",
			"[    1.933453] BUG: KASAN: slab-out-of-bounds in kmalloc_oob_right+0x1a8/0x3c0",
			"BUG: KASAN: double-free in kfree+0x118/0x3a0",
			"BUG: KASAN: invalid-access",
		},
		neg: []string{
			"KASAN: null-ptr-deref in range [0x0000000000000000-0x0000000000000007]",
			"[    0.000000] kasan: KernelAddressSanitizer initialized",
		},
	},
	{
		kind: KindKFENCE,
		pos:  []string{"BUG: KFENCE: use-after-free read in test_use_after_free_read+0xdc/0x2a0"},
		neg:  []string{"[    0.210000] kfence: initialized - using 2097152 bytes for 255 objects"},
	},
	{
		kind: KindKCSAN,
		pos:  []string{"BUG: KCSAN: data-race in landlock_add_rule / landlock_add_rule"},
	},
	{
		kind: KindKMSAN,
		pos:  []string{"BUG: KMSAN: uninit-value in landlock_init_layer_masks+0x92/0x330"},
	},
	{
		kind: KindLockdepLimit,
		pos: []string{
			"BUG: MAX_LOCKDEP_ENTRIES too low!",
			"[    9.000000] BUG: MAX_STACK_TRACE_ENTRIES too low!",
		},
	},
	{
		kind: KindNullDeref,
		pos: []string{
			"BUG: kernel NULL pointer dereference, address: 0000000000000010",
			"[    1.733512] BUG: kernel NULL pointer dereference, address: 0000000000000000\r",
			"BUG: unable to handle kernel NULL pointer dereference at 0000000000000008",
			"[    1.733512] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010",
		},
		neg: []string{"Unable to handle kernel NULL pointer dereference"},
	},
	{
		kind: KindPageFault,
		pos: []string{
			"BUG: unable to handle page fault for address: ffffffffff600000",
			"BUG: unable to handle kernel paging request at ffffc90000000000",
			"Unable to handle kernel paging request at virtual address ffff800080000000",
			"Unable to handle kernel access to user memory outside uaccess routines at virtual address 0000aaaad8a1e000",
			"Unable to handle kernel execute from non-executable memory at virtual address ffff0000c1a2b000",
		},
		neg: []string{"[    1.000000] test: Unable to handle kernel paging request at virtual address 0"},
	},
	{
		kind: KindBug,
		pos: []string{
			"BUG: scheduling while atomic: landlock.test/231/0x00000002",
			"BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
			"BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!",
			"BUG: Bad page state in process landlock.test  pfn:0512a",
			"[  100.000000][    T1] BUG: spinlock bad magic on CPU#0, swapper/0/1",
			"<3>[    5.000000] BUG: using smp_processor_id() in preemptible [00000000] code: init/1",
		},
		neg: []string{
			"BUG_ON(!ruleset);",
			"[    1.000000] BUG_ON(!ruleset) in some text",
			"[    1.000000] lkdtm: Performing direct entry BUG",
			"    ruleset_test.go:71: BUG: expected EACCES, got <nil>",
			"BUG:",
			"BUG:no space",
			"DEBUG: value is 3",
		},
	},
	{
		kind: KindKernelBUG,
		pos: []string{
			"kernel BUG at security/landlock/ruleset.c:200!",
			"[    2.000000] kernel BUG at mm/slub.c:435!",
			"Kernel BUG at landlock_merge_ruleset+0x4e/0x3a0 [verbose debug info unavailable]",
		},
		neg: []string{"[    2.000000] lkdtm: kernel BUG test"},
	},
	{
		kind: KindWarning,
		pos: []string{
			"WARNING: CPU: 1 PID: 231 at security/landlock/ruleset.c:212 insert_rule+0x2d1/0x310",
			"[    1.402341] WARNING: CPU: 0 PID: 1 at kernel/fork.c:1080 copy_process+0x1c2/0x2100\r",
			"WARNING: CPU: 3 PID: 0 at fs/dcache.c:1660 umount_check+0x6e/0x80",
			"WARNING: CPU: 0 PID: 12 at landlock_insert_rule+0x5b/0x90",
		},
		neg: []string{
			"WARNING: CPU count mismatch, expected 4",
			"WARNING: no config file found",
			"[    0.012000] RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable to RETBleed attacks, data leaks possible!",
			"[    0.012000] WARNING: kernel not compiled with MITIGATION_UNRET_ENTRY.",
			"WARNING: CPU: 1 PID: x at foo",
			"go: warning: WARNING: CPU: 1 PID: 2 at x",
		},
	},
	{
		kind: KindLockdep,
		pos: []string{
			"WARNING: possible circular locking dependency detected",
			"[    3.000000] WARNING: possible recursive locking detected",
			"WARNING: inconsistent lock state",
			"WARNING: suspicious RCU usage",
			"WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
			"WARNING: bad unlock balance detected!",
			"WARNING: landlock.test/231 still has locks held!",
		},
		neg: []string{"WARNING: possible problem with your configuration"},
	},
	{
		kind: KindGPF,
		pos: []string{
			"Oops: general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI",
			"general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] SMP KASAN PTI",
			"[   10.000000] general protection fault: 0000 [#1] SMP",
			"Oops: segment-related general protection fault: 0010 [#2] PREEMPT SMP NOPTI",
		},
		neg: []string{
			"[   10.000000] traps: landlock.test[231] general protection fault ip:4f2b31 sp:c00011fb20 error:0 in landlock.test[401000+1f2000]",
			"general protection fault",
		},
	},
	{
		kind: KindOops,
		pos: []string{
			"Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI",
			"[    1.734000] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
			"Oops: 0002 [#1] SMP PTI",
			"invalid opcode: 0000 [#1] SMP",
			"Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP",
			"Internal error: Oops - BUG: 00000000f2000800 [#1] PREEMPT SMP",
		},
		neg: []string{
			"Oops: 0000 [#1] is how oopses begin, said nobody",
			"Oops, something went wrong",
			"Oops: the test server is unreachable",
			"Oops - try again",
		},
	},
	{
		kind: KindUBSAN,
		pos: []string{
			"UBSAN: array-index-out-of-bounds in security/landlock/ruleset.c:633:25",
			"[    1.377300] UBSAN: shift-out-of-bounds in lib/test_ubsan.c:46:11",
			"UBSAN: array index out of bounds at landlock_unmask_layers+0xd6/0xe0",
		},
		neg: []string{
			"ruleset.c:633:25: runtime error: index 16 out of bounds for type 'layer_mask_t [16]'",
			"[    0.100000] ubsan: enabled",
		},
	},
	{
		kind: KindSoftLockup,
		pos: []string{
			"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [landlock.test:245]",
			"[   28.061905] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [kworker/1:1:34]\r",
			"NMI watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [swapper/0:1]",
		},
		neg: []string{
			"[    0.300000] watchdog: Delayed init of the lockup detector failed: -19",
			"[    0.300000] NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
		},
	},
	{
		kind: KindHardLockup,
		pos: []string{
			"watchdog: Watchdog detected hard LOCKUP on cpu 1",
			"[   40.000000] NMI watchdog: Watchdog detected hard LOCKUP on cpu 0",
		},
		neg: []string{"[    0.300000] watchdog: Hard watchdog permanently disabled"},
	},
	{
		kind: KindRCUStall,
		pos: []string{
			"rcu: INFO: rcu_sched self-detected stall on CPU",
			"[   22.431006] rcu: INFO: rcu_preempt self-detected stall on CPU",
			"rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
			"rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 0-... } 21002 jiffies s: 245 root: 0x1/.",
			"INFO: rcu_sched detected stalls on CPUs/tasks:",
			"INFO: rcu_tasks detected stalls on tasks:",
		},
		neg: []string{
			"[    0.050000] rcu: Preemptible hierarchical RCU implementation.",
			"[    0.050000] rcu: \tRCU event tracing is enabled.",
			"rcu: \t(detected by 1, t=21002 jiffies, g=2605, q=121 ncpus=2)",
		},
	},
	{
		kind: KindHungTask,
		pos: []string{
			"INFO: task landlock.test:252 blocked for more than 122 seconds.",
			"[  246.104587] INFO: task kworker/0:1:12 blocked for more than 143 seconds.",
			"INFO: task my task:7 blocked for more than 30 seconds.",
		},
		neg: []string{
			"INFO: task test finished",
			"INFO: task landlock.test:252 blocked for a while",
			"      Not tainted 6.12.0 #1",
		},
	},
	{
		kind: KindInitramfs,
		pos: []string{
			// A 173 MiB archive in a 512 MiB guest (cilium/ebpf's
			// test binaries and a BTF kernel).
			"[    2.939582] Initramfs unpacking failed: write error",
			"Initramfs unpacking failed: junk within compressed archive",
		},
		neg: []string{
			"[    0.917643] Unpacking initramfs...",
			"[    0.925000] Freeing initrd memory: 169320K",
		},
	},
	{
		kind: KindOOM,
		pos: []string{
			"04-fsmap.test invoked oom-killer: gfp_mask=0x40cc0(GFP_KERNEL|__GFP_COMP), order=0, oom_score_adj=0",
			"[  572.975385] kworker/u4:1 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
		},
		neg: []string{
			"[  572.992710] Out of memory: Killed process 27 (uinit) total-vm:1228688kB, anon-rss:4948kB",
			"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=uinit,pid=27,uid=0",
		},
	},
	{
		kind: KindKmemleak,
		pos: []string{
			"unreferenced object 0xffff888004a1c2c0 (size 32):",
			"unreferenced object 0xffff000003d1e000 (size 4096):",
		},
		neg: []string{
			"[   60.100000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
			"[    0.010000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15692)",
			"  backtrace (crc 5e1c3a10):",
		},
	},
}

// ordinaryLines must not match any pattern: user space test output and
// ordinary kernel messages.
var ordinaryLines = []string{
	"",
	"\r",
	"[    1.000000] ",
	"=== RUN   TestRestrictSelf",
	"=== PAUSE TestRestrictSelf",
	"=== CONT  TestRestrictSelf",
	"--- FAIL: TestRestrictSelf (0.02s)",
	"--- PASS: TestABIVersion (0.00s)",
	"FAIL",
	"panic: runtime error: invalid memory address or nil pointer dereference [recovered]",
	"\tpanic: runtime error: index out of range [3] with length 3",
	"panic: test timed out after 10m0s",
	"fatal error: all goroutines are asleep - deadlock!",
	"goroutine 18 [running]:",
	"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4f2b31]",
	"------------[ cut here ]------------",
	"==================================================================",
	"---[ end trace 0000000000000000 ]---",
	"[    1.600000] landlock.test[231]: segfault at 0 ip 00000000004f2b31 sp 000000c00011fb20 error 4 in landlock.test[4f2b31,401000+1f2000] likely on CPU 0 (core 0, socket 0)",
	"[    0.000000] Linux version 6.12.0 (vmtest@builder) #1 SMP PREEMPT_DYNAMIC",
	"[    0.912345] x86/mm: Checked W+X mappings: passed, no W+X pages found.",
	"[    0.700000] Run /init as init process",
}

func TestPatternTable(t *testing.T) {
	seen := map[Kind]bool{}
	for _, tc := range patternCases {
		seen[tc.kind] = true
		t.Run(string(tc.kind), func(t *testing.T) {
			for _, l := range tc.pos {
				p, ok := Match(l)
				if assert.Truef(t, ok, "no pattern matches %q", l) {
					assert.Equalf(t, tc.kind, p.Kind, "kind of %q", l)
				}
			}
			for _, l := range tc.neg {
				p, ok := Match(l)
				assert.Falsef(t, ok && p.Kind == tc.kind, "%q must not match %s", l, tc.kind)
			}
		})
	}
	for _, p := range Patterns() {
		assert.Truef(t, seen[p.Kind], "pattern %s has no test cases", p.Kind)
	}
}

func TestOrdinaryLinesDoNotMatch(t *testing.T) {
	for _, l := range ordinaryLines {
		p, ok := Match(l)
		assert.Falsef(t, ok, "%q matched %s", l, p.Kind)
	}
}

func TestPatternFlags(t *testing.T) {
	kinds := map[Kind]Pattern{}
	for _, p := range Patterns() {
		require.NotContainsf(t, kinds, p.Kind, "kind %s appears twice", p.Kind)
		kinds[p.Kind] = p
		assert.Equalf(t, byte('^'), p.Re.String()[0], "pattern %s is not anchored", p.Kind)
	}
	for k, p := range kinds {
		assert.Equalf(t, k == KindPanic, p.Fatal, "Fatal of %s", k)
		assert.Equalf(t, k != KindLockdepLimit && k != KindOOM, p.Fails, "Fails of %s", k)
	}
	assert.True(t, kinds[KindKASAN].Delimited)
	assert.True(t, kinds[KindOops].Inner)
	assert.True(t, kinds[KindGPF].Inner)
	assert.False(t, kinds[KindWarning].Inner)
}

func TestPatternsReturnsACopy(t *testing.T) {
	ps := Patterns()
	ps[0].Kind = "changed"
	assert.Equal(t, KindPanic, Patterns()[0].Kind)
}

func TestSplitLine(t *testing.T) {
	for _, tc := range []struct {
		in, body string
		stamped  bool
	}{
		{"[    1.234567] BUG: x\r\n", "BUG: x", true},
		{"[ 1234.000001]  </TASK>\r", " </TASK>", true},
		{"[    1.234567][    T1] WARNING: x", "WARNING: x", true},
		{"<4>[    1.234567] hello", "hello", true},
		{"[    1.234567] ", "", true},
		{"[    1.234567]", "", true},
		{"\rplain line\r", "plain line", false},
		{"[not a stamp] x", "[not a stamp] x", false},
	} {
		l := splitLine(tc.in)
		assert.Equalf(t, tc.body, l.body, "body of %q", tc.in)
		assert.Equalf(t, tc.stamped, l.stamped, "stamped of %q", tc.in)
	}
}
