package results

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest/ktap"
)

// tapEvents converts kselftest TAP output as the guest runner does.
func tapEvents(t *testing.T, binary, tap string) []event.Event {
	t.Helper()
	var out []event.Event
	conv := ktap.New(binary, func(te event.TestEvent) error {
		out = append(out, event.Event{Kind: event.KindTest, Time: te.Time, Binary: binary, Test: &te})
		return nil
	}, nil)
	sc := bufio.NewScanner(strings.NewReader(tap))
	for sc.Scan() {
		require.NoError(t, conv.Line(sc.Text()))
	}
	_, err := conv.End()
	require.NoError(t, err)
	return out
}

const kselftestTAP = `TAP version 13
1..3
# Starting 3 tests from 2 test cases.
#  RUN           global.ok ...
#            OK  global.ok
ok 1 global.ok
#  RUN           layout2_overlay.no_restriction ...
#      SKIP      overlayfs is not supported (setup)
#            OK  layout2_overlay.no_restriction
ok 2 layout2_overlay.no_restriction # SKIP overlayfs is not supported (setup)
#  RUN           layout1.bad ...
# fs_test.c:99:bad:Expected 0 (0) == err (13)
#          FAIL  layout1.bad
not ok 3 layout1.bad
# FAILED: 2 / 3 tests passed.
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
`

func TestKselftestReport(t *testing.T) {
	const bin = "kselftest/landlock/fs_test"
	r := collect(true, runBinary(bin, tapEvents(t, bin, kselftestTAP), &event.Exit{Code: 1, Seconds: 2})).Report()
	require.Len(t, r.Packages, 1)
	p := r.Packages[0]
	assert.Equal(t, bin, p.Name)
	assert.False(t, p.Crashed, p.Reason)
	assert.Equal(t, StatusFail, p.Status)
	assert.Equal(t, [3]int{1, 1, 1}, [3]int{p.Passed, p.Failed, p.Skipped})
	assert.True(t, r.TestsFailed)
	byName := map[string]Test{}
	for _, tc := range p.Tests {
		byName[tc.Name] = tc
	}
	assert.Equal(t, "overlayfs is not supported (setup)", byName["layout2_overlay.no_restriction"].Note, "the TAP SKIP directive is the reason")
	assert.Contains(t, byName["layout1.bad"].Output, "# fs_test.c:99:bad:Expected 0 (0) == err (13)")

	var ju bytes.Buffer
	require.NoError(t, WriteJUnit(&ju, r))
	assert.Contains(t, ju.String(), `name="layout1.bad"`)
	assert.Contains(t, ju.String(), bin)
}

func TestKselftestCrashed(t *testing.T) {
	const bin = "kselftest/landlock/base_test"
	tap := "TAP version 13\n1..2\n#  RUN  global.one ...\nok 1 global.one\n#  RUN  global.two ...\n"
	r := collect(true, runBinary(bin, tapEvents(t, bin, tap), &event.Exit{Code: -1, Signal: "segmentation fault", Seconds: time.Second.Seconds()})).Report()
	p := r.Packages[0]
	assert.True(t, p.Crashed)
	assert.True(t, r.BinaryCrashed)
	assert.Contains(t, p.Reason, "binary killed by signal segmentation fault")
	for _, tc := range p.Tests {
		if tc.Name == "global.two" {
			assert.Equal(t, StatusFail, tc.Status)
			assert.Contains(t, tc.Note, "test did not finish: binary killed by signal segmentation fault")
		}
	}
}
