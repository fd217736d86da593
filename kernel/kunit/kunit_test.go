package kunit

import (
	"slices"
	"strings"
	"testing"
)

func TestParseGlob(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "none", want: ""},
		{in: " landlock* ", want: "landlock*"},
		{in: "landlock_fs.test_*", want: "landlock_fs.test_*"},
		{in: "landlock_fs,list", err: "one glob"},
		{in: "landlock_fs list", err: "one glob"},
		{in: "a.b.c", err: "one dot"},
		{in: ".test_*", err: "each side"},
		{in: "landlock.", err: "each side"},
	} {
		got, err := ParseGlob(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseGlob(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseGlob(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCmdline(t *testing.T) {
	if got, want := Cmdline("landlock*"), []string{"kunit.enable=1", "kunit.filter_glob=landlock*"}; !slices.Equal(got, want) {
		t.Errorf("Cmdline(landlock*) = %q, want %q", got, want)
	}
	if got, want := Cmdline(""), []string{"kunit.enable=0"}; !slices.Equal(got, want) {
		t.Errorf("Cmdline(\"\") = %q, want %q", got, want)
	}
}
