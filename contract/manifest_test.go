package contract

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Duration(90 * time.Second))
	require.NoError(t, err)
	assert.Equal(t, `"1m30s"`, string(b))

	var d Duration
	require.NoError(t, json.Unmarshal([]byte(`"250ms"`), &d))
	assert.Equal(t, Duration(250*time.Millisecond), d)

	assert.ErrorContains(t, json.Unmarshal([]byte(`90`), &d), "duration")
	assert.ErrorContains(t, json.Unmarshal([]byte(`"soon"`), &d), "duration")
	assert.Equal(t, Duration(250*time.Millisecond), d, "a failed read leaves the value alone")
}

func TestManifestRoundTrip(t *testing.T) {
	m := Manifest{
		Binaries: []Binary{
			{Package: "example.com/a", Path: "/tests/00/00-a.test", Dir: "/tests/00"},
			{Package: "example.com/b", Path: "/tests/01/01-b.test", Dir: "/tests/01"},
		},
		Timeout: Duration(5 * time.Minute),
		Args:    []string{"-test.run=^TestX$", "-test.count=1"},
		Retry:   2,
		Env:     map[string]string{"A": "1", ReleaseEnv: "6.12.0"},
	}
	b, err := json.MarshalIndent(m, "", "  ")
	require.NoError(t, err)

	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Equal(t, "5m0s", raw["timeout"])
	assert.Contains(t, raw, "binaries")
	assert.Contains(t, raw, "args")
	assert.Contains(t, raw, "env")
	assert.Equal(t, 2.0, raw["retry"])

	p := filepath.Join(t.TempDir(), "manifest.json")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	got, err := ReadManifest(p)
	require.NoError(t, err)
	assert.Equal(t, m, *got)

	// Args, Retry and Env are optional and left out when empty.
	b, err = json.Marshal(Manifest{Timeout: Duration(time.Second)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"binaries":null,"timeout":"1s"}`, string(b))
}

func TestReadManifestErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}

	_, err := ReadManifest(filepath.Join(dir, "absent.json"))
	assert.ErrorContains(t, err, "reading test manifest")
	assert.ErrorIs(t, err, os.ErrNotExist)

	p := write("bad.json", `{"binaries": [`)
	_, err = ReadManifest(p)
	assert.ErrorContains(t, err, "parsing test manifest "+p)

	_, err = ReadManifest(write("badtimeout.json", `{"timeout": "forever"}`))
	assert.ErrorContains(t, err, "duration")

	for name, content := range map[string]string{
		"zero.json":     `{"binaries": [], "timeout": "0s"}`,
		"negative.json": `{"binaries": [], "timeout": "-1m"}`,
		"absent.json2":  `{"binaries": []}`,
	} {
		p := write(name, content)
		_, err := ReadManifest(p)
		assert.ErrorContains(t, err, "per-binary timeout must be positive", name)
		assert.ErrorContains(t, err, p, name)
	}

	m, err := ReadManifest(write("ok.json", `{"binaries": [{"package": "p", "path": "/x", "dir": "/"}], "timeout": "1s"}`))
	require.NoError(t, err)
	assert.Equal(t, Duration(time.Second), m.Timeout)
	assert.Equal(t, []Binary{{Package: "p", Path: "/x", Dir: "/"}}, m.Binaries)
}
