//go:build !amd64 && !arm64

package bpfsandbox

import "runtime"

const goarch = runtime.GOARCH

// mountSyscalls is empty: Apply refuses to run (checkMountSyscalls).
var mountSyscalls []MountSyscall
