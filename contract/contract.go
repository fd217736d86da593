// Package contract is what the host and the guest runner agree on, and
// nothing else: where the manifest is and what it says (manifest.go), the
// kernel command-line flags the runner reads, the environment it gives the
// test binaries, and (package contract/event) the events it sends back.
// Both sides import it; it imports nothing of this module but event.
package contract

// ManifestPath is where the host puts the manifest in the initramfs.
const ManifestPath = "/tests/manifest.json"

// ShellFlag on the kernel command line makes the runner step aside, so
// that init goes on to an interactive shell (make shell).
const ShellFlag = "landlock_vmtest.shell"

// ResultPortFlag names the guest device of the result channel on the
// kernel command line: landlock_vmtest.results=/dev/hvc0. It depends on
// the machine (package machine says which); without it the runner uses
// DefaultResultPort.
const ResultPortFlag = "landlock_vmtest.results"

// DefaultResultPort is the result channel of the x86_64 machine: the
// second 8250 UART, which needs no driver beyond the serial console's.
const DefaultResultPort = "/dev/ttyS1"

// ReleaseEnv carries the release of the kernel the host built, so that a
// guest test can check that this is the kernel running.
const ReleaseEnv = "LANDLOCK_VMTEST_KERNEL_RELEASE"

// GuestEnv is set to 1 in every test binary's environment, so that tests
// can tell the guest from the host (where they skip).
const GuestEnv = "LANDLOCK_VMTEST_GUEST"

// FlavourEnv names the kernel flavour in every test binary's environment
// when it is not the normal kernel ("debug" for DEBUG=1), so that a test
// whose figures mean nothing on a debug kernel (a benchmark) can say so
// and do less.
const FlavourEnv = "LANDLOCK_VMTEST_FLAVOUR"
