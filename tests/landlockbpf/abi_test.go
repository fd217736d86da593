package landlockbpf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// probe prints, from the patched kernel's own UAPI headers, every number
// that abi.go holds; the C compiler does the counting of enums and the
// layout of the context.
const probe = `#include <stdio.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#define P(name, value) printf("%s %lld\n", name, (long long)(value))
int main(void)
{
	P("ProgTypeLandlock", BPF_PROG_TYPE_LANDLOCK);
	P("AttachLandlockFS", BPF_LANDLOCK_FS);
	P("AttachCgroupLandlockFS", BPF_CGROUP_LANDLOCK_FS);
	P("FuncGetFSMode", BPF_FUNC_landlock_get_fs_mode);
	P("SeccompAppendLandlockRule", SECCOMP_APPEND_LANDLOCK_RULE);
	P("SeccompLandlockABIVersion", SECCOMP_LANDLOCK_ABI_VERSION);
	P("CtxSize", sizeof(struct landlock_context));
	P("CtxOffStatus", offsetof(struct landlock_context, status));
	P("CtxOffArch", offsetof(struct landlock_context, arch));
	P("CtxOffSyscallNr", offsetof(struct landlock_context, syscall_nr));
	P("CtxOffSyscallCmd", offsetof(struct landlock_context, syscall_cmd));
	P("CtxOffEvent", offsetof(struct landlock_context, event));
	P("CtxOffArg1", offsetof(struct landlock_context, arg1));
	P("CtxOffArg2", offsetof(struct landlock_context, arg2));
	P("EventFS", LANDLOCK_EVENT_FS);
	P("ActionExec", LANDLOCK_ACTION_FS_EXEC);
	P("ActionWrite", LANDLOCK_ACTION_FS_WRITE);
	P("ActionRead", LANDLOCK_ACTION_FS_READ);
	P("ActionNew", LANDLOCK_ACTION_FS_NEW);
	P("ActionGet", LANDLOCK_ACTION_FS_GET);
	P("ActionRemove", LANDLOCK_ACTION_FS_REMOVE);
	P("ActionIoctl", LANDLOCK_ACTION_FS_IOCTL);
	P("ActionLock", LANDLOCK_ACTION_FS_LOCK);
	P("ActionFcntl", LANDLOCK_ACTION_FS_FCNTL);
#ifdef BPF_F_LANDLOCK_DEBUG
	P("ProgFlagDebug", BPF_F_LANDLOCK_DEBUG);
#endif
#ifdef SECCOMP_LANDLOCK_RULE_TRIGGERS
	P("SeccompLandlockRuleTriggers", SECCOMP_LANDLOCK_RULE_TRIGGERS);
	P("RuleAttrSize", sizeof(struct landlock_rule_attr));
	P("RuleAttrOffProgFD", offsetof(struct landlock_rule_attr, prog_fd));
	P("RuleAttrOffFlags", offsetof(struct landlock_rule_attr, flags));
	P("RuleAttrOffTriggers", offsetof(struct landlock_rule_attr, triggers));
#endif
	return 0;
}
`

// probeV3 prints the numbers of version 3 (the map of file system paths
// and its helper). It is a probe of its own: until the series has them,
// it does not compile, which fails TestABIMatchesPatchedHeaders without
// hiding the check of the other numbers.
const probeV3 = `#include <stdio.h>
#include <linux/bpf.h>
#define P(name, value) printf("%s %lld\n", name, (long long)(value))
int main(void)
{
	P("MapTypeLandlockFS", BPF_MAP_TYPE_LANDLOCK_FS);
	P("FuncFSBeneath", BPF_FUNC_landlock_fs_beneath);
	return 0;
}
`

// patchedTree applies the series in patches/ to Debian's 6.12 source (both
// cached by the harness) and returns the tree.
func patchedTree(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(source.DefaultTarball); err != nil {
		t.Skipf("needs Debian's linux-source-6.12 (%v): make vmtest installs it", err)
	}
	c, err := cache.Default(os.Getenv("CACHE_DIR"))
	require.NoError(t, err)
	tree, err := source.Debian(c, source.DefaultTarball)
	require.NoError(t, err)
	s, err := series.Read("../../patches/series")
	require.NoError(t, err)
	if len(s.Patches) == 0 {
		t.Skip("the series in patches/ is empty")
	}
	patched, err := source.Patched(c, tree, s)
	require.NoError(t, err)
	return patched.Dir
}

