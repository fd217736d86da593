package landlockbpf

import "runtime"

// OnLockedThread runs fn on a new goroutine locked to its own OS thread,
// and waits for it. The thread ends with the goroutine (fn's goroutine
// never unlocks it), so the rules fn appends die with the thread: nothing
// else of the process, not the test's goroutine nor its cleanups, ever runs
// under them. Processes started by fn (os/exec) inherit them.
//
// fn runs outside the test's goroutine: it must not call t.FailNow (so no
// require); it reports with t.Error, assert, or by setting variables the
// caller checks once OnLockedThread has returned.
func OnLockedThread(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fn()
	}()
	<-done
}
