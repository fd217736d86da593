package bpfbench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
)

// The fs_beneath rows (ABI version 3): the canonical "write only beneath
// D" rule, bpfsandbox.Rule(rw, nil) with D in the map, against no rule,
// on a file 1 and 8 directories below D (dir=inside) and the same below a
// sibling of D (dir=outside, where the open fails with EPERM under the
// rule). Printed as
//
//	bench: op=open-wronly+close rules=1 rule=fs_beneath depth=8 dir=outside ns/op=1234.5
//
// rules=0 is the same tree with no rule (the baseline, measured on every
// kernel), rules=1 the canonical rule; below version 3 the rules=1 rows
// are skipped and "bench: fs_beneath rows skipped: <why>" says why.
const (
	// envChildFSRule makes a child measure the fs_beneath rows: "0" or
	// "1", the number of canonical rules it appends.
	envChildFSRule = "LANDLOCK_BENCH_CHILD_FS_RULE"
	// envChildFSBase is the tree's directory.
	envChildFSBase = "LANDLOCK_BENCH_CHILD_FS_BASE"

	opOpenWrite = "open-wronly+close"
	// ruleFSBeneath is rule= of the rows.
	ruleFSBeneath = "fs_beneath"
)

// fsDepths are the depths of the files below D (and below its sibling),
// fsWheres where they are.
var (
	fsDepths = []int{1, 8}
	fsWheres = []string{"inside", "outside"}
)

// fsTop is D (where "inside") or its sibling (where "outside") in base.
func fsTop(base, where string) string { return filepath.Join(base, where) }

// fsFile is the file depth directories below fsTop(base, where).
func fsFile(base, where string, depth int) string {
	p := fsTop(base, where)
	for i := 1; i <= depth; i++ {
		p = filepath.Join(p, "d"+strconv.Itoa(i))
	}
	return filepath.Join(p, "file")
}

// fsKey names one measurement in a result's rounds.
func fsKey(op string, depth int, where string) string {
	return fmt.Sprintf("%s depth=%d dir=%s", op, depth, where)
}

// fsKeys are all of them.
func fsKeys() []string {
	var keys []string
	for _, where := range fsWheres {
		for _, depth := range fsDepths {
			for _, op := range []string{opOpenWrite, opStat} {
				keys = append(keys, fsKey(op, depth, where))
			}
		}
	}
	return keys
}

// fsBeneathSkip returns why the rule rows cannot be measured here, or "".
func fsBeneathSkip(present bool, abi int) string {
	switch {
	case !present:
		return "the kernel has no Landlock eBPF rules"
	case abi < bpfsandbox.NeedABI:
		return fmt.Sprintf("the kernel reports Landlock eBPF ABI version %d; BPF_MAP_TYPE_LANDLOCK_FS and bpf_landlock_fs_beneath come with version %d", abi, bpfsandbox.NeedABI)
	}
	return ""
}

// benchFSBeneath measures the fs_beneath rows; why, if not "", is why the
// rule rows are skipped.
func benchFSBeneath(t *testing.T, why string) {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "bpfbench-fs-")
	require.NoError(t, err, "creating the fs_beneath tree")
	t.Cleanup(func() { os.RemoveAll(base) })
	for _, where := range fsWheres {
		for _, depth := range fsDepths {
			f := fsFile(base, where, depth)
			require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
			require.NoError(t, os.WriteFile(f, []byte("landlock-vmtest bench\n"), 0o644))
		}
	}
	t.Logf("fs_beneath tree %s: D is %s", base, fsTop(base, "inside"))
	if why != "" {
		t.Logf("bench: fs_beneath rows skipped: %s", why)
	}
	keys := fsKeys()
	for _, rules := range []int{0, 1} {
		var res *result
		t.Run(fmt.Sprintf("rule=%s,rules=%d", ruleFSBeneath, rules), func(t *testing.T) {
			if rules > 0 && why != "" {
				t.Skip(why)
			}
			// The child's result goes beneath D: under the rule it can
			// write nowhere else.
			out := filepath.Join(fsTop(base, "inside"), fmt.Sprintf("result-%d.json", rules))
			env := []string{envChildFSRule + "=" + strconv.Itoa(rules), envChildFSBase + "=" + base}
			res = spawnChildTo(t, out, fmt.Sprintf("the fs_beneath rows, %d rules", rules), env, -1, keys)
		})
		if res == nil {
			continue
		}
		if rules > 0 {
			t.Logf("rule=%s: %d of %d rules JIT-compiled", ruleFSBeneath, res.Jited, rules)
		}
		for _, where := range fsWheres {
			for _, depth := range fsDepths {
				for _, op := range []string{opOpenWrite, opStat} {
					k := fsKey(op, depth, where)
					t.Logf("rounds op=%s rules=%d rule=%s depth=%d dir=%s ns/op=%s", op, rules, ruleFSBeneath, depth, where, formatRounds(res.Rounds[k]))
					t.Logf("bench: op=%s rules=%d rule=%s depth=%d dir=%s ns/op=%.1f", op, rules, ruleFSBeneath, depth, where, median(res.Rounds[k]))
				}
			}
		}
	}
}

