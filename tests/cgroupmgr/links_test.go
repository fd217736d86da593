package cgroupmgr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestLinkCreate: BPF_LINK_CREATE of a Landlock program on a cgroup
// attaches it as MULTI (cgroup_bpf_link_attach adds BPF_F_ALLOW_MULTI),
// so it runs with the MULTI programs of the cgroup and its ancestors;
// link_create.flags outside ID/BEFORE/AFTER/PREORDER/LINK are EINVAL
// (BPF_F_LINK_ATTACH_MASK); on a cgroup holding a no-flag or OVERRIDE
// program it is EPERM (__cgroup_bpf_attach: flags differ).
func TestLinkCreate(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	b := a.Mkdir(t, "B")
	deny := f.prog(t, 1, landlockbpf.ActionWrite)
	rec := f.prog(t, 2, 0)

	newLink(t, a, deny, 0)
	q := query(t, a)
	assert.Equal(t, uint32(multi), q.AttachFlags, "attach_flags of a cgroup holding a link")
	assert.Equal(t, []uint32{progID(t, deny)}, q.ProgIDs, "the link's program")
	assert.Equal(t, writeDenied, f.run(t, b, f.readWrite()...), "a task of A/B under A's deny-WRITE link")

	attach(t, b, rec, multi)
	assert.Equal(t, []int{2, 1}, f.runsIn(t, b), "B's MULTI program, then A's link")

	for _, fl := range []struct {
		name  string
		flags uint32
	}{{"allow_multi", multi}, {"allow_override", override}, {"replace", replace}, {"bit7", 1 << 7}} {
		_, err := landlockbpf.LinkCreate(rec.FD(), a.FD, attachType, fl.flags)
		assert.ErrorIs(t, err, unix.EINVAL, "link_create.flags %s", fl.name)
	}

	for _, held := range []struct {
		name  string
		flags uint32
	}{{"none", none}, {"override", override}} {
		c := f.top.Mkdir(t, "C-"+held.name)
		attach(t, c, rec, held.flags)
		_, err := landlockbpf.LinkCreate(deny.FD(), c.FD, attachType, 0)
		assert.ErrorIs(t, err, unix.EPERM, "link on a cgroup holding a %s program", held.name)
		assert.Equal(t, []uint32{progID(t, rec)}, query(t, c).ProgIDs)
	}
}

// TestLinkUpdate: BPF_LINK_UPDATE puts the new program in the link's
// place (__cgroup_bpf_replace, revision + 1); with BPF_F_REPLACE an
// old_prog_fd that is not the link's program is EPERM
// (cgroup_bpf_replace); a program of another type is EINVAL; once the
// link is detached, ENOLINK.
func TestLinkUpdate(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	deny := f.prog(t, 1, landlockbpf.ActionWrite)
	rec2, rec3 := f.prog(t, 2, 0), f.prog(t, 3, 0)
	l := newLink(t, a, deny, 0)
	lfd := int(l.Fd())
	require.Equal(t, writeDenied, f.run(t, a, f.readWrite()...), "under the link's deny-WRITE program")
	rev := query(t, a).Revision

	require.NoError(t, landlockbpf.LinkUpdate(lfd, rec2.FD(), 0, 0), "updating the link to an allowing program")
	q := query(t, a)
	assert.Equal(t, []uint32{progID(t, rec2)}, q.ProgIDs)
	assert.Equal(t, rev+1, q.Revision, "revision after the update")
	f.reset(t)
	assert.Equal(t, bothAllowed, f.run(t, a, f.readWrite()...), "after the update")
	assert.Equal(t, []int{2}, f.ran(t), "the new program ran, the old did not")

	err := landlockbpf.LinkUpdate(lfd, rec3.FD(), deny.FD(), replace)
	assert.ErrorIs(t, err, unix.EPERM, "BPF_F_REPLACE naming the program the link had before")
	require.NoError(t, landlockbpf.LinkUpdate(lfd, rec3.FD(), rec2.FD(), replace), "BPF_F_REPLACE naming the link's program")
	assert.Equal(t, []uint32{progID(t, rec3)}, query(t, a).ProgIDs)

	sock, _, _ := notLandlock(t)
	assert.ErrorIs(t, landlockbpf.LinkUpdate(lfd, sock.FD(), 0, 0), unix.EINVAL, "a socket filter for a Landlock link")

	require.NoError(t, landlockbpf.LinkDetach(lfd))
	assert.ErrorIs(t, landlockbpf.LinkUpdate(lfd, rec2.FD(), 0, 0), unix.ENOLINK, "updating a detached link")
}

