package pipeline

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/coverage"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
)

func TestCoverageFragmentOnlyWithCoverage(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	gcov := filepath.Join(repo, coverage.Fragment)
	for _, on := range []bool{false, true} {
		r := New(Options{Repo: repo, Configs: filepath.Join(repo, "kernel", "configs"), Coverage: on, Stdout: io.Discard})
		f, err := r.fragments(&series.Series{})
		if err != nil {
			t.Fatal(err)
		}
		has := false
		for _, file := range f.Files {
			has = has || file == gcov
		}
		if has != on {
			t.Errorf("Coverage=%v: fragments %v", on, f.Files)
		}
	}
}

func TestCoverageEventsStayOutOfTheResults(t *testing.T) {
	r := New(Options{Stdout: io.Discard})
	if r.takeCoverage(event.Event{Kind: event.KindTest}) {
		t.Error("a test event was taken")
	}
	// Without COVERAGE=1 a stray coverage event is dropped, not recorded.
	if !r.takeCoverage(event.Event{Kind: event.KindCoverage, Chunk: &event.Chunk{Path: "a.gcda", Parts: 1}}) {
		t.Error("coverage event not taken")
	}
	r.cov = &covRun{counters: coverage.NewCounters()}
	r.takeCoverage(event.Event{Kind: event.KindCoverage, Chunk: &event.Chunk{Path: "a.gcda", Parts: 1, Data: []byte("x")}})
	files, err := r.cov.counters.Files()
	if err != nil || string(files["a.gcda"]) != "x" {
		t.Errorf("counters: %q, %v", files, err)
	}
}