// runFSChild is the child of the fs_beneath rows: it appends n (0 or 1)
// canonical rules with D in the map, measures and writes the result
// (beneath D) where the parent said.
func runFSChild(t *testing.T, n string) {
	rules, err := strconv.Atoi(n)
	require.NoError(t, err, "%s=%q", envChildFSRule, n)
	require.Contains(t, []int{0, 1}, rules, envChildFSRule)
	base, out := os.Getenv(envChildFSBase), os.Getenv(envChildResult)
	require.NotEmpty(t, base, envChildFSBase)
	require.NotEmpty(t, out, envChildResult)
	iter, rounds := sizes(t)

	// The rule belongs to this thread: append it and measure on it.
	runtime.LockOSThread()
	res := result{Rules: rules, Iter: iter, Rounds: map[string][]float64{}, Cgroup: ownCgroup()}
	if rules == 1 {
		m, err := bpfsandbox.NewFSMap(1)
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.Add(fsTop(base, "inside")))
		require.NoError(t, m.Freeze())
		prog, err := bpfsandbox.Load(bpfsandbox.Rule(m, nil))
		require.NoError(t, err, "loading the canonical rule")
		defer prog.Close()
		if jited(prog) {
			res.Jited++
		}
		require.NoError(t, bpfsandbox.Append(prog))
	}

	type fsOp struct {
		key  string
		fn   func(p *byte) unix.Errno
		path *byte
		want unix.Errno // what every call must give
	}
	var ops []fsOp
	for _, where := range fsWheres {
		for _, depth := range fsDepths {
			p, err := unix.BytePtrFromString(fsFile(base, where, depth))
			require.NoError(t, err)
			var deny unix.Errno
			if rules == 1 && where == "outside" {
				deny = unix.EPERM
			}
			ops = append(ops,
				fsOp{fsKey(opOpenWrite, depth, where), openWriteClose, p, deny},
				fsOp{fsKey(opStat, depth, where), statErrno, p, 0})
		}
	}
	check := func(op fsOp, what string) {
		if got := op.fn(op.path); got != op.want {
			t.Fatalf("%s (%s): got %v, want %v", op.key, what, errName(got), errName(op.want))
		}
	}
	warm := max(iter/10, 100)
	for _, op := range ops {
		for range warm {
			check(op, "warm-up")
		}
	}
	for r := range rounds {
		for _, op := range ops {
			check(op, fmt.Sprintf("round %d", r))
			start := time.Now()
			for range iter {
				if op.fn(op.path) != op.want {
					check(op, fmt.Sprintf("round %d", r))
				}
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(iter)
			res.Rounds[op.key] = append(res.Rounds[op.key], ns)
		}
	}
	for _, op := range ops {
		runtime.KeepAlive(op.path)
		t.Logf("op=%s rules=%d rounds ns/op=%s", op.key, rules, formatRounds(res.Rounds[op.key]))
	}
	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(out, b, 0o644), "writing the result (beneath D)")
}

// errName names errno, "success" for 0.
func errName(e unix.Errno) string {
	if e == 0 {
		return "success"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return e.Error()
}

// openWriteClose opens the file write-only (no O_TRUNC, no O_CREAT) and
// closes it, returning the errno (0 on success) without allocating.
func openWriteClose(path *byte) unix.Errno {
	fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)),
		uintptr(unix.O_WRONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	_, _, errno = unix.Syscall(unix.SYS_CLOSE, fd, 0, 0)
	return errno
}

// statErrno is stat (newfstatat) returning the errno.
func statErrno(path *byte) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(path)),
		uintptr(unsafe.Pointer(&statBuf)), 0, 0, 0)
	return errno
}

func TestFSKeys(t *testing.T) {
	keys := fsKeys()
	require.Len(t, keys, 8)
	require.Equal(t, "open-wronly+close depth=1 dir=inside", keys[0])
	require.Equal(t, "/b/inside/d1/d2/file", fsFile("/b", "inside", 2))
	require.Equal(t, "/b/outside/d1/file", fsFile("/b", "outside", 1))
	require.Contains(t, fsBeneathSkip(true, 2), "ABI version 2")
	require.Empty(t, fsBeneathSkip(true, 3))
}
