package pipeline

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/debug"
)

// The debug flavour multiplies the default timeouts and is named in
// results.json; the normal kernel does neither.
func TestOptionsFlavour(t *testing.T) {
	assert.Equal(t, 1, Options{}.Slowdown())
	assert.Equal(t, "", Options{}.Flavour())
	assert.Equal(t, debug.Slowdown, Options{Debug: true}.Slowdown())
	assert.Equal(t, "debug", Options{Debug: true}.Flavour())
	assert.Equal(t, debug.Slowdown, BootRequest(Options{Debug: true}, nil, nil, nil, nil).Slowdown)
	assert.Equal(t, "debug", New(Options{Debug: true}).md.Flavour)
}
