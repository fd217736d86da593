package contract

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Binary is one test binary packed into the initramfs.
type Binary struct {
	// Package is the Go import path the binary tests.
	Package string `json:"package"`
	// Path is the binary's path in the guest.
	Path string `json:"path"`
	// Dir is the directory the binary runs in; the package's testdata/
	// is there.
	Dir string `json:"dir"`
	// Kind is KindGoTest ("") or KindKselftest.
	Kind string `json:"kind,omitempty"`
	// Harness marks a kselftest binary built on kselftest_harness.h,
	// whose tests can be listed (-l) and chosen (-r).
	Harness bool `json:"harness,omitempty"`
	// Args are the arguments of a KindExec command, as given.
	Args []string `json:"args,omitempty"`
	// Dirs are directories a KindExec command's arguments name: made in
	// the guest before it runs, so that an empty one is there too.
	Dirs []string `json:"dirs,omitempty"`
	// Alone marks a binary that must not run beside another: the runner
	// starts it once every binary before it ended, and the next once it
	// ended. A Go test package asks for it with a line
	// "//landlock-vmtest:alone" in one of its test files (AloneDirective).
	Alone bool `json:"alone,omitempty"`
	// Collect are files a KindExec command writes (its profiles, a
	// coverage profile) that the runner sends back to the host once it
	// ended, each at its path in the guest, which is the host's.
	Collect []string `json:"collect,omitempty"`
}

// The kinds of binary.
const (
	// KindGoTest is a `go test -c` binary: run under test2json, with the
	// manifest's Args and -test.timeout.
	KindGoTest = ""
	// KindKselftest is a kselftest binary (tools/testing/selftests): run
	// with no arguments, its TAP output converted by package ktap.
	KindKselftest = "kselftest"
	// KindExec is one command (landlock-vmtest exec): run with its Args
	// in Dir, its stdout and stderr sent as they come (event.KindOutput),
	// killed at the timeout.
	KindExec = "exec"
)

// AloneDirective, on a line of its own in a test file of a Go test
// package (after "//", as a //go: directive is), marks the package's
// binary Alone. Text after it, on the same line, is the reason.
const AloneDirective = "//landlock-vmtest:alone"

// Manifest tells the runner what to run and how.
type Manifest struct {
	Binaries []Binary `json:"binaries"`
	// Timeout is the per-binary timeout.
	Timeout Duration `json:"timeout"`
	// Jobs is how many binaries the runner runs side by side; 0 means as
	// many as the guest has CPUs (SMP=), 1 one after another.
	Jobs int `json:"jobs,omitempty"`
	// Args are extra arguments for every Go test binary (-test.run=...).
	Args []string `json:"args,omitempty"`
	// Run, when set, is a regexp that chooses the tests of the kselftest
	// binaries built on kselftest_harness.h, by name as their results
	// show it (fixture.test, fixture.variant.test); a binary with no
	// matching test is not run. Other kselftest binaries run whole.
	Run string `json:"run,omitempty"`
	// Retry, when above 0, is how many more times the runner runs each
	// top-level Go test that failed (RETRY=), in the same boot, by itself
	// (-test.run=^Name$), until it passes: one that then passes is flaky.
	// Each rerun has the per-binary timeout. Kselftests are not rerun.
	Retry int `json:"retry,omitempty"`
	// Env is added to every binary's environment.
	Env map[string]string `json:"env,omitempty"`
	// Coverage asks the runner to send the kernel's GCOV counters after
	// the tests.
	Coverage bool `json:"coverage,omitempty"`
}

// HasKselftests reports whether m runs any kselftest binary.
func (m *Manifest) HasKselftests() bool {
	for _, b := range m.Binaries {
		if b.Kind == KindKselftest {
			return true
		}
	}
	return false
}

// HasCommand reports whether m runs a command of landlock-vmtest exec.
func (m *Manifest) HasCommand() bool {
	for _, b := range m.Binaries {
		if b.Kind == KindExec {
			return true
		}
	}
	return false
}

// Duration is a time.Duration that reads and writes as "1m30s" in JSON.
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// ReadManifest reads a manifest file.
func ReadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading test manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing test manifest %s: %w", path, err)
	}
	if m.Timeout <= 0 {
		return nil, fmt.Errorf("test manifest %s: per-binary timeout must be positive", path)
	}
	return &m, nil
}
