package bpffuzz

// The map part (ABI version 3): random BPF_MAP_CREATE attributes for
// BPF_MAP_TYPE_LANDLOCK_FS; random BPF_MAP_UPDATE_ELEM, DELETE_ELEM,
// LOOKUP_ELEM and GET_NEXT_KEY calls on maps of the fuzzer, with keys in
// and out of range and values among a directory fd, an O_PATH fd, a
// regular file fd, a pipe, a closed fd and random numbers; and programs
// calling bpf_landlock_fs_beneath (213) with R2 among a map of paths, an
// array map, 0 and the context, R3 among 0, 1 and random. A few of the
// programs that load are appended, each on a thread of its own that ends
// with it (landlockbpf.RunOnRuleThread), and a few system calls run
// under them: the programs allow whatever the helper answers, so every
// call must end as without rules.
//
// Where the outcome follows from the attributes and the state the fuzzer
// keeps (which keys of its maps are taken), expect gives the set of
// errnos the causes present allow (several when several causes could be
// checked first), or success when there is none: the spec's "Version 3"
// table as docs/abi-v3-plan.md §6.1 has it.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// fsmapAllowed are the errnos the map part's calls may return.
var fsmapAllowed = map[unix.Errno]bool{
	unix.EINVAL: true, unix.EACCES: true, unix.EBADF: true, unix.E2BIG: true, unix.EEXIST: true,
	unix.ENOENT: true, unix.EPERM: true, unix.EOPNOTSUPP: true, enotsupp: true, unix.ENOMEM: true,
}

// fsmapKnownFlags are the map_flags a BPF_MAP_TYPE_LANDLOCK_FS map takes.
const fsmapKnownFlags = unix.BPF_F_RDONLY | unix.BPF_F_WRONLY | unix.BPF_F_NUMA_NODE

// fsmapMaxAppends bounds the rules the part appends (one thread each).
const fsmapMaxAppends = 24

// fsmapSkip returns why the map part cannot run here, or "".
func fsmapSkip() string {
	v, err := landlockbpf.KernelABIVersion()
	if err != nil {
		return fmt.Sprintf("Landlock eBPF ABI version query: %v", err)
	}
	if v < 3 {
		return fmt.Sprintf("the kernel reports Landlock eBPF ABI version %d; BPF_MAP_TYPE_LANDLOCK_FS comes with version 3", v)
	}
	return ""
}

// fsValue is a value to write into a map, with what the kernel must make
// of it.
type fsValue struct {
	name string
	fd   uint32
	// want is the errno the value alone gives (0: a valid path).
	want unix.Errno
	// exact is false for a random number that may be an open fd.
	exact bool
}

// fsMap is a map of the fuzzer and which of its keys are taken.
type fsMap struct {
	fd    int
	taken []bool
}

// fsFuzz is the map part's state.
type fsFuzz struct {
	g       *gen
	fx      *fixtures
	dir     string
	values  []fsValue
	maps    []*fsMap
	appends int
}

// newFSFuzz makes the part's directory, fds and maps.
func newFSFuzz(t *testing.T, g *gen, fx *fixtures) *fsFuzz {
	t.Helper()
	f := &fsFuzz{g: g, fx: fx, dir: t.TempDir()}
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "f"), []byte("fuzz\n"), 0o644))
	open := func(p string, flags int) uint32 {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
		require.NoError(t, err, "open %s", p)
		t.Cleanup(func() { unix.Close(fd) })
		return uint32(fd)
	}
	f.values = []fsValue{
		{"dir", open(f.dir, unix.O_RDONLY|unix.O_DIRECTORY), 0, true},
		{"o_path", open(f.dir, unix.O_PATH), 0, true},
		{"file", open(filepath.Join(f.dir, "f"), unix.O_RDONLY), 0, true},
		{"pipe", uint32(fx.pipe[0]), unix.EINVAL, true},
		// Not fx.closedFD: the opens above may have got its number.
		// Fds are handed out lowest first, so this one stays closed.
		{"closed", closedFSMapFD, unix.EBADF, true},
	}
	for _, n := range []uint32{1, 8, 64} {
		fd, errno := fsmapCreate(landlockbpf.FSMapAttr(n))
		require.Zero(t, errno, "creating a map of %d paths: %v", n, errno)
		t.Cleanup(func() { unix.Close(fd) })
		f.maps = append(f.maps, &fsMap{fd: fd, taken: make([]bool, n)})
	}
	return f
}

// fsmapCreate calls BPF_MAP_CREATE.
func fsmapCreate(a landlockbpf.MapCreateAttr) (int, unix.Errno) {
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_MAP_CREATE, uintptr(unsafe.Pointer(&a)), unsafe.Sizeof(a))
	if errno != 0 {
		return -1, errno
	}
	return int(fd), 0
}

