package smoke

import (
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// seccompNotifSizes is struct seccomp_notif_sizes.
type seccompNotifSizes struct {
	Notif, NotifResp, Data uint16
}

// seccompDataSize is sizeof(struct seccomp_data): nr, arch, instruction
// pointer and six arguments.
const seccompDataSize = 4 + 4 + 8 + 6*8

// seccomp calls seccomp(2).
func seccomp(op, flags uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, op, flags, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func TestSeccompAvailable(t *testing.T) {
	inGuest(t)
	mode, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	require.NoError(t, err, "prctl(PR_GET_SECCOMP)")
	assert.Equal(t, 0, mode, "the test binary already runs under seccomp")

	for _, a := range []struct {
		name   string
		action uint32
	}{
		{"SECCOMP_RET_KILL_PROCESS", unix.SECCOMP_RET_KILL_PROCESS},
		{"SECCOMP_RET_ERRNO", unix.SECCOMP_RET_ERRNO},
		{"SECCOMP_RET_ALLOW", unix.SECCOMP_RET_ALLOW},
	} {
		action := a.action
		assert.NoError(t, seccomp(unix.SECCOMP_GET_ACTION_AVAIL, 0, unsafe.Pointer(&action)),
			"seccomp(SECCOMP_GET_ACTION_AVAIL, %s)", a.name)
	}

	var sizes seccompNotifSizes
	require.NoError(t, seccomp(unix.SECCOMP_GET_NOTIF_SIZES, 0, unsafe.Pointer(&sizes)), "seccomp(SECCOMP_GET_NOTIF_SIZES)")
	t.Logf("seccomp_notif_sizes: %+v", sizes)
	assert.EqualValues(t, seccompDataSize, sizes.Data, "sizeof(struct seccomp_data)")
	assert.NotZero(t, sizes.Notif)
	assert.NotZero(t, sizes.NotifResp)

	if b, err := os.ReadFile("/proc/sys/kernel/seccomp/actions_avail"); err == nil {
		t.Logf("kernel.seccomp.actions_avail: %s", strings.TrimSpace(string(b)))
	} else {
		t.Logf("no seccomp sysctls: %v", err)
	}
}
