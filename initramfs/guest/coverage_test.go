package guest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

func TestSendCoverage(t *testing.T) {
	dir := t.TempDir()
	obj := filepath.Join(dir, "root/build/K/kernel")
	if err := os.MkdirAll(obj, 0o755); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789"), ChunkSize/10*2+7) // three chunks
	if err := os.WriteFile(filepath.Join(obj, "seccomp.gcda"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(obj, "fork.gcda"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// debugfs shows the .gcno files as symbolic links: not sent.
	if err := os.Symlink("/nowhere/fork.gcno", filepath.Join(obj, "fork.gcno")); err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	n, err := SendCoverage(dir, func(ev event.Event) error { evs = append(evs, ev); return nil })
	if err != nil || n != 2 {
		t.Fatalf("SendCoverage = %d, %v", n, err)
	}
	got := map[string][]byte{}
	for _, ev := range evs {
		if ev.Kind != event.KindCoverage || ev.Chunk == nil || ev.Error != "" {
			t.Fatalf("unexpected event %+v", ev)
		}
		if len(ev.Chunk.Data) > ChunkSize {
			t.Errorf("chunk of %d bytes", len(ev.Chunk.Data))
		}
		got[ev.Chunk.Path] = append(got[ev.Chunk.Path], ev.Chunk.Data...)
	}
	if len(evs) != 4 {
		t.Errorf("%d events, want 3 chunks + 1", len(evs))
	}
	if !bytes.Equal(got["root/build/K/kernel/seccomp.gcda"], big) {
		t.Error("seccomp.gcda did not round-trip")
	}
	if _, ok := got["root/build/K/kernel/fork.gcda"]; !ok {
		t.Error("empty fork.gcda not sent")
	}
}

func TestSendCoverageNothing(t *testing.T) {
	var evs []event.Event
	n, err := SendCoverage(filepath.Join(t.TempDir(), "gcov"), func(ev event.Event) error { evs = append(evs, ev); return nil })
	if err != nil || n != 0 {
		t.Fatalf("SendCoverage = %d, %v", n, err)
	}
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Error, "no .gcda file") {
		t.Errorf("events %+v: want an error event", evs)
	}
	boom := errors.New("channel closed")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.gcda"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := SendCoverage(dir, func(event.Event) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("emit error not returned: %v", err)
	}
}
