package console

import "strings"

// Leaks returns the reports in text, the content of the kernel's kmemleak
// file as the guest runner sends it after the tests: one [Splat] of
// [KindKmemleak] per "unreferenced object" block, each titled "memory leak
// in f" after the first function of its backtrace that is not an
// allocator, with ran (the test binaries that ran before the scan:
// kmemleak cannot tell which leaked) as its Test.
func Leaks(text, ran string) []Splat {
	splats, _ := Scan(strings.NewReader(text), func() string { return ran })
	return splats
}
