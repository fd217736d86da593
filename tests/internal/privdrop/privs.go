package privdrop

import (
	"fmt"
	"slices"
	"strings"
)

// Keep, as Privs.UID or Privs.GID, leaves that identity unchanged.
const Keep = -1

// NobodyID is the uid and gid of the unprivileged user nobody.
const NobodyID = 65534

// maxCap bounds capability numbers: the kernel's capability sets are 64-bit.
const maxCap = 63

// Privs describes the privileges a scenario runs with.
//
// The zero Privs switches to uid 0 and gid 0 and drops nothing; start from
// Nobody, RootWithout or a literal with UID and GID set to Keep instead.
type Privs struct {
	// UID is the uid (real, effective, saved and filesystem) to switch
	// to, or Keep.
	UID int
	// GID is the gid (real, effective, saved and filesystem) to switch
	// to, or Keep. Setting a gid also empties the supplementary groups.
	GID int
	// DropCaps lists capabilities (unix.CAP_*) removed from the
	// effective, permitted, inheritable and ambient sets and from the
	// bounding set, so that no later execve can bring them back.
	DropCaps []uintptr
	// DropAllCaps drops every capability the kernel knows, as DropCaps
	// does for the listed ones.
	DropAllCaps bool
	// NoNewPrivs sets no_new_privs (PR_SET_NO_NEW_PRIVS). Without it the
	// flag is left as the test binary had it.
	NoNewPrivs bool
}

// Nobody returns the privileges of the user nobody: uid and gid 65534, no
// supplementary groups, no capabilities, not even in the bounding set.
func Nobody() Privs {
	return Privs{UID: NobodyID, GID: NobodyID, DropAllCaps: true}
}

// RootWithout returns the privileges of root (uid 0, gid unchanged) without
// the given capabilities, e.g. RootWithout(unix.CAP_SYS_ADMIN).
func RootWithout(caps ...uintptr) Privs {
	return Privs{UID: 0, GID: Keep, DropCaps: slices.Clone(caps)}
}

// WithNoNewPrivs returns a copy of p that also sets no_new_privs.
func (p Privs) WithNoNewPrivs() Privs {
	p.DropCaps = slices.Clone(p.DropCaps)
	p.NoNewPrivs = true
	return p
}

// String describes p briefly, for test logs.
func (p Privs) String() string {
	id := func(v int) string {
		if v == Keep {
			return "keep"
		}
		return fmt.Sprint(v)
	}
	parts := []string{"uid=" + id(p.UID), "gid=" + id(p.GID)}
	switch {
	case p.DropAllCaps:
		parts = append(parts, "caps=none")
	case len(p.DropCaps) > 0:
		caps := make([]string, len(p.DropCaps))
		for i, c := range p.DropCaps {
			caps[i] = fmt.Sprint(c)
		}
		parts = append(parts, "drop-caps="+strings.Join(caps, ","))
	}
	if p.NoNewPrivs {
		parts = append(parts, "no_new_privs")
	}
	return strings.Join(parts, " ")
}

// validate reports fields that cannot be applied.
func (p Privs) validate() error {
	if p.UID < Keep {
		return fmt.Errorf("invalid uid %d", p.UID)
	}
	if p.GID < Keep {
		return fmt.Errorf("invalid gid %d", p.GID)
	}
	for _, c := range p.DropCaps {
		if c > maxCap {
			return fmt.Errorf("invalid capability %d", c)
		}
	}
	return nil
}

// dropMask returns the capabilities p drops as a bit mask, given the
// highest capability the kernel knows (/proc/sys/kernel/cap_last_cap).
func (p Privs) dropMask(lastCap int) (uint64, error) {
	if lastCap < 0 || lastCap > maxCap {
		return 0, fmt.Errorf("invalid cap_last_cap %d", lastCap)
	}
	if p.DropAllCaps {
		if lastCap == maxCap {
			return ^uint64(0), nil
		}
		return 1<<(lastCap+1) - 1, nil
	}
	var mask uint64
	for _, c := range p.DropCaps {
		if c > uintptr(lastCap) {
			return 0, fmt.Errorf("capability %d is unknown to this kernel (cap_last_cap is %d)", c, lastCap)
		}
		mask |= 1 << c
	}
	return mask, nil
}
