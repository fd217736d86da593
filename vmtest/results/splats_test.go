package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
)

// stamped gives each line a printk timestamp from start on.
func stamped(start float64, lines ...string) string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = fmt.Sprintf("[%12.6f] %s", start+float64(i)/1e6, l)
	}
	return strings.Join(out, "\n")
}

// warningAt is a WARN report in insert_rule (or fn) on the given CPU, PID
// and time.
func warningAt(start float64, cpu, pid int, fn string) string {
	return stamped(start,
		"------------[ cut here ]------------",
		fmt.Sprintf("WARNING: CPU: %d PID: %d at security/landlock/ruleset.c:212 %s+0x2d1/0x310", cpu, pid, fn),
		fmt.Sprintf("CPU: %d UID: 0 PID: %d Comm: landlock.test Not tainted 6.12.0 #1 ", cpu, pid),
		fmt.Sprintf("RIP: 0010:%s+0x2d1/0x310", fn),
		fmt.Sprintf("RSP: 0018:ffffc900004%05x EFLAGS: 00010206", pid),
		"Call Trace:",
		" <TASK>",
		" ? __warn+0x84/0x130",
		" landlock_insert_rule+0x5b/0x90",
		" </TASK>",
		"---[ end trace 0000000000000000 ]---",
	)
}

// scanned is what boot does with a console: the monitor's splats, as
// results.Splat with the kind, test and text only.
func scanned(t *testing.T, tests []string, texts ...string) []Splat {
	t.Helper()
	var out []Splat
	for i, text := range texts {
		cs, err := console.Scan(strings.NewReader(text+"\n"), func() string { return tests[i] })
		require.NoError(t, err)
		require.Len(t, cs, 1)
		out = append(out, Splat{Kind: string(cs[0].Kind), Test: cs[0].Test, Text: cs[0].Text})
	}
	return out
}

// splatRun is a run with five splats of three bugs: a warning in
// insert_rule three times (two tests, then while no test ran), a warning
// in another function, and a panic.
func splatRun(t *testing.T) []Splat {
	return scanned(t,
		[]string{"p TestA", "p TestB", "p TestA", "", "p TestB"},
		warningAt(10, 0, 231, "insert_rule"),
		warningAt(52.75, 1, 1187, "insert_rule"),
		warningAt(60, 1, 240, "insert_layer"),
		warningAt(901.5, 3, 4242, "insert_rule"),
		stamped(950, "Kernel panic - not syncing: Fatal exception", "Kernel Offset: disabled"),
	)
}

func TestDescribeSplats(t *testing.T) {
	splats := splatRun(t)
	d := DescribeSplats(splats)
	require.Len(t, d, len(splats))
	assert.Empty(t, splats[0].Signature, "the input is not changed")

	assert.Equal(t, "WARNING in insert_rule", d[0].Signature)
	assert.Equal(t, console.Fingerprint("WARNING in insert_rule"), d[0].Fingerprint)
	assert.Equal(t, []string{"__warn+0x84/0x130", "landlock_insert_rule+0x5b/0x90"}, d[0].Frames)
	assert.Equal(t, "kernel panic: Fatal exception", d[4].Signature)
	assert.Nil(t, d[4].Frames)
	// What the splat kept is unchanged.
	for i := range d {
		assert.Equal(t, splats[i].Kind, d[i].Kind)
		assert.Equal(t, splats[i].Test, d[i].Test)
		assert.Equal(t, splats[i].Text, d[i].Text)
	}

	// A described splat keeps its description.
	given := []Splat{{Kind: "warning", Text: "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2", Signature: "given", Fingerprint: "0123456789abcdef", Frames: []string{"g+0x1/0x2"}}}
	assert.Equal(t, given, DescribeSplats(given))
	assert.Nil(t, DescribeSplats(nil))
}

func TestGroupSplats(t *testing.T) {
	d := DescribeSplats(splatRun(t))
	assert.Equal(t, d[0].Fingerprint, d[1].Fingerprint, "other time, CPU, PID and registers, same bug")
	assert.Equal(t, d[0].Fingerprint, d[3].Fingerprint)
	assert.NotEqual(t, d[0].Fingerprint, d[2].Fingerprint, "other function, other bug")

	groups := GroupSplats(d)
	assert.Equal(t, []SplatGroup{{
		Signature:   "WARNING in insert_rule",
		Fingerprint: console.Fingerprint("WARNING in insert_rule"),
		Kind:        "warning",
		Count:       3,
		Tests:       []string{"p TestA", "p TestB", ""},
		Splats:      []int{0, 1, 3},
	}, {
		Signature:   "WARNING in insert_layer",
		Fingerprint: console.Fingerprint("WARNING in insert_layer"),
		Kind:        "warning",
		Count:       1,
		Tests:       []string{"p TestA"},
		Splats:      []int{2},
	}, {
		Signature:   "kernel panic: Fatal exception",
		Fingerprint: console.Fingerprint("kernel panic: Fatal exception"),
		Kind:        "panic",
		Count:       1,
		Tests:       []string{"p TestB"},
		Splats:      []int{4},
	}}, groups)

	// Splats not described are grouped the same.
	assert.Equal(t, groups, GroupSplats(splatRun(t)))
	assert.Equal(t, []SplatGroup{}, GroupSplats(nil))
}

