package cgroupmgr

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestABIVersionMatchesCgroupAttach: the kernel reports ABI version 2 or
// more if and only if it knows the attach type BPF_CGROUP_LANDLOCK_FS
// (landlockbpf.HasCgroupAttachType: EBADF for a regular file as target
// when known, EINVAL when not). It is the consistency check of version 2,
// so it runs from version 1 on, and needs no cgroup2 mount.
func TestABIVersionMatchesCgroupAttach(t *testing.T) {
	if why := landlockbpf.SkipUnlessSupported(1); why != "" {
		t.Skip(why)
	}
	v, err := landlockbpf.KernelABIVersion()
	require.NoError(t, err)
	known, err := landlockbpf.HasCgroupAttachType()
	require.NoError(t, err, "probing attach type %d", attachType)
	assert.Equal(t, v >= 2, known, "ABI version %d, attach type %d known: %v", v, attachType, known)
}

// TestWrongAttachType: BPF_LANDLOCK_FS (57), the load-time type, is no
// attach type for bpf(2)'s cgroup commands: PROG_ATTACH, PROG_DETACH and
// PROG_QUERY are EINVAL (bpf_prog_attach: no program type for it;
// bpf_prog_detach and bpf_prog_query: default case). A Landlock program
// given with BPF_CGROUP_INET_INGRESS is EINVAL for PROG_ATTACH
// (bpf_prog_get_type wants a CGROUP_SKB program) and LINK_CREATE
// (bpf_prog_attach_check_attach_type).
func TestWrongAttachType(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	p := f.prog(t, 1, 0)
	const fs = landlockbpf.AttachLandlockFS

	assert.ErrorIs(t, landlockbpf.ProgAttach(a.FD, p.FD(), fs, multi, 0), unix.EINVAL, "PROG_ATTACH with BPF_LANDLOCK_FS")
	attach(t, a, p, multi)
	assert.ErrorIs(t, landlockbpf.ProgDetach(a.FD, p.FD(), fs, 0), unix.EINVAL, "PROG_DETACH with BPF_LANDLOCK_FS")
	_, err := landlockbpf.ProgQuery(a.FD, fs, 0, false)
	assert.ErrorIs(t, err, unix.EINVAL, "PROG_QUERY with BPF_LANDLOCK_FS")
	_, err = landlockbpf.LinkCreate(p.FD(), a.FD, fs, 0)
	assert.ErrorIs(t, err, unix.EINVAL, "LINK_CREATE with BPF_LANDLOCK_FS")

	const ingress = unix.BPF_CGROUP_INET_INGRESS
	assert.ErrorIs(t, landlockbpf.ProgAttach(a.FD, p.FD(), ingress, multi, 0), unix.EINVAL, "PROG_ATTACH of a Landlock program with BPF_CGROUP_INET_INGRESS")
	_, err = landlockbpf.LinkCreate(p.FD(), a.FD, ingress, 0)
	assert.ErrorIs(t, err, unix.EINVAL, "LINK_CREATE of a Landlock program with BPF_CGROUP_INET_INGRESS")

	assert.Equal(t, []uint32{progID(t, p)}, query(t, a).ProgIDs, "A after the refused calls")
}

// TestNotALandlockProgram: with attach type 58, a program fd that is not
// a Landlock program is refused: a socket filter, a CGROUP_SKB program and
// an array map fd are EINVAL for PROG_ATTACH (bpf_prog_get_type) and
// LINK_CREATE (bpf_prog_attach_check_attach_type; bpf_prog_get for the
// map), an fd that is not open EBADF.
func TestNotALandlockProgram(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	sock, arr, closed := notLandlock(t)
	skb, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "cgroup_skb", Type: ebpf.CGroupSKB, AttachType: ebpf.AttachCGroupInetIngress, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
	})
	require.NoError(t, err, "loading a CGROUP_SKB program")
	t.Cleanup(func() { skb.Close() })

	for _, tc := range []struct {
		name string
		fd   int
		want unix.Errno
	}{
		{"socket_filter", sock.FD(), unix.EINVAL},
		{"cgroup_skb", skb.FD(), unix.EINVAL},
		{"array_map", arr.FD(), unix.EINVAL},
		{"closed_fd", closed, unix.EBADF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, landlockbpf.ProgAttach(a.FD, tc.fd, attachType, multi, 0), tc.want, "PROG_ATTACH")
			_, err := landlockbpf.LinkCreate(tc.fd, a.FD, attachType, 0)
			assert.ErrorIs(t, err, tc.want, "LINK_CREATE")
		})
	}
	assert.Empty(t, query(t, a).ProgIDs, "A after the refused calls")
}

