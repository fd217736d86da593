package console

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Architectures of the signature cases.
const (
	x86   = "x86_64"
	arm64 = "arm64"
)

// signatureCase is a report as the console prints it (without timestamps)
// and the signature it must get.
type signatureCase struct {
	name string
	kind Kind
	arch string
	text []string
	want string
}

// signatureCases holds, for each kind of the pattern table, reports in the
// x86_64 and the arm64 formats of Linux 6.12 (see x86Only for the kinds
// arm64 does not print).
var signatureCases = []signatureCase{
	{
		name: "panic", kind: KindPanic, arch: x86,
		text: []string{
			"Kernel panic - not syncing: dumptest",
			"CPU: 0 UID: 0 PID: 26 Comm: 00-panic.test Not tainted 6.12.117 #1 ",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" panic+0xf3/0x282",
			" lkdtm_PANIC+0xc/0xc",
			" </TASK>",
			"Kernel Offset: disabled",
		},
		want: "kernel panic: dumptest",
	},
	{
		name: "panic_on_warn", kind: KindPanic, arch: x86,
		text: []string{"Kernel panic - not syncing: kernel: panic_on_warn set ..."},
		want: "kernel panic: panic_on_warn set",
	},
	{
		name: "stack protector", kind: KindPanic, arch: x86,
		text: []string{"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: landlock_add_rule+0x1a5/0x1b0"},
		want: "kernel panic: stack-protector: Kernel stack is corrupted in: landlock_add_rule",
	},
	{
		name: "kill init", kind: KindPanic, arch: arm64,
		text: []string{
			"Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b",
			"CPU: 1 UID: 0 PID: 1 Comm: init Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" dump_stack_lvl+0x8c/0xd0",
			" panic+0x374/0x3d8",
			" do_exit+0x8e0/0x8f0",
			" do_group_exit+0x3c/0xa8",
			"Kernel Offset: disabled",
			"---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b ]---",
		},
		want: "kernel panic: Attempted to kill init!",
	},
	{
		name: "use-after-free", kind: KindKASAN, arch: x86,
		text: []string{
			"==================================================================",
			"BUG: KASAN: slab-use-after-free in run_level+0x44/0x70",
			"Read of size 8 at addr ffff88800512a5c0 by task landlock.test/231",
			"",
			"CPU: 1 UID: 0 PID: 231 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" print_report+0xce/0x660",
			" kasan_report+0xd8/0x110",
			" run_level+0x44/0x70",
			" landlock_bpf_run+0x90/0x130",
			" </TASK>",
			"==================================================================",
		},
		want: "KASAN: slab-use-after-free Read in run_level",
	},
	{
		name: "out-of-bounds in memcpy", kind: KindKASAN, arch: x86,
		text: []string{
			"BUG: KASAN: slab-out-of-bounds in __asan_memcpy+0x23/0x60",
			"Write of size 16 at addr ffff888004b71e60 by task landlock.test/231",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" print_report+0xce/0x660",
			" kasan_report+0xd8/0x110",
			" kasan_check_range+0x101/0x1b0",
			" __asan_memcpy+0x23/0x60",
			" landlock_copy_layers.isra.0+0x4c/0x90",
			" landlock_merge_ruleset+0x1e2/0x3a0",
			" </TASK>",
		},
		want: "KASAN: slab-out-of-bounds Write in landlock_copy_layers",
	},
	{
		name: "double free", kind: KindKASAN, arch: x86,
		text: []string{
			"BUG: KASAN: double-free in kfree+0x118/0x3a0",
			"Free of addr ffff88800512a5c0 by task landlock.test/231",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" print_report+0xce/0x660",
			" kasan_report_invalid_free+0xbd/0xf0",
			" __kasan_slab_free+0x38/0x50",
			" kfree+0x118/0x3a0",
			" free_ruleset+0x7a/0xa0",
			" </TASK>",
		},
		want: "KASAN: invalid-free in free_ruleset",
	},
	{
		name: "use-after-free", kind: KindKASAN, arch: arm64,
		text: []string{
			"==================================================================",
			"BUG: KASAN: slab-use-after-free in run_level+0x44/0x70",
			"Read of size 8 at addr ffff0000c1234560 by task landlock.test/231",
			"",
			"CPU: 0 UID: 0 PID: 231 Comm: landlock.test Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" dump_stack_lvl+0x8c/0xd0",
			" print_report+0x118/0x5d0",
			" kasan_report+0xdc/0x128",
			" __asan_report_load8_noabort+0x20/0x30",
			" run_level+0x44/0x70",
			" landlock_bpf_run+0x90/0x130",
			"",
			"Allocated by task 231:",
			" kasan_save_stack+0x3c/0x68",
			" landlock_create_ruleset+0x5d/0xd0",
			"==================================================================",
		},
		want: "KASAN: slab-use-after-free Read in run_level",
	},
	{
		name: "hardware tags", kind: KindKASAN, arch: arm64,
		text: []string{
			"BUG: KASAN: invalid-access in landlock_find_rule+0x30/0x90",
			"Read at addr f2ff0000c1234560 by task landlock.test/231",
			"Pointer tag: [f2], memory tag: [fe]",
		},
		want: "KASAN: invalid-access Read in landlock_find_rule",
	},
	{
		name: "use-after-free", kind: KindKFENCE, arch: x86,
		text: []string{
			"==================================================================",
			"BUG: KFENCE: use-after-free read in test_use_after_free_read+0xdc/0x2a0",
			"",
			"Use-after-free read at 0x000000009d3b9f9e (in kfence-#79):",
			" test_use_after_free_read+0xdc/0x2a0",
			" kunit_try_run_case+0x8e/0x190",
			"==================================================================",
		},
		want: "KFENCE: use-after-free in test_use_after_free_read",
	},
	{
		name: "out-of-bounds", kind: KindKFENCE, arch: arm64,
		text: []string{
			"BUG: KFENCE: out-of-bounds write in landlock_append+0x1c/0x40",
			"",
			"Out-of-bounds write at 0x000000009d3b9f9e (1B right of kfence-#3):",
			" landlock_append+0x1c/0x40",
			" landlock_add_rule+0x98/0x120",
		},
		want: "KFENCE: out-of-bounds in landlock_append",
	},
	{
		name: "data race", kind: KindKCSAN, arch: x86,
		text: []string{
			"==================================================================",
			"BUG: KCSAN: data-race in landlock_add_rule / landlock_add_rule",
			"",
			"write to 0xffff888004c3d448 of 8 bytes by task 232 on cpu 1:",
			" landlock_add_rule+0x98/0x120",
		},
		want: "KCSAN: data-race in landlock_add_rule / landlock_add_rule",
	},
	{
		name: "data race", kind: KindKCSAN, arch: arm64,
		text: []string{
			"BUG: KCSAN: data-race in hook_file_open / landlock_restrict_self",
			"",
			"read to 0xffff0000c1a3c600 of 4 bytes by task 233 on cpu 0:",
			" hook_file_open+0x44/0x120",
		},
		want: "KCSAN: data-race in hook_file_open / landlock_restrict_self",
	},
	{
		name: "uninit value", kind: KindKMSAN, arch: x86,
		text: []string{
			"=====================================================",
			"BUG: KMSAN: uninit-value in landlock_init_layer_masks+0x92/0x330",
			" landlock_init_layer_masks+0x92/0x330",
			" current_check_access_path+0xb2/0x120",
		},
		want: "KMSAN: uninit-value in landlock_init_layer_masks",
	},
	{
		name: "lockdep out of entries", kind: KindLockdepLimit, arch: x86,
		text: []string{
			"BUG: MAX_LOCKDEP_ENTRIES too low!",
			"turning off the locking correctness validator.",
			"CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.0 #1 ",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" add_lock_to_list+0x13e/0x150",
			" </TASK>",
		},
		want: "BUG: MAX_LOCKDEP_ENTRIES too low!",
	},
	{
		name: "lockdep out of entries", kind: KindLockdepLimit, arch: arm64,
		text: []string{
			"BUG: MAX_STACK_TRACE_ENTRIES too low!",
			"turning off the locking correctness validator.",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" save_trace+0x2a0/0x2e8",
		},
		want: "BUG: MAX_STACK_TRACE_ENTRIES too low!",
	},
	{
		name: "null pointer", kind: KindNullDeref, arch: x86,
		text: []string{
			"BUG: kernel NULL pointer dereference, address: 0000000000000010",
			"#PF: supervisor read access in kernel mode",
			"Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI",
			"CPU: 0 UID: 0 PID: 238 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"RIP: 0010:landlock_merge_ruleset+0x4e/0x3a0",
			"Code: 48 8b 47 10 <48> 8b 00",
			"RSP: 0018:ffffc90000447e08 EFLAGS: 00010206",
			"Call Trace:",
			" <TASK>",
			" ? __die+0x23/0x70",
			" ? page_fault_oops+0x173/0x4e0",
			" ? exc_page_fault+0x7e/0x190",
			" ? asm_exc_page_fault+0x26/0x30",
			" ? landlock_merge_ruleset+0x4e/0x3a0",
			" landlock_restrict_self+0x1b6/0x2a0",
			" __x64_sys_landlock_restrict_self+0x13/0x20",
			" </TASK>",
			"---[ end trace 0000000000000000 ]---",
		},
		want: "BUG: kernel NULL pointer dereference in landlock_merge_ruleset",
	},
	{
		name: "null pointer", kind: KindNullDeref, arch: arm64,
		text: []string{
			"Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010",
			"Mem abort info:",
			"  ESR = 0x0000000096000005",
			"  EC = 0x25: DABT (current EL), IL = 32 bits",
			"Data abort info:",
			"  ISV = 0, ISS = 0x00000005, ISS2 = 0x00000000",
			"user pgtable: 4k pages, 48-bit VAs, pgdp=0000000041d5e000",
			"[0000000000000010] pgd=0800000041d4f003, p4d=0800000041d4f003, pud=0000000000000000",
			"Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP",
			"Modules linked in:",
			"CPU: 0 UID: 0 PID: 238 Comm: landlock.test Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"pstate: 60400005 (nZCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)",
			"pc : landlock_merge_ruleset+0x4e/0x3a0",
			"lr : landlock_restrict_self+0x1b6/0x2a0",
			"sp : ffff80008262bd50",
			"x29: ffff80008262bd50 x28: ffff0000c1a3c600 x27: 0000000000000000",
			"Call trace:",
			" landlock_merge_ruleset+0x4e/0x3a0 (P)",
			" landlock_restrict_self+0x1b6/0x2a0",
			" __arm64_sys_landlock_restrict_self+0x1c/0x30",
			" invoke_syscall+0x48/0x110",
			" el0_svc_common.constprop.0+0x40/0xe0",
			" do_el0_svc+0x1c/0x28",
			" el0_svc+0x30/0xd0",
			" el0t_64_sync_handler+0x120/0x130",
			" el0t_64_sync+0x190/0x198",
			"Code: f9400a60 b4000160 f9400800 (f9400801)",
			"---[ end trace 0000000000000000 ]---",
		},
		want: "BUG: kernel NULL pointer dereference in landlock_merge_ruleset",
	},
	{
		name: "page fault", kind: KindPageFault, arch: x86,
		text: []string{
			"BUG: unable to handle page fault for address: ffffffffff600000",
			"#PF: supervisor read access in kernel mode",
			"Oops: Oops: 0000 [#1] PREEMPT SMP NOPTI",
			"RIP: 0010:landlock_get_fs_access_mask+0x14/0x30",
			"Call Trace:",
			" <TASK>",
			" ? __die+0x23/0x70",
			" ? landlock_get_fs_access_mask+0x14/0x30",
			" current_check_access_path+0x3f/0x120",
			" </TASK>",
		},
		want: "BUG: unable to handle kernel paging request in landlock_get_fs_access_mask",
	},
	{
		name: "paging request", kind: KindPageFault, arch: arm64,
		text: []string{
			"Unable to handle kernel paging request at virtual address ffff800080000000",
			"Mem abort info:",
			"  ESR = 0x0000000096000007",
			"Internal error: Oops: 0000000096000007 [#1] PREEMPT SMP",
			"pc : landlock_get_fs_access_mask+0x14/0x30",
			"lr : current_check_access_path+0x3f/0x120",
			"Call trace:",
			" landlock_get_fs_access_mask+0x14/0x30 (P)",
			" current_check_access_path+0x3f/0x120",
		},
		want: "BUG: unable to handle kernel paging request in landlock_get_fs_access_mask",
	},
	{
		name: "scheduling while atomic", kind: KindBug, arch: x86,
		text: []string{
			"BUG: scheduling while atomic: landlock.test/231/0x00000002",
			"Modules linked in:",
			"CPU: 0 UID: 0 PID: 231 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" __schedule_bug+0x5a/0x70",
			" __schedule+0x7e5/0xb30",
			" schedule+0x27/0xf0",
			" schedule_timeout+0x9d/0x100",
			" landlock_wait_rule+0x2b/0x50",
			" </TASK>",
		},
		want: "BUG: scheduling while atomic in landlock_wait_rule",
	},
	{
		name: "smp_processor_id", kind: KindBug, arch: x86,
		text: []string{
			"BUG: using smp_processor_id() in preemptible [00000000] code: landlock.test/231",
			"caller is landlock_log_denial+0x12/0x40",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" check_preemption_disabled+0xd6/0xe0",
			" debug_smp_processor_id+0x17/0x20",
			" landlock_log_denial+0x12/0x40",
			" </TASK>",
		},
		want: "BUG: using smp_processor_id() in preemptible code in landlock_log_denial",
	},
	{
		name: "workqueue lockup", kind: KindBug, arch: x86,
		text: []string{
			"BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!",
			"Showing busy workqueues and worker pools:",
		},
		want: "BUG: workqueue lockup",
	},
	{
		name: "sleeping function", kind: KindBug, arch: arm64,
		text: []string{
			"BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
			"in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 231, name: landlock.test",
			"preempt_count: 1, expected: 0",
			"CPU: 1 UID: 0 PID: 231 Comm: landlock.test Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" dump_stack_lvl+0x8c/0xd0",
			" dump_stack+0x18/0x28",
			" __might_resched+0x15c/0x220",
			" __might_sleep+0x4c/0x80",
			" __mutex_lock+0x5c/0x8b8",
			" mutex_lock_nested+0x2c/0x40",
			" landlock_restrict_self+0x8e/0x2a0",
			" __arm64_sys_landlock_restrict_self+0x1c/0x30",
		},
		want: "BUG: sleeping function called from invalid context in landlock_restrict_self",
	},
	{
		name: "BUG_ON", kind: KindKernelBUG, arch: x86,
		text: []string{
			"------------[ cut here ]------------",
			"kernel BUG at security/landlock/ruleset.c:200!",
			"Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
			"CPU: 0 UID: 0 PID: 238 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"RIP: 0010:landlock_merge_ruleset.cold+0x4e/0x3a0",
			"Call Trace:",
			" <TASK>",
			" ? die+0x36/0x90",
			" ? do_trap+0xdd/0x100",
			" ? do_error_trap+0x6a/0x90",
			" ? exc_invalid_op+0x50/0x70",
			" ? asm_exc_invalid_op+0x1a/0x20",
			" ? landlock_merge_ruleset.cold+0x4e/0x3a0",
			" landlock_restrict_self+0x1b6/0x2a0",
			" </TASK>",
			"---[ end trace 0000000000000000 ]---",
		},
		want: "kernel BUG in landlock_merge_ruleset",
	},
	{
		name: "BUG_ON without registers", kind: KindKernelBUG, arch: x86,
		text: []string{"kernel BUG at security/landlock/ruleset.c:200!"},
		want: "kernel BUG in ruleset.c",
	},
	{
		name: "BUG_ON", kind: KindKernelBUG, arch: arm64,
		text: []string{
			"------------[ cut here ]------------",
			"kernel BUG at security/landlock/ruleset.c:200!",
			"Internal error: Oops - BUG: 00000000f2000800 [#1] PREEMPT SMP",
			"Modules linked in:",
			"CPU: 0 UID: 0 PID: 238 Comm: landlock.test Not tainted 6.12.0 #1",
			"pc : landlock_merge_ruleset+0x4e/0x3a0",
			"lr : landlock_restrict_self+0x1b6/0x2a0",
			"Call trace:",
			" landlock_merge_ruleset+0x4e/0x3a0 (P)",
			" landlock_restrict_self+0x1b6/0x2a0",
			"---[ end trace 0000000000000000 ]---",
		},
		want: "kernel BUG in landlock_merge_ruleset",
	},
	{
		name: "WARN_ON", kind: KindWarning, arch: x86,
		text: []string{
			"------------[ cut here ]------------",
			"WARNING: CPU: 0 PID: 1 at security/landlock/x.c:12 landlock_bpf_append+0x1c/0x40",
			"Modules linked in:",
			"RIP: 0010:landlock_bpf_append+0x1c/0x40",
			"Call Trace:",
			" <TASK>",
			" ? __warn+0x84/0x130",
			" ? report_bug+0x1c3/0x1d0",
			" landlock_bpf_prog_load+0x4c/0x80",
			" </TASK>",
			"---[ end trace 0000000000000000 ]---",
		},
		want: "WARNING in landlock_bpf_append",
	},
	{
		name: "WARN_ON in a system call", kind: KindWarning, arch: x86,
		text: []string{"WARNING: CPU: 1 PID: 2 at security/landlock/syscalls.c:400 __x64_sys_landlock_add_rule+0x1c/0x30"},
		want: "WARNING in landlock_add_rule",
	},
	{
		name: "WARN_ON without file", kind: KindWarning, arch: x86,
		text: []string{"WARNING: CPU: 0 PID: 12 at landlock_insert_rule+0x5b/0x90"},
		want: "WARNING in landlock_insert_rule",
	},
	{
		name: "WARN_ON without function", kind: KindWarning, arch: x86,
		text: []string{"WARNING: CPU: 0 PID: 1 at fs/x.c:1"},
		want: "WARNING in x.c",
	},
	{
		name: "refcount", kind: KindWarning, arch: x86,
		text: []string{
			"------------[ cut here ]------------",
			"refcount_t: underflow; use-after-free.",
			"WARNING: CPU: 0 PID: 1 at lib/refcount.c:28 refcount_warn_saturate+0xc2/0x110",
			"RIP: 0010:refcount_warn_saturate+0xc2/0x110",
			"Call Trace:",
			" <TASK>",
			" ? __warn+0x84/0x130",
			" ? refcount_warn_saturate+0xc2/0x110",
			" landlock_put_ruleset+0x55/0x60",
			" </TASK>",
		},
		want: "WARNING: refcount bug in landlock_put_ruleset",
	},
	{
		name: "WARN_ON", kind: KindWarning, arch: arm64,
		text: []string{
			"------------[ cut here ]------------",
			"WARNING: CPU: 1 PID: 7 at security/landlock/x.c:12 landlock_bpf_append+0x1c/0x40",
			"Modules linked in:",
			"CPU: 1 UID: 0 PID: 7 Comm: landlock.test Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"pstate: 61400005 (nZCv daif +PAN -UAO -TCO +DIT -SSBS BTYPE=--)",
			"pc : landlock_bpf_append+0x1c/0x40",
			"lr : landlock_bpf_append+0x18/0x40",
			"Call trace:",
			" landlock_bpf_append+0x1c/0x40 (P)",
			" landlock_bpf_prog_load+0x4c/0x80",
			" __arm64_sys_bpf+0x2c/0x48",
			"---[ end trace 0000000000000000 ]---",
		},
		want: "WARNING in landlock_bpf_append",
	},
	{
		name: "WARN_ON in a system call", kind: KindWarning, arch: arm64,
		text: []string{"WARNING: CPU: 0 PID: 9 at security/landlock/syscalls.c:400 __arm64_sys_landlock_add_rule+0x24/0x38"},
		want: "WARNING in landlock_add_rule",
	},
	{
		name: "circular locking", kind: KindLockdep, arch: x86,
		text: []string{
			"======================================================",
			"WARNING: possible circular locking dependency detected",
			"6.12.0 #1 Not tainted",
			"------------------------------------------------------",
			"landlock.test/231 is trying to acquire lock:",
			"ffff888004f0a7a8 (&ruleset->lock){+.+.}-{3:3}, at: landlock_restrict_self+0x8e/0x2a0",
			"",
			"but task is already holding lock:",
			"ffff888003c1b2a0 (&sig->cred_guard_mutex){+.+.}-{3:3}, at: prepare_bprm_creds+0x21/0x70",
			"",
			"the existing dependency chain (in reverse order) is:",
			"",
			"-> #1 (&sig->cred_guard_mutex){+.+.}-{3:3}:",
			"       __mutex_lock+0x8f/0xa70",
			"       prepare_bprm_creds+0x21/0x70",
			"",
			"stack backtrace:",
			"CPU: 0 UID: 0 PID: 231 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" print_circular_bug+0x2c5/0x2d0",
			" check_noncircular+0x13d/0x150",
			" __lock_acquire+0x1416/0x2210",
			" lock_acquire+0xd3/0x2f0",
			" __mutex_lock+0x8f/0xa70",
			" landlock_restrict_self+0x8e/0x2a0",
			" </TASK>",
		},
		want: "possible circular locking dependency detected in landlock_restrict_self",
	},
	{
		name: "locks held on return", kind: KindLockdep, arch: x86,
		text: []string{
			"================================================",
			"WARNING: landlock.test/231 still has locks held!",
			"6.12.0 #1 Not tainted",
			"------------------------------------------------",
			"1 lock held by landlock.test/231:",
			" #0: ffff888004f0a7a8 (&ruleset->lock){+.+.}-{3:3}, at: landlock_add_rule+0x55/0x120",
		},
		want: "still has locks held in landlock_add_rule",
	},
	{
		name: "circular locking", kind: KindLockdep, arch: arm64,
		text: []string{
			"======================================================",
			"WARNING: possible circular locking dependency detected",
			"6.12.0 #1 Not tainted",
			"------------------------------------------------------",
			"landlock.test/232 is trying to acquire lock:",
			"ffff0000c1a3c600 (&ruleset->lock){+.+.}-{3:3}, at: landlock_restrict_self+0x8e/0x2a0",
			"",
			"stack backtrace:",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" dump_stack_lvl+0x8c/0xd0",
			" print_circular_bug+0x2c4/0x2d8",
			" check_noncircular+0x16c/0x188",
			" __lock_acquire+0x1378/0x2120",
			" lock_acquire+0x1c4/0x338",
			" __mutex_lock+0xa4/0x8b8",
			" landlock_restrict_self+0x8e/0x2a0",
		},
		want: "possible circular locking dependency detected in landlock_restrict_self",
	},
	{
		name: "suspicious RCU usage", kind: KindLockdep, arch: arm64,
		text: []string{
			"=============================",
			"WARNING: suspicious RCU usage",
			"6.12.0 #1 Not tainted",
			"-----------------------------",
			"security/landlock/ruleset.c:120 suspicious rcu_dereference_check() usage!",
			"",
			"stack backtrace:",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" dump_stack_lvl+0x8c/0xd0",
			" lockdep_rcu_suspicious+0x170/0x230",
			" landlock_get_ruleset+0x64/0x80",
		},
		want: "suspicious RCU usage in landlock_get_ruleset",
	},
	{
		name: "non-canonical address", kind: KindGPF, arch: x86,
		text: []string{
			"Oops: general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI",
			"CPU: 0 UID: 0 PID: 244 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"RIP: 0010:landlock_put_hierarchy+0x2c/0xb0",
			"Call Trace:",
			" <TASK>",
			" ? die_addr+0x3c/0x60",
			" ? exc_general_protection+0x161/0x3f0",
			" ? asm_exc_general_protection+0x26/0x30",
			" landlock_put_ruleset+0x40/0x60",
			" </TASK>",
		},
		want: "general protection fault in landlock_put_hierarchy",
	},
	{
		name: "KASAN null-ptr-deref", kind: KindGPF, arch: x86,
		text: []string{
			"general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] SMP KASAN PTI",
			"KASAN: null-ptr-deref in range [0x0000000000000008-0x000000000000000f]",
			"RIP: 0010:landlock_find_rule+0x2f/0x90",
		},
		want: "general protection fault in landlock_find_rule",
	},
	{
		name: "oops", kind: KindOops, arch: x86,
		text: []string{
			"Oops: 0002 [#1] SMP PTI",
			"RIP: 0010:landlock_append+0x12/0x30",
		},
		want: "Oops in landlock_append",
	},
	{
		name: "invalid opcode", kind: KindOops, arch: x86,
		text: []string{
			"Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI",
			"RIP: 0010:landlock_append+0x12/0x30",
		},
		want: "invalid opcode in landlock_append",
	},
	{
		name: "divide error", kind: KindOops, arch: x86,
		text: []string{
			"Oops: divide error: 0000 [#1] PREEMPT SMP NOPTI",
			"RIP: 0010:landlock_ratio+0x12/0x30",
		},
		want: "divide error in landlock_ratio",
	},
	{
		name: "data abort", kind: KindOops, arch: arm64,
		text: []string{
			"Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP",
			"pc : landlock_append+0x12/0x30",
		},
		want: "Oops in landlock_append",
	},
	{
		name: "BUG without its line", kind: KindOops, arch: arm64,
		text: []string{
			"Internal error: Oops - BUG: 00000000f2000800 [#1] PREEMPT SMP",
			"pc : landlock_merge_ruleset+0x4e/0x3a0",
		},
		want: "kernel BUG in landlock_merge_ruleset",
	},
	{
		name: "UBSAN trap", kind: KindOops, arch: arm64,
		text: []string{
			"Internal error: UBSAN: array index out of bounds: 00000000f2005512 [#1] PREEMPT SMP",
			"pc : landlock_unmask_layers+0xd6/0xe0",
		},
		want: "UBSAN: array-index-out-of-bounds in landlock_unmask_layers",
	},
	{
		name: "array index", kind: KindUBSAN, arch: x86,
		text: []string{
			"------------[ cut here ]------------",
			"UBSAN: array-index-out-of-bounds in security/landlock/ruleset.c:633:25",
			"index 16 is out of range for type 'layer_mask_t [16]'",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" __ubsan_handle_out_of_bounds+0xa7/0xe0",
			" landlock_unmask_layers+0xd6/0xe0",
			" </TASK>",
			"---[ end trace ]---",
		},
		want: "UBSAN: array-index-out-of-bounds in landlock_unmask_layers",
	},
	{
		name: "without a trace", kind: KindUBSAN, arch: x86,
		text: []string{"UBSAN: shift-out-of-bounds in lib/test_ubsan.c:46:11"},
		want: "UBSAN: shift-out-of-bounds in test_ubsan.c",
	},
	{
		name: "array index", kind: KindUBSAN, arch: arm64,
		text: []string{
			"------------[ cut here ]------------",
			"UBSAN: array-index-out-of-bounds in security/landlock/ruleset.c:633:25",
			"index 16 is out of range for type 'layer_mask_t [16]'",
			"CPU: 0 UID: 0 PID: 240 Comm: landlock.test Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" dump_stack_lvl+0x8c/0xd0",
			" dump_stack+0x18/0x28",
			" __ubsan_handle_out_of_bounds+0xa8/0xd8",
			" landlock_unmask_layers+0xd6/0xe0",
			" is_access_to_paths_allowed+0x2b4/0x5a0",
			"---[ end trace ]---",
		},
		want: "UBSAN: array-index-out-of-bounds in landlock_unmask_layers",
	},
	{
		name: "array index at", kind: KindUBSAN, arch: arm64,
		text: []string{"UBSAN: array index out of bounds at landlock_unmask_layers+0xd6/0xe0"},
		want: "UBSAN: array-index-out-of-bounds in landlock_unmask_layers",
	},
	{
		name: "soft lockup", kind: KindSoftLockup, arch: x86,
		text: []string{
			"watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [landlock.test:245]",
			"Modules linked in:",
			"CPU: 0 UID: 0 PID: 245 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"RIP: 0010:find_rule+0x3b/0x70",
			"Call Trace:",
			" <IRQ>",
			" ? watchdog_timer_fn+0x1d9/0x260",
			" </IRQ>",
			" <TASK>",
			" ? asm_sysvec_apic_timer_interrupt+0x1a/0x20",
			" ? find_rule+0x3b/0x70",
			" landlock_find_rule+0x15/0x30",
			" </TASK>",
		},
		want: "BUG: soft lockup in find_rule",
	},
	{
		name: "soft lockup", kind: KindSoftLockup, arch: arm64,
		text: []string{
			"watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [landlock.test:301]",
			"Modules linked in:",
			"CPU: 1 UID: 0 PID: 301 Comm: landlock.test Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"pstate: 80400005 (Nzcv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)",
			"pc : find_rule+0x3b/0x70",
			"lr : landlock_find_rule+0x15/0x30",
			"Call trace:",
			" find_rule+0x3b/0x70 (P)",
			" landlock_find_rule+0x15/0x30",
		},
		want: "BUG: soft lockup in find_rule",
	},
	{
		name: "hard lockup", kind: KindHardLockup, arch: x86,
		text: []string{
			"watchdog: Watchdog detected hard LOCKUP on cpu 1",
			"Modules linked in:",
			"CPU: 1 UID: 0 PID: 245 Comm: landlock.test Not tainted 6.12.0 #1 ",
			"RIP: 0010:landlock_spin+0x12/0x30",
			"Call Trace:",
			" <NMI>",
			" ? watchdog_hardlockup_check+0x1b6/0x1d0",
			" </NMI>",
			" <TASK>",
			" landlock_spin+0x12/0x30",
			" </TASK>",
		},
		want: "BUG: hard lockup in landlock_spin",
	},
	{
		name: "hard lockup", kind: KindHardLockup, arch: arm64,
		text: []string{
			"watchdog: Watchdog detected hard LOCKUP on cpu 1",
			"Modules linked in:",
			"Sending NMI from CPU 0 to CPUs 1:",
			"NMI backtrace for cpu 1",
			"CPU: 1 UID: 0 PID: 245 Comm: landlock.test Not tainted 6.12.0 #1",
			"pc : landlock_spin+0x12/0x30",
		},
		want: "BUG: hard lockup in landlock_spin",
	},
	{
		name: "self-detected stall", kind: KindRCUStall, arch: x86,
		text: []string{
			"rcu: INFO: rcu_preempt self-detected stall on CPU",
			"rcu: \t0-....: (20999 ticks this GP) idle=c2c4/1/0x4000000000000000 softirq=3716/3716 fqs=5248",
			"Call Trace:",
			" <IRQ>",
			" ? rcu_dump_cpu_stacks+0xc4/0x100",
			" ? sysvec_apic_timer_interrupt+0x6d/0x90",
			" </IRQ>",
			" <TASK>",
			" ? asm_sysvec_apic_timer_interrupt+0x1a/0x20",
			"RIP: 0010:landlock_walk_path+0x91/0x1c0",
			"Code: 48 8b 47 10 <48> 8b 00",
			" ? landlock_walk_path+0x91/0x1c0",
			" hook_path_mknod+0x5c/0x90",
			" </TASK>",
		},
		want: "INFO: rcu detected stall in landlock_walk_path",
	},
	{
		name: "self-detected stall", kind: KindRCUStall, arch: arm64,
		text: []string{
			"rcu: INFO: rcu_preempt self-detected stall on CPU",
			"rcu: \t0-....: (5249 ticks this GP) idle=c2c4/1/0x4000000000000000 softirq=3716/3716 fqs=2624",
			"rcu: \t(t=5250 jiffies g=2605 q=340 ncpus=2)",
			"CPU: 0 UID: 0 PID: 261 Comm: landlock.test Not tainted 6.12.0 #1",
			"Hardware name: linux,dummy-virt (DT)",
			"Call trace:",
			" show_stack+0x20/0x38 (C)",
			" dump_stack_lvl+0x8c/0xd0",
			" rcu_dump_cpu_stacks+0x1a8/0x200",
			" rcu_sched_clock_irq+0x6b0/0xc28",
			" update_process_times+0x80/0xd0",
			" tick_nohz_handler+0xbc/0x1b0",
			" __hrtimer_run_queues+0x13c/0x2a8",
			" hrtimer_interrupt+0xe8/0x248",
			" arch_timer_handler_virt+0x34/0x48",
			" handle_percpu_devid_irq+0x88/0x1e0",
			" generic_handle_domain_irq+0x30/0x50",
			" gic_handle_irq+0x54/0x120",
			" call_on_irq_stack+0x24/0x30",
			" do_interrupt_handler+0x88/0x98",
			" el1_interrupt+0x34/0x68",
			" el1h_64_irq_handler+0x18/0x28",
			" el1h_64_irq+0x6c/0x70",
			" landlock_walk_path+0x8a/0x1c0 (P)",
			" hook_path_mknod+0x5c/0x90",
			" security_path_mknod+0x4a/0x90",
		},
		want: "INFO: rcu detected stall in landlock_walk_path",
	},
	{
		name: "hung task", kind: KindHungTask, arch: x86,
		text: []string{
			"INFO: task landlock.test:252 blocked for more than 122 seconds.",
			"      Not tainted 6.12.0 #1",
			"task:landlock.test   state:D stack:0     pid:252   tgid:248   ppid:1      flags:0x00004002",
			"Call Trace:",
			" <TASK>",
			" __schedule+0x3e7/0xb30",
			" schedule+0x27/0xf0",
			" schedule_preempt_disabled+0x15/0x30",
			" __mutex_lock.constprop.0+0x32b/0x6e0",
			" landlock_restrict_self+0x8e/0x2a0",
			" </TASK>",
		},
		want: "INFO: task hung in landlock_restrict_self",
	},
	{
		name: "hung task", kind: KindHungTask, arch: arm64,
		text: []string{
			"INFO: task landlock.test:252 blocked for more than 122 seconds.",
			"      Not tainted 6.12.0 #1",
			"\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
			"task:landlock.test   state:D stack:0     pid:252   tgid:248   ppid:1      flags:0x00000008",
			"Call trace:",
			" __switch_to+0xe4/0x160 (T)",
			" __schedule+0x3c8/0xa70",
			" schedule+0x3c/0x130",
			" schedule_preempt_disabled+0x2c/0x50",
			" __mutex_lock.constprop.0+0x3d4/0x8b8",
			" __mutex_lock_slowpath+0x1c/0x30",
			" mutex_lock+0x54/0x70",
			" landlock_restrict_self+0x8e/0x2a0",
			" __arm64_sys_landlock_restrict_self+0x1c/0x30",
		},
		want: "INFO: task hung in landlock_restrict_self",
	},
	{
		// The kernel's own line, the same on every architecture.
		name: "initramfs", kind: KindInitramfs, arch: x86,
		text: []string{"Initramfs unpacking failed: write error"},
		want: "Initramfs unpacking failed: write error",
	},
	{
		name: "initramfs", kind: KindInitramfs, arch: arm64,
		text: []string{"Initramfs unpacking failed: write error"},
		want: "Initramfs unpacking failed: write error",
	},
	{
		// The OOM killer names the task that asked for memory: the
		// headline is the title (no PID, no address in it).
		name: "oom", kind: KindOOM, arch: x86,
		text: []string{
			"04-fsmap.test invoked oom-killer: gfp_mask=0x40cc0(GFP_KERNEL|__GFP_COMP), order=0, oom_score_adj=0",
			"CPU: 0 UID: 0 PID: 563 Comm: 04-fsmap.test Not tainted 6.12.118 #1 ",
			"Call Trace:",
			" <TASK>",
			" dump_stack_lvl+0x5d/0x80",
			" dump_header+0x5c/0x2bd",
			" oom_kill_process+0x121/0x2d0",
			" out_of_memory+0x5c7/0x60e",
			" </TASK>",
		},
		want: "out of memory: 04-fsmap.test invoked the OOM killer (GFP_KERNEL|__GFP_COMP, order 0)",
	},
	{
		name: "oom", kind: KindOOM, arch: arm64,
		text: []string{
			"hooks.test invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
			"CPU: 0 UID: 0 PID: 140 Comm: hooks.test Not tainted 6.12.118 #1",
			"Call trace:",
			" dump_backtrace+0x98/0xf0",
			" show_stack+0x18/0x28",
			" dump_header+0x44/0x1a8",
			" oom_kill_process+0x118/0x290",
			" out_of_memory+0x2e0/0x640",
		},
		want: "out of memory: hooks.test invoked the OOM killer (GFP_KERNEL, order 0)",
	},
	{
		name: "kmemleak", kind: KindKmemleak, arch: x86,
		text: []string{
			"unreferenced object 0xffff888004a1c2c0 (size 32):",
			"  comm \"seccompentry.te\", pid 112, jiffies 4294893480",
			"  hex dump (first 32 bytes):",
			"    01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................",
			"  backtrace (crc 5e1c3a10):",
			"    kmemleak_alloc+0x4a/0x80",
			"    __kmalloc_cache_noprof+0x1b9/0x2f0",
			"    landlock_bpf_append.isra.0+0x8c/0x3c0",
			"    __do_sys_seccomp+0x2d7/0x3b0",
			"    do_syscall_64+0x6e/0x140",
		},
		want: "memory leak in landlock_bpf_append",
	},
	{
		name: "kmemleak", kind: KindKmemleak, arch: arm64,
		text: []string{
			"unreferenced object 0xffff000003d1e000 (size 64):",
			"  comm \"hooks.test\", pid 140, jiffies 4294899000",
			"  hex dump (first 32 bytes):",
			"    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................",
			"  backtrace (crc 0):",
			"    kmemleak_alloc+0x9c/0xb0",
			"    slab_post_alloc_hook+0x1b8/0x2c8",
			"    kmem_cache_alloc_noprof+0x1a4/0x2e0",
			"    kzalloc_noprof+0x10/0x20",
			"    landlock_bpf_level_new+0x31/0x90",
			"    __arm64_sys_seccomp+0x2c/0x40",
		},
		want: "memory leak in landlock_bpf_level_new",
	},
}

