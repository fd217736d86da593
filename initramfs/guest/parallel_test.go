package guest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// span is one binary's run in a stream of binaries side by side: what
// it produced, and where its binary-start and binary-end are.
type span struct {
	run1
	start, end int
}

// byBinary checks that every event of a run with binaries side by side
// names its binary and comes between that binary's binary-start and
// binary-end, and returns each binary's span by package.
func byBinary(t *testing.T, events []event.Event) map[string]*span {
	t.Helper()
	spans := map[string]*span{}
	for i, e := range events {
		require.NotEmpty(t, e.Binary, "event %d names no binary: %+v", i, e)
		s := spans[e.Binary]
		if e.Kind == event.KindBinaryStart {
			require.Nil(t, s, "event %d: %s starts twice", i, e.Binary)
			spans[e.Binary] = &span{run1: run1{pkg: e.Binary}, start: i, end: -1}
			continue
		}
		require.True(t, s != nil && s.end < 0, "event %d (%s) of %s outside its binary's run", i, e.Kind, e.Binary)
		switch e.Kind {
		case event.KindTest:
			s.tests = append(s.tests, *e.Test)
		case event.KindError:
			s.errors = append(s.errors, e.Error)
		case event.KindBinaryEnd:
			s.exit, s.end = *e.Exit, i
		default:
			t.Fatalf("event %d: unexpected kind %q", i, e.Kind)
		}
	}
	for name, s := range spans {
		require.GreaterOrEqual(t, s.end, 0, "%s has no binary-end", name)
	}
	return spans
}

// pairManifest runs pairone and pairtwo (who meet only when they run at
// the same time) and more, Jobs at once.
func pairManifest(t *testing.T, f *fixtureSet, jobs int, wait time.Duration, more ...contract.Binary) *contract.Manifest {
	return &contract.Manifest{
		Jobs:     jobs,
		Binaries: append([]contract.Binary{f.binary("pairone"), f.binary("pairtwo")}, more...),
		Timeout:  contract.Duration(time.Minute),
		Env:      map[string]string{"PAIR_DIR": t.TempDir(), "PAIR_WAIT": wait.String()},
	}
}

// With Jobs above 1 the binaries run at the same time, and each one's
// events stay between its binary-start and binary-end.
func TestRunnerSideBySide(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	mixed := f.binary("mixed")
	events, log, err := run(t, f, pairManifest(t, f, 2, 30*time.Second, mixed))
	require.NoError(t, err)
	spans := byBinary(t, events)
	require.Len(t, spans, 3)
	for _, pkg := range []string{"pairone", "pairtwo"} {
		s := spans[fixtureModule+"/"+pkg]
		require.NotNil(t, s, pkg)
		assert.Equal(t, map[string]string{"TestMeet": "pass", "": "pass"}, results(s.tests), "%s met the other: %s", pkg, output(s.tests))
		assert.Equal(t, 0, s.exit.Code)
	}
	m := spans[mixed.Package]
	assert.Equal(t, map[string]string{"TestPass": "pass", "TestFail": "fail", "TestSkip": "skip", "": "fail"}, results(m.tests))
	assert.Equal(t, 1, m.exit.Code)
	assert.Contains(t, log, "landlock-vmtest: running "+mixed.Package+" (timeout 1m0s)")
}

// With Jobs 1 they run one after another: the pair cannot meet (the
// counterpart of TestRunnerSideBySide, so that it can fail).
func TestRunnerOneAtATime(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	events, _, err := run(t, f, pairManifest(t, f, 1, 500*time.Millisecond))
	require.NoError(t, err)
	runs := split(t, events)
	require.Len(t, runs, 2)
	assert.Equal(t, "fail", results(runs[0].tests)["TestMeet"], "pairone ran alone first")
	assert.Equal(t, "pass", results(runs[1].tests)["TestMeet"], "pairtwo found pairone's mark")
}

// A binary marked Alone starts once every binary before it ended, and the
// next starts once it ended.
func TestRunnerAloneRunsAlone(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	before, alone, after := f.binary("brief"), f.binary("mixed"), f.binary("env")
	alone.Alone = true
	events, log, err := run(t, f, &contract.Manifest{
		Jobs:     2,
		Binaries: []contract.Binary{before, alone, after},
		Timeout:  contract.Duration(time.Minute),
		Env:      map[string]string{"FIXTURE_VALUE": "from-manifest"},
	})
	require.NoError(t, err)
	spans := byBinary(t, events)
	require.Len(t, spans, 3)
	b, a, n := spans[before.Package], spans[alone.Package], spans[after.Package]
	assert.Less(t, b.end, a.start, "the Alone binary started before the one before it ended")
	assert.Less(t, a.end, n.start, "a binary started beside the Alone one")
	assert.Contains(t, log, "landlock-vmtest: "+alone.Package+" runs alone")
}

// Once the result channel broke, no binary starts, and those running run to
// their end (they are not killed); Run says why.
func TestRunnerSideBySideStopsWhenEmitFails(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	rec := &recorder{failOn: func(e event.Event) bool { return e.Kind == event.KindBinaryEnd }, broken: true}
	r := &Runner{Test2JSON: f.test2json, Emit: rec.emit}
	m := &contract.Manifest{
		Jobs:     2,
		Binaries: []contract.Binary{f.binary("crash"), f.binary("brief"), f.binary("env")},
		Timeout:  contract.Duration(time.Minute),
	}
	err := r.Run(context.Background(), m)
	require.ErrorIs(t, err, errEmit)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	ends := map[string]event.Exit{}
	for _, e := range rec.tried {
		switch e.Kind {
		case event.KindBinaryStart:
			assert.NotEqual(t, fixtureModule+"/env", e.Binary, "the fourth binary started after the channel broke")
		case event.KindBinaryEnd:
			ends[e.Binary] = *e.Exit
		}
	}
	// crash kills itself at once: its binary-end is the emit that fails,
	// while brief, beside it, sleeps; brief still runs to its end.
	b := ends[fixtureModule+"/brief"]
	assert.Equal(t, 0, b.Code, "brief ran to its end: %+v", b)
	assert.Empty(t, b.Signal, "brief was killed when crash's emit failed")
}
