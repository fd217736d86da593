// Package kunit is KUnit in the guest kernel's boot (KUNIT=): the kernel
// arguments that choose the suites the boot runs. The suites are built in
// by kernel/configs/kunit.config, whatever KUNIT says.
package kunit

import (
	"fmt"
	"strings"
)

// Default is the suites a run asks for when KUNIT is unset: Landlock's own
// (landlock_fs) and the series' (landlock_bpf_*), all of them built under
// CONFIG_SECURITY_LANDLOCK_KUNIT_TEST.
const Default = "landlock*"

// None is the KUNIT value that leaves KUnit out.
const None = "none"

// Package is the name the suites' results are reported under, as a test
// binary's would be.
const Package = "kunit"

// ParseGlob checks a KUNIT value: the kernel's kunit.filter_glob, one glob
// of suites with an optional glob of their tests after a dot
// ("landlock*", "landlock_fs.test_*"). It returns "" for none or empty.
func ParseGlob(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == None {
		return "", nil
	}
	if strings.ContainsAny(s, " \t\n,") {
		return "", fmt.Errorf("KUNIT=%q: the kernel takes one glob (kunit.filter_glob), suite[.test], such as landlock* or landlock_fs.test_*; name several suites with one glob that matches them all", s)
	}
	if strings.Count(s, ".") > 1 {
		return "", fmt.Errorf("KUNIT=%q: one dot at most, between the suite glob and the test glob", s)
	}
	if strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return "", fmt.Errorf("KUNIT=%q: a glob on each side of the dot", s)
	}
	return s, nil
}

// Cmdline is the kernel arguments of glob: the executor on and filtered by
// it, or with glob "" the executor off (a kernel that has KUnit built in
// through CONFIG= then runs no suite at boot).
func Cmdline(glob string) []string {
	if glob == "" {
		return []string{"kunit.enable=0"}
	}
	return []string{"kunit.enable=1", "kunit.filter_glob=" + glob}
}