// x86Only are the kinds of report arm64 kernels do not print.
var x86Only = map[Kind]string{
	KindGPF:   "general protection faults are x86's",
	KindKMSAN: "KMSAN runs on x86_64 only",
}

func TestSignature(t *testing.T) {
	for _, tc := range signatureCases {
		t.Run(tc.arch+"/"+string(tc.kind)+"/"+tc.name, func(t *testing.T) {
			text := strings.Join(stamp(1, tc.text...), "\n")
			assert.Equal(t, tc.want, Signature(text), "signature of the text")
			assert.Equal(t, tc.want, Signature(strings.Join(tc.text, "\n")), "signature without timestamps")

			// The report seen on a console: the monitor opens it with
			// the case's kind and gives it the same signature.
			m := New(nil)
			feed(m, stamp(0.5, "booting")...)
			feed(m, stamp(1, tc.text...)...)
			splats := m.Splats()
			require.NotEmpty(t, splats)
			assert.Equal(t, tc.kind, splats[0].Kind, "kind")
			assert.Equal(t, tc.want, splats[0].Signature, "signature of the splat")
			assert.Equal(t, Fingerprint(tc.want), splats[0].Fingerprint)
		})
	}
}

func TestSignatureCasesCoverEveryKind(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range signatureCases {
		seen[tc.arch+"/"+string(tc.kind)] = true
	}
	for _, p := range Patterns() {
		assert.Truef(t, seen[x86+"/"+string(p.Kind)], "no x86_64 signature case for %s", p.Kind)
		if _, ok := x86Only[p.Kind]; !ok {
			assert.Truef(t, seen[arm64+"/"+string(p.Kind)], "no arm64 signature case for %s", p.Kind)
		}
	}
}