// errnoOf turns a raw layer's error into its errno (0 for nil).
func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	if e, ok := err.(unix.Errno); ok {
		return e
	}
	return unix.Errno(255)
}

// check records the outcome got of the call desc (of command cmd), which
// had to be one of want (success when want is empty; anything allowed
// when exact is false).
func check(rep *report, cmd, desc string, got unix.Errno, want []unix.Errno, exact bool) {
	rep.FSMap[cmd+":"+errnoName(got)]++
	rep.FSMapCalls++
	switch {
	case got != 0 && !fsmapAllowed[got]:
		rep.violate("%s: %s, not an errno the map part allows", desc, errnoName(got))
	case !exact:
	case len(want) == 0 && got != 0:
		rep.violate("%s: %s, want success", desc, errnoName(got))
	case len(want) > 0 && !slices.Contains(want, got):
		names := make([]string, len(want))
		for i, w := range want {
			names[i] = errnoName(w)
		}
		rep.violate("%s: %s, want one of %v", desc, errnoName(got), names)
	}
}

// create draws and makes a BPF_MAP_CREATE call.
func (f *fsFuzz) create(rep *report) {
	g := f.g
	a := landlockbpf.FSMapAttr(pick(g, []uint32{1, 8, 64, 0, 65, 1 << 31, g.r.Uint32()}))
	a.KeySize = pick(g, []uint32{4, 4, 4, 0, 8, g.r.Uint32()})
	a.ValueSize = pick(g, []uint32{4, 4, 4, 0, 8, g.r.Uint32()})
	a.MapFlags = pick(g, []uint32{0, 0, unix.BPF_F_RDONLY, unix.BPF_F_WRONLY, unix.BPF_F_NUMA_NODE, 1 << g.r.IntN(32), g.r.Uint32()})
	var want []unix.Errno
	if a.KeySize != 4 || a.ValueSize != 4 || a.MaxEntries == 0 || a.MapFlags&^fsmapKnownFlags != 0 ||
		a.MapFlags&(unix.BPF_F_RDONLY|unix.BPF_F_WRONLY) == unix.BPF_F_RDONLY|unix.BPF_F_WRONLY {
		want = append(want, unix.EINVAL)
	}
	if a.MaxEntries > landlockbpf.FSMapMaxEntries {
		want = append(want, unix.E2BIG)
	}
	fd, errno := fsmapCreate(a)
	if errno == 0 {
		unix.Close(fd)
	}
	check(rep, "BPF_MAP_CREATE", fmt.Sprintf("BPF_MAP_CREATE(%+v)", a), errno, want, true)
}

// key draws a key of m: in range mostly, else just past it or anything.
func (f *fsFuzz) key(m *fsMap) uint32 {
	switch f.g.r.IntN(8) {
	case 0:
		return uint32(len(m.taken))
	case 1:
		return f.g.r.Uint32()
	}
	return uint32(f.g.r.IntN(len(m.taken)))
}

// closedFSMapFD is an fd number the fuzzer never opens.
const closedFSMapFD = 1000

// value draws a value to write.
func (f *fsFuzz) value() fsValue {
	if f.g.chance(0.15) {
		v := f.g.r.Uint32() | 1<<24
		return fsValue{name: "random", fd: v, want: unix.EBADF, exact: !fdOpen(v)}
	}
	v := pick(f.g, f.values)
	if v.name == "closed" {
		// The number of a closed fd is reused by the next open: it
		// is closed only if nothing got it since.
		v.exact = !fdOpen(v.fd)
	}
	return v
}

