package fsmap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// mapFreeTimeout bounds the wait for a map whose last reference is gone
// to leave the kernel's map IDs: its namespace's mounts are torn down
// after its last thread ends, and the map is freed after that.
const mapFreeTimeout = 10 * time.Second

// cycleMap is a new BPF_MAP_TYPE_LANDLOCK_FS map and its ID, by which the
// test finds out whether the kernel freed it.
type cycleMap struct {
	m  *ebpf.Map
	id ebpf.MapID
}

func newCycleMap(t *testing.T) cycleMap {
	t.Helper()
	fd, err := ll.NewFSMapFD(8)
	require.NoError(t, err)
	m, err := ebpf.NewMapFromFD(fd)
	if err != nil {
		unix.Close(fd)
	}
	require.NoError(t, err, "the map's fd as an ebpf.Map")
	info, err := m.Info()
	require.NoError(t, err, "BPF_OBJ_GET_INFO_BY_FD")
	id, ok := info.ID()
	require.True(t, ok, "the kernel gives no map ID")
	return cycleMap{m: m, id: id}
}

// freed closes the test's own fd of the map and waits for the map to be
// freed: BPF_MAP_GET_FD_BY_ID then fails with ENOENT.
func (c cycleMap) freed(t *testing.T) error {
	t.Helper()
	if c.m != nil {
		c.m.Close()
	}
	deadline := time.Now().Add(mapFreeTimeout)
	for {
		m, err := ebpf.NewMapFromID(c.id)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err == nil {
			m.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("map ID %d still exists %v after its last fd was closed and its namespaces ended (last lookup: %v): something keeps it", c.id, mapFreeTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// onThread runs fn on a new locked thread that ends with it (its mount
// namespace too), and returns fn's error.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine.
		runtime.LockOSThread()
		errc <- fn()
	}()
	return <-errc
}

// privateNS gives the calling (locked) thread a mount namespace of its
// own with every mount private.
func privateNS() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making every mount private: %w", err)
	}
	return nil
}

// updateWith opens p O_PATH and writes it at key 0 of m; the fd is closed
// again. It returns the update's error (an open error is wrapped apart).
func updateWith(m *ebpf.Map, p string) (updateErr, openErr error) {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	return ll.MapUpdate(m.FD(), 0, uint32(fd), ll.UpdateAny), nil
}

