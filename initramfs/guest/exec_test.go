package guest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// runExec runs one exec command with a fresh Runner.
func runExec(t *testing.T, b contract.Binary, timeout time.Duration) []event.Event {
	t.Helper()
	rec := &recorder{}
	r := &Runner{Emit: rec.emit, Log: &syncBuffer{}}
	b.Kind, b.Package = contract.KindExec, "exec"
	require.NoError(t, r.Run(context.Background(), &contract.Manifest{Binaries: []contract.Binary{b}, Timeout: contract.Duration(timeout)}))
	return rec.all()
}

// streams joins the output events by stream.
func streams(evs []event.Event) map[string]string {
	out := map[string]string{}
	for _, e := range evs {
		if e.Kind == event.KindOutput {
			out[e.Stream] += string(e.Data)
		}
	}
	return out
}

func exitOf(t *testing.T, evs []event.Event) event.Exit {
	t.Helper()
	for _, e := range evs {
		if e.Kind == event.KindBinaryEnd {
			return *e.Exit
		}
	}
	t.Fatal("no binary-end event")
	return event.Exit{}
}

func TestExecStreamsAndExitCode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "there")
	evs := runExec(t, contract.Binary{Path: "/bin/sh", Dir: dir, Args: []string{"-c", `pwd; echo oops >&2; printf '\377\000'; exit 3`}}, 10*time.Second)
	s := streams(evs)
	assert.Equal(t, dir+"\n\xff\x00", s[event.Stdout], "stdout, byte for byte, in the directory the runner made")
	assert.Equal(t, "oops\n", s[event.Stderr])
	e := exitOf(t, evs)
	assert.Equal(t, 3, e.Code)
	assert.False(t, e.TimedOut)
	assert.Equal(t, event.KindBinaryStart, evs[0].Kind)
}

func TestExecLargeOutputInChunks(t *testing.T) {
	evs := runExec(t, contract.Binary{Path: "/bin/sh", Dir: t.TempDir(), Args: []string{"-c", "head -c 200000 /dev/zero"}}, 10*time.Second)
	n := 0
	for _, e := range evs {
		if e.Kind == event.KindOutput {
			assert.LessOrEqual(t, len(e.Data), outputChunk)
			n++
		}
	}
	assert.Equal(t, bytes.Repeat([]byte{0}, 200000), []byte(streams(evs)[event.Stdout]))
	assert.GreaterOrEqual(t, n, 200000/outputChunk)
}

func TestExecTimeoutKillsTheGroup(t *testing.T) {
	evs := runExec(t, contract.Binary{Path: "/bin/sh", Dir: t.TempDir(), Args: []string{"-c", "echo started; sleep 60 & sleep 60"}}, time.Second)
	e := exitOf(t, evs)
	assert.True(t, e.TimedOut)
	assert.Equal(t, "killed", e.Signal)
	assert.Equal(t, "started\n", streams(evs)[event.Stdout])
}

func TestExecSendsBackTheFilesAsked(t *testing.T) {
	dir := t.TempDir()
	prof, missing := filepath.Join(dir, "cover.out"), filepath.Join(dir, "never.out")
	big := filepath.Join(dir, "big.out")
	evs := runExec(t, contract.Binary{Path: "/bin/sh", Dir: dir, Collect: []string{prof, missing, big},
		Args: []string{"-c", "echo mode: set > cover.out; head -c 100000 /dev/urandom > big.out"}}, 10*time.Second)
	got := map[string][]byte{}
	for _, e := range evs {
		if e.Kind == event.KindFile {
			require.Empty(t, e.Error)
			got[e.Chunk.Path] = append(got[e.Chunk.Path], e.Chunk.Data...)
			assert.Equal(t, "exec", e.Binary)
		}
	}
	assert.Equal(t, "mode: set\n", string(got[prof]))
	want, err := os.ReadFile(big)
	require.NoError(t, err)
	assert.Equal(t, want, got[big], "a file of more than one chunk, whole")
	assert.NotContains(t, got, missing, "a file the command did not write is not sent")
	// The files come after the command's end.
	end := -1
	for i, e := range evs {
		if e.Kind == event.KindBinaryEnd {
			end = i
		}
		if e.Kind == event.KindFile {
			assert.Greater(t, end, -1, "a file event before binary-end")
		}
	}
}

func TestExecCommandThatCannotStart(t *testing.T) {
	evs := runExec(t, contract.Binary{Path: "/no/such/command", Dir: t.TempDir()}, 10*time.Second)
	var errs []string
	for _, e := range evs {
		if e.Kind == event.KindError {
			errs = append(errs, e.Error)
		}
	}
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0], "starting command")
	assert.Equal(t, -1, exitOf(t, evs).Code)
}
