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

// The debug kernel gets more guest memory unless MEM= says otherwise, and
// its flavour goes to the guest's test binaries.
func TestOptionsDebugMemoryAndGuest(t *testing.T) {
	assert.Equal(t, 0, BootRequest(Options{}, nil, nil, nil, nil).MemoryMB, "the VM's default")
	assert.Equal(t, debug.MemoryMB, BootRequest(Options{Debug: true}, nil, nil, nil, nil).MemoryMB)
	assert.Equal(t, 768, BootRequest(Options{Debug: true, MemoryMB: 768}, nil, nil, nil, nil).MemoryMB)
	assert.Equal(t, "debug", GuestRequest(Options{Debug: true}, nil, nil).Flavour)
	assert.Equal(t, "", GuestRequest(Options{}, nil, nil).Flavour)
}
