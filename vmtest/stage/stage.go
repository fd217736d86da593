// Package stage times and reports the stages of a run, the way kunit_tool
// does: each stage is a function from its request to a typed result, and
// Run wraps it into a Result with a status and a duration, printed as
//
//	==> name
//	<== name: ok (1.2s) note
//
// and kept (Log.Stages) for results.json.
package stage

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/results"
)

// Status is a stage's outcome.
type Status string

// The statuses.
const (
	OK     Status = "ok"
	Failed Status = "fail"
)

// Result is what a stage ended with.
type Result struct {
	Name    string
	Status  Status
	Elapsed time.Duration
	// Note is the stage's one-line account ("cached", "3 patch(es)
	// applied").
	Note string
	// Err is the stage's failure, nil when Status is OK.
	Err error
}

// Log prints the stages of a run as they start and end and keeps their
// records. It is safe for concurrent use (a stage may end on the event
// path of the VM).
type Log struct {
	w      io.Writer
	mu     sync.Mutex
	stages []results.Stage
}

// NewLog returns a Log printing to w.
func NewLog(w io.Writer) *Log { return &Log{w: w} }

// Stages are the records of the stages that ended, in order.
func (l *Log) Stages() []results.Stage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]results.Stage(nil), l.stages...)
}

// Begin prints that a stage starts and returns the function that ends it.
func (l *Log) Begin(name string) func(err error, note string) Result {
	fmt.Fprintf(l.w, "==> %s\n", name)
	start := time.Now()
	return func(err error, note string) Result {
		r := Result{Name: name, Status: OK, Elapsed: time.Since(start), Note: note, Err: err}
		if err != nil {
			r.Status = Failed
		}
		l.mu.Lock()
		l.stages = append(l.stages, results.Stage{Name: name, Seconds: r.Elapsed.Seconds(), Status: string(r.Status)})
		l.mu.Unlock()
		line := fmt.Sprintf("<== %s: %s (%.1fs)", name, r.Status, r.Elapsed.Seconds())
		if note != "" {
			line += " " + note
		}
		fmt.Fprintln(l.w, line)
		return r
	}
}

// Run runs fn as the stage name: fn returns the stage's typed output, its
// note and its error.
func Run[T any](l *Log, name string, fn func() (T, string, error)) (T, Result) {
	end := l.Begin(name)
	v, note, err := fn()
	return v, end(err, note)
}

// Do runs fn as the stage name, for a stage whose only output is its
// effect: fn returns the note and the error.
func Do(l *Log, name string, fn func() (string, error)) Result {
	end := l.Begin(name)
	note, err := fn()
	return end(err, note)
}
