// Package landlockbpf is the guest tests' side of the Landlock eBPF ABI
// (../shared/spec/landlock-bpf-abi.md, versions 1 to 4, and version 5's
// rule triggers, which issue 12 added and the spec is to record): every number
// of the ABI, in this one file, and small helpers to load rules, append
// them with seccomp(2), attach them to cgroups (version 2) and fill maps
// of file system paths (version 3, fsmap.go). A host test (abi_test.go)
// checks each number against the patched kernel's headers.
package landlockbpf

// Program type, attach type ("event") and helper.
const (
	// ProgTypeLandlock is BPF_PROG_TYPE_LANDLOCK.
	ProgTypeLandlock = 33
	// AttachLandlockFS is BPF_LANDLOCK_FS, the file system event.
	AttachLandlockFS = 57
	// FuncGetFSMode is BPF_FUNC_landlock_get_fs_mode.
	FuncGetFSMode = 212
	// ProgFlagDebug is BPF_F_LANDLOCK_DEBUG.
	ProgFlagDebug = 1 << 8
	// AttachCgroupLandlockFS is BPF_CGROUP_LANDLOCK_FS (version 2): the
	// attach type of a Landlock program on a cgroup.
	AttachCgroupLandlockFS = 58
	// MapTypeLandlockFS is BPF_MAP_TYPE_LANDLOCK_FS (version 3): an
	// array of file system paths, key and value 4 bytes, a value written
	// as an fd.
	MapTypeLandlockFS = 34
	// FuncFSBeneath is BPF_FUNC_landlock_fs_beneath (version 3):
	// bpf_landlock_fs_beneath(ctx, map, flags).
	FuncFSBeneath = 213
	// FSMapMaxEntries is the largest max_entries of a
	// BPF_MAP_TYPE_LANDLOCK_FS map (E2BIG beyond).
	FSMapMaxEntries = 65536
)

// seccomp(2) entry point.
const (
	// SeccompAppendLandlockRule is SECCOMP_APPEND_LANDLOCK_RULE.
	SeccompAppendLandlockRule = 4
	// SeccompLandlockABIVersion is SECCOMP_LANDLOCK_ABI_VERSION.
	SeccompLandlockABIVersion = 1 << 0
	// SeccompLandlockRuleTriggers is SECCOMP_LANDLOCK_RULE_TRIGGERS
	// (version 5): args points to a struct landlock_rule_attr, whose
	// triggers name the actions the rule runs on.
	SeccompLandlockRuleTriggers = 1 << 1
	// TriggersABI is the version that has rule triggers.
	TriggersABI = 5
	// ABIVersion is the newest version this file describes. A kernel of a
	// prefix of the series reports an older one (1 <= version <=
	// ABIVersion); tests skip what it lacks.
	ABIVersion = 5
	// MaxRules is how many rules a domain holds at most.
	MaxRules = 64
)

// The context: struct landlock_context, 40 bytes, read-only.
const (
	CtxSize          = 40
	CtxOffStatus     = 0
	CtxOffArch       = 8
	CtxOffSyscallNr  = 12
	CtxOffSyscallCmd = 16
	CtxOffEvent      = 20
	CtxOffArg1       = 24
	CtxOffArg2       = 32

	// EventFS is LANDLOCK_EVENT_FS.
	EventFS = 1
)

// File system actions (LANDLOCK_ACTION_FS_*), the bits of arg2.
const (
	ActionExec   = 1 << 0
	ActionWrite  = 1 << 1
	ActionRead   = 1 << 2
	ActionNew    = 1 << 3
	ActionGet    = 1 << 4
	ActionRemove = 1 << 5
	ActionIoctl  = 1 << 6
	ActionLock   = 1 << 7
	ActionFcntl  = 1 << 8

	// ActionsAll are all of them: the triggers that name every action.
	ActionsAll = 1<<9 - 1
)

// struct landlock_rule_attr (version 5), 16 bytes.
const (
	RuleAttrSize        = 16
	RuleAttrOffProgFD   = 0
	RuleAttrOffFlags    = 4
	RuleAttrOffTriggers = 8
)

// RuleAttr is struct landlock_rule_attr.
type RuleAttr struct {
	ProgFD   uint32
	Flags    uint32
	Triggers uint64
}
