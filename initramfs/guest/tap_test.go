package guest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// script writes a shell script standing in for a kselftest binary.
func script(t *testing.T, dir, name, body string) contract.Binary {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
	return contract.Binary{Package: "kselftest/fake/" + name, Path: p, Dir: dir, Kind: contract.KindKselftest}
}

func runTAP(t *testing.T, m *contract.Manifest) ([]run1, string) {
	t.Helper()
	rec := &recorder{}
	var log syncBuffer
	r := &Runner{Test2JSON: "/nonexistent/test2json", Emit: rec.emit, Log: &log}
	require.NoError(t, r.Run(context.Background(), m))
	return split(t, rec.all()), log.String()
}

func TestRunnerKselftest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "helper"), []byte("here\n"), 0o644))
	mixed := script(t, dir, "mixed_test", `
echo "TAP version 13"
echo "1..3"
echo "#  RUN           fixture.pass ..."
test -f ./helper || echo "# helper not in the working directory"
test "$LANDLOCK_VMTEST_GUEST" = 1 || echo "# no guest marker"
echo "#            OK  fixture.pass"
echo "ok 1 fixture.pass"
echo "#  RUN           fixture.fail ..."
echo "# mixed_test.c:12:fail:Expected 0 (0) == ret (-1)" >&2
echo "not ok 2 fixture.fail"
echo "#  RUN           fixture.skip ..."
echo "#      SKIP      not here" >&2
echo "ok 3 fixture.skip # SKIP not here"
echo "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0"
exit 1
`)
	skipped := script(t, dir, "skipped_test", "echo 'TAP version 13'; echo '1..0 # SKIP no Landlock'; exit 4\n")
	crash := script(t, dir, "crash_test", "echo 'TAP version 13'; echo '1..2'; echo '#  RUN  a.one ...'; kill -SEGV $$\n")

	runs, log := runTAP(t, &contract.Manifest{
		Jobs:     1,
		Binaries: []contract.Binary{mixed, skipped, crash},
		Timeout:  contract.Duration(time.Minute),
		Args:     []string{"-test.run=Go-only"},
	})
	require.Len(t, runs, 3)

	m := runs[0]
	assert.Empty(t, m.errors)
	assert.Equal(t, map[string]string{"fixture.pass": "pass", "fixture.fail": "fail", "fixture.skip": "skip", "": "fail"}, results(m.tests))
	assert.NotContains(t, output(m.tests), "helper not in the working directory")
	assert.NotContains(t, output(m.tests), "no guest marker")
	assert.Contains(t, output(m.tests), "mixed_test.c:12:fail:Expected", "stderr is read too")
	for _, te := range m.tests {
		assert.Equal(t, mixed.Package, te.Package)
		if te.Action == "output" && te.Output == "# mixed_test.c:12:fail:Expected 0 (0) == ret (-1)\n" {
			assert.Equal(t, "fixture.fail", te.Test)
		}
	}
	assert.Equal(t, 1, m.exit.Code)

	s := runs[1]
	assert.Equal(t, map[string]string{"": "skip"}, results(s.tests))
	assert.Equal(t, 0, s.exit.Code, "KSFT_SKIP is counted as success")
	assert.Contains(t, log, "kselftest/fake/skipped_test exited with KSFT_SKIP (4)")

	c := runs[2]
	assert.Equal(t, "segmentation fault", c.exit.Signal)
	assert.Equal(t, -1, c.exit.Code)
	assert.Equal(t, []string{"output", "output", "run", "output", "output", "fail"}, actions(c.tests))
	assert.Contains(t, log, "kselftest/fake/crash_test ended: killed by signal segmentation fault")
}

func TestRunnerKselftestTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sleepy := script(t, dir, "sleepy_test", "echo 'TAP version 13'; echo '1..1'; echo '#  RUN  a.sleep ...'; sleep 60\n")
	begin := time.Now()
	runs, log := runTAP(t, &contract.Manifest{Binaries: []contract.Binary{sleepy}, Timeout: contract.Duration(time.Second)})
	assert.Less(t, time.Since(begin), 20*time.Second)
	require.Len(t, runs, 1)
	assert.True(t, runs[0].exit.TimedOut)
	assert.Equal(t, "killed", runs[0].exit.Signal)
	assert.Contains(t, log, "sleepy_test ended: timed out after")
}

func TestRunnerKselftestMissing(t *testing.T) {
	t.Parallel()
	b := contract.Binary{Package: "kselftest/fake/missing", Path: filepath.Join(t.TempDir(), "missing"), Dir: t.TempDir(), Kind: contract.KindKselftest}
	runs, _ := runTAP(t, &contract.Manifest{Binaries: []contract.Binary{b}, Timeout: contract.Duration(time.Minute)})
	require.Len(t, runs, 1)
	require.Len(t, runs[0].errors, 1)
	assert.Contains(t, runs[0].errors[0], "starting kselftest binary")
}

func TestRunnerUnknownKind(t *testing.T) {
	t.Parallel()
	b := contract.Binary{Package: "p", Path: "/bin/true", Dir: "/", Kind: "rust"}
	runs, _ := runTAP(t, &contract.Manifest{Binaries: []contract.Binary{b}, Timeout: contract.Duration(time.Minute)})
	require.Len(t, runs, 1)
	assert.Equal(t, []string{`unknown kind of test binary "rust"`}, runs[0].errors)
	assert.Equal(t, event.Exit{Code: -1, Seconds: runs[0].exit.Seconds}, runs[0].exit)
}
