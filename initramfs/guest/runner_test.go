package guest

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// recorder collects the events a Runner emits.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
	// failOn, when set, makes Emit fail for the first event it matches.
	failOn func(event.Event) bool
	// broken makes every Emit after the first failure fail too, like a
	// result channel that went away.
	broken bool
	failed bool
	// tried are all the events Emit was given, sent or not.
	tried []event.Event
}

var errEmit = errors.New("result channel broken")

func (r *recorder) emit(e event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tried = append(r.tried, e)
	if r.failed && r.broken {
		return errEmit
	}
	if r.failOn != nil && !r.failed && r.failOn(e) {
		r.failed = true
		return errEmit
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) all() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// run runs m with a fresh Runner and returns the events and the log.
func run(t *testing.T, f *fixtureSet, m *contract.Manifest) ([]event.Event, string, error) {
	t.Helper()
	rec := &recorder{}
	var log syncBuffer
	r := &Runner{Test2JSON: f.test2json, Emit: rec.emit, Log: &log}
	err := r.Run(context.Background(), m)
	return rec.all(), log.String(), err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run1 is what one binary produced, between its start and end events.
type run1 struct {
	pkg    string
	tests  []event.TestEvent
	errors []string
	exit   event.Exit
}

// split checks that events come as binary-start, test and error events,
// binary-end for each binary in turn, every one naming its binary, and
// returns them per binary.
func split(t *testing.T, events []event.Event) []run1 {
	t.Helper()
	var out []run1
	var cur *run1
	for i, e := range events {
		assert.False(t, e.Time.IsZero(), "event %d has no time", i)
		switch e.Kind {
		case event.KindBinaryStart:
			require.Nil(t, cur, "event %d: binary-start for %s while %v is running", i, e.Binary, cur)
			cur = &run1{pkg: e.Binary}
		case event.KindTest:
			require.NotNil(t, cur, "event %d: test event outside a binary", i)
			require.Equal(t, cur.pkg, e.Binary, "event %d", i)
			require.NotNil(t, e.Test, "event %d: test event without a test", i)
			cur.tests = append(cur.tests, *e.Test)
		case event.KindError:
			require.NotNil(t, cur, "event %d: error outside a binary", i)
			require.Equal(t, cur.pkg, e.Binary, "event %d", i)
			cur.errors = append(cur.errors, e.Error)
		case event.KindBinaryEnd:
			require.NotNil(t, cur, "event %d: binary-end without a start", i)
			require.Equal(t, cur.pkg, e.Binary, "event %d", i)
			require.NotNil(t, e.Exit, "event %d: binary-end without exit", i)
			cur.exit = *e.Exit
			out = append(out, *cur)
			cur = nil
		default:
			t.Fatalf("event %d: unexpected kind %q", i, e.Kind)
		}
	}
	require.Nil(t, cur, "the last binary has no binary-end")
	return out
}

// results maps test name → final action (pass, fail, skip).
func results(tests []event.TestEvent) map[string]string {
	m := map[string]string{}
	for _, te := range tests {
		switch te.Action {
		case "pass", "fail", "skip":
			m[te.Test] = te.Action
		}
	}
	return m
}

// actions lists the test events' actions.
func actions(tests []event.TestEvent) []string {
	var out []string
	for _, te := range tests {
		out = append(out, te.Action)
	}
	return out
}

// output concatenates the output events.
func output(tests []event.TestEvent) string {
	var b strings.Builder
	for _, te := range tests {
		if te.Action == "output" {
			b.WriteString(te.Output)
		}
	}
	return b.String()
}

func TestRunnerRunsBinariesInOrder(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	mixed, crash := f.binary("mixed"), f.binary("crash")
	events, log, err := run(t, f, &contract.Manifest{Jobs: 1, Binaries: []contract.Binary{mixed, crash}, Timeout: contract.Duration(time.Minute)})
	require.NoError(t, err)
	runs := split(t, events)
	require.Len(t, runs, 2)

	m := runs[0]
	assert.Equal(t, mixed.Package, m.pkg)
	assert.Empty(t, m.errors)
	for _, te := range m.tests {
		assert.Equal(t, mixed.Package, te.Package, "test2json -p names the package")
	}
	assert.Equal(t, map[string]string{"TestPass": "pass", "TestFail": "fail", "TestSkip": "skip", "": "fail"}, results(m.tests))
	assert.Equal(t, "start", m.tests[0].Action, "test2json's first event")
	assert.Contains(t, output(m.tests), "failing on purpose")
	assert.Equal(t, 1, m.exit.Code)
	assert.Empty(t, m.exit.Signal)
	assert.False(t, m.exit.TimedOut)
	assert.Greater(t, m.exit.Seconds, 0.0)

	c := runs[1]
	assert.Equal(t, crash.Package, c.pkg)
	assert.Empty(t, c.errors)
	assert.Contains(t, output(c.tests), "about to die")
	assert.NotContains(t, results(c.tests), "TestKill", "a killed test never ends")
	assert.Equal(t, -1, c.exit.Code)
	assert.Equal(t, "killed", c.exit.Signal)
	assert.False(t, c.exit.TimedOut)

	assert.Contains(t, log, "landlock-vmtest: running "+mixed.Package+" (timeout 1m0s)")
	assert.Contains(t, log, "landlock-vmtest: "+mixed.Package+" ended: exit status 1 after")
	assert.Contains(t, log, "landlock-vmtest: "+crash.Package+" ended: killed by signal killed after")
	assert.Less(t, strings.Index(log, mixed.Package+" ended"), strings.Index(log, "running "+crash.Package))
}

func TestRunnerTimeout(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	sleepy := f.binary("sleepy")
	begin := time.Now()
	events, log, err := run(t, f, &contract.Manifest{Binaries: []contract.Binary{sleepy}, Timeout: contract.Duration(2 * time.Second)})
	require.NoError(t, err)
	// Go's -test.timeout fires at 2s; the runner's own kill would come
	// 10s later.
	assert.Less(t, time.Since(begin), 2*time.Second+killGrace, "the binary's own -test.timeout should have ended it")
	runs := split(t, events)
	require.Len(t, runs, 1)
	r := runs[0]
	assert.True(t, r.exit.TimedOut, "exit %+v", r.exit)
	assert.Equal(t, 2, r.exit.Code, "Go's timeout panic exits with status 2")
	assert.Empty(t, r.exit.Signal)
	assert.GreaterOrEqual(t, r.exit.Seconds, 2.0)
	assert.Contains(t, output(r.tests), "panic: test timed out after 2s")
	assert.Contains(t, log, sleepy.Package+" ended: timed out after")
}

func TestRunnerPassesEnvArgsAndDir(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	env := f.binary("env")
	events, _, err := run(t, f, &contract.Manifest{
		Binaries: []contract.Binary{env},
		Timeout:  contract.Duration(time.Minute),
		Args:     []string{"-test.run=^TestEnv$"},
		Env:      map[string]string{"FIXTURE_VALUE": "from-manifest"},
	})
	require.NoError(t, err)
	runs := split(t, events)
	require.Len(t, runs, 1)
	assert.Equal(t, map[string]string{"TestEnv": "pass", "": "pass"}, results(runs[0].tests), "output:\n%s", output(runs[0].tests))
	assert.Equal(t, 0, runs[0].exit.Code)
	assert.False(t, runs[0].exit.TimedOut)
}

// Without the manifest's Env and Args the same binary fails: the test
// above is not passing by accident.
func TestRunnerWithoutEnvAndArgs(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	events, _, err := run(t, f, &contract.Manifest{Binaries: []contract.Binary{f.binary("env")}, Timeout: contract.Duration(time.Minute)})
	require.NoError(t, err)
	runs := split(t, events)
	require.Len(t, runs, 1)
	assert.Equal(t, map[string]string{"TestEnv": "fail", "TestOther": "fail", "": "fail"}, results(runs[0].tests))
	out := output(runs[0].tests)
	assert.Contains(t, out, `FIXTURE_VALUE = ""`)
	assert.NotContains(t, out, "LANDLOCK_VMTEST_GUEST =", "the runner sets the guest marker")
	assert.Equal(t, 1, runs[0].exit.Code)
}

func TestRunnerWrongDirectory(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	env := f.binary("env")
	env.Dir = f.src // no testdata/marker.txt there
	events, _, err := run(t, f, &contract.Manifest{
		Binaries: []contract.Binary{env},
		Timeout:  contract.Duration(time.Minute),
		Args:     []string{"-test.run=^TestEnv$"},
		Env:      map[string]string{"FIXTURE_VALUE": "from-manifest"},
	})
	require.NoError(t, err)
	runs := split(t, events)
	require.Len(t, runs, 1)
	assert.Contains(t, output(runs[0].tests), "testdata not found from the working directory")
	assert.Equal(t, 1, runs[0].exit.Code)
}

func TestRunnerMissingBinary(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	missing := contract.Binary{Package: "example.com/missing", Path: filepath.Join(t.TempDir(), "missing.test"), Dir: t.TempDir()}
	mixed := f.binary("mixed")
	events, log, err := run(t, f, &contract.Manifest{Jobs: 1, Binaries: []contract.Binary{missing, mixed}, Timeout: contract.Duration(time.Minute)})
	require.NoError(t, err, "a binary that cannot start is a result, not a runner error")
	runs := split(t, events)
	require.Len(t, runs, 2, "the next binary still runs")

	m := runs[0]
	assert.Equal(t, "example.com/missing", m.pkg)
	require.Len(t, m.errors, 1)
	assert.Contains(t, m.errors[0], "starting test binary")
	assert.Contains(t, m.errors[0], "missing.test")
	assert.Equal(t, -1, m.exit.Code)
	assert.False(t, m.exit.TimedOut)
	assert.Empty(t, m.exit.Signal)
	assert.Contains(t, log, "landlock-vmtest: example.com/missing: starting test binary")
	// The error event comes between the start and the end (test2json,
	// given no input, still says the package started).
	var kinds []event.Kind
	for _, e := range events {
		if e.Binary == missing.Package {
			kinds = append(kinds, e.Kind)
		}
	}
	assert.Equal(t, []event.Kind{event.KindBinaryStart, event.KindTest, event.KindError, event.KindBinaryEnd}, kinds)
	assert.Equal(t, []string{"start"}, actions(m.tests))

	assert.Equal(t, mixed.Package, runs[1].pkg)
	assert.Equal(t, 1, runs[1].exit.Code)
}

func TestRunnerMissingTest2JSON(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	rec := &recorder{}
	r := &Runner{Test2JSON: filepath.Join(t.TempDir(), "no-test2json"), Emit: rec.emit}
	require.NoError(t, r.Run(context.Background(), &contract.Manifest{Binaries: []contract.Binary{f.binary("mixed")}, Timeout: contract.Duration(time.Minute)}))
	runs := split(t, rec.all())
	require.Len(t, runs, 1)
	require.Len(t, runs[0].errors, 1)
	assert.Contains(t, runs[0].errors[0], "starting test2json")
	assert.Equal(t, -1, runs[0].exit.Code)
	assert.Empty(t, runs[0].tests)
}

func TestRunnerStopsWhenEmitFails(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	mixed, crash := f.binary("mixed"), f.binary("crash")
	m := &contract.Manifest{Jobs: 1, Binaries: []contract.Binary{mixed, crash}, Timeout: contract.Duration(time.Minute)}

	for _, tc := range []struct {
		name   string
		failOn func(event.Event) bool
	}{
		{"binary-start", func(e event.Event) bool { return e.Kind == event.KindBinaryStart }},
		{"test", func(e event.Event) bool { return e.Kind == event.KindTest }},
		{"binary-end", func(e event.Event) bool { return e.Kind == event.KindBinaryEnd }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{failOn: tc.failOn, broken: true}
			r := &Runner{Test2JSON: f.test2json, Emit: rec.emit}
			err := r.Run(context.Background(), m)
			require.ErrorIs(t, err, errEmit)
			for _, e := range rec.all() {
				assert.Equal(t, mixed.Package, e.Binary, "nothing runs after an emit error: %+v", e)
			}
		})
	}
}

// An emit that fails once while a binary's output is forwarded is
// reported as an error of that binary, and the run goes on.
func TestRunnerTransientEmitError(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	mixed, crash := f.binary("mixed"), f.binary("crash")
	rec := &recorder{failOn: func(e event.Event) bool { return e.Kind == event.KindTest }}
	r := &Runner{Test2JSON: f.test2json, Emit: rec.emit}
	require.NoError(t, r.Run(context.Background(), &contract.Manifest{Jobs: 1, Binaries: []contract.Binary{mixed, crash}, Timeout: contract.Duration(time.Minute)}))
	runs := split(t, rec.all())
	require.Len(t, runs, 2)
	assert.Equal(t, []string{errEmit.Error()}, runs[0].errors)
	assert.Empty(t, runs[0].tests, "forwarding stops at the first emit error")
	assert.Equal(t, 1, runs[0].exit.Code, "the binary still ran to its end")
	assert.Equal(t, "killed", runs[1].exit.Signal)
}

func TestRunnerCancelled(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := &recorder{}
	r := &Runner{Test2JSON: f.test2json, Emit: rec.emit}
	err := r.Run(ctx, &contract.Manifest{Jobs: 1, Binaries: []contract.Binary{f.binary("mixed"), f.binary("crash")}, Timeout: contract.Duration(time.Minute)})
	require.ErrorIs(t, err, context.Canceled)
	runs := split(t, rec.all())
	require.Len(t, runs, 1, "no binary after the first once the context is done")
	assert.Equal(t, -1, runs[0].exit.Code)
	require.Len(t, runs[0].errors, 1)
	assert.Contains(t, runs[0].errors[0], "starting test binary")
}

func TestDescribe(t *testing.T) {
	assert.Equal(t, "timed out after 2.5s", describe(event.Exit{Code: 2, TimedOut: true, Seconds: 2.5}))
	assert.Equal(t, "killed by signal killed after 1.0s", describe(event.Exit{Code: -1, Signal: "killed", Seconds: 1}))
	assert.Equal(t, "exit status 0 after 0.2s", describe(event.Exit{Seconds: 0.2}))
}

func TestForwardWrapsNonJSONLines(t *testing.T) {
	rec := &recorder{}
	r := &Runner{Emit: rec.emit}
	in := `{"Action":"run","Package":"p","Test":"TestA"}` + "\n" +
		"not json at all\n" +
		`{"Action":"output","Package":"p","Test":"TestA","Output":"panic: test timed out after 5s\n"}` + "\n"
	timedOut, err := r.forward(strings.NewReader(in), "p", nil)
	require.NoError(t, err)
	assert.True(t, timedOut)
	events := rec.all()
	require.Len(t, events, 3)
	assert.Equal(t, "run", events[0].Test.Action)
	assert.Equal(t, "TestA", events[0].Test.Test)
	assert.Equal(t, event.TestEvent{Time: events[1].Test.Time, Action: "output", Package: "p", Output: "not json at all\n"}, *events[1].Test)
	for _, e := range events {
		assert.Equal(t, event.KindTest, e.Kind)
		assert.Equal(t, "p", e.Binary)
	}

	timedOut, err = r.forward(strings.NewReader(`{"Action":"output","Output":"all good\n"}`+"\n"), "p", nil)
	require.NoError(t, err)
	assert.False(t, timedOut)
}

func TestForwardKeepsReadingAfterEmitError(t *testing.T) {
	rec := &recorder{failOn: func(event.Event) bool { return true }}
	r := &Runner{Emit: rec.emit}
	in := strings.Repeat(`{"Action":"output","Output":"x\n"}`+"\n", 3) +
		`{"Action":"output","Output":"panic: test timed out after 1s\n"}` + "\n"
	timedOut, err := r.forward(strings.NewReader(in), "p", nil)
	require.ErrorIs(t, err, errEmit)
	assert.True(t, timedOut, "the output is drained (so the binary never blocks) and still scanned")
	assert.Len(t, rec.all(), 0, "no event is emitted after the first failure")
}

// A binary that leaves a child holding its output must not keep the runner
// waiting: the child in its process group is killed with it, and one that
// left the group only delays the end by drainGrace.
func TestRunnerLeftoverChildren(t *testing.T) {
	t.Parallel()
	f := fixture(t)
	lo := f.binary("leftover")
	for _, tc := range []struct {
		name string
		env  map[string]string
		max  time.Duration
	}{
		{"in the process group", nil, drainGrace},
		{"in its own session", map[string]string{"LEFTOVER_SESSION": "1"}, drainGrace + 10*time.Second},
	} {
		begin := time.Now()
		events, _, err := run(t, f, &contract.Manifest{Binaries: []contract.Binary{lo}, Timeout: contract.Duration(time.Minute), Env: tc.env})
		require.NoError(t, err, tc.name)
		took := time.Since(begin)
		assert.Less(t, took, tc.max, "%s: the runner waited for a leftover child", tc.name)
		runs := split(t, events)
		require.Len(t, runs, 1)
		assert.Equal(t, 0, runs[0].exit.Code, tc.name)
		assert.Equal(t, "pass", results(runs[0].tests)["TestInGroup"], tc.name)
	}
}
