package cgroupmgr

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// Attach flags, with the names the subtests use.
const (
	none     = 0
	override = unix.BPF_F_ALLOW_OVERRIDE
	multi    = unix.BPF_F_ALLOW_MULTI
	replace  = unix.BPF_F_REPLACE
	preorder = unix.BPF_F_PREORDER
)

var flagNames = []struct {
	name  string
	flags uint32
}{{"none", none}, {"override", override}, {"multi", multi}}

// runsIn returns the slots of the programs that ran, in order, when a
// helper in cg reads the marker (which every recording program allows).
func (f *fixture) runsIn(t *testing.T, cg *landlockbpf.Cgroup) []int {
	t.Helper()
	f.reset(t)
	require.Equal(t, []string{"ok"}, f.run(t, cg, "read="+f.marker), "reading the marker in %s", cg.Path)
	return f.ran(t)
}

// TestNoFlag: a program attached without flag (cgroup-bpf's
// non-overridable single slot) forbids any attach below it (EPERM,
// kernel/bpf/cgroup.c:hierarchy_allows_attach via __cgroup_bpf_attach),
// applies to the descendants, and is replaced by the next no-flag attach
// to the same cgroup (find_attach_entry's single-attach case).
func TestNoFlag(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	b := a.Mkdir(t, "B")
	p1, p2 := f.prog(t, 1, 0), f.prog(t, 2, 0)
	attach(t, a, p1, none)

	for _, fl := range flagNames {
		err := landlockbpf.ProgAttach(b.FD, p2.FD(), attachType, fl.flags, 0)
		assert.ErrorIs(t, err, unix.EPERM, "attach to B (flags %s) below A's no-flag program", fl.name)
	}
	assert.Equal(t, []int{1}, f.runsIn(t, b), "B runs A's program")

	attach(t, a, p2, none)
	assert.Equal(t, []uint32{progID(t, p2)}, query(t, a).ProgIDs, "A's single slot after a second no-flag attach")
	assert.Equal(t, []int{2}, f.runsIn(t, b), "B runs the program that replaced P1")
	assert.Equal(t, []int{2}, f.runsIn(t, a), "A runs the program that replaced P1")
}

// TestFlagsOfACgroupDoNotChange: once a cgroup holds a program, an attach
// with other flags than those it was attached with is EPERM
// (__cgroup_bpf_attach: "Disallow attaching non-overridable on top of
// existing overridable..."), and nothing changes.
func TestFlagsOfACgroupDoNotChange(t *testing.T) {
	f := newFixture(t)
	for _, first := range flagNames {
		t.Run(first.name, func(t *testing.T) {
			a := f.top.Mkdir(t, "A-"+first.name)
			p1, p2 := f.prog(t, 1, 0), f.prog(t, 2, 0)
			attach(t, a, p1, first.flags)
			for _, other := range flagNames {
				if other.flags == first.flags {
					continue
				}
				err := landlockbpf.ProgAttach(a.FD, p2.FD(), attachType, other.flags, 0)
				assert.ErrorIs(t, err, unix.EPERM, "attach with %s on a cgroup holding a %s program", other.name, first.name)
			}
			q := query(t, a)
			assert.Equal(t, []uint32{progID(t, p1)}, q.ProgIDs, "programs after the refused attaches")
			assert.Equal(t, first.flags, q.AttachFlags, "the cgroup's flags after the refused attaches")
		})
	}
}

