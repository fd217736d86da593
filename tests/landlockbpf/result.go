package landlockbpf

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// ResultName names the result of a step a helper process reports on one
// line: "ok", the errno's name (EPERM), or the error on one line.
func ResultName(err error) string {
	var errno unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno) && unix.ErrnoName(errno) != "":
		return unix.ErrnoName(errno)
	default:
		return strings.ReplaceAll(err.Error(), "\n", " ")
	}
}
