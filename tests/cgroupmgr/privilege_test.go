package cgroupmgr

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	"github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// keepRoot runs a privdrop scenario in a child with the test binary's
// privileges (root, every capability): the control case.
var keepRoot = privdrop.Privs{UID: privdrop.Keep, GID: privdrop.Keep}

// TestPrivilege: PROG_ATTACH, PROG_DETACH, LINK_CREATE, LINK_UPDATE and
// LINK_DETACH need CAP_SYS_ADMIN in the initial user namespace, EPERM
// otherwise, checked before the target is looked up (so EPERM, not EBADF,
// for a target that is no cgroup); PROG_QUERY follows cgroup-bpf's rule
// (bpf_prog_query: bpf_net_capable, CAP_NET_ADMIN or CAP_SYS_ADMIN), so
// nobody gets EPERM and root without CAP_SYS_ADMIN may query. Closing a
// link's fd needs nothing and detaches it. Root, with every capability,
// runs the same calls as the control: each succeeds.
//
// Loading needs CAP_BPF (below version 4, or with
// kernel.unprivileged_bpf_disabled not 0; the attach needs CAP_SYS_ADMIN
// in every version), so the programs, the cgroup fds and a link are
// made before the drop (code before privdrop.Run runs in the child with
// every privilege). The parent makes the cgroups (the child, which may
// not rmdir them, opens them by name) and attaches P0 with no flag to
// "legacy", where any PROG_DETACH detaches it: after the child, P0 is
// still there unless the child was allowed to detach.
func TestPrivilege(t *testing.T) {
	skipUnlessCgroupManager(t)
	for _, tc := range []struct {
		name   string
		privs  privdrop.Privs
		change bool // may attach, detach, link
		query  bool // may query
	}{
		{"root", keepRoot, true, true},
		{"nobody", privdrop.Nobody(), false, false},
		{"nobody_no_new_privs", privdrop.Nobody().WithNoNewPrivs(), false, false},
		{"root_without_cap_sys_admin", privdrop.RootWithout(unix.CAP_SYS_ADMIN), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var legacy, multiCg *landlockbpf.Cgroup
			var p0ID uint32
			if privdrop.InChild() {
				top := filepath.Join(landlockbpf.CgroupRoot, landlockbpf.CgroupHierarchyName(t, os.Getppid()))
				legacy = landlockbpf.OpenCgroup(t, filepath.Join(top, "legacy"))
				multiCg = landlockbpf.OpenCgroup(t, filepath.Join(top, "multi"))
			} else {
				top := landlockbpf.NewCgroupHierarchyAt(t, filepath.Join(landlockbpf.CgroupRoot, landlockbpf.CgroupHierarchyName(t, os.Getpid())))
				legacy = top.Mkdir(t, "legacy")
				multiCg = top.Mkdir(t, "multi")
				p0 := load(t, landlockbpf.Allow)
				p0ID = progID(t, p0)
				attach(t, legacy, p0, none)
			}
			pc, pn := load(t, landlockbpf.Allow), load(t, landlockbpf.Allow)
			pcID, pnID := progID(t, pc), progID(t, pn)
			notCgroup, err := os.Open("/proc/self/exe")
			require.NoError(t, err)
			t.Cleanup(func() { notCgroup.Close() })
			var l *os.File
			if privdrop.InChild() {
				l = newLink(t, multiCg, pc, 0) // as root, before the drop
			}

			ran := privdrop.Run(t, tc.privs, func(t *testing.T) {
				want := func(err error, what string) {
					t.Helper()
					if tc.change {
						assert.NoError(t, err, "%s with CAP_SYS_ADMIN", what)
					} else {
						assert.ErrorIs(t, err, unix.EPERM, "%s without CAP_SYS_ADMIN", what)
					}
				}
				lfd := int(l.Fd())

				_, err := landlockbpf.ProgQuery(legacy.FD, attachType, 0, false)
				if tc.query {
					assert.NoError(t, err, "PROG_QUERY with CAP_NET_ADMIN")
				} else {
					assert.ErrorIs(t, err, unix.EPERM, "PROG_QUERY without CAP_NET_ADMIN and CAP_SYS_ADMIN")
				}

				err = landlockbpf.ProgAttach(int(notCgroup.Fd()), pc.FD(), attachType, multi, 0)
				if tc.change {
					assert.ErrorIs(t, err, unix.EBADF, "PROG_ATTACH to a regular file with CAP_SYS_ADMIN")
				} else {
					assert.ErrorIs(t, err, unix.EPERM, "PROG_ATTACH to a regular file without CAP_SYS_ADMIN: privilege first")
				}
				want(landlockbpf.ProgAttach(multiCg.FD, pc.FD(), attachType, multi, 0), "PROG_ATTACH")
				nl, err := landlockbpf.LinkCreate(pn.FD(), multiCg.FD, attachType, 0)
				want(err, "LINK_CREATE")
				if err == nil {
					defer unix.Close(nl)
				}
				want(landlockbpf.LinkUpdate(lfd, pn.FD(), 0, 0), "LINK_UPDATE")
				want(landlockbpf.LinkDetach(lfd), "LINK_DETACH")
				want(landlockbpf.ProgDetach(legacy.FD, pc.FD(), attachType, 0), "PROG_DETACH (legacy slot: detaches P0)")

				// What multi holds now: root attached pc, linked pn,
				// updated then detached l; the others changed nothing,
				// so l (with pc) is all there is.
				if tc.query {
					wantIDs := []uint32{pcID}
					if tc.change {
						wantIDs = []uint32{pcID, pnID}
					}
					assert.Equal(t, wantIDs, query(t, multiCg).ProgIDs, "multi's programs")
				}
				require.NoError(t, l.Close(), "closing the link's fd")
				if tc.query && !tc.change {
					assert.Empty(t, query(t, multiCg).ProgIDs, "multi's programs once the link's fd is closed without CAP_SYS_ADMIN")
				}
			})
			if !ran {
				return
			}
			q := query(t, legacy)
			if tc.change {
				assert.Empty(t, q.ProgIDs, "legacy after the child, allowed to detach")
				assert.Len(t, query(t, multiCg).ProgIDs, 1, "multi after the child: the program it attached (its links went with it)")
			} else {
				assert.Equal(t, []uint32{p0ID}, q.ProgIDs, "legacy after the child, refused to detach")
				assert.Empty(t, query(t, multiCg).ProgIDs, "multi after the child")
			}
		})
	}
}
