package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"14d":  14 * 24 * time.Hour,
		"0.5d": 12 * time.Hour,
		"36h":  36 * time.Hour,
		"0":    0,
		"0d":   0,
	} {
		got, err := parseAge(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"3x", "-1d", "-2h", "d", ""} {
		_, err := parseAge(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "14d", days(14*24*time.Hour))
	assert.Equal(t, "36h0m0s", days(36*time.Hour))
}
