package results

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// Metadata describes the run that produced the results: what kernel ran,
// how, and how the harness ended.
type Metadata struct {
	// KernelRelease is the guest's kernel release (uname -r).
	KernelRelease string `json:"kernel_release"`
	// Series names the patch series applied to the kernel, in order.
	Series []string `json:"series"`
	// ConfigHash identifies the kernel configuration.
	ConfigHash string `json:"config_hash"`
	// Machine is the guest architecture (machine.Machine's Name).
	Machine string `json:"machine,omitempty"`
	// Accelerator is the QEMU accelerator used ("kvm", "tcg", ...).
	Accelerator string `json:"accelerator"`
	// Flavour is the kernel flavour, "debug" for DEBUG=1, absent for the
	// normal kernel.
	Flavour string `json:"flavour,omitempty"`
	// IcountShift is the shift of QEMU's -icount when the guest's clock
	// counted instructions (ICOUNT=: 2^shift ns each), absent otherwise.
	IcountShift *int `json:"icount_shift,omitempty"`
	// CPUs is the guest's vCPU count (SMP=).
	CPUs int `json:"cpus,omitempty"`
	// FirstTestSeconds is the time from QEMU's start to the first test
	// event.
	FirstTestSeconds float64 `json:"first_test_seconds"`
	// Stages lists the harness's stages with their time and outcome.
	Stages []Stage `json:"stages"`
	// ExitCode is the harness's exit code.
	ExitCode int `json:"exit_code"`
	// ExitReason says why the harness exited with ExitCode.
	ExitReason string `json:"exit_reason"`
	// Splats lists kernel warnings, oopses and the like found on the
	// guest console.
	Splats []Splat `json:"splats"`
	// SplatGroups groups Splats by fingerprint: one entry per bug, in the
	// order of its first splat. WriteJSON fills it from Splats.
	SplatGroups []SplatGroup `json:"splat_groups"`
	// Coverage is the kernel coverage summary of a COVERAGE=1 run
	// (coverage.Summary), absent otherwise.
	Coverage any `json:"coverage,omitempty"`
}

// Stage is one step of the harness (build, boot, test, ...).
type Stage struct {
	// Name names the stage.
	Name string `json:"name"`
	// Seconds is the stage's wall time.
	Seconds float64 `json:"seconds"`
	// Status is the stage's outcome ("ok", "fail", "skipped", ...).
	Status string `json:"status"`
}

// Splat is one kernel splat (WARNING, BUG, Oops, KASAN report, ...) seen on
// the guest console.
type Splat struct {
	// Kind says what the splat is ("WARNING", "BUG", ...).
	Kind string `json:"kind"`
	// Test is the test running when the splat appeared ("pkg TestName"),
	// if known.
	Test string `json:"test"`
	// Fails tells whether the splat fails the run (an OOM kill's report
	// or lockdep running out of room does not, by itself).
	Fails bool `json:"fails"`
	// Text is the splat's console text.
	Text string `json:"text"`
	// Signature is the splat's title the way syzkaller writes it, e.g.
	// "WARNING in insert_rule": the same for one bug in every test and
	// run (console.Signature of Text when left empty).
	Signature string `json:"signature"`
	// Fingerprint is a short hash of Signature (console.Fingerprint):
	// splats with equal fingerprints are one bug.
	Fingerprint string `json:"fingerprint"`
	// Frames are the frames of the splat's first stack trace, as
	// "function+0xoffset/0xsize" (console.Frames of Text when left nil).
	Frames []string `json:"frames,omitempty"`
	// Decoded are the frames that could be decoded to source lines,
	// in the order of Frames; absent when the kernel has no debug info
	// (see symbolize).
	Decoded []Frame `json:"decoded,omitempty"`
}

// Frame is one frame of a splat's trace with where it is in the source.
type Frame struct {
	// Frame is the frame as printed, "function+0xoffset/0xsize".
	Frame string `json:"frame"`
	// Function is the innermost function at the address (an inlined
	// function when the compiler inlined one there), Source its
	// "file:line" in the source tree.
	Function string `json:"function"`
	Source   string `json:"source"`
	// InlinedBy are the functions Function was inlined into, innermost
	// first, as "function at file:line".
	InlinedBy []string `json:"inlined_by,omitempty"`
}

// SplatGroup is one bug: the splats that share a fingerprint.
type SplatGroup struct {
	// Signature and Fingerprint are the splats' own.
	Signature   string `json:"signature"`
	Fingerprint string `json:"fingerprint"`
	// Kind is the kind of the group's first splat.
	Kind string `json:"kind"`
	// Count is the number of splats in the group.
	Count int `json:"count"`
	// Tests holds, for each splat of the group in order, the test running
	// when it appeared ("" when none was).
	Tests []string `json:"tests"`
	// Splats holds the indexes of the group's splats in Metadata.Splats.
	Splats []int `json:"splats"`
}

// Summary holds the counts and flags of a Report in the JSON document.
type Summary struct {
	// Passed, Failed, Skipped and Flaky copy the Report's counts (Flaky
	// is left out when 0).
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	Flaky   int `json:"flaky,omitempty"`
	// TestsFailed, BinaryCrashed and Complete copy the Report's flags.
	TestsFailed   bool `json:"tests_failed"`
	BinaryCrashed bool `json:"binary_crashed"`
	Complete      bool `json:"complete"`
	// Errors copies the Report's runner errors not tied to a binary.
	Errors []string `json:"errors,omitempty"`
	// Guest copies the facts of the runner's hello record.
	Guest map[string]string `json:"guest,omitempty"`
}

// Document is the JSON document WriteJSON writes; it is exported so that the
// file can be read back.
type Document struct {
	Metadata Metadata      `json:"metadata"`
	Summary  Summary       `json:"summary"`
	Packages []Package     `json:"packages"`
	Events   []event.Event `json:"events"`
}

// WriteJSON writes one JSON document (see Document) to w holding the run's
// metadata, the report's counts, flags and packages, and every event as it
// arrived. The metadata's splats get their signatures, fingerprints and
// frames (DescribeSplats) and their groups (GroupSplats).
func WriteJSON(w io.Writer, md Metadata, r Report, events []event.Event) error {
	md.Splats = DescribeSplats(md.Splats)
	md.SplatGroups = GroupSplats(md.Splats)
	doc := Document{
		Metadata: md,
		Summary: Summary{
			Passed:        r.Passed,
			Failed:        r.Failed,
			Skipped:       r.Skipped,
			Flaky:         r.Flaky,
			TestsFailed:   r.TestsFailed,
			BinaryCrashed: r.BinaryCrashed,
			Complete:      r.Complete,
			Errors:        r.Errors,
			Guest:         r.Guest,
		},
		Packages: r.Packages,
		Events:   events,
	}
	if doc.Packages == nil {
		doc.Packages = []Package{}
	}
	if doc.Events == nil {
		doc.Events = []event.Event{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("results: write JSON: %w", err)
	}
	return nil
}
