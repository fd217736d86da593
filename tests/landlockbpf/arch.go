package landlockbpf

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// AuditArch is the AUDIT_ARCH_* value that a rule finds in the context's
// arch field (syscall_get_arch) for the system calls of this test binary,
// and for the io_uring work done for it: the native 64-bit ABI of the
// architecture it was built for (runtime.GOARCH). The guest runs no
// 32-bit (compat) task. It is 0 for an architecture the guest tests do
// not run on.
func AuditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	return 0
}

// AuditArchName names AuditArch, for messages.
func AuditArchName() string {
	switch runtime.GOARCH {
	case "amd64":
		return "AUDIT_ARCH_X86_64"
	case "arm64":
		return "AUDIT_ARCH_AARCH64"
	}
	return fmt.Sprintf("the AUDIT_ARCH of GOARCH=%s (unknown to the guest tests)", runtime.GOARCH)
}
