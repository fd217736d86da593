package fsmap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// lifeResult is what a lifetime case brings back from its thread.
type lifeResult struct {
	setupErr error
	opErr    error
	recs     []ll.FSBeneathRecord
	// inos are inode numbers prep recorded, by name.
	inos map[string]uint64
	// errs are results prep or op recorded, by name.
	errs map[string]error
}

// runLife runs, on a new thread with a world at base: prep with a new
// empty map of 8 entries, then a recorder of that map appended, then op.
func runLife(base string, prep func(w *world, mapFD int, r *lifeResult) error, op func(w *world, r *lifeResult) error) (r lifeResult) {
	r.inos = map[string]uint64{}
	r.errs = map[string]error{}
	ll.RunOnRuleThread(func() {
		w := newWorld(base)
		defer w.close()
		if w.err != nil {
			r.setupErr = w.err
			return
		}
		mapFD, err := ll.NewFSMapFD(8)
		if err != nil {
			r.setupErr = err
			return
		}
		defer unix.Close(mapFD)
		if err := prep(w, mapFD, &r); err != nil {
			r.setupErr = err
			return
		}
		rec, err := ll.NewFSBeneathRecorder(mapFD, 0)
		if err != nil {
			r.setupErr = err
			return
		}
		defer rec.Close()
		if err := ll.Append(rec.Prog); err != nil {
			r.setupErr = err
			return
		}
		if err := rec.Start(); err != nil {
			r.setupErr = err
			return
		}
		r.opErr = op(w, &r)
		r.recs, _, err = rec.Stop()
		if err != nil {
			r.setupErr = err
		}
	})
	return r
}

// setIno records the inode number of p as name.
func (r *lifeResult) setIno(name, p string) error {
	n, err := ino(p)
	r.inos[name] = n
	return err
}

// answers returns what the helper answered for the runs of system call nr
// with arg2 about the inode of name.
func (r lifeResult) answers(t *testing.T, name string, nr uintptr, arg2 uint64) []int64 {
	t.Helper()
	n, ok := r.inos[name]
	require.True(t, ok, "no inode recorded for %s", name)
	var got []int64
	for _, rec := range r.recs {
		if uintptr(rec.SyscallNr) == nr && rec.Arg2 == arg2 && rec.Arg1 == n {
			got = append(got, rec.Ret)
		}
	}
	t.Logf("%s (inode %d): %v; all runs: %v", name, n, got, r.recs)
	return got
}

// mountTmpfs makes the directory dir and mounts a small tmpfs on it.
func mountTmpfs(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m")
}

// pathAt writes the O_PATH fd of p at key of the map and closes the fd.
func pathAt(mapFD int, key uint32, p string) error {
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := ll.MapUpdate(mapFD, key, uint32(fd), ll.UpdateAny); err != nil {
		return fmt.Errorf("writing %s at key %d: %w", p, key, err)
	}
	return nil
}

