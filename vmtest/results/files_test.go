package results

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitLast(t *testing.T) {
	body, last := splitLast("a\nb\n\n1 passed, 0 failed, 0 skipped\n")
	assert.Equal(t, "a\nb\n\n", body)
	assert.Equal(t, "1 passed, 0 failed, 0 skipped", last)
}