// TestNoReferenceLoop: an entry keeps its mount and super block alive, so
// a path on a file system whose super block keeps, in turn, something
// that holds the map would close a loop of references that nothing
// breaks. Such paths are refused (EINVAL), and the map is freed once its
// fds and the namespaces and mounts of the case are gone, which is what
// the spec's "drops it on ... map free" needs: a map that is never freed
// never drops its references. Each case pins the map where the loop would
// close.
func TestNoReferenceLoop(t *testing.T) {
	skipUnlessV3(t)
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		t.Run("mount_namespace_file", func(t *testing.T) {
			// Thread O gets a mount namespace, then thread N a newer
			// one with a bpffs where the map is pinned; O bind-mounts
			// N's /proc/TID/ns/mnt on a file (a newer namespace's
			// file may be bound into an older one) and writes that
			// file in the map: map -> nsfs dentry -> N -> its bpffs
			// -> the pin -> map.
			c := newCycleMap(t)
			base := t.TempDir()
			bpffs := filepath.Join(base, "bpffs")
			nsFile := filepath.Join(base, "nsfile")
			require.NoError(t, os.Mkdir(bpffs, 0o755))
			require.NoError(t, os.WriteFile(nsFile, nil, 0o644))

			oReady, oDone := make(chan error, 1), make(chan error, 1)
			nTid, nDone, nEnd := make(chan int, 1), make(chan error, 1), make(chan struct{})
			var updateErr error
			go func() {
				oDone <- onThread(func() error {
					err := privateNS()
					oReady <- err
					if err != nil {
						return err
					}
					tid := <-nTid
					if tid < 0 {
						return errors.New("thread N failed")
					}
					ns := fmt.Sprintf("/proc/%d/ns/mnt", tid)
					if err := unix.Mount(ns, nsFile, "", unix.MS_BIND, ""); err != nil {
						return fmt.Errorf("bind-mounting %s on %s: %w", ns, nsFile, err)
					}
					var openErr error
					updateErr, openErr = updateWith(c.m, nsFile)
					// Busy while an entry holds it: detached.
					unix.Unmount(nsFile, unix.MNT_DETACH)
					return openErr
				})
			}()
			require.NoError(t, <-oReady, "thread O")
			go func() {
				nDone <- onThread(func() error {
					err := privateNS()
					if err == nil {
						err = unix.Mount("bpf", bpffs, "bpf", 0, "")
					}
					if err == nil {
						err = c.m.Pin(filepath.Join(bpffs, "map"))
					}
					if err != nil {
						nTid <- -1
						return err
					}
					nTid <- unix.Gettid()
					<-nEnd
					return nil
				})
			}()
			oErr := <-oDone
			close(nEnd)
			require.NoError(t, <-nDone, "thread N")
			require.NoError(t, oErr, "thread O")
			assert.ErrorIs(t, updateErr, unix.EINVAL, "update with a bind mount of a mount namespace file")
			assert.NoError(t, c.freed(t))
		})

		// overlay builds an overlayfs at base/o on a tmpfs of a thread
		// of its own, lower layers base/l and, with bpfLayer, a bpffs
		// where the map is pinned; writes base/o in the map and ends
		// the thread.
		overlay := func(t *testing.T, bpfLayer bool) {
			c := newCycleMap(t)
			base := t.TempDir()
			var updateErr error
			err := onThread(func() error {
				if err := privateNS(); err != nil {
					return err
				}
				if err := unix.Mount("tmpfs", base, "tmpfs", 0, "size=1m"); err != nil {
					return fmt.Errorf("mounting a tmpfs: %w", err)
				}
				for _, d := range []string{"l", "l2", "b", "o"} {
					if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
						return err
					}
				}
				lower := filepath.Join(base, "l") + ":" + filepath.Join(base, "l2")
				if bpfLayer {
					b := filepath.Join(base, "b")
					if err := unix.Mount("bpf", b, "bpf", 0, ""); err != nil {
						return fmt.Errorf("mounting a bpffs: %w", err)
					}
					if err := c.m.Pin(filepath.Join(b, "map")); err != nil {
						return fmt.Errorf("pinning the map: %w", err)
					}
					lower = filepath.Join(base, "l") + ":" + b
				}
				if err := unix.Mount("overlay", filepath.Join(base, "o"), "overlay", 0, "lowerdir="+lower); err != nil {
					return fmt.Errorf("mounting an overlayfs with lowerdir=%s: %w", lower, err)
				}
				var openErr error
				updateErr, openErr = updateWith(c.m, filepath.Join(base, "o"))
				return openErr
			})
			require.NoError(t, err)
			assert.ErrorIs(t, updateErr, unix.EINVAL, "update with the root of an overlayfs (a bpffs layer: %v)", bpfLayer)
			assert.NoError(t, c.freed(t))
		}
		// map -> overlay mount -> its private mount of the bpffs layer
		// -> the pin -> map.
		t.Run("overlay_on_a_bpffs", func(t *testing.T) { overlay(t, true) })
		// An overlayfs keeps its mounter's credentials, whose domain
		// may hold a rule that uses the map: refused whatever its
		// layers.
		t.Run("overlay_dir", func(t *testing.T) { overlay(t, false) })
	})
}

// deepTreeDepth is deeper than a walk goes (65536 steps).
const deepTreeDepth = 70000