func TestSignatureWithoutHeadline(t *testing.T) {
	assert.Equal(t, "", Signature(""))
	assert.Equal(t, "something odd", Signature("[    1.000000] ------------[ cut here ]------------\n[    1.000001]   something odd  \n[    1.000002] more"))
}

func TestFingerprint(t *testing.T) {
	// The same warning in two tests of two runs: other time, CPU, PID,
	// task, addresses, registers and unreliable frames.
	first := stamp(12.5,
		"------------[ cut here ]------------",
		"WARNING: CPU: 0 PID: 42 at security/landlock/ruleset.c:212 insert_rule+0x2d1/0x310",
		"CPU: 0 UID: 0 PID: 42 Comm: landlock.test Not tainted 6.12.0 #1 ",
		"RIP: 0010:insert_rule+0x2d1/0x310",
		"RSP: 0018:ffffc90000447e08 EFLAGS: 00010206",
		"Call Trace:",
		" <TASK>",
		" ? __warn+0x84/0x130",
		" landlock_insert_rule+0x5b/0x90",
		" </TASK>",
		"---[ end trace 0000000000000000 ]---",
	)
	second := stamp(731.25,
		"------------[ cut here ]------------",
		"WARNING: CPU: 3 PID: 1187 at security/landlock/ruleset.c:214 insert_rule+0x2e9/0x330",
		"CPU: 3 UID: 0 PID: 1187 Comm: other.test Tainted: G        W          6.12.1 #2 ",
		"RIP: 0010:insert_rule+0x2e9/0x330",
		"RSP: 0018:ffffc90000abc000 EFLAGS: 00010282",
		"Call Trace:",
		" <TASK>",
		" ? report_bug+0x1c3/0x1d0",
		" landlock_insert_rule+0x61/0x98",
		" </TASK>",
		"---[ end trace 0000000000000002 ]---",
	)
	other := stamp(20,
		"WARNING: CPU: 0 PID: 42 at security/landlock/ruleset.c:212 insert_layer+0x2d1/0x310",
		"---[ end trace 0000000000000000 ]---",
	)
	m := New(nil)
	feed(m, first...)
	feed(m, second...)
	feed(m, other...)
	splats := m.Splats()
	require.Len(t, splats, 3)
	assert.Equal(t, "WARNING in insert_rule", splats[0].Signature)
	assert.Equal(t, splats[0].Signature, splats[1].Signature)
	assert.Equal(t, splats[0].Fingerprint, splats[1].Fingerprint, "same bug, same fingerprint")
	assert.NotEqual(t, splats[0].Fingerprint, splats[2].Fingerprint, "other function, other fingerprint")
	assert.Regexp(t, `^[0-9a-f]{16}$`, splats[0].Fingerprint)

	// The hash of the signature alone.
	assert.Equal(t, Fingerprint("WARNING in insert_rule"), splats[0].Fingerprint)
	assert.NotEqual(t, Fingerprint("WARNING in insert_rule"), Fingerprint("WARNING in insert_layer"))

	// One bug on x86_64 and arm64: the system call wrappers differ.
	x := Signature("WARNING: CPU: 1 PID: 2 at security/landlock/syscalls.c:400 __x64_sys_landlock_add_rule+0x1c/0x30")
	a := Signature("WARNING: CPU: 0 PID: 9 at security/landlock/syscalls.c:400 __arm64_sys_landlock_add_rule+0x24/0x38")
	assert.Equal(t, Fingerprint(x), Fingerprint(a))
}

