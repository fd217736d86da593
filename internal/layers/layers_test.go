package layers

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/landlock-vmtest/landlock-vmtest"

// TestImportsRunOneWay lists every package of the module with `go list
// -deps` and checks each import of the module's own packages against
// Layers; a guest test package's test imports are checked too.
func TestImportsRunOneWay(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,TestImports,XTestImports,Module", "../../...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	imports := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
			Module                             *struct{ Main bool }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		if p.Module == nil || !p.Module.Main {
			continue
		}
		imps := p.Imports
		if matchAny(Tests, trim(p.ImportPath)) {
			imps = append(append(append([]string(nil), imps...), p.TestImports...), p.XTestImports...)
		}
		imports[p.ImportPath] = imps
	}
	rel := Relative(module, imports)
	require.Contains(t, rel, "vmtest/pipeline", "go list saw the module")
	assert.Empty(t, Check(rel), "imports that run backwards")
}

func trim(p string) string {
	if len(p) > len(module) && p[:len(module)+1] == module+"/" {
		return p[len(module)+1:]
	}
	return p
}

// TestCheckFindsBackwardImports: the check is not vacuous.
func TestCheckFindsBackwardImports(t *testing.T) {
	bad := Check(map[string][]string{
		"kernel/build":    {"vmtest/results", "cache"},
		"cache":           {"vmtest/pipeline"},
		"initramfs/guest": {"vmtest/results", "contract/event"},
		"vmtest/step":     {"vmtest/boot", "vmtest/pipeline"},
		"tests/hooks":     {"vmtest/vm", "tests/landlockbpf", "kernel/source"},
		"vmtest/newthing": nil,
	})
	assert.Equal(t, []string{
		"cache (layer 1) imports vmtest/pipeline (layer 8): imports run down only",
		"initramfs/guest imports vmtest/results: the guest imports only the contract (contract, contract/event)",
		"kernel/build (layer 3) imports vmtest/results (layer 5): imports run down only",
		"tests/hooks imports vmtest/vm: guest tests import no harness package",
		"vmtest/newthing is in no layer: add it to layers.Layers (and ARCHITECTURE.md)",
	}, bad)
}