// TestOverride: with BPF_F_ALLOW_OVERRIDE on A, a program on B (any
// flag) replaces A's in B's effective array, and A still runs its own
// (compute_effective_progs: a parent is skipped unless MULTI once the
// array has programs).
func TestOverride(t *testing.T) {
	f := newFixture(t)
	for _, fl := range flagNames {
		t.Run("B_"+fl.name, func(t *testing.T) {
			a := f.top.Mkdir(t, "A-"+fl.name)
			b := a.Mkdir(t, "B")
			p1, p2 := f.prog(t, 1, 0), f.prog(t, 2, 0)
			attach(t, a, p1, override)
			assert.Equal(t, []int{1}, f.runsIn(t, b), "B runs A's overridable program while B has none")
			attach(t, b, p2, fl.flags)
			assert.Equal(t, []int{2}, f.runsIn(t, b), "B runs only its own program")
			assert.Equal(t, []int{1}, f.runsIn(t, a), "A runs its own program")
			assert.Equal(t, []uint32{progID(t, p2)}, effective(t, b), "B's effective programs")
		})
	}
}

// TestOverrideThenNoFlag: A OVERRIDE, B no flag: an attach to B/C is
// EPERM whatever its flags (hierarchy_allows_attach stops at the nearest
// ancestor that holds a program: B, not overridable).
func TestOverrideThenNoFlag(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	b := a.Mkdir(t, "B")
	c := b.Mkdir(t, "C")
	p1, p2, p3 := f.prog(t, 1, 0), f.prog(t, 2, 0), f.prog(t, 3, 0)
	attach(t, a, p1, override)
	attach(t, b, p2, none)
	for _, fl := range flagNames {
		err := landlockbpf.ProgAttach(c.FD, p3.FD(), attachType, fl.flags, 0)
		assert.ErrorIs(t, err, unix.EPERM, "attach to A/B/C (flags %s) below B's no-flag program", fl.name)
	}
	assert.Equal(t, []int{2}, f.runsIn(t, c), "C runs B's program")
}

// TestMulti: A holds P1 and P2 (MULTI); B's program, whatever its flags,
// runs first, then A's in attach order (compute_effective_progs walks
// from the cgroup up; insert_pl_to_hlist appends). A cgroup made after
// the attach inherits them (cgroup_bpf_inherit).
func TestMulti(t *testing.T) {
	f := newFixture(t)
	for _, fl := range flagNames {
		t.Run("B_"+fl.name, func(t *testing.T) {
			a := f.top.Mkdir(t, "A-"+fl.name)
			p1, p2, p3 := f.prog(t, 1, 0), f.prog(t, 2, 0), f.prog(t, 3, 0)
			attach(t, a, p1, multi)
			attach(t, a, p2, multi)
			b := a.Mkdir(t, "B") // made after the attaches
			assert.Equal(t, []int{1, 2}, f.runsIn(t, b), "a new cgroup B runs A's programs")
			attach(t, b, p3, fl.flags)
			assert.Equal(t, []int{3, 1, 2}, f.runsIn(t, b), "B's program, then A's in attach order")
			assert.Equal(t, []uint32{progID(t, p3), progID(t, p1), progID(t, p2)}, effective(t, b), "B's effective programs")
			assert.Equal(t, []int{1, 2}, f.runsIn(t, a), "A runs its own programs only")
		})
	}
}

// TestPreorder: a program attached to A with BPF_F_PREORDER runs before
// B's programs (compute_effective_progs puts the preorder programs first,
// outermost ancestor first); without it, after them.
func TestPreorder(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		flags uint32
		want  []int
	}{
		{"preorder", multi | preorder, []int{1, 2}},
		{"postorder", multi, []int{2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.top.Mkdir(t, "A-"+tc.name)
			b := a.Mkdir(t, "B")
			p1, p2 := f.prog(t, 1, 0), f.prog(t, 2, 0)
			attach(t, a, p1, tc.flags)
			attach(t, b, p2, multi)
			assert.Equal(t, tc.want, f.runsIn(t, b), "run order in B")
			assert.Equal(t, uint32(multi), query(t, a).AttachFlags, "A's attach_flags keep only OVERRIDE/MULTI")
		})
	}
}