// elem draws and makes a map element call on one of the fuzzer's maps.
func (f *fsFuzz) elem(rep *report) {
	g := f.g
	m := pick(g, f.maps)
	k := f.key(m)
	inRange := k < uint32(len(m.taken))
	switch g.r.IntN(8) {
	case 0, 1, 2, 3:
		v := f.value()
		flags := pick(g, []uint64{unix.BPF_ANY, unix.BPF_NOEXIST, unix.BPF_EXIST, unix.BPF_F_LOCK, uint64(g.r.Uint32())})
		var want []unix.Errno
		if flags > unix.BPF_EXIST {
			want = append(want, unix.EINVAL)
		}
		if !inRange {
			want = append(want, unix.E2BIG)
		}
		if v.want != 0 {
			want = append(want, v.want)
		}
		if inRange && flags == unix.BPF_NOEXIST && m.taken[k] {
			want = append(want, unix.EEXIST)
		}
		if inRange && flags == unix.BPF_EXIST && !m.taken[k] {
			want = append(want, unix.ENOENT)
		}
		err := landlockbpf.MapUpdate(m.fd, k, v.fd, flags)
		if err == nil && inRange {
			m.taken[k] = true
		}
		check(rep, "BPF_MAP_UPDATE_ELEM", fmt.Sprintf("BPF_MAP_UPDATE_ELEM(map of %d, key %d, %s fd %d, flags %#x)", len(m.taken), k, v.name, v.fd, flags),
			errnoOf(err), want, v.exact)
	case 4, 5:
		var want []unix.Errno
		switch {
		case !inRange:
			want = []unix.Errno{unix.E2BIG}
		case !m.taken[k]:
			want = []unix.Errno{unix.ENOENT}
		}
		err := landlockbpf.MapDelete(m.fd, k)
		if err == nil && inRange {
			m.taken[k] = false
		}
		check(rep, "BPF_MAP_DELETE_ELEM", fmt.Sprintf("BPF_MAP_DELETE_ELEM(map of %d, key %d)", len(m.taken), k), errnoOf(err), want, true)
	case 6:
		_, err := landlockbpf.MapLookup(m.fd, k)
		want := []unix.Errno{unix.EOPNOTSUPP}
		if !inRange {
			want = append(want, unix.E2BIG, unix.ENOENT)
		}
		check(rep, "BPF_MAP_LOOKUP_ELEM", fmt.Sprintf("BPF_MAP_LOOKUP_ELEM(map of %d, key %d)", len(m.taken), k), errnoOf(err), want, true)
	default:
		var kp *uint32
		if g.chance(0.2) {
			k = 0
		} else {
			kp = &k
		}
		next, err := landlockbpf.MapGetNextKey(m.fd, kp)
		desc := fmt.Sprintf("BPF_MAP_GET_NEXT_KEY(map of %d, key %v)", len(m.taken), k)
		switch {
		case kp == nil:
			check(rep, "BPF_MAP_GET_NEXT_KEY", desc, errnoOf(err), nil, true)
			if err == nil && next != 0 {
				rep.violate("%s: next key %d, want 0", desc, next)
			}
		case k+1 < uint32(len(m.taken)):
			check(rep, "BPF_MAP_GET_NEXT_KEY", desc, errnoOf(err), nil, true)
			if err == nil && next != k+1 {
				rep.violate("%s: next key %d, want %d", desc, next, k+1)
			}
		case k+1 == uint32(len(m.taken)):
			check(rep, "BPF_MAP_GET_NEXT_KEY", desc, errnoOf(err), []unix.Errno{unix.ENOENT}, true)
		default:
			// Past the end: array maps restart at 0.
			check(rep, "BPF_MAP_GET_NEXT_KEY", desc, errnoOf(err), nil, false)
		}
	}
}

// helperProg draws a program calling bpf_landlock_fs_beneath, and the
// errno its load must give.
func (f *fsFuzz) helperProg() (insns []insn, desc string, want unix.Errno, fsmapFD int) {
	g := f.g
	insns = []insn{movReg(6, 1)}
	fsmapFD = -1
	switch g.r.IntN(4) {
	case 0, 1:
		m := pick(g, f.maps)
		fsmapFD = m.fd
		insns = append(insns, mk(ldImm64, 2, 1, 0, int32(m.fd)), mk(0, 0, 0, 0, 0))
		desc = fmt.Sprintf("R2=map of %d paths", len(m.taken))
	case 2:
		insns = append(insns, mk(ldImm64, 2, 1, 0, int32(f.fx.mapFD)), mk(0, 0, 0, 0, 0))
		desc, want = "R2=array map", unix.EINVAL
	default:
		if g.chance(0.5) {
			insns = append(insns, movImm(2, 0))
			desc = "R2=0"
		} else {
			insns = append(insns, movReg(2, 1))
			desc = "R2=ctx"
		}
		want = unix.EACCES
	}
	r3 := pick(g, []int32{0, 1, int32(g.r.Uint32())})
	insns = append(insns, movImm(3, r3), movReg(1, 6), call(landlockbpf.FuncFSBeneath))
	desc += fmt.Sprintf(" R3=%d", r3)
	if g.chance(0.5) {
		// Use the answer, then allow whatever it was.
		insns = append(insns, mk(clsJMP|opJSLT|srcK, 0, 0, 1, 0), mk(clsALU64|opAdd|srcK, 0, 0, 0, 1))
	}
	insns = append(insns, movImm(0, 0), exit())
	return insns, desc, want, fsmapFD
}

