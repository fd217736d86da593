// Package textutil holds the small text helpers every report of the
// harness uses.
package textutil

import "strings"

// FirstLine is s up to its first newline.
func FirstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// Indent indents every line of s by four spaces, for quoting output
// under a heading.
func Indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