// TestInvalidFlags: BPF_F_ALLOW_OVERRIDE with BPF_F_ALLOW_MULTI, and
// BPF_F_REPLACE without BPF_F_ALLOW_MULTI, are EINVAL
// (__cgroup_bpf_attach's "invalid combination"), as is a flag outside
// bpf_prog_attach's cgroup mask (BPF_F_ATTACH_MASK_BASE | _MPROG); an
// empty cgroup stays empty.
func TestInvalidFlags(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	p1, p2 := f.prog(t, 1, 0), f.prog(t, 2, 0)
	for _, tc := range []struct {
		name  string
		flags uint32
		repl  int
	}{
		{"override_multi", override | multi, 0},
		{"replace", replace, p2.FD()},
		{"replace_override", replace | override, p2.FD()},
		{"unknown_bit", 1 << 7, 0},
	} {
		err := landlockbpf.ProgAttach(a.FD, p1.FD(), attachType, tc.flags, tc.repl)
		assert.ErrorIs(t, err, unix.EINVAL, "%s (flags %#x)", tc.name, tc.flags)
	}
	assert.Empty(t, query(t, a).ProgIDs, "A after the refused attaches")
}

// TestReplace: MULTI|REPLACE with replace_bpf_fd = an attached program
// replaces it in place (find_attach_entry's replace case); a program that
// is not attached is ENOENT; replace_bpf_fd not open is EBADF, and an fd
// that is not a Landlock program (a map, a socket filter) is EINVAL
// (bpf_prog_get_type in cgroup_bpf_prog_attach).
func TestReplace(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	b := a.Mkdir(t, "B")
	p1, p2, p3, p4 := f.prog(t, 1, 0), f.prog(t, 2, 0), f.prog(t, 3, 0), f.prog(t, 4, 0)
	attach(t, a, p1, multi)
	attach(t, a, p2, multi)

	require.NoError(t, landlockbpf.ProgAttach(a.FD, p3.FD(), attachType, multi|replace, p1.FD()), "replacing P1 by P3")
	assert.Equal(t, []uint32{progID(t, p3), progID(t, p2)}, query(t, a).ProgIDs, "P3 in P1's place")
	assert.Equal(t, []int{3, 2}, f.runsIn(t, b), "B runs P3 then P2")

	err := landlockbpf.ProgAttach(a.FD, p4.FD(), attachType, multi|replace, p1.FD())
	assert.ErrorIs(t, err, unix.ENOENT, "replacing P1, no longer attached")

	sock, arr, closed := notLandlock(t)
	for _, tc := range []struct {
		name string
		fd   int
		want unix.Errno
	}{
		{"closed_fd", closed, unix.EBADF},
		{"map_fd", arr.FD(), unix.EINVAL},
		{"socket_filter", sock.FD(), unix.EINVAL},
	} {
		err := landlockbpf.ProgAttach(a.FD, p4.FD(), attachType, multi|replace, tc.fd)
		assert.ErrorIs(t, err, tc.want, "replace_bpf_fd: %s", tc.name)
	}
	assert.Equal(t, []uint32{progID(t, p3), progID(t, p2)}, query(t, a).ProgIDs, "A after the refused replaces")
}

// notLandlock returns a socket filter program, an array map and an fd
// number that is not open, for the rows that pass something else than a
// Landlock program.
func notLandlock(t *testing.T) (sock *ebpf.Program, arr *ebpf.Map, closed int) {
	t.Helper()
	sock, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "not_landlock", Type: ebpf.SocketFilter, License: "GPL",
		Instructions: landlockbpf.Allow,
	})
	require.NoError(t, err, "loading a socket filter")
	t.Cleanup(func() { sock.Close() })
	arr, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	require.NoError(t, err, "creating an array map")
	t.Cleanup(func() { arr.Close() })
	return sock, arr, closedFD(t)
}

// closedFD returns an fd number that is not open and that no later open
// will hand out: one far above the lowest free numbers (a number just
// closed would be reused by the next program or map the test makes).
func closedFD(t *testing.T) int {
	t.Helper()
	const fd = 1 << 20
	_, err := unix.FcntlInt(fd, unix.F_GETFD, 0)
	require.ErrorIs(t, err, unix.EBADF, "fd %d must not be open", fd)
	return fd
}