// TestLinkDetach: BPF_LINK_DETACH removes the link's program at once
// (bpf_cgroup_link_detach → __cgroup_bpf_detach) while its fd stays open;
// a second BPF_LINK_DETACH is 0 (bpf_cgroup_link_release finds no
// cgroup); PROG_DETACH of a link's program is ENOENT (the entry holds a
// link, not a program: find_detach_entry).
func TestLinkDetach(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	deny := f.prog(t, 1, landlockbpf.ActionWrite)
	l := newLink(t, a, deny, 0)
	lfd := int(l.Fd())

	assert.ErrorIs(t, landlockbpf.ProgDetach(a.FD, deny.FD(), attachType, 0), unix.ENOENT, "PROG_DETACH of a link's program")
	assert.Equal(t, writeDenied, f.run(t, a, f.readWrite()...), "the link after the refused PROG_DETACH")

	require.NoError(t, landlockbpf.LinkDetach(lfd), "BPF_LINK_DETACH")
	assert.Empty(t, query(t, a).ProgIDs, "A after BPF_LINK_DETACH")
	assert.Equal(t, bothAllowed, f.run(t, a, f.readWrite()...), "after BPF_LINK_DETACH")
	assert.NoError(t, landlockbpf.LinkDetach(lfd), "a second BPF_LINK_DETACH")
}

// TestLinkClose: closing the only fd of an unpinned link detaches it
// before close(2) returns (bpf_link_release → bpf_link_put_direct, run
// from the fput task work before the return to user space).
func TestLinkClose(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	l := newLink(t, a, f.prog(t, 1, landlockbpf.ActionWrite), 0)
	require.Equal(t, writeDenied, f.run(t, a, f.readWrite()...), "under the link")
	require.NoError(t, l.Close())
	assert.Empty(t, query(t, a).ProgIDs, "A right after close(2) of the link")
	assert.Equal(t, bothAllowed, f.run(t, a, f.readWrite()...), "after close(2) of the link")
}

// unpinDetachWait bounds the wait for the deferred release of a link
// whose last reference was its pin (bpf_link_put schedules it as work).
const unpinDetachWait = 5 * time.Second

// TestLinkPinned: a link pinned on a bpffs survives the process that
// created it (the pin holds a reference: bpf_obj_pin_user) and keeps
// restricting; BPF_OBJ_GET opens it again; once the pin is removed and no
// fd is left, the link is released, asynchronously (bpf_any_put →
// bpf_link_put → schedule_work), so the test polls for it.
func TestLinkPinned(t *testing.T) {
	f := newFixture(t)
	a := f.top.Mkdir(t, "A")
	deny := f.prog(t, 1, landlockbpf.ActionWrite)
	bpffs := t.TempDir()
	require.NoError(t, unix.Mount("bpf", bpffs, "bpf", 0, ""), "mounting a bpffs on %s", bpffs)
	t.Cleanup(func() {
		if err := unix.Unmount(bpffs, 0); err != nil {
			t.Errorf("unmounting the bpffs: %v", err)
		}
	})
	pin := filepath.Join(bpffs, "link")

	files := []*os.File{dupFile(t, deny.FD(), "rule"), dupFile(t, a.FD, "cgroup")}
	assert.Equal(t, []string{"ok"}, f.startTask(t, nil, files, "link-pin="+pin).finish(t), "a helper creates and pins a link, then exits")
	assert.Equal(t, []uint32{progID(t, deny)}, query(t, a).ProgIDs, "A once the link's creator exited")
	assert.Equal(t, writeDenied, f.run(t, a, f.readWrite()...), "under the pinned link")

	fd, err := landlockbpf.ObjGet(pin)
	require.NoError(t, err, "BPF_OBJ_GET of the pin")
	require.NoError(t, unix.Close(fd))
	assert.Equal(t, []uint32{progID(t, deny)}, query(t, a).ProgIDs, "A after an fd of the pinned link was closed")

	require.NoError(t, os.Remove(pin), "removing the pin")
	deadline := time.Now().Add(unpinDetachWait)
	for len(query(t, a).ProgIDs) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the link was still attached %v after its pin was removed", unpinDetachWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, bothAllowed, f.run(t, a, f.readWrite()...), "after the link was released")
	_, err = landlockbpf.ObjGet(pin)
	assert.True(t, errors.Is(err, unix.ENOENT), "BPF_OBJ_GET of the removed pin: %v", err)
}
