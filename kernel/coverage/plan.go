package coverage

import (
	"fmt"
	"os"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// Patch is one patch of the series with its parsed diffs.
type Patch struct {
	Name  string
	Diffs []FileDiff
}

// Plan is what a coverage run profiles and the series it measures.
type Plan struct {
	Profile Profile
	Patches []Patch
}

// NewPlan reads and parses the series' patches and profiles DefaultDirs
// plus every .c file the series creates or changes.
func NewPlan(s *series.Series) (*Plan, error) {
	p := &Plan{}
	var files []string
	for _, sp := range s.Patches {
		text, err := os.ReadFile(sp.Path)
		if err != nil {
			return nil, fmt.Errorf("coverage: reading patch %s: %w", sp.Name, err)
		}
		diffs, err := ParseDiff(string(text))
		if err != nil {
			return nil, fmt.Errorf("coverage: parsing patch %s: %w", sp.Name, err)
		}
		p.Patches = append(p.Patches, Patch{Name: sp.Name, Diffs: diffs})
		for _, d := range diffs {
			if d.New != "" {
				files = append(files, d.New)
			}
		}
	}
	p.Profile = NewProfile(DefaultDirs, files)
	return p, nil
}

// Tree returns the instrumented copy of t: its kbuild makefiles profile
// what the plan says. The copy has its own cache key, so the kernel built
// from it has its own build directory.
func (p *Plan) Tree(c *cache.Cache, t *source.Tree) (*source.Tree, error) {
	return source.Derived(c, t, "gcov-v1:"+p.Profile.String(), "GCOV makefiles", func(dir string) error {
		return Instrument(dir, p.Profile)
	})
}
