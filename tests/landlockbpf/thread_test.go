package landlockbpf

import (
	"runtime/pprof"
	"testing"

	"github.com/stretchr/testify/assert"
)

// spareThreads leaves the threads it locked idle: a second call finds
// them and makes none (the runtime counts every thread it creates).
func TestSpareThreadsStayIdle(t *testing.T) {
	spareThreads(spareThreadCount)
	created := pprof.Lookup("threadcreate").Count()
	spareThreads(spareThreadCount)
	assert.Equal(t, created, pprof.Lookup("threadcreate").Count(), "the second call made threads: the first left none idle")
}
