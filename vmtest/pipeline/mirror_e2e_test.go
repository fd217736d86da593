package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
)

// editedSeries copies the repository's series into a new directory with
// one line of C changed: a comment appended to a line that the last patch
// touching a .c file of security/landlock/ adds (so every patch still
// applies). It returns the series file and the edited file's path in the
// tree.
func editedSeries(t *testing.T, comment string) (series, file string) {
	t.Helper()
	src := filepath.Join(repoDir(t), "patches")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	var patches []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644))
		if strings.HasSuffix(e.Name(), ".patch") {
			patches = append(patches, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(patches)))
	later := map[string]bool{}
	for _, name := range patches {
		p := filepath.Join(dst, name)
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		lines := strings.Split(string(data), "\n")
		cur := ""
		var touched []string
		for i, l := range lines {
			switch {
			case strings.HasPrefix(l, "+++ b/"):
				cur = strings.TrimPrefix(l, "+++ b/")
				touched = append(touched, cur)
			case strings.HasPrefix(l, "--- a/"):
				touched = append(touched, strings.TrimPrefix(l, "--- a/"))
			case cur != "" && !later[cur] && strings.HasPrefix(cur, "security/landlock/") && strings.HasSuffix(cur, ".c") &&
				strings.HasPrefix(l, "+") && strings.HasSuffix(strings.TrimRight(l, " \t"), ";"):
				lines[i] = l + " /* " + comment + " */"
				require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644))
				return filepath.Join(dst, "series"), cur
			}
		}
		for _, f := range touched {
			later[f] = true
		}
	}
	t.Fatal("no line of security/landlock/*.c to edit in the series")
	return "", ""
}

var makeSteps = regexp.MustCompile(`<== build: ok \([^)]*\) \S+, (\d+) make step\(s\) in the mirror`)

// The edit-build-test loop: a series that differs from the last one built
// by one line of one file is built in the mirror, where that file alone
// is written and make remakes what it reaches (its object, the links),
// not the kernel.
func TestE2EMirrorRebuildsOnlyTheEdit(t *testing.T) {
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	first, file := editedSeries(t, "e2e edit "+nonce+" a")
	// The first run may have to fill the mirror (a whole build), when no
	// run before it built this config through one.
	r := runHarness(t, "SERIES="+first, "TESTS=./tests/smoke")
	r.check(t, exitcode.OK, r.last)

	second, _ := editedSeries(t, "e2e edit "+nonce+" b")
	r = runHarness(t, "SERIES="+second, "TESTS=./tests/smoke")
	r.check(t, exitcode.OK, r.last, fmt.Sprintf("1 file(s) changed, 0 removed (%s), .config kept", file))
	m := makeSteps.FindStringSubmatch(r.output)
	require.NotNil(t, m, "the build ran in the mirror; output:\n%s", r.output)
	steps, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	// A build from scratch is about 1500 steps; the edit's object and
	// the image's links are a few dozen.
	assert.Less(t, steps, 100, "make steps for a one-line edit")
	t.Logf("%d make steps after a one-line edit of %s", steps, file)
}
