// Package layers is the module's import graph as a rule: its layers, low
// to high, and the check that every import of the module's own packages
// runs down (TestImportsRunOneWay walks `go list -deps`). A new package
// belongs in Layers; ARCHITECTURE.md draws the same graph.
package layers

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Layers are the module's packages, lowest first, by path relative to the
// module root ("x/..." is x and everything under it). A package may
// import packages of its own layer and of lower ones.
var Layers = [][]string{
	// Leaves: what everything shares; the sandboxer's library (which
	// imports nothing of ours), and its command above it.
	{"internal/fsutil", "internal/textutil", "internal/layers", "contract/event", "bpfsandbox"},
	{"contract", "cache", "exitcode", "machine", "bpfsandbox/cli", "bpfsandbox/cmd/..."},
	// The guest: only the contract below it (see GuestOnly).
	{"initramfs/guest/...", "initramfs/runner"},
	// The kernel and the initramfs, as the host builds them.
	{"kernel/..."},
	{"initramfs"},
	// The harness, from the VM up to the commands.
	{"vmtest/console", "vmtest/results", "vmtest/hosttools"},
	{"vmtest/stage", "vmtest/vm", "vmtest/kselftest"},
	{"vmtest/boot"},
	{"vmtest/pipeline"},
	{"vmtest/step", "vmtest/guestcmd"},
	{"vmtest/seriescheck", "vmtest/bisect"},
	{"vmtest/cmd/...", "vmtest/internal/..."},
}

// GuestOnly are the packages that run in the guest: besides each other
// they may import only these.
var (
	Guest     = []string{"initramfs/guest/...", "initramfs/runner"}
	GuestOnly = []string{"contract", "contract/event"}
)

// Tests are the guest test packages: they may import the leaves and the
// kernel packages (for host-side checks against the tree) but nothing of
// the harness or the initramfs.
var (
	Tests      = []string{"tests/..."}
	TestsNotOf = []string{"vmtest/...", "initramfs/..."}
)

func match(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

func matchAny(patterns []string, pkg string) bool {
	for _, p := range patterns {
		if match(p, pkg) {
			return true
		}
	}
	return false
}

// Rank is pkg's layer, -1 when no layer names it.
func Rank(pkg string) int {
	for i, l := range Layers {
		if matchAny(l, pkg) {
			return i
		}
	}
	return -1
}

// Check returns every import of imports (package -> its imports, paths
// relative to the module, the module's own packages only) that breaks the
// rules, one line each, sorted.
func Check(imports map[string][]string) []string {
	var bad []string
	for pkg, imps := range imports {
		if matchAny(Tests, pkg) {
			for _, imp := range imps {
				if matchAny(TestsNotOf, imp) {
					bad = append(bad, fmt.Sprintf("%s imports %s: guest tests import no harness package", pkg, imp))
				}
			}
			continue
		}
		r := Rank(pkg)
		if r < 0 {
			bad = append(bad, fmt.Sprintf("%s is in no layer: add it to layers.Layers (and ARCHITECTURE.md)", pkg))
			continue
		}
		for _, imp := range imps {
			if matchAny(Guest, pkg) && !matchAny(Guest, imp) && !matchAny(GuestOnly, imp) {
				bad = append(bad, fmt.Sprintf("%s imports %s: the guest imports only the contract (%s)", pkg, imp, strings.Join(GuestOnly, ", ")))
				continue
			}
			if ri := Rank(imp); ri > r {
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports run down only", pkg, r, imp, ri))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// Relative turns module import paths into paths relative to the module,
// and drops those of other modules.
func Relative(module string, imports map[string][]string) map[string][]string {
	out := map[string][]string{}
	for pkg, imps := range imports {
		rel, ok := strings.CutPrefix(pkg, module+"/")
		if !ok {
			continue
		}
		var own []string
		for _, imp := range imps {
			if r, ok := strings.CutPrefix(imp, module+"/"); ok {
				own = append(own, path.Clean(r))
			}
		}
		out[rel] = own
	}
	return out
}