// TestMultiLimits: the same program twice on one cgroup is EINVAL
// (find_attach_entry), the 65th program E2BIG (BPF_CGROUP_MAX_PROGS, and
// checked before the replace lookup, so a replace on a full cgroup is
// E2BIG too), and a stale expected_revision ESTALE, for attach and detach.
func TestMultiLimits(t *testing.T) {
	f := newFixture(t)

	t.Run("same_prog_twice", func(t *testing.T) {
		a := f.top.Mkdir(t, "twice")
		p := f.prog(t, 1, 0)
		attach(t, a, p, multi)
		assert.ErrorIs(t, landlockbpf.ProgAttach(a.FD, p.FD(), attachType, multi, 0), unix.EINVAL)
		assert.Len(t, query(t, a).ProgIDs, 1)
	})

	t.Run("65_progs", func(t *testing.T) {
		a := f.top.Mkdir(t, "full")
		progs := make([]*ebpf.Program, 65)
		for i := range progs {
			progs[i] = load(t, landlockbpf.Allow)
		}
		for i, p := range progs[:64] {
			require.NoError(t, landlockbpf.ProgAttach(a.FD, p.FD(), attachType, multi, 0), "attaching program %d", i+1)
		}
		assert.ErrorIs(t, landlockbpf.ProgAttach(a.FD, progs[64].FD(), attachType, multi, 0), unix.E2BIG, "the 65th program")
		assert.ErrorIs(t, landlockbpf.ProgAttach(a.FD, progs[64].FD(), attachType, multi|replace, progs[0].FD()), unix.E2BIG,
			"replacing a program of a full cgroup (the count is checked first)")
		assert.Len(t, query(t, a).ProgIDs, 64)
	})

	t.Run("expected_revision", func(t *testing.T) {
		a := f.top.Mkdir(t, "rev")
		p1, p2 := f.prog(t, 1, 0), f.prog(t, 2, 0)
		attach(t, a, p1, multi)
		rev := query(t, a).Revision
		require.NotZero(t, rev, "revision after one attach")
		stale := landlockbpf.ProgAttachAttr{
			TargetFD: uint32(a.FD), AttachBPFFD: uint32(p2.FD()), AttachType: attachType,
			AttachFlags: multi, ExpectedRevision: rev + 1,
		}
		assert.ErrorIs(t, landlockbpf.ProgAttachWith(stale), unix.ESTALE, "attach with a revision that is not the cgroup's")
		cur := stale
		cur.ExpectedRevision = rev
		assert.NoError(t, landlockbpf.ProgAttachWith(cur), "attach with the cgroup's revision")

		det := landlockbpf.ProgAttachAttr{TargetFD: uint32(a.FD), AttachBPFFD: uint32(p2.FD()), AttachType: attachType, ExpectedRevision: rev}
		assert.ErrorIs(t, landlockbpf.ProgDetachWith(det), unix.ESTALE, "detach with the revision before the last attach")
		det.ExpectedRevision = rev + 1
		assert.NoError(t, landlockbpf.ProgDetachWith(det), "detach with the cgroup's revision")
		assert.Equal(t, []uint32{progID(t, p1)}, query(t, a).ProgIDs)
	})
}

