package privdrop

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Status is the credential part of a /proc/<pid>/status file.
type Status struct {
	// UID and GID are the real, effective, saved and filesystem ids.
	UID, GID [4]int
	// Groups are the supplementary groups.
	Groups []int
	// CapInh, CapPrm, CapEff, CapBnd and CapAmb are the inheritable,
	// permitted, effective, bounding and ambient capability sets, bit n
	// standing for capability n.
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64
	// NoNewPrivs is the no_new_privs flag.
	NoNewPrivs bool
	// Seccomp is the seccomp mode: 0 none, 1 strict, 2 filter.
	Seccomp int
}

// Current reads the status of the calling process (/proc/self/status,
// which describes its main thread).
func Current() (Status, error) {
	return ReadStatus("/proc/self/status")
}

// ReadStatus reads and parses a /proc status file.
func ReadStatus(path string) (Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}, fmt.Errorf("reading process status: %w", err)
	}
	s, err := parseStatus(b)
	if err != nil {
		return Status{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	return s, nil
}

// HasEffective reports whether capability c is in the effective set.
func (s Status) HasEffective(c uintptr) bool { return c <= maxCap && s.CapEff&(1<<c) != 0 }

// HasBounding reports whether capability c is in the bounding set.
func (s Status) HasBounding(c uintptr) bool { return c <= maxCap && s.CapBnd&(1<<c) != 0 }

func parseStatus(b []byte) (Status, error) {
	var s Status
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid":
			s.UID, err = parseIDs(val)
		case "Gid":
			s.GID, err = parseIDs(val)
		case "Groups":
			s.Groups, err = parseInts(val)
		case "CapInh":
			s.CapInh, err = strconv.ParseUint(val, 16, 64)
		case "CapPrm":
			s.CapPrm, err = strconv.ParseUint(val, 16, 64)
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(val, 16, 64)
		case "CapBnd":
			s.CapBnd, err = strconv.ParseUint(val, 16, 64)
		case "CapAmb":
			s.CapAmb, err = strconv.ParseUint(val, 16, 64)
		case "NoNewPrivs":
			var n int
			n, err = strconv.Atoi(val)
			s.NoNewPrivs = n != 0
		case "Seccomp":
			s.Seccomp, err = strconv.Atoi(val)
		default:
			continue
		}
		if err != nil {
			return Status{}, fmt.Errorf("field %s: %w", key, err)
		}
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return Status{}, err
	}
	for _, k := range []string{"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"} {
		if !seen[k] {
			return Status{}, fmt.Errorf("no %s field", k)
		}
	}
	return s, nil
}

func parseIDs(val string) ([4]int, error) {
	var ids [4]int
	n, err := parseInts(val)
	if err != nil {
		return ids, err
	}
	if len(n) != len(ids) {
		return ids, fmt.Errorf("%d ids, want %d", len(n), len(ids))
	}
	copy(ids[:], n)
	return ids, nil
}

func parseInts(val string) ([]int, error) {
	var out []int
	for _, f := range strings.Fields(val) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