func TestSignatureHasNoNumbers(t *testing.T) {
	// Nothing in a title varies between runs: no hex, no offset, no
	// timestamp, PID or CPU number.
	varying := regexp.MustCompile(`0x|\+0x|\[ *\d+\.\d+\]|PID|CPU|\d{3,}`)
	for _, tc := range signatureCases {
		assert.NotRegexpf(t, varying, tc.want, "%s/%s/%s", tc.arch, tc.kind, tc.name)
	}
}

func TestFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		text []string
		want []string
	}{{
		name: "x86 sections, unreliable frames, modules and registers",
		text: []string{
			"BUG: kernel NULL pointer dereference, address: 0000000000000010",
			"RIP: 0010:lkdtm_do_action+0x18/0x1b [lkdtm]",
			"Call Trace:",
			" <IRQ>",
			" ? watchdog_timer_fn+0x1d9/0x260",
			" </IRQ>",
			" <TASK>",
			" ? asm_sysvec_apic_timer_interrupt+0x1a/0x20",
			"RIP: 0010:find_rule+0x3b/0x70",
			"RSP: 0018:ffffc90000447e08 EFLAGS: 00010206",
			" lkdtm_do_action+0x18/0x1b [lkdtm]",
			" __mutex_lock.constprop.0+0x32b/0x6e0",
			"RIP: 0033:0x40f1ce",
			" </TASK>",
			"Modules linked in: lkdtm",
			"Call Trace:",
			" later_trace+0x1/0x2",
		},
		want: []string{
			"watchdog_timer_fn+0x1d9/0x260",
			"asm_sysvec_apic_timer_interrupt+0x1a/0x20",
			"lkdtm_do_action+0x18/0x1b",
			"__mutex_lock.constprop.0+0x32b/0x6e0",
		},
	}, {
		name: "arm64",
		text: []string{
			"WARNING: CPU: 1 PID: 7 at security/landlock/x.c:12 landlock_bpf_append+0x1c/0x40",
			"pc : landlock_bpf_append+0x1c/0x40",
			"Call trace:",
			" landlock_bpf_append+0x1c/0x40 (P)",
			" landlock_test_run+0x10/0x20 [landlock_test]",
			" el0t_64_sync+0x190/0x198",
			"Code: f9400a60 b4000160 f9400800 (f9400801)",
			"---[ end trace 0000000000000000 ]---",
		},
		want: []string{"landlock_bpf_append+0x1c/0x40", "landlock_test_run+0x10/0x20", "el0t_64_sync+0x190/0x198"},
	}, {
		name: "old x86 addresses",
		text: []string{
			"Call Trace:",
			" [<ffffffff81234567>] dump_stack+0x19/0x1b",
			" [<ffffffff81234568>] ? warn_slowpath_common+0x86/0xb0",
		},
		want: []string{"dump_stack+0x19/0x1b", "warn_slowpath_common+0x86/0xb0"},
	}, {
		name: "no header",
		text: []string{
			"BUG: KFENCE: use-after-free read in test_use_after_free_read+0xdc/0x2a0",
			"",
			"Use-after-free read at 0x000000009d3b9f9e (in kfence-#79):",
			" test_use_after_free_read+0xdc/0x2a0",
			" kunit_try_run_case+0x8e/0x190",
			"",
			"kfence-#79: 0x00000000 allocated by task 1:",
			" test_alloc+0x10/0x20",
		},
		want: []string{"test_use_after_free_read+0xdc/0x2a0", "kunit_try_run_case+0x8e/0x190"},
	}, {
		name: "none",
		text: []string{"Kernel panic - not syncing: Fatal exception", "Kernel Offset: disabled"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Frames(strings.Join(stamp(1, tc.text...), "\n")))
		})
	}
}
