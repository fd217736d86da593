package exitcode_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/stretchr/testify/assert"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/build"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
)

func TestCodesAreDistinct(t *testing.T) {
	seen := map[exitcode.Code]bool{}
	for _, c := range []exitcode.Code{exitcode.OK, exitcode.TestsFailed, exitcode.TestCrashed, exitcode.PatchFailed, exitcode.ConfigFailed, exitcode.BuildFailed, exitcode.KernelCrashed, exitcode.Infra, exitcode.Usage} {
		assert.False(t, seen[c], "code %d used twice", c)
		seen[c] = true
		assert.NotContains(t, c.String(), "exit code", "code %d has a name", c)
	}
}

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("stage: %w", err) }
	cases := []struct {
		err  error
		want exitcode.Code
	}{
		{wrap(&series.ApplyError{Index: 2}), exitcode.PatchFailed},
		{wrap(&kconfig.ConflictError{}), exitcode.ConfigFailed},
		{wrap(&kconfig.MissingError{}), exitcode.ConfigFailed},
		{wrap(&build.ConfigError{Err: errors.New("x")}), exitcode.ConfigFailed},
		{wrap(&build.Error{Err: errors.New("exit status 2")}), exitcode.BuildFailed},
		{&exitcode.StageError{Code: exitcode.TestsFailed, Err: errors.New("go test -c")}, exitcode.TestsFailed},
		{errors.New("disk full"), exitcode.Infra},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, exitcode.Of(tc.err), "%v", tc.err)
	}
}
