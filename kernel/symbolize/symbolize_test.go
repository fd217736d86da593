package symbolize

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faddr2lineOut is faddr2line's answer, in the shape of the kernel's
// script (6.12): one block per frame, blank lines between, inline chains
// as "(inlined by)" lines, a discriminator on some lines, and a note for
// a frame whose size did not match.
const faddr2lineOut = `lkdtm_READ_AFTER_FREE+0xe4/0x2a0:
lkdtm_READ_AFTER_FREE at drivers/misc/lkdtm/heap.c:118 (discriminator 1)

landlock_bpf_append+0x3c/0x1b0:
copy_rules at security/landlock/bpf.c:211
 (inlined by) landlock_bpf_append at security/landlock/bpf.c:260

skipping vfs_write address at 0xffffffff81300010 due to size mismatch (0x400 != 0x3f0)
ksys_write+0x0a/0x100:
ksys_write at fs/read_write.c:731
`

func TestParse(t *testing.T) {
	asked := []string{
		"lkdtm_READ_AFTER_FREE+0xe4/0x2a0",
		"landlock_bpf_append+0x3c/0x1b0",
		"vfs_write+0x10/0x3f0",
		"ksys_write+0xa/0x100", // faddr2line echoes "0x0a"
	}
	locs := Parse(faddr2lineOut, asked)
	assert.Equal(t, map[string]Location{
		"lkdtm_READ_AFTER_FREE+0xe4/0x2a0": {
			Frame: "lkdtm_READ_AFTER_FREE+0xe4/0x2a0", Function: "lkdtm_READ_AFTER_FREE",
			Source: "drivers/misc/lkdtm/heap.c:118",
		},
		"landlock_bpf_append+0x3c/0x1b0": {
			Frame: "landlock_bpf_append+0x3c/0x1b0", Function: "copy_rules",
			Source:    "security/landlock/bpf.c:211",
			InlinedBy: []string{"landlock_bpf_append at security/landlock/bpf.c:260"},
		},
		"ksys_write+0xa/0x100": {
			Frame: "ksys_write+0xa/0x100", Function: "ksys_write", Source: "fs/read_write.c:731",
		},
	}, locs)
}

func TestParseIgnoresFramesNotAsked(t *testing.T) {
	assert.Empty(t, Parse(faddr2lineOut, []string{"other+0x1/0x2"}))
	assert.Empty(t, Parse("", []string{"ksys_write+0xa/0x100"}))
}

func TestParseUnknownAddress(t *testing.T) {
	// addr2line's "??:0" is no location.
	assert.Empty(t, Parse("f+0x1/0x10:\n?? at ??:0\n", []string{"f+0x1/0x10"}))
}

func TestForBuild(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, ".config")
	require.NoError(t, os.WriteFile(cfg, []byte("CONFIG_X=y\n# CONFIG_DEBUG_INFO is not set\n"), 0o644))
	_, err := ForBuild(dir, cfg, "")
	assert.ErrorIs(t, err, ErrNoDebugInfo)

	require.NoError(t, os.WriteFile(cfg, []byte("CONFIG_DEBUG_INFO=y\n"), 0o644))
	_, err = ForBuild(dir, cfg, "")
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src", "scripts"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "scripts", "faddr2line"), nil, 0o755))
	require.NoError(t, os.Symlink(filepath.Join(dir, "src"), filepath.Join(dir, "source")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinux"), nil, 0o644))
	s, err := ForBuild(dir, cfg, "aarch64-linux-gnu-")
	require.NoError(t, err)
	assert.Equal(t, &Symbolizer{
		Script:       filepath.Join(dir, "source", "scripts", "faddr2line"),
		Vmlinux:      filepath.Join(dir, "vmlinux"),
		CrossCompile: "aarch64-linux-gnu-",
	}, s)
}

// TestDecodeRunsTheScript runs a stand-in for faddr2line (a shell script
// that checks its arguments and environment and answers like the real
// one), to check what Decode passes and that it reads the answer; the
// real script is run by the DEBUG=1 e2e tests.
func TestDecodeRunsTheScript(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "faddr2line")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
[ "$CROSS_COMPILE" = "x-" ] || { echo "CROSS_COMPILE=$CROSS_COMPILE" >&2; exit 1; }
[ "$1" = /k/vmlinux ] || { echo "vmlinux $1" >&2; exit 1; }
[ "$#" = 2 ] || { echo "$# args: $*" >&2; exit 1; }
echo "$2:"
echo "f at a/b.c:7"
`), 0o755))
	s := &Symbolizer{Script: script, Vmlinux: "/k/vmlinux", CrossCompile: "x-"}
	// The module frame and the repeated frame are not asked.
	locs, err := s.Decode(context.Background(), []string{"f+0x1/0x10", "f+0x1/0x10", "m+0x1/0x2 [mod]"})
	require.NoError(t, err)
	assert.Equal(t, map[string]Location{"f+0x1/0x10": {Frame: "f+0x1/0x10", Function: "f", Source: "a/b.c:7"}}, locs)

	locs, err = s.Decode(context.Background(), nil)
	require.NoError(t, err)
	assert.Empty(t, locs)

	s.CrossCompile = "y-"
	_, err = s.Decode(context.Background(), []string{"f+0x1/0x10"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CROSS_COMPILE=y-")
	assert.False(t, errors.Is(err, ErrNoDebugInfo))
}