// TestLifetime: the map's reference keeps its path; it is dropped on
// delete and overwrite before they return.
func TestLifetime(t *testing.T) {
	skipUnlessV3(t)
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		t.Run("fd_closed", func(t *testing.T) {
			// The fd given to update is closed before the rule runs.
			r := runLife(t.TempDir(), func(w *world, m int, r *lifeResult) error {
				if err := pathAt(m, 0, w.d); err != nil {
					return err
				}
				return r.setIno("D/f", filepath.Join(w.d, "f"))
			}, func(w *world, _ *lifeResult) error { return writeFile(filepath.Join(w.d, "f")) })
			require.NoError(t, r.setupErr)
			require.NoError(t, r.opErr)
			assert.Equal(t, []int64{1}, r.answers(t, "D/f", unix.SYS_OPENAT, ll.ActionWrite))
		})

		t.Run("renamed_D_matches_new_D_does_not", func(t *testing.T) {
			r := runLife(t.TempDir(), func(w *world, m int, r *lifeResult) error {
				if err := pathAt(m, 0, w.d); err != nil {
					return err
				}
				d2 := filepath.Join(w.root, "x", "d2")
				if err := os.Rename(w.d, d2); err != nil {
					return err
				}
				if err := os.Mkdir(w.d, 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(w.d, "f"), []byte(fileContent), 0o644); err != nil {
					return err
				}
				if err := r.setIno("renamed D/f", filepath.Join(d2, "f")); err != nil {
					return err
				}
				return r.setIno("new D/f", filepath.Join(w.d, "f"))
			}, func(w *world, r *lifeResult) error {
				r.errs["new"] = writeFile(filepath.Join(w.d, "f"))
				return writeFile(filepath.Join(w.root, "x", "d2", "f"))
			})
			require.NoError(t, r.setupErr)
			require.NoError(t, r.opErr)
			require.NoError(t, r.errs["new"])
			assert.Equal(t, []int64{1}, r.answers(t, "renamed D/f", unix.SYS_OPENAT, ll.ActionWrite), "the directory renamed is still the entry")
			assert.Equal(t, []int64{0}, r.answers(t, "new D/f", unix.SYS_OPENAT, ll.ActionWrite), "a new directory at the old name is not")
		})

		t.Run("umount_busy_until_delete", func(t *testing.T) {
			r := runLife(t.TempDir(), func(w *world, m int, r *lifeResult) error {
				mnt := filepath.Join(w.root, "M")
				if err := mountTmpfs(mnt); err != nil {
					return err
				}
				if err := pathAt(m, 0, mnt); err != nil {
					return err
				}
				r.errs["umount with the entry"] = unix.Unmount(mnt, 0)
				r.errs["delete"] = ll.MapDelete(m, 0)
				r.errs["umount after delete"] = unix.Unmount(mnt, 0)

				// Overwrite drops the reference too.
				m2 := filepath.Join(w.root, "M2")
				if err := mountTmpfs(m2); err != nil {
					return err
				}
				if err := pathAt(m, 1, m2); err != nil {
					return err
				}
				r.errs["umount M2 with the entry"] = unix.Unmount(m2, 0)
				r.errs["overwrite"] = pathAt(m, 1, w.d)
				r.errs["umount M2 after overwrite"] = unix.Unmount(m2, 0)
				return nil
			}, func(*world, *lifeResult) error { return nil })
			require.NoError(t, r.setupErr)
			assert.ErrorIs(t, r.errs["umount with the entry"], unix.EBUSY)
			assert.NoError(t, r.errs["delete"])
			assert.NoError(t, r.errs["umount after delete"], "umount right after the delete returned")
			assert.ErrorIs(t, r.errs["umount M2 with the entry"], unix.EBUSY)
			assert.NoError(t, r.errs["overwrite"])
			assert.NoError(t, r.errs["umount M2 after overwrite"], "umount right after the overwrite returned")
		})

		t.Run("map_free_drops_references", func(t *testing.T) {
			r := runLife(t.TempDir(), func(w *world, _ int, r *lifeResult) error {
				mnt := filepath.Join(w.root, "M")
				if err := mountTmpfs(mnt); err != nil {
					return err
				}
				if err := os.Mkdir(filepath.Join(mnt, "sub"), 0o755); err != nil {
					return err
				}
				m, err := ll.NewFSMapFD(4)
				if err != nil {
					return err
				}
				if err := pathAt(m, 0, mnt); err != nil {
					unix.Close(m)
					return err
				}
				if err := pathAt(m, 3, filepath.Join(mnt, "sub")); err != nil {
					unix.Close(m)
					return err
				}
				r.errs["umount with the map"] = unix.Unmount(mnt, 0)
				// The last reference to the map: bpf(2) frees it from
				// a work queue, so its entries are dropped a moment
				// after close(2) returns.
				unix.Close(m)
				deadline := time.Now().Add(10 * time.Second)
				for {
					err := unix.Unmount(mnt, 0)
					r.errs["umount after the map is freed"] = err
					if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				return nil
			}, func(*world, *lifeResult) error { return nil })
			require.NoError(t, r.setupErr)
			assert.ErrorIs(t, r.errs["umount with the map"], unix.EBUSY)
			assert.NoError(t, r.errs["umount after the map is freed"], "the freed map still pins the mount after 10 s")
		})

		t.Run("lazy_umount_fd_inside", func(t *testing.T) {
			r := runLife(t.TempDir(), func(w *world, m int, r *lifeResult) error {
				mnt := filepath.Join(w.root, "M")
				if err := mountTmpfs(mnt); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(mnt, "f"), []byte(fileContent), 0o644); err != nil {
					return err
				}
				if err := pathAt(m, 0, mnt); err != nil {
					return err
				}
				if err := r.setIno("M/f", filepath.Join(mnt, "f")); err != nil {
					return err
				}
				w.open(filepath.Join(mnt, "f"), unix.O_WRONLY)
				w.fd["M/f"] = w.fd[filepath.Join(mnt, "f")]
				if w.err != nil {
					return w.err
				}
				r.errs["umount -l"] = unix.Unmount(mnt, unix.MNT_DETACH)
				return nil
			}, func(w *world, _ *lifeResult) error {
				_, err := unix.Write(w.fd["M/f"], []byte("w"))
				return err
			})
			require.NoError(t, r.setupErr)
			require.NoError(t, r.errs["umount -l"], "umount2(MNT_DETACH)")
			require.NoError(t, r.opErr, "write through the fd into the detached tmpfs")
			assert.Equal(t, []int64{1}, r.answers(t, "M/f", unix.SYS_WRITE, ll.ActionWrite), "the detached tree ends at its root, the entry")
		})

		t.Run("rule_outlives_map_fd", func(t *testing.T) {
			// appendCanonical closes the map's and the program's fds
			// before it returns: the rule holds the map.
			var in, out, setup error
			base := t.TempDir()
			ll.RunOnRuleThread(func() {
				w := newWorld(base)
				defer w.close()
				if setup = w.err; setup != nil {
					return
				}
				if setup = appendCanonical(w.d); setup != nil {
					return
				}
				in = writeFile(filepath.Join(w.d, "f"))
				out = writeFile(filepath.Join(w.out, "f"))
			})
			require.NoError(t, setup)
			assert.NoError(t, in, "write in D")
			assert.ErrorIs(t, out, unix.EPERM, "write outside D")
		})
	})
}