// TestBadTarget: a target fd that is not a cgroup v2 directory is EBADF
// for PROG_ATTACH, PROG_DETACH, PROG_QUERY and LINK_CREATE: a regular
// file, cgroup.procs, a directory outside cgroupfs
// (kernel/cgroup/cgroup.c:css_tryget_online_from_dir), an fd that is not
// open (cgroup_v1v2_get_from_fd); the fd of a cgroup directory removed
// since it was opened is ENOENT (css_tryget_online fails). The same
// calls on the open cgroup work, so each row can fail.
func TestBadTarget(t *testing.T) {
	f := newFixture(t)
	p := f.prog(t, 1, 0)
	openFD := func(path string, flags int) int {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
		require.NoError(t, err, "opening %s", path)
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	a := f.top.Mkdir(t, "A")
	gone := f.top.Mkdir(t, "gone")
	require.NoError(t, os.Remove(gone.Path), "removing the cgroup %s", gone.Path)
	_, _, closed := notLandlock(t)
	dir := filepath.Join(f.dir, "notcgroup")
	require.NoError(t, os.Mkdir(dir, 0o755))

	for _, tc := range []struct {
		name string
		fd   int
		want error
	}{
		{"cgroup", a.FD, nil},
		{"regular_file", openFD(f.marker, unix.O_RDONLY), unix.EBADF},
		{"cgroup_procs", openFD(a.Procs(), unix.O_RDONLY), unix.EBADF},
		{"other_dir", openFD(dir, unix.O_RDONLY|unix.O_DIRECTORY), unix.EBADF},
		{"closed_fd", closed, unix.EBADF},
		{"removed_cgroup", gone.FD, unix.ENOENT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(err error, what string) {
				t.Helper()
				if tc.want == nil {
					assert.NoError(t, err, what)
				} else {
					assert.ErrorIs(t, err, tc.want, what)
				}
			}
			check(landlockbpf.ProgAttach(tc.fd, p.FD(), attachType, multi, 0), "PROG_ATTACH")
			_, err := landlockbpf.ProgQuery(tc.fd, attachType, 0, false)
			check(err, "PROG_QUERY")
			check(landlockbpf.ProgDetach(tc.fd, p.FD(), attachType, 0), "PROG_DETACH")
			l, err := landlockbpf.LinkCreate(p.FD(), tc.fd, attachType, 0)
			check(err, "LINK_CREATE")
			if err == nil {
				unix.Close(l)
			}
		})
	}
}

// TestCgroupV1Target: the root of a cgroup v1 hierarchy (a named one,
// with no controller) is a cgroup directory, but not of the default
// hierarchy: EBADF (kernel/cgroup/cgroup.c:cgroup_get_from_fd,
// !cgroup_on_dfl). It skips when the kernel has no cgroup v1.
func TestCgroupV1Target(t *testing.T) {
	f := newFixture(t)
	p := f.prog(t, 1, 0)
	dir := t.TempDir()
	name := "landlock-vmtest-" + filepath.Base(f.dir)
	if err := unix.Mount("none", dir, "cgroup", 0, "none,name="+name); err != nil {
		t.Skipf("mounting a named cgroup v1 hierarchy: %v (no CONFIG_CGROUP_V1?)", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting the cgroup v1 hierarchy: %v", err)
		}
	})
	v1 := landlockbpf.OpenCgroup(t, dir)
	assert.ErrorIs(t, landlockbpf.ProgAttach(v1.FD, p.FD(), attachType, multi, 0), unix.EBADF, "PROG_ATTACH")
	_, err := landlockbpf.ProgQuery(v1.FD, attachType, 0, false)
	assert.ErrorIs(t, err, unix.EBADF, "PROG_QUERY")
	_, err = landlockbpf.LinkCreate(p.FD(), v1.FD, attachType, 0)
	assert.ErrorIs(t, err, unix.EBADF, "LINK_CREATE")
}

