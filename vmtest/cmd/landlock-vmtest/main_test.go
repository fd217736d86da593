package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
)

// A negative RETRY is a usage error, found before anything is built.
func TestRetryNegative(t *testing.T) {
	t.Setenv("RETRY", "-1")
	t.Setenv("ARCH", "")
	t.Setenv("ACCEL", "")
	t.Setenv("ICOUNT", "")
	t.Setenv("RUN", "")
	assert.Equal(t, exitcode.Usage, run([]string{"run"}))
}
