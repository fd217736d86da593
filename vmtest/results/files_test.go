package results

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// PrintEnd has the summary's lines, with the verdict before its closing
// line.
func TestPrintEndEndsWithTheSummarysClosingLine(t *testing.T) {
	r := mixedRun(t).Report()
	var sum, end bytes.Buffer
	require.NoError(t, WriteSummary(&sum, r))
	PrintEnd(&end, Metadata{ExitCode: 1, ExitReason: "4 test(s) failed"}, r, "out", nil)
	s := strings.TrimSuffix(sum.String(), "\n")
	i := strings.LastIndexByte(s, '\n')
	body, last := s[:i+1], s[i+1:]
	assert.Equal(t, body+"\nresult: tests failed (exit 1): 4 test(s) failed\nresults in out\n"+last+"\n", end.String())
}
