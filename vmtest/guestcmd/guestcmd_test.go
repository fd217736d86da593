package guestcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
)

func TestStatus(t *testing.T) {
	var said []string
	msg := func(f string, a ...any) { said = append(said, f) }
	for _, tc := range []struct {
		exit event.Exit
		want int
	}{
		{event.Exit{Code: 0}, 0},
		{event.Exit{Code: 3}, 3},
		{event.Exit{Code: -1, Signal: "segmentation fault"}, 128 + 11},
		{event.Exit{Code: -1, Signal: "killed"}, 128 + 9},
		{event.Exit{Code: -1, Signal: "no such signal"}, int(exitcode.TestCrashed)},
		{event.Exit{Code: -1, Signal: "killed", TimedOut: true}, int(exitcode.TestCrashed)},
		{event.Exit{Code: -1}, NotFound},
	} {
		s := &stream{exit: &tc.exit}
		assert.Equal(t, tc.want, s.status(msg), "%+v", tc.exit)
	}
	assert.Len(t, said, 2, "the timeout and the unknown signal are explained")
}

func TestTestTimeout(t *testing.T) {
	assert.Equal(t, 10*time.Minute+timeoutGrace, testTimeout([]string{"-test.paniconexit0", "-test.timeout=10m0s"}))
	assert.Equal(t, 24*time.Hour, testTimeout([]string{"-test.timeout=0s"}), "no limit is not the harness's 60 s")
	assert.Zero(t, testTimeout([]string{"-c", "true"}))
	assert.Zero(t, testTimeout([]string{"-test.timeout=soon"}))
}

func TestStreamWritesOnlyTheFilesAsked(t *testing.T) {
	dir := t.TempDir()
	asked, other := filepath.Join(dir, "cover.out"), filepath.Join(dir, "evil")
	var out, errOut bytes.Buffer
	s := &stream{stdout: &out, stderr: &errOut, collect: []string{asked}, files: map[string][]byte{}}
	assert.True(t, s.event(event.Event{Kind: event.KindOutput, Stream: event.Stdout, Data: []byte("a")}))
	assert.True(t, s.event(event.Event{Kind: event.KindOutput, Stream: event.Stderr, Data: []byte("b")}))
	s.event(event.Event{Kind: event.KindFile, Chunk: &event.Chunk{Path: asked, Part: 0, Parts: 2, Data: []byte("mode: ")}})
	_, err := os.Stat(asked)
	assert.True(t, os.IsNotExist(err), "written only once whole")
	s.event(event.Event{Kind: event.KindFile, Chunk: &event.Chunk{Path: asked, Part: 1, Parts: 2, Data: []byte("set\n")}})
	s.event(event.Event{Kind: event.KindFile, Chunk: &event.Chunk{Path: other, Parts: 1, Data: []byte("x")}})
	b, err := os.ReadFile(asked)
	require.NoError(t, err)
	assert.Equal(t, "mode: set\n", string(b))
	assert.NoFileExists(t, other, "a path the command's flags do not name")
	assert.Len(t, s.problems, 1)
	assert.Equal(t, "a", out.String())
	assert.Equal(t, "b", errOut.String())
	assert.False(t, s.event(event.Event{Kind: event.KindBinaryEnd, Exit: &event.Exit{Code: 4}}), "the results see how it ended")
	assert.Equal(t, 4, s.exit.Code)
}