// TestQuery: BPF_PROG_QUERY without BPF_F_QUERY_EFFECTIVE gives the
// cgroup's own programs in list order, attach_flags and every
// prog_attach_flags[i] = the cgroup's flags, and a revision that every
// attach, replace and detach raises by one (__cgroup_bpf_query,
// __cgroup_bpf_attach, __cgroup_bpf_detach). With BPF_F_QUERY_EFFECTIVE:
// the run order, attach_flags 0, revision 0; prog_attach_flags with it is
// EINVAL; too small a prog_cnt is ENOSPC with the first ids and the
// total; any other query flag is EINVAL (bpf_prog_query).
func TestQuery(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	b := a.Mkdir(t, "B")
	p1, p2, p3, p4 := f.prog(t, 1, 0), f.prog(t, 2, 0), f.prog(t, 3, 0), f.prog(t, 4, 0)
	id1, id2, id3 := progID(t, p1), progID(t, p2), progID(t, p3)

	// A new cgroup's revisions start at 1 (kernel/cgroup/cgroup.c:
	// cgroup_create); every attach, replace and detach adds 1.
	empty := query(t, a)
	assert.Equal(t, landlockbpf.QueryResult{ProgIDs: []uint32{}, ProgAttachFlags: []uint32{}, Revision: 1}, empty, "an empty cgroup")

	attach(t, a, p1, multi)
	attach(t, a, p2, multi)
	q := query(t, a)
	assert.Equal(t, uint32(multi), q.AttachFlags, "attach_flags")
	assert.Equal(t, uint32(2), q.Count, "prog_cnt")
	assert.Equal(t, []uint32{id1, id2}, q.ProgIDs, "ids in attach order")
	assert.Equal(t, []uint32{multi, multi}, q.ProgAttachFlags, "prog_attach_flags")
	assert.Equal(t, uint64(3), q.Revision, "revision after two attaches")

	require.NoError(t, landlockbpf.ProgAttach(a.FD, p4.FD(), attachType, multi|replace, p2.FD()))
	assert.Equal(t, uint64(4), query(t, a).Revision, "revision after a replace")
	require.NoError(t, landlockbpf.ProgDetach(a.FD, p4.FD(), attachType, 0))
	q = query(t, a)
	assert.Equal(t, uint64(5), q.Revision, "revision after a detach")
	assert.Equal(t, []uint32{id1}, q.ProgIDs)
	attach(t, a, p2, multi)

	attach(t, b, p3, override)
	q = query(t, b)
	assert.Equal(t, uint32(override), q.AttachFlags, "B's attach_flags")
	assert.Equal(t, []uint32{override}, q.ProgAttachFlags, "B's prog_attach_flags")

	e, err := landlockbpf.ProgQuery(b.FD, attachType, unix.BPF_F_QUERY_EFFECTIVE, false)
	require.NoError(t, err)
	assert.Equal(t, []uint32{id3, id1, id2}, e.ProgIDs, "B's effective programs in run order")
	assert.Zero(t, e.AttachFlags, "attach_flags of an effective query")
	assert.Zero(t, e.Revision, "revision of an effective query")

	_, err = landlockbpf.ProgQueryCap(b.FD, attachType, unix.BPF_F_QUERY_EFFECTIVE, 4, true)
	assert.ErrorIs(t, err, unix.EINVAL, "effective query with prog_attach_flags")

	for _, qf := range []uint32{0, unix.BPF_F_QUERY_EFFECTIVE} {
		r, err := landlockbpf.ProgQueryCap(b.FD, attachType, qf, 1, false)
		if qf != 0 {
			assert.ErrorIs(t, err, unix.ENOSPC, "effective query with room for 1 of 3")
			assert.Equal(t, uint32(3), r.Count, "prog_cnt of an effective query with room for 1 of 3")
			assert.Equal(t, []uint32{id3}, r.ProgIDs, "the first id")
			continue
		}
		assert.NoError(t, err, "B's own single program fits")
		r, err = landlockbpf.ProgQueryCap(a.FD, attachType, qf, 1, true)
		assert.ErrorIs(t, err, unix.ENOSPC, "query of A with room for 1 of 2")
		assert.Equal(t, uint32(2), r.Count, "prog_cnt with room for 1 of 2")
		assert.Equal(t, []uint32{id1}, r.ProgIDs, "the first id")
	}

	_, err = landlockbpf.ProgQuery(b.FD, attachType, 1<<1, false)
	assert.ErrorIs(t, err, unix.EINVAL, "unknown query flag")
}
