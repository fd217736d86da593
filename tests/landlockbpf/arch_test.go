package landlockbpf

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAuditArch checks, on any host, the AUDIT_ARCH_* value the rules must
// see for the architecture of this binary: EM_X86_64 (62) or EM_AARCH64
// (183), with __AUDIT_ARCH_64BIT and __AUDIT_ARCH_LE.
func TestAuditArch(t *testing.T) {
	want := map[string]uint32{"amd64": 0xc000003e, "arm64": 0xc00000b7}
	w, ok := want[runtime.GOARCH]
	if !ok {
		assert.Zero(t, AuditArch(), "GOARCH=%s", runtime.GOARCH)
		t.Skipf("the guest tests run on amd64 and arm64, not on %s", runtime.GOARCH)
	}
	assert.Equal(t, w, AuditArch(), "%s for GOARCH=%s", AuditArchName(), runtime.GOARCH)
}
