// Package debug is the debug flavour of the guest kernel (DEBUG=1): the
// config fragment that turns on KASAN, lockdep, UBSAN, list and
// atomic-sleep debugging, kmemleak and line tables, and how much longer
// the guest takes on such a kernel.
package debug

// Fragment is the flavour's config fragment, relative to the repository.
// It is merged after every other fragment (CONFIG= included), so its
// settings win.
const Fragment = "kernel/debug/debug.config"

// Slowdown is how many times the default timeouts are multiplied on the
// debug kernel, on top of the accelerator's factor. The whole guest suite
// (Go tests and kselftests, TCG, 2 cores) took 5.5 times as long on it:
// 755.6 s of test time against 136.7 s on the normal kernel, with
// tests/bpfbench already cut short there.
const Slowdown = 6

// MemoryMB is the guest's memory on the debug kernel when MEM= does not
// set it: KASAN keeps an eighth of it as shadow and a quarantine of freed
// objects, and kmemleak a record of every allocation, so the suite that
// runs in the normal 512 MB runs out of memory there (TestFSBeneathGivesUp
// builds a chain of 65536 directories: the OOM killer took the runner).
const MemoryMB = 2048
