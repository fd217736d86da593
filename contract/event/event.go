// Package event defines the records the guest runner sends to the host over
// the result channel. The guest writes them with hugelgupf/vmtest's guest
// event emitter, which ends the stream with an explicit "done" marker; the
// host reads them back in the same order.
package event

import "time"

// Kind says what an Event is about.
type Kind string

// The kinds of event the guest runner sends.
const (
	// KindHello is the first event: the runner is up. It carries guest
	// facts in Info (kernel release, ...).
	KindHello Kind = "hello"
	// KindBinaryStart says a test binary is about to run; with Retry
	// set, that it runs again for one failed test (RETRY=).
	KindBinaryStart Kind = "binary-start"
	// KindTest carries one test2json event of the running binary.
	KindTest Kind = "test"
	// KindBinaryEnd says a test binary has ended, how, and how long it took.
	KindBinaryEnd Kind = "binary-end"
	// KindError is a runner problem that is not a test result (a binary
	// that could not be started, a missing directory, ...).
	KindError Kind = "error"
	// KindCoverage carries one chunk of a GCOV counter file (.gcda) read
	// from the guest's debugfs after the tests, when the manifest asks for
	// coverage (Chunk), or a problem collecting them (Error).
	KindCoverage Kind = "coverage"
	// KindKmemleak carries, in Text, what the kernel's memory leak
	// detector suspects after the last test binary (its debugfs file,
	// one "unreferenced object" block per leak), and in
	// Info["binaries"] the binaries that ran, space-separated: kmemleak
	// cannot tell which of them leaked. It is sent only when there is a
	// leak to report.
	KindKmemleak Kind = "kmemleak"
	// KindOutput carries, in Data, what the command of landlock-vmtest
	// exec wrote, as it wrote it, on the stream Stream names.
	KindOutput Kind = "output"
	// KindFile carries one chunk of a file the command wrote that the
	// manifest asks back (Binary.Collect), its guest path absolute, or
	// in Error why it could not be read.
	KindFile Kind = "file"
)

// The streams of a KindOutput event.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// TestEvent is one event of `go test -json` / test2json, field for field.
type TestEvent struct {
	Time    time.Time `json:",omitempty"`
	Action  string
	Package string  `json:",omitempty"`
	Test    string  `json:",omitempty"`
	Elapsed float64 `json:",omitempty"`
	Output  string  `json:",omitempty"`
}

// Event is one record on the result channel.
type Event struct {
	Kind Kind
	// Time is when the guest emitted the event (guest clock).
	Time time.Time `json:",omitempty"`
	// Binary is the import path of the package whose test binary the
	// event is about (binary-start, test, binary-end, error).
	Binary string `json:",omitempty"`
	// Test is set for KindTest.
	Test *TestEvent `json:",omitempty"`
	// Exit is set for KindBinaryEnd.
	Exit *Exit `json:",omitempty"`
	// Retry is set for the KindBinaryStart of a rerun of one failed
	// test; the test events up to the next KindBinaryEnd are that
	// rerun's.
	Retry *Retry `json:",omitempty"`
	// Info carries facts (KindHello) or details.
	Info map[string]string `json:",omitempty"`
	// Error is set for KindError (and for KindCoverage when the counters
	// could not be read).
	Error string `json:",omitempty"`
	// Chunk is set for KindCoverage and KindFile.
	Chunk *Chunk `json:",omitempty"`
	// Text is set for KindKmemleak.
	Text string `json:",omitempty"`
	// Stream and Data are set for KindOutput: Stdout or Stderr, and the
	// bytes as written (base64 in JSON, so that any byte gets through).
	Stream string `json:",omitempty"`
	Data   []byte `json:",omitempty"`
}

// Chunk is part Part (0-based) of Parts of a file the guest sends.
type Chunk struct {
	// Path is the file's path relative to the directory it was read from.
	Path  string
	Part  int
	Parts int
	// Data is the chunk's bytes (base64 in JSON).
	Data []byte
}

// Retry names a rerun of a failed top-level Go test (RETRY=): the
// binary runs again with -test.run matching only Test (and the subtests
// RUN= chose of it).
type Retry struct {
	// Test is the top-level test run again.
	Test string
	// Attempt is the rerun's number, 1 to Of; the first run of the
	// binary is attempt 0 and has no Retry.
	Attempt int
	// Of is the most reruns the test may get (RETRY=).
	Of int
}

// Exit says how a test binary ended.
type Exit struct {
	// Code is the exit status, or -1 when the binary was killed by a
	// signal or never started.
	Code int
	// Signal names the signal that killed the binary ("killed",
	// "segmentation fault", ...), if any.
	Signal string `json:",omitempty"`
	// TimedOut is true when the runner killed the binary because it ran
	// past its per-binary timeout.
	TimedOut bool `json:",omitempty"`
	// Seconds is the binary's wall time in the guest.
	Seconds float64
}