// TestABIMatchesPatchedHeaders checks every number of abi.go against the
// UAPI headers of the kernel the series makes.
func TestABIMatchesPatchedHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs the kernel source")
	}
	if os.Getenv("LANDLOCK_VMTEST_GUEST") == "1" {
		t.Skip("host test: reads the kernel source")
	}
	tree := patchedTree(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "probe.c")
	require.NoError(t, os.WriteFile(src, []byte(probe), 0o644))
	bin := filepath.Join(dir, "probe")
	// The three patched UAPI headers shadow the host's; the host's
	// <linux/types.h> and <asm/...> fill in.
	inc := filepath.Join(dir, "include", "linux")
	require.NoError(t, os.MkdirAll(inc, 0o755))
	for _, h := range []string{"bpf.h", "landlock.h", "seccomp.h"} {
		b, err := os.ReadFile(filepath.Join(tree, "include/uapi/linux", h))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(inc, h), b, 0o644))
	}
	// headers_install drops this kernel-only include from seccomp.h.
	require.NoError(t, os.WriteFile(filepath.Join(inc, "compiler.h"), nil, 0o644))
	cmd := exec.Command("gcc", "-I", filepath.Join(dir, "include"), "-o", bin, src)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "compiling the ABI probe against %s:\n%s", tree, out)
	out, err = exec.Command(bin).Output()
	require.NoError(t, err)

	want := map[string]int64{
		"ProgTypeLandlock":          ProgTypeLandlock,
		"AttachLandlockFS":          AttachLandlockFS,
		"AttachCgroupLandlockFS":    AttachCgroupLandlockFS,
		"FuncGetFSMode":             FuncGetFSMode,
		"SeccompAppendLandlockRule": SeccompAppendLandlockRule,
		"SeccompLandlockABIVersion": SeccompLandlockABIVersion,
		"CtxSize":                   CtxSize,
		"CtxOffStatus":              CtxOffStatus,
		"CtxOffArch":                CtxOffArch,
		"CtxOffSyscallNr":           CtxOffSyscallNr,
		"CtxOffSyscallCmd":          CtxOffSyscallCmd,
		"CtxOffEvent":               CtxOffEvent,
		"CtxOffArg1":                CtxOffArg1,
		"CtxOffArg2":                CtxOffArg2,
		"EventFS":                   EventFS,
		"ActionExec":                ActionExec,
		"ActionWrite":               ActionWrite,
		"ActionRead":                ActionRead,
		"ActionNew":                 ActionNew,
		"ActionGet":                 ActionGet,
		"ActionRemove":              ActionRemove,
		"ActionIoctl":               ActionIoctl,
		"ActionLock":                ActionLock,
		"ActionFcntl":               ActionFcntl,
		// Version 5.
		"SeccompLandlockRuleTriggers": SeccompLandlockRuleTriggers,
		"RuleAttrSize":                RuleAttrSize,
		"RuleAttrOffProgFD":           RuleAttrOffProgFD,
		"RuleAttrOffFlags":            RuleAttrOffFlags,
		"RuleAttrOffTriggers":         RuleAttrOffTriggers,
	}
	got := map[string]int64{}
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		name, value, ok := strings.Cut(line, " ")
		require.True(t, ok, line)
		v, err := strconv.ParseInt(value, 10, 64)
		require.NoError(t, err, line)
		got[name] = v
	}
	for name, w := range want {
		if assert.Contains(t, got, name) {
			assert.Equal(t, w, got[name], "%s: abi.go says %d, the patched headers %d", name, w, got[name])
		}
	}
	checkV3Probe(t, dir)
	if v, ok := got["ProgFlagDebug"]; ok {
		assert.Equal(t, int64(ProgFlagDebug), v, "ProgFlagDebug")
	} else {
		t.Log("BPF_F_LANDLOCK_DEBUG is not in this series yet")
	}
}

// checkV3Probe compiles and runs probeV3 against the patched headers that
// TestABIMatchesPatchedHeaders copied to dir/include, and checks its
// numbers against abi.go.
func checkV3Probe(t *testing.T, dir string) {
	t.Helper()
	src := filepath.Join(dir, "probe_v3.c")
	require.NoError(t, os.WriteFile(src, []byte(probeV3), 0o644))
	bin := filepath.Join(dir, "probe_v3")
	out, err := exec.Command("gcc", "-I", filepath.Join(dir, "include"), "-o", bin, src).CombinedOutput()
	if err != nil {
		t.Errorf("BPF_MAP_TYPE_LANDLOCK_FS (%d) and BPF_FUNC_landlock_fs_beneath (%d) of ABI version %d "+
			"are not in the patched include/uapi/linux/bpf.h (the series has no version 3 yet?):\n%s",
			MapTypeLandlockFS, FuncFSBeneath, ABIVersion, out)
		return
	}
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
	for name, w := range map[string]int64{"MapTypeLandlockFS": MapTypeLandlockFS, "FuncFSBeneath": FuncFSBeneath} {
		if assert.Contains(t, got, name) {
			assert.Equal(t, w, got[name], "%s: abi.go says %d, the patched headers %d", name, w, got[name])
		}
	}
}

// TestRuleAttrLayout: the Go struct is struct landlock_rule_attr's layout
// (whose numbers TestABIMatchesPatchedHeaders checks against the headers).
func TestRuleAttrLayout(t *testing.T) {
	var a RuleAttr
	assert.EqualValues(t, RuleAttrSize, unsafe.Sizeof(a))
	assert.EqualValues(t, RuleAttrOffProgFD, unsafe.Offsetof(a.ProgFD))
	assert.EqualValues(t, RuleAttrOffFlags, unsafe.Offsetof(a.Flags))
	assert.EqualValues(t, RuleAttrOffTriggers, unsafe.Offsetof(a.Triggers))
}
