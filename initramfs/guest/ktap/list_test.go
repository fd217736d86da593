package ktap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListedTestsMatchesWhatTheBinariesRan reads the real -l listings of
// the upstream Landlock selftests and compares them with the names, in
// order, that the same binaries reported when they ran in the guest.
func TestListedTestsMatchesWhatTheBinariesRan(t *testing.T) {
	for _, bin := range []string{"base_test", "fs_test", "net_test", "ptrace_test", "scoped_abstract_unix_test"} {
		t.Run(bin, func(t *testing.T) {
			listing, err := os.ReadFile(filepath.Join("testdata", "list-"+bin+".txt"))
			require.NoError(t, err)
			ran, err := os.ReadFile(filepath.Join("testdata", "names-"+bin+".txt"))
			require.NoError(t, err)
			got, err := ListedTests(string(listing))
			require.NoError(t, err)
			assert.Equal(t, strings.Fields(string(ran)), got)
		})
	}
}

func TestListedTestsColumns(t *testing.T) {
	listing := `# FIXTURE            VARIANT                   TEST
f                    v1                        t1
                     v2                        t2
                     v3
--------------------------------------------------------------------------------
g                                              only
                                               second
`
	got, err := ListedTests(listing)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"f.v1.t1", "f.v1.t2", "f.v2.t1", "f.v2.t2", "f.v3.t1", "f.v3.t2",
		"g.only", "g.second",
	}, got)

	_, err = ListedTests("not a listing\n")
	assert.ErrorContains(t, err, "before the FIXTURE/VARIANT/TEST header")
	_, err = ListedTests("")
	assert.ErrorContains(t, err, "no test listed")
}