// TestDetachNotAttached: PROG_DETACH of a program that is not attached.
// On a cgroup with nothing: ENOENT. On a MULTI cgroup: another program
// ENOENT, an fd that is no Landlock program EINVAL (find_detach_entry
// wants a program to look for). On a no-flag or OVERRIDE cgroup, legacy
// cgroup-bpf detaches the one program whatever fd is given, and returns 0
// (find_detach_entry's single-attach case). PROG_DETACH with
// attach_flags or relative_fd set is EINVAL (bpf_prog_detach).
func TestDetachNotAttached(t *testing.T) {
	f := newFixture(t)
	p1, p2 := f.prog(t, 1, 0), f.prog(t, 2, 0)
	_, _, closed := notLandlock(t)

	t.Run("nothing_attached", func(t *testing.T) {
		a := f.top.Mkdir(t, "empty")
		assert.ErrorIs(t, landlockbpf.ProgDetach(a.FD, p1.FD(), attachType, 0), unix.ENOENT)
	})

	t.Run("multi", func(t *testing.T) {
		a := f.top.Mkdir(t, "multi")
		attach(t, a, p1, multi)
		assert.ErrorIs(t, landlockbpf.ProgDetach(a.FD, p2.FD(), attachType, 0), unix.ENOENT, "another program")
		assert.ErrorIs(t, landlockbpf.ProgDetach(a.FD, closed, attachType, 0), unix.EINVAL, "an fd that is not open")
		assert.Equal(t, []uint32{progID(t, p1)}, query(t, a).ProgIDs, "A after the refused detaches")
		assert.NoError(t, landlockbpf.ProgDetach(a.FD, p1.FD(), attachType, 0), "the attached program")
		assert.Empty(t, query(t, a).ProgIDs)
	})

	for _, fl := range []struct {
		name  string
		flags uint32
	}{{"none", none}, {"override", override}} {
		for _, other := range []struct {
			name string
			fd   func() int
		}{{"other_prog", p2.FD}, {"closed_fd", func() int { return closed }}} {
			t.Run(fl.name+"_"+other.name, func(t *testing.T) {
				a := f.top.Mkdir(t, fl.name+"-"+other.name)
				attach(t, a, p1, fl.flags)
				assert.NoError(t, landlockbpf.ProgDetach(a.FD, other.fd(), attachType, 0), "legacy detach with %s", other.name)
				q := query(t, a)
				assert.Empty(t, q.ProgIDs, "the program is detached")
				assert.Zero(t, q.AttachFlags, "the cgroup's flags are reset once it is empty")
			})
		}
	}

	t.Run("attach_flags_or_relative_fd", func(t *testing.T) {
		a := f.top.Mkdir(t, "withflags")
		attach(t, a, p1, multi)
		det := landlockbpf.ProgAttachAttr{TargetFD: uint32(a.FD), AttachBPFFD: uint32(p1.FD()), AttachType: attachType}
		withFlags := det
		withFlags.AttachFlags = multi
		assert.ErrorIs(t, landlockbpf.ProgDetachWith(withFlags), unix.EINVAL, "attach_flags")
		withRel := det
		withRel.RelativeFDOrID = uint32(p2.FD())
		assert.ErrorIs(t, landlockbpf.ProgDetachWith(withRel), unix.EINVAL, "relative_fd")
		assert.Equal(t, []uint32{progID(t, p1)}, query(t, a).ProgIDs)
		assert.NoError(t, landlockbpf.ProgDetachWith(det), "the same detach without them")
	})
}

// TestThreadedCgroup: Landlock programs go on domain cgroups only (patch
// 0008, kernel/bpf/cgroup.c:landlock_threaded): a thread moved alone into a
// threaded cgroup (cgroup.threads) would leave its io_uring workers where
// they were. PROG_ATTACH and LINK_CREATE on a threaded cgroup give
// EOPNOTSUPP, and a cgroup holding a program cannot be made threaded
// (cgroup.type, EOPNOTSUPP) until it is detached. The root of the threaded
// subtree (a domain cgroup) takes programs, and its threaded children
// run them.
func TestThreadedCgroup(t *testing.T) {
	f := newFixture(t)
	p := f.prog(t, 1, 0)
	setType := func(cg *landlockbpf.Cgroup, typ string) error {
		return os.WriteFile(filepath.Join(cg.Path, "cgroup.type"), []byte(typ+"\n"), 0)
	}

	a := f.top.Mkdir(t, "A")
	th := a.Mkdir(t, "T")
	require.NoError(t, setType(th, "threaded"), "making %s threaded", th.Path)
	assert.ErrorIs(t, landlockbpf.ProgAttach(th.FD, p.FD(), attachType, multi, 0), unix.EOPNOTSUPP, "PROG_ATTACH to a threaded cgroup")
	fd, err := landlockbpf.LinkCreate(p.FD(), th.FD, attachType, 0)
	if err == nil {
		unix.Close(fd)
	}
	assert.ErrorIs(t, err, unix.EOPNOTSUPP, "LINK_CREATE on a threaded cgroup")
	assert.Zero(t, query(t, th).Count, "nothing attached to the threaded cgroup")

	attach(t, a, p, multi)
	assert.Equal(t, []uint32{progID(t, p)}, effective(t, th), "the threaded child runs the program of its domain root")
	require.NoError(t, landlockbpf.ProgDetach(a.FD, p.FD(), attachType, 0))

	b := f.top.Mkdir(t, "B")
	c := b.Mkdir(t, "C")
	attach(t, c, p, multi)
	assert.ErrorIs(t, setType(c, "threaded"), unix.EOPNOTSUPP, "making a cgroup that holds a Landlock program threaded")
	require.NoError(t, landlockbpf.ProgDetach(c.FD, p.FD(), attachType, 0))
	assert.NoError(t, setType(c, "threaded"), "making the cgroup threaded once the program is detached")
}
