package console

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leakBlock is one "unreferenced object" block of the kmemleak file, in
// 6.12's format (mm/kmemleak.c, print_unreferenced()).
func leakBlock(addr string, size int, comm string, pid int, jiffies, crc string, backtrace ...string) string {
	return fmt.Sprintf(`unreferenced object 0x%s (size %d):
  comm "%s", pid %d, jiffies %s
  hex dump (first 32 bytes):
    01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc %s):
`, addr, size, comm, pid, jiffies, crc) + "    " + strings.Join(backtrace, "\n    ") + "\n"
}

// seccompLeak is the backtrace of the leak seen twice below.
var seccompLeak = []string{
	"kmemleak_alloc+0x4a/0x80",
	"__kmalloc_cache_noprof+0x1b9/0x2f0",
	"landlock_bpf_append.isra.0+0x8c/0x3c0",
	"__do_sys_seccomp+0x2d7/0x3b0",
	"do_syscall_64+0x6e/0x140",
}

// Two leaks of one bug and one of another.
var kmemleakFile = leakBlock("ffff888004a1c2c0", 32, "seccompentry.te", 112, "4294893480", "5e1c3a10", seccompLeak...) +
	leakBlock("ffff888004a1c300", 32, "seccompentry.te", 113, "4294893502", "5e1c3a10", seccompLeak...) +
	leakBlock("ffff888005b20000", 192, "hooks.test", 140, "4294899000", "0",
		"kmemleak_alloc+0x4a/0x80",
		"kmem_cache_alloc_noprof+0x1d0/0x330",
		"kzalloc_noprof+0x10/0x20",
		"landlock_bpf_level_new+0x31/0x90",
		"landlock_bpf_append.isra.0+0x120/0x3c0")

func TestLeaks(t *testing.T) {
	splats := Leaks(kmemleakFile, "after: example.com/a example.com/b")
	require.Len(t, splats, 3)
	for _, s := range splats {
		assert.Equal(t, KindKmemleak, s.Kind)
		assert.True(t, s.Fails)
		assert.Equal(t, "after: example.com/a example.com/b", s.Test)
	}
	assert.Equal(t, "unreferenced object 0xffff888004a1c2c0 (size 32):", splats[0].Title)
	assert.Equal(t, "memory leak in landlock_bpf_append", splats[0].Signature)
	assert.Equal(t, splats[0].Fingerprint, splats[1].Fingerprint, "the same leak twice is one bug")
	assert.Equal(t, "memory leak in landlock_bpf_level_new", splats[2].Signature)
	assert.Equal(t, []string{"kmemleak_alloc+0x4a/0x80", "kmem_cache_alloc_noprof+0x1d0/0x330", "kzalloc_noprof+0x10/0x20",
		"landlock_bpf_level_new+0x31/0x90", "landlock_bpf_append.isra.0+0x120/0x3c0"}, splats[2].Frames)
	assert.Contains(t, splats[1].Text, "pid 113")
	assert.NotContains(t, splats[0].Text, "pid 113", "each block is its own report")
}

func TestLeaksNone(t *testing.T) {
	assert.Empty(t, Leaks("", "after: example.com/a"))
}