// prog draws, loads and checks a program calling the helper, and now and
// then appends one that loaded on a thread of its own and runs a few
// system calls under it.
func (f *fsFuzz) prog(rep *report) {
	insns, desc, want, _ := f.helperProg()
	fd, errno := loadRetry(&loadInput{Insns: insns, License: []byte("GPL\x00"), Attach: landlockbpf.AttachLandlockFS})
	var wants []unix.Errno
	if want != 0 {
		wants = []unix.Errno{want}
	}
	check(rep, "BPF_PROG_LOAD", "BPF_PROG_LOAD of a program calling bpf_landlock_fs_beneath with "+desc, errno, wants, true)
	if errno != 0 {
		return
	}
	defer unix.Close(fd)
	if f.appends >= fsmapMaxAppends || !f.g.chance(0.1) {
		return
	}
	f.appends++
	rep.FSMapAppends++
	if got := f.underRule(fd); got != "" {
		rep.violate("under a rule calling bpf_landlock_fs_beneath with %s that allows everything: %s", desc, got)
	}
}

// underRule appends the rule fd on a new thread and runs system calls
// under it, which must all succeed; it returns what went wrong, or "".
func (f *fsFuzz) underRule(fd int) string {
	var res string
	landlockbpf.RunOnRuleThread(func() {
		prog := uint32(fd)
		if _, errno := seccompAppend(0, unsafe.Pointer(&prog)); errno != 0 {
			res = "appending it: " + errnoName(errno)
			return
		}
		p := filepath.Join(f.dir, "f")
		for _, op := range []struct {
			name string
			fn   func() error
		}{
			{"open_write", func() error {
				fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				defer unix.Close(fd)
				_, err = unix.Write(fd, []byte("x"))
				return err
			}},
			{"stat", func() error { var st unix.Stat_t; return unix.Stat(p, &st) }},
			{"mkdir_rmdir", func() error {
				d := filepath.Join(f.dir, "n")
				if err := unix.Mkdir(d, 0o755); err != nil {
					return err
				}
				return unix.Rmdir(d)
			}},
			{"utimensat", func() error { return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{Sec: 1}, {Sec: 2}}, 0) }},
			{"pipe_write", func() error {
				_, err := unix.Write(f.fx.pipe[1], []byte("x"))
				if err == nil {
					_, err = unix.Read(f.fx.pipe[0], make([]byte, 1))
				}
				return err
			}},
		} {
			if err := op.fn(); err != nil {
				res += fmt.Sprintf("%s: %v; ", op.name, err)
			}
		}
	})
	return res
}

// fuzzFSMap runs the map part until deadline. It does not touch t.
func fuzzFSMap(f *fsFuzz, deadline time.Time, inflight *atomic.Pointer[string]) *report {
	rep := newReport()
	for i := 0; time.Now().Before(deadline); i++ {
		what := fmt.Sprintf("map part call %d", i)
		inflight.Store(&what)
		start := time.Now()
		switch f.g.r.IntN(4) {
		case 0:
			f.create(rep)
		case 1:
			f.prog(rep)
		default:
			f.elem(rep)
		}
		rep.timed(time.Since(start), func() string { return what })
	}
	return rep
}

// runFSMapPart runs the map part with seed for budget on its own
// goroutine, so that a call that never returns is caught.
func runFSMapPart(t *testing.T, seed uint64, budget time.Duration, fx *fixtures) *report {
	t.Helper()
	t.Logf("fuzz: map part: seed %d, %s", seed, budget)
	f := newFSFuzz(t, newGen(seed, nil), fx)
	var inflight atomic.Pointer[string]
	done := make(chan *report, 1)
	deadline := time.Now().Add(budget)
	go func() { done <- fuzzFSMap(f, deadline, &inflight) }()
	select {
	case rep := <-done:
		return rep
	case <-time.After(time.Until(deadline) + hangGrace):
		what := "?"
		if p := inflight.Load(); p != nil {
			what = *p
		}
		t.Fatalf("a call of the map part did not return %s after the deadline (seed %d): %s", hangGrace, seed, what)
		return nil
	}
}

// TestFSMapExpect checks, on the host too, the expectations of the map
// part's create calls for a few attributes.
func TestFSMapExpect(t *testing.T) {
	rep := newReport()
	check(rep, "X", "ok", 0, nil, true)
	check(rep, "X", "einval", unix.EINVAL, []unix.Errno{unix.EINVAL, unix.E2BIG}, true)
	check(rep, "X", "inexact", unix.EBADF, []unix.Errno{unix.EINVAL}, false)
	require.Empty(t, rep.Violations)
	check(rep, "X", "success wanted", unix.EINVAL, nil, true)
	check(rep, "X", "other errno", unix.EEXIST, []unix.Errno{unix.EINVAL}, true)
	check(rep, "X", "not allowed", unix.EIO, nil, false)
	require.Len(t, rep.Violations, 3, "%v", rep.Violations)
	require.Equal(t, 6, rep.FSMapCalls)
}