func TestSplatGroupsInJSON(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, Metadata{Splats: splatRun(t)}, Report{}, nil))
	var doc struct {
		Metadata struct {
			Splats []map[string]any `json:"splats"`
			Groups []map[string]any `json:"splat_groups"`
		} `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc))
	require.Len(t, doc.Metadata.Splats, 5)
	for _, s := range doc.Metadata.Splats {
		for _, key := range []string{"kind", "test", "text", "signature", "fingerprint"} {
			assert.Contains(t, s, key)
		}
	}
	assert.Equal(t, []any{"__warn+0x84/0x130", "landlock_insert_rule+0x5b/0x90"}, doc.Metadata.Splats[0]["frames"])
	require.Len(t, doc.Metadata.Groups, 3)
	assert.Equal(t, map[string]any{
		"signature":   "WARNING in insert_rule",
		"fingerprint": console.Fingerprint("WARNING in insert_rule"),
		"kind":        "warning",
		"count":       3.0,
		"tests":       []any{"p TestA", "p TestB", ""},
		"splats":      []any{0.0, 1.0, 3.0},
	}, doc.Metadata.Groups[0])
}

func TestPrintEndGroupsSplats(t *testing.T) {
	splats := splatRun(t)
	var buf bytes.Buffer
	md := Metadata{Splats: splats, ExitCode: 3, ExitReason: "kernel splat"}
	PrintEnd(&buf, md, Report{Complete: true, Passed: 2}, "out", nil)
	out := buf.String()

	fp := console.Fingerprint("WARNING in insert_rule")
	assert.Contains(t, out, "\nkernel splat WARNING in insert_rule (warning, fingerprint "+fp+`), 3 times while running "p TestA", "p TestB", (no test):`+"\n")
	assert.Contains(t, out, "\nkernel splat WARNING in insert_layer (warning, fingerprint "+console.Fingerprint("WARNING in insert_layer")+`) while running "p TestA":`+"\n")
	assert.Contains(t, out, "\nkernel splat kernel panic: Fatal exception (panic, fingerprint "+console.Fingerprint("kernel panic: Fatal exception")+`) while running "p TestB":`+"\n")
	assert.Equal(t, 3, strings.Count(out, "\nkernel splat "), "one entry per bug")

	// Each bug quotes its first splat.
	assert.Contains(t, out, "WARNING: CPU: 0 PID: 231 at security/landlock/ruleset.c:212 insert_rule+0x2d1/0x310")
	assert.NotContains(t, out, "PID: 1187")
	assert.Contains(t, out, "WARNING: CPU: 1 PID: 240 at security/landlock/ruleset.c:212 insert_layer+0x2d1/0x310")
	assert.Contains(t, out, "Kernel panic - not syncing: Fatal exception")

	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	assert.Equal(t, "2 passed, 0 failed, 0 skipped", lines[len(lines)-1])
}

func TestSplatGroupWhere(t *testing.T) {
	for _, tc := range []struct {
		tests []string
		want  string
	}{
		{[]string{""}, ""},
		{[]string{"", ""}, ""},
		{[]string{"p TestA"}, ` while running "p TestA"`},
		{[]string{"p TestA", "p TestA", ""}, ` while running "p TestA" (2), (no test)`},
	} {
		assert.Equal(t, tc.want, SplatGroup{Tests: tc.tests}.where(), "%q", tc.tests)
	}
}

func TestWithSources(t *testing.T) {
	splats := []Splat{
		{Kind: "warning", Text: warningAt(1, 0, 231, "insert_rule")},
		{Kind: "warning", Text: warningAt(2, 0, 232, "insert_layer")},
	}
	// "? __warn+0x84/0x130" is a stale address: not worth decoding.
	assert.Equal(t, []string{"landlock_insert_rule+0x5b/0x90"}, AllFrames(splats))

	src := map[string]Frame{
		"landlock_insert_rule+0x5b/0x90": {
			Frame: "landlock_insert_rule+0x5b/0x90", Function: "insert_rule", Source: "security/landlock/ruleset.c:212",
			InlinedBy: []string{"landlock_insert_rule at security/landlock/ruleset.c:300"},
		},
	}
	got := WithSources(splats, func(f string) (Frame, bool) { d, ok := src[f]; return d, ok })
	require.Len(t, got, 2)
	for _, s := range got {
		assert.Equal(t, []Frame{src["landlock_insert_rule+0x5b/0x90"]}, s.Decoded, "the frame without a source is left out")
	}
	assert.Nil(t, splats[0].Decoded, "the input is not changed")

	var buf bytes.Buffer
	PrintEnd(&buf, Metadata{Splats: got, ExitCode: 3, ExitReason: "kernel splat"}, Report{Complete: true}, "out", nil)
	assert.Contains(t, buf.String(), "\ndecoded:\n    landlock_insert_rule+0x5b/0x90 security/landlock/ruleset.c:212 (insert_rule inlined by landlock_insert_rule at security/landlock/ruleset.c:300)\n")

	var js bytes.Buffer
	require.NoError(t, WriteJSON(&js, Metadata{Splats: got}, Report{}, nil))
	var doc Document
	require.NoError(t, json.Unmarshal(js.Bytes(), &doc))
	assert.Equal(t, got[0].Decoded, doc.Metadata.Splats[0].Decoded)
}
