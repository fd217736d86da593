package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
)

// A negative RETRY is a usage error, found before anything is built.
func TestRetryNegative(t *testing.T) {
	t.Setenv("RETRY", "-1")
	t.Setenv("ARCH", "")
	t.Setenv("ACCEL", "")
	t.Setenv("ICOUNT", "")
	t.Setenv("RUN", "")
	assert.Equal(t, exitcode.Usage, run([]string{"run"}))
}

// SMP= beyond what the board or the kernel takes, or negative, is a usage
// error, found before anything is built.
func TestSMPOutOfRange(t *testing.T) {
	for _, tc := range []struct{ arch, smp string }{{"", "-1"}, {"", "65"}, {"arm64", "9"}} {
		t.Setenv("RETRY", "")
		t.Setenv("ARCH", tc.arch)
		t.Setenv("ACCEL", "")
		t.Setenv("ICOUNT", "")
		t.Setenv("RUN", "")
		t.Setenv("SMP", tc.smp)
		assert.Equal(t, exitcode.Usage, run([]string{"run"}), "ARCH=%s SMP=%s", tc.arch, tc.smp)
	}
	x86, err := machine.ByName("x86_64")
	require.NoError(t, err)
	arm, err := machine.ByName("arm64")
	require.NoError(t, err)
	for _, n := range []int{0, 1, 64} {
		assert.NoError(t, checkCPUs(n, x86), "x86_64 SMP=%d", n)
	}
	assert.NoError(t, checkCPUs(8, arm))
	assert.ErrorContains(t, checkCPUs(65, x86), "1 to 64")
	assert.ErrorContains(t, checkCPUs(9, arm), "the arm64 guest's vCPUs, 1 to 8")
}

// parse decodes a saved log's frames with the faddr2line of the tree given
// by --source; a stand-in script answers for every frame (the real one is
// run by the DEBUG=1 e2e tests).
func TestParseDecodes(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "scripts"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "scripts", "faddr2line"), []byte(`#!/bin/sh
shift
for f in "$@"; do echo "$f:"; echo "${f%%+*} at drivers/x.c:1"; echo; done
`), 0o755))
	var out bytes.Buffer
	code := parse([]string{"../../console/testdata/lkdtm-warning.log", "--vmlinux", "/nonexistent/vmlinux", "--source", src, "--arch", "x86_64"}, &out)
	assert.Equal(t, exitcode.KernelCrashed, code)
	assert.Contains(t, out.String(), "WARNING in lkdtm_WARNING (warning, fingerprint ")
	assert.Contains(t, out.String(), "decoded:\n    lkdtm_do_action+0x18/0x1b drivers/x.c:1\n")
	assert.Contains(t, out.String(), "1 splat(s), 1 failing\n")
}

func TestParseUsage(t *testing.T) {
	var out bytes.Buffer
	assert.Equal(t, exitcode.Usage, parse(nil, &out))
	assert.Equal(t, exitcode.Usage, parse([]string{"a.log", "b.log"}, &out))
	assert.Equal(t, exitcode.Usage, parse([]string{"../../console/testdata/lkdtm-warning.log", "--vmlinux", "/x/vmlinux"}, &out), "no faddr2line beside it")
}
