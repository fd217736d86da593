package results

import (
	"fmt"
	"slices"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/console"
)

// DescribeSplats returns a copy of splats in which a splat without a
// signature has the signature of its text, one without a fingerprint the
// fingerprint of its signature, and one without frames the frames of its
// text (console.Signature, console.Fingerprint, console.Frames). Splats
// already described are left as they are.
func DescribeSplats(splats []Splat) []Splat {
	if splats == nil {
		return nil
	}
	out := make([]Splat, len(splats))
	for i, s := range splats {
		if s.Signature == "" {
			s.Signature = console.Signature(s.Text)
		}
		if s.Fingerprint == "" {
			s.Fingerprint = console.Fingerprint(s.Signature)
		}
		if s.Frames == nil {
			s.Frames = console.Frames(s.Text)
		} else {
			s.Frames = slices.Clone(s.Frames)
		}
		s.Decoded = slices.Clone(s.Decoded)
		out[i] = s
	}
	return out
}

// GroupSplats groups splats by fingerprint, in the order of each group's
// first splat; splats not yet described are described first (see
// DescribeSplats). It returns an empty, non-nil slice when there is no
// splat.
func GroupSplats(splats []Splat) []SplatGroup {
	groups := []SplatGroup{}
	at := map[string]int{}
	for i, s := range DescribeSplats(splats) {
		g, ok := at[s.Fingerprint]
		if !ok {
			g = len(groups)
			at[s.Fingerprint] = g
			groups = append(groups, SplatGroup{Signature: s.Signature, Fingerprint: s.Fingerprint, Kind: s.Kind, Tests: []string{}, Splats: []int{}})
		}
		groups[g].Count++
		groups[g].Tests = append(groups[g].Tests, s.Test)
		groups[g].Splats = append(groups[g].Splats, i)
	}
	return groups
}

// where says in which tests a group's splats appeared: `while running
// "p TestA", "p TestB" (2)`, each test once with its count when above one,
// "(no test)" for splats seen while no test ran; "" when no test ran for
// any.
func (g SplatGroup) where() string {
	var names []string
	n := map[string]int{}
	for _, t := range g.Tests {
		if n[t] == 0 {
			names = append(names, t)
		}
		n[t]++
	}
	if len(names) == 1 && names[0] == "" {
		return ""
	}
	var parts []string
	for _, t := range names {
		p := "(no test)"
		if t != "" {
			p = fmt.Sprintf("%q", t)
		}
		if n[t] > 1 {
			p += fmt.Sprintf(" (%d)", n[t])
		}
		parts = append(parts, p)
	}
	return " while running " + strings.Join(parts, ", ")
}

// headline is the line PrintEnd prints before a group's quoted splat:
// `kernel splat WARNING in f (warning, fingerprint 0123456789abcdef) while
// running "p TestA"`, with ", N times" after the parenthesis when the bug
// appeared more than once.
func (g SplatGroup) headline() string {
	times := ""
	if g.Count > 1 {
		times = fmt.Sprintf(", %d times", g.Count)
	}
	return fmt.Sprintf("kernel splat %s (%s, fingerprint %s)%s%s", g.Signature, g.Kind, g.Fingerprint, times, g.where())
}

// FromConsole is the console's splats as results record them (kind, test
// and text; the rest is described from the text, see DescribeSplats).
func FromConsole(splats []console.Splat) []Splat {
	var out []Splat
	for _, s := range splats {
		out = append(out, Splat{Kind: string(s.Kind), Test: s.Test, Text: s.Text, Fails: s.Fails})
	}
	return out
}

// WithSources returns splats, described (DescribeSplats), with the
// frames that lookup finds a source line for in Decoded.
func WithSources(splats []Splat, lookup func(frame string) (Frame, bool)) []Splat {
	out := DescribeSplats(splats)
	for i := range out {
		out[i].Decoded = nil
		for _, f := range out[i].Frames {
			if d, ok := lookup(f); ok {
				out[i].Decoded = append(out[i].Decoded, d)
			}
		}
	}
	return out
}

// AllFrames returns the frames worth decoding of every splat, in order,
// each once: those the unwinder vouched for (console.ReliableFrames; a
// "?" frame is a stale address found on the stack), or all of a splat's
// frames when none is.
func AllFrames(splats []Splat) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range splats {
		frames := console.ReliableFrames(s.Text)
		if len(frames) == 0 {
			frames = s.Frames
		}
		if frames == nil {
			frames = console.Frames(s.Text)
		}
		for _, f := range frames {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// SourcesText is the splat's decoded frames, one per line: the frame, then
// its file:line, then the functions it was inlined into. It is "" when no
// frame was decoded.
func (s Splat) SourcesText() string {
	var b strings.Builder
	for _, f := range s.Decoded {
		fmt.Fprintf(&b, "%s %s", f.Frame, f.Source)
		if len(f.InlinedBy) > 0 {
			fmt.Fprintf(&b, " (%s inlined by %s)", f.Function, strings.Join(f.InlinedBy, ", inlined by "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}