// manyMounts mounts of a file system, each looked at from a dentry
// manyMountsDepth directories deep, are more steps than a walk takes.
const (
	manyMounts      = 400
	manyMountsDepth = 200
)

// writeOpenAndTouch opens name (at dirfd) for writing, closes it, and sets
// its times: a file_open with a path, then an inode_setattr with a dentry.
func writeOpenAndTouch(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s for writing: %w", name, err)
	}
	unix.Close(fd)
	if err := unix.UtimesNanoAt(dirfd, name, []unix.Timespec{{Sec: 1}, {Sec: 1}}, 0); err != nil {
		return fmt.Errorf("utimes %s: %w", name, err)
	}
	return nil
}

// zChain is z/z/.../z, depth directories.
func zChain(depth int) string {
	return strings.TrimSuffix(strings.Repeat("z/", depth), "/")
}

// TestFSBeneathGivesUp: the walks up behind bpf_landlock_fs_beneath are
// bounded, so that whoever makes the directories or the mounts cannot
// make one run (and, for a dentry, hold mount_lock) as long as they like;
// an object the walk cannot reach D from within the bound is not beneath
// it (0), which keeps "write only beneath D" denying.
func TestFSBeneathGivesUp(t *testing.T) {
	skipUnlessV3(t)
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		t.Run("deep_tree", func(t *testing.T) {
			// D/t/z/z/.../z/f, deepTreeDepth directories deep, on a
			// tmpfs at D/t without an inode limit.
			deep := -1
			defer func() {
				if deep >= 0 {
					unix.Close(deep)
				}
			}()
			r := runLife(t.TempDir(), func(w *world, m int, r *lifeResult) error {
				if err := pathAt(m, 0, w.d); err != nil {
					return err
				}
				if err := r.setIno("D/f", filepath.Join(w.d, "f")); err != nil {
					return err
				}
				tdir := filepath.Join(w.d, "t")
				if err := mountTmpfs(tdir); err != nil {
					return err
				}
				if err := unix.Mount("", tdir, "", unix.MS_REMOUNT, "nr_inodes=0"); err != nil {
					return fmt.Errorf("remounting %s with nr_inodes=0: %w", tdir, err)
				}
				fd, err := unix.Open(tdir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				for i := 0; i < deepTreeDepth; i++ {
					if err := unix.Mkdirat(fd, "z", 0o755); err != nil {
						unix.Close(fd)
						return fmt.Errorf("mkdir at depth %d: %w", i, err)
					}
					next, err := unix.Openat(fd, "z", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
					unix.Close(fd)
					if err != nil {
						return fmt.Errorf("open at depth %d: %w", i, err)
					}
					fd = next
				}
				deep = fd
				f, err := unix.Openat(deep, "f", unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				if err != nil {
					return fmt.Errorf("creating the deep file: %w", err)
				}
				unix.Close(f)
				var st unix.Stat_t
				if err := unix.Fstatat(deep, "f", &st, 0); err != nil {
					return err
				}
				r.inos["deep f"] = st.Ino
				return nil
			}, func(w *world, r *lifeResult) error {
				if err := writeOpenAndTouch(unix.AT_FDCWD, filepath.Join(w.d, "f")); err != nil {
					return err
				}
				return writeOpenAndTouch(deep, "f")
			})
			require.NoError(t, r.setupErr)
			require.NoError(t, r.opErr)
			assert.Equal(t, []int64{1}, r.answers(t, "D/f", unix.SYS_OPENAT, ll.ActionWrite), "file_open, a path: D/f")
			assert.Equal(t, []int64{1}, r.answers(t, "D/f", unix.SYS_UTIMENSAT, ll.ActionWrite), "inode_setattr, a dentry: D/f")
			assert.Equal(t, []int64{0}, r.answers(t, "deep f", unix.SYS_OPENAT, ll.ActionWrite), "file_open, a path %d directories below D", deepTreeDepth)
			assert.Equal(t, []int64{0}, r.answers(t, "deep f", unix.SYS_UTIMENSAT, ll.ActionWrite), "inode_setattr, a dentry %d directories below D", deepTreeDepth)
		})

		t.Run("many_mounts", func(t *testing.T) {
			// A tmpfs T at out/t, bind-mounted on manyMounts
			// directories out/m/N, then on D/t, last. T/f is one
			// directory below T's root, T/z/.../z/f manyMountsDepth.
			// A walk from a dentry of T takes T's mounts in the
			// order they were made: for each, it goes up to T's
			// root (is the file beneath the mount's root?) and then
			// up that mount's path (is that in D?); only the last
			// mount is in D. From T/f that is a few steps a mount;
			// from the deep file, more than the walk takes in all
			// before it gets to D/t.
			deep := filepath.Join(zChain(manyMountsDepth), "f")
			// The deep file's directory, opened before the rule: a
			// lookup of the whole path would fill the recorder with
			// the inode_permission runs of its components.
			deepDir := -1
			defer func() {
				if deepDir >= 0 {
					unix.Close(deepDir)
				}
			}()
			r := runLife(t.TempDir(), func(w *world, m int, r *lifeResult) error {
				if err := pathAt(m, 0, w.d); err != nil {
					return err
				}
				tdir := filepath.Join(w.out, "t")
				if err := mountTmpfs(tdir); err != nil {
					return err
				}
				if err := os.MkdirAll(filepath.Join(tdir, filepath.Dir(deep)), 0o755); err != nil {
					return err
				}
				for _, f := range []string{"f", deep} {
					if err := os.WriteFile(filepath.Join(tdir, f), nil, 0o644); err != nil {
						return err
					}
				}
				dir := filepath.Join(w.out, "m")
				if err := os.Mkdir(dir, 0o755); err != nil {
					return err
				}
				// Each on a mount point of its own: a lookup goes
				// through every mount stacked on one.
				for i := 0; i <= manyMounts; i++ {
					p := filepath.Join(dir, strconv.Itoa(i))
					if i == manyMounts {
						p = filepath.Join(w.d, "t")
					}
					if err := os.Mkdir(p, 0o755); err != nil {
						return err
					}
					if err := unix.Mount(tdir, p, "", unix.MS_BIND, ""); err != nil {
						return fmt.Errorf("bind mount %d of %s on %s: %w", i, tdir, p, err)
					}
				}
				if err := r.setIno("T/f", filepath.Join(w.d, "t", "f")); err != nil {
					return err
				}
				fd, err := unix.Open(filepath.Join(w.d, "t", filepath.Dir(deep)), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				deepDir = fd
				return r.setIno("T/deep f", filepath.Join(w.d, "t", deep))
			}, func(w *world, r *lifeResult) error {
				if err := writeOpenAndTouch(unix.AT_FDCWD, filepath.Join(w.d, "t", "f")); err != nil {
					return err
				}
				return writeOpenAndTouch(deepDir, "f")
			})
			require.NoError(t, r.setupErr)
			require.NoError(t, r.opErr)
			assert.Equal(t, []int64{1}, r.answers(t, "T/f", unix.SYS_OPENAT, ll.ActionWrite), "file_open, a path: D/t/f")
			assert.Equal(t, []int64{1}, r.answers(t, "T/f", unix.SYS_UTIMENSAT, ll.ActionWrite), "inode_setattr, a dentry near the root of a file system with %d mounts", manyMounts+2)
			assert.Equal(t, []int64{1}, r.answers(t, "T/deep f", unix.SYS_OPENAT, ll.ActionWrite), "file_open, a path: no mount list to look at")
			assert.Equal(t, []int64{0}, r.answers(t, "T/deep f", unix.SYS_UTIMENSAT, ll.ActionWrite), "inode_setattr, a dentry %d directories deep in a file system with %d mounts", manyMountsDepth+1, manyMounts+2)
		})
	})
}
