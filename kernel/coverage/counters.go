package coverage

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// Counters gathers the .gcda files the guest sends in chunks.
type Counters struct {
	mu     sync.Mutex
	parts  map[string][][]byte
	errors []string
}

// NewCounters returns an empty Counters.
func NewCounters() *Counters {
	return &Counters{parts: map[string][][]byte{}}
}

// Add records one coverage event; other kinds are ignored.
func (c *Counters) Add(ev event.Event) {
	if ev.Kind != event.KindCoverage {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Error != "" {
		c.errors = append(c.errors, ev.Error)
	}
	ch := ev.Chunk
	if ch == nil {
		return
	}
	if ch.Parts <= 0 || ch.Part < 0 || ch.Part >= ch.Parts {
		c.errors = append(c.errors, fmt.Sprintf("%s: bad chunk %d of %d", ch.Path, ch.Part, ch.Parts))
		return
	}
	p := c.parts[ch.Path]
	if p == nil {
		p = make([][]byte, ch.Parts)
		c.parts[ch.Path] = p
	}
	if len(p) != ch.Parts {
		c.errors = append(c.errors, fmt.Sprintf("%s: chunk says %d parts, an earlier one %d", ch.Path, ch.Parts, len(p)))
		return
	}
	// A nil part is missing; an empty file still has its one part.
	p[ch.Part] = append([]byte{}, ch.Data...)
}

// Files returns every complete file by path. It is an error when the
// guest reported a problem, a file misses a chunk, or nothing came.
func (c *Counters) Files() (map[string][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var problems []string
	problems = append(problems, c.errors...)
	out := map[string][]byte{}
	names := make([]string, 0, len(c.parts))
	for n := range c.parts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := c.parts[n]
		complete := true
		for i, b := range p {
			if b == nil {
				problems = append(problems, fmt.Sprintf("%s: chunk %d of %d never came", n, i, len(p)))
				complete = false
			}
		}
		if complete {
			// Never nil: an empty counter file is still a file.
			out[n] = append([]byte{}, bytes.Join(p, nil)...)
		}
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("coverage counters from the guest: %s", strings.Join(problems, "; "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("coverage counters from the guest: no .gcda file came (is CONFIG_GCOV_KERNEL on and debugfs mounted?)")
	}
	return out, nil
}
