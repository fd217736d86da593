// Command runner is the guest side of landlock-vmtest: u-root's init starts
// it as uinit. All it does is in package guest (Init): it mounts what the
// tests need, opens the result channel on the port the kernel command line
// names (landlock_vmtest.results=, the second serial port by default), runs
// the test binaries of /tests/manifest.json, sends the "done" marker and
// reboots (QEMU runs with -no-reboot, so the VM ends). With
// landlock_vmtest.shell on the kernel command line it runs an interactive
// shell instead.
package main

import (
	"log"

	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest"
)

func main() {
	log.SetPrefix("landlock-vmtest runner: ")
	log.SetFlags(0)
	in := &guest.Init{Sys: guest.Linux{}}
	_ = in.Main() // logged
}
