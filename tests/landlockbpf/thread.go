package landlockbpf

import (
	"runtime"
	"sync"
)

// spareThreadCount is how many idle threads OnLockedThread and
// RunOnRuleThread make sure the runtime has before the rule's thread
// starts: one for the goroutine the thread's end wakes (the caller's),
// one to take the thread's P when it exits, and one more.
const spareThreadCount = 3

// spareThreads makes sure the runtime has n idle threads (Ms): n
// goroutines each lock a thread of their own at the same time, then let it
// go and end, which leaves the threads idle, not gone. A thread that ends
// while its goroutine is locked to it hands its P to an idle thread, and
// when there is none the runtime allocates a new one from the ending
// thread itself (allocm, before newm hands the clone to the template
// thread): under a rule that denies READ or every action, that memory's
// mmap is denied, and the binary dies with "fatal error: runtime: cannot
// allocate memory", which it cannot even write (seen on 2 vCPUs, and on
// arm64's 1).
func spareThreads(n int) {
	var locked, ended sync.WaitGroup
	release := make(chan struct{})
	locked.Add(n)
	ended.Add(n)
	for range n {
		go func() {
			defer ended.Done()
			runtime.LockOSThread()
			locked.Done()
			<-release
			runtime.UnlockOSThread()
		}()
	}
	locked.Wait()
	close(release)
	ended.Wait()
}

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
	spareThreads(spareThreadCount)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		fn()
	}()
	<-done
}
