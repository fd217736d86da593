package privdrop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// apply gives the whole calling process (every thread) the privileges p,
// then checks in /proc that every thread has them. It cannot be undone.
//
// Linux keeps credentials per thread. syscall.Setgroups, Setresgid and
// Setresuid already change every thread of a Go program; the bounding set,
// no_new_privs and the capability sets are changed here on every thread
// with syscall.AllThreadsSyscall, which only works in binaries without cgo.
//
// The order matters. Dropping from the bounding set needs CAP_SETPCAP,
// and changing ids needs CAP_SETUID and CAP_SETGID, so the capability sets
// are lowered last. Supplementary groups go before the gid, the gid before
// the uid (which may give up the right to change it).
func apply(p Privs) error {
	if err := p.validate(); err != nil {
		return err
	}
	last, err := lastCap()
	if err != nil {
		return err
	}
	drop, err := p.dropMask(last)
	if err != nil {
		return err
	}
	before, err := Current()
	if err != nil {
		return err
	}

	for c := 0; c <= last; c++ {
		if drop&(1<<c) == 0 || before.CapBnd&(1<<c) == 0 {
			continue
		}
		if err := allThreads("prctl(PR_CAPBSET_DROP)", unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c)); err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if p.NoNewPrivs {
		if err := allThreads("prctl(PR_SET_NO_NEW_PRIVS)", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	if p.GID != Keep {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("clearing supplementary groups: %w", err)
		}
		if err := syscall.Setresgid(p.GID, p.GID, p.GID); err != nil {
			return fmt.Errorf("setting gid %d: %w", p.GID, err)
		}
	}
	if p.UID != Keep {
		if err := syscall.Setresuid(p.UID, p.UID, p.UID); err != nil {
			return fmt.Errorf("setting uid %d: %w", p.UID, err)
		}
	}
	if drop != 0 {
		if err := lowerCaps(drop); err != nil {
			return err
		}
	}
	return verifyAllThreads(p, drop, before)
}

// lowerCaps removes drop from the effective, permitted and inheritable sets
// of every thread (which removes it from the ambient set as well).
func lowerCaps(drop uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	for i := range data {
		keep := ^uint32(drop >> (32 * i))
		data[i].Effective &= keep
		data[i].Permitted &= keep
		data[i].Inheritable &= keep
	}
	if err := allThreads("capset", unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0]))); err != nil {
		return fmt.Errorf("lowering capabilities: %w", err)
	}
	return nil
}

// allThreads runs a two-argument system call on every thread of the
// process; the other arguments are zero, as prctl requires.
func allThreads(what string, trap, a1, a2 uintptr) error {
	_, _, errno := syscall.AllThreadsSyscall6(trap, a1, a2, 0, 0, 0, 0)
	switch {
	case errno == 0:
		return nil
	case errno == syscall.ENOTSUP:
		return fmt.Errorf("%s on every thread: %w (syscall.AllThreadsSyscall works only in binaries without cgo: build with CGO_ENABLED=0)", what, errno)
	default:
		return fmt.Errorf("%s: %w", what, errno)
	}
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("reading the highest capability: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parsing /proc/sys/kernel/cap_last_cap: %w", err)
	}
	return n, nil
}

// verifyAllThreads checks every thread's /proc status against p.
func verifyAllThreads(p Privs, drop uint64, before Status) error {
	paths, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(paths) == 0 {
		return fmt.Errorf("listing the threads in /proc/self/task: %v", err)
	}
	var errs []error
	for _, path := range paths {
		st, err := ReadStatus(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited
		}
		if err != nil {
			return fmt.Errorf("verifying privileges: %w", err)
		}
		if err := check(p, drop, before, st); err != nil {
			errs = append(errs, fmt.Errorf("thread %s: %w", filepath.Base(filepath.Dir(path)), err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("privileges did not take: %w", errors.Join(errs...))
	}
	return nil
}

// check compares one thread's status with what applying p (dropping the
// capabilities in drop) to a thread that had status before must give.
func check(p Privs, drop uint64, before, st Status) error {
	var errs []error
	ids := func(what string, want int, prev, got [4]int) {
		exp := prev
		if want != Keep {
			exp = [4]int{want, want, want, want}
		}
		if got != exp {
			errs = append(errs, fmt.Errorf("%s is %v, want %v", what, got, exp))
		}
	}
	ids("Uid", p.UID, before.UID, st.UID)
	ids("Gid", p.GID, before.GID, st.GID)
	if p.GID != Keep && len(st.Groups) > 0 {
		errs = append(errs, fmt.Errorf("Groups is %v, want none", st.Groups))
	}
	for _, set := range []struct {
		name string
		val  uint64
	}{
		{"CapInh", st.CapInh}, {"CapPrm", st.CapPrm}, {"CapEff", st.CapEff},
		{"CapBnd", st.CapBnd}, {"CapAmb", st.CapAmb},
	} {
		if left := set.val & drop; left != 0 {
			errs = append(errs, fmt.Errorf("%s is %016x: still has dropped capabilities %016x", set.name, set.val, left))
		}
	}
	if want := p.NoNewPrivs || before.NoNewPrivs; st.NoNewPrivs != want {
		errs = append(errs, fmt.Errorf("NoNewPrivs is %t, want %t", st.NoNewPrivs, want))
	}
	return errors.Join(errs...)
}
