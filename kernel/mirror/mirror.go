// Package mirror keeps a copy of a source tree in step with it, rewriting
// only the files whose content changed.
//
// make decides what to rebuild from file times: a copy made afresh for
// every edit (a new patched tree, a new build directory) rebuilds the
// whole kernel for a one-line change. A mirror instead stays in one place
// beside one build directory; Sync gives a file a new time only when its
// content differs from the mirror's, so make rebuilds what the edit
// reaches and nothing else.
//
// Sync remembers, for every file, the identity of the source file it last
// matched (device, inode, size, modification time) in an index next to the
// mirror; a file whose source has the same identity is not read again.
// Files are never written in place: a changed file is written beside its
// old copy and renamed over it, so that a mirror made with hard links to
// the source (Options.Link) never writes through to the source.
package mirror

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Options are Sync's knobs.
type Options struct {
	// Index is the file that keeps what the last Sync saw.
	Index string
	// Link makes a first Sync (no index) hard-link the source's files
	// instead of copying them. Only for a source whose files are
	// replaced, never rewritten in place (the cache's own trees).
	Link bool
	// Skip names top-level entries of the source that are not mirrored
	// (".git").
	Skip []string
	// BeforeFresh, when set, is called before a Sync without an index
	// empties the mirror: what was built from the mirror's old files
	// (a build directory beside it) must go first, or an interruption
	// after the new index is saved would leave it trusted.
	BeforeFresh func() error
}

// Stats is what a Sync did.
type Stats struct {
	// Files is the number of files (and symlinks) of the source.
	Files int
	// Read is how many of them were compared with the mirror's copy,
	// their identity having changed.
	Read int
	// Written are the files written, their content being new; Removed
	// those removed, the source no longer having them. Paths are
	// relative, in order.
	Written, Removed []string
	// Fresh is true when the mirror was made from nothing (no index):
	// everything in it is new, and a build directory beside it must be
	// built from scratch.
	Fresh bool
	// Elapsed is how long it took.
	Elapsed time.Duration
}

// identity is what tells, without reading it, that a source file is the
// one the mirror's copy was last made from or compared with.
type identity struct {
	Dev, Ino uint64
	Size     int64
	ModNs    int64
	Mode     fs.FileMode
}

func identityOf(fi fs.FileInfo) identity {
	id := identity{Size: fi.Size(), ModNs: fi.ModTime().UnixNano(), Mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// index maps a relative path to the identity of the source file the
// mirror's copy was last found equal to.
type index map[string]identity

func load(path string) (index, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the mirror's index: %w", err)
	}
	defer f.Close()
	idx := index{}
	if err := gob.NewDecoder(f).Decode(&idx); err != nil {
		// A torn index (an interrupted Sync) is no index: start over.
		return nil, nil
	}
	return idx, nil
}

func (idx index) save(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("writing the mirror's index: %w", err)
	}
	if err := gob.NewEncoder(f).Encode(idx); err != nil {
		f.Close()
		return fmt.Errorf("writing the mirror's index: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the mirror's index: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing the mirror's index: %w", err)
	}
	return nil
}

// remove removes the mirror's file or symlink rel, which the source no
// longer has, and reports whether it was there. What the walk made a
// directory since is left, and so is anything below a directory that the
// walk replaced with a file or a symlink: it went with it (and a path
// through a symlink must never be followed out of its place).
func remove(dst, rel string) (bool, error) {
	dir := dst
	parts := strings.Split(rel, string(filepath.Separator))
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			return false, nil
		}
	}
	target := filepath.Join(dst, rel)
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.IsDir() {
		return false, nil
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// Sync makes dst a copy of src. Without an index (a first Sync, or one
// after an interrupted one), dst is emptied and made afresh. Otherwise
// only the files whose content changed are written (with the current
// time), those src no longer has are removed, and everything else is left
// as it was, times included.
func Sync(src, dst string, o Options) (Stats, error) {
	start := time.Now()
	st := Stats{}
	old, err := load(o.Index)
	if err != nil {
		return st, err
	}
	// Until this Sync has finished, the mirror is in no known state.
	if err := os.Remove(o.Index); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("removing the mirror's index: %w", err)
	}
	if old == nil {
		st.Fresh = true
		if o.BeforeFresh != nil {
			if err := o.BeforeFresh(); err != nil {
				return st, err
			}
		}
		if err := os.RemoveAll(dst); err != nil {
			return st, fmt.Errorf("emptying the mirror: %w", err)
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return st, fmt.Errorf("creating the mirror: %w", err)
	}
	skip := map[string]bool{}
	for _, s := range o.Skip {
		skip[s] = true
	}
	now := index{}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if skip[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			return mkdir(target, fi.Mode().Perm())
		case fi.Mode().IsRegular(), fi.Mode()&fs.ModeSymlink != 0:
		default:
			return nil // sockets, fifos: nothing a build reads
		}
		st.Files++
		id := identityOf(fi)
		now[rel] = id
		if prev, ok := old[rel]; ok && prev == id {
			return nil
		}
		if st.Fresh {
			return place(path, target, fi, o.Link)
		}
		st.Read++
		same, err := equal(path, target, fi)
		if err != nil {
			return err
		}
		if same {
			return nil
		}
		st.Written = append(st.Written, rel)
		return place(path, target, fi, false)
	})
	if err != nil {
		return st, fmt.Errorf("mirroring %s: %w", src, err)
	}
	for rel := range old {
		if _, ok := now[rel]; ok {
			continue
		}
		gone, err := remove(dst, rel)
		if err != nil {
			return st, fmt.Errorf("mirroring %s: %w", src, err)
		}
		if gone {
			st.Removed = append(st.Removed, rel)
		}
	}
	sort.Strings(st.Written)
	sort.Strings(st.Removed)
	if err := now.save(o.Index); err != nil {
		return st, fmt.Errorf("mirroring %s: %w", src, err)
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// mkdir makes dir, or replaces what is there if it is not a directory.
func mkdir(dir string, perm fs.FileMode) error {
	fi, err := os.Lstat(dir)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		if err := os.Remove(dir); err != nil {
			return err
		}
	}
	return os.Mkdir(dir, perm|0o700)
}

// equal reports whether the mirror's target has src's content (and, for
// a symlink, target).
func equal(src, target string, fi fs.FileInfo) (bool, error) {
	tfi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if tfi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		a, err := os.Readlink(src)
		if err != nil {
			return false, err
		}
		b, err := os.Readlink(target)
		return err == nil && a == b, err
	}
	if !tfi.Mode().IsRegular() || tfi.Size() != fi.Size() || tfi.Mode().Perm() != fi.Mode().Perm() {
		return false, nil
	}
	return sameContent(src, target)
}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}

// place puts src's content at target: a hard link (link), a symlink with
// the same target, or a new copy renamed over whatever was there.
func place(src, target string, fi fs.FileInfo, link bool) error {
	tmp := target + ".mirror-tmp"
	_ = os.Remove(tmp)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		to, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(to, tmp); err != nil {
			return err
		}
	case link:
		if err := os.Link(src, tmp); err != nil {
			return err
		}
	default:
		if err := copyFile(src, tmp, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		// A directory where a file now is.
		if rerr := os.RemoveAll(target); rerr != nil {
			return err
		}
		return os.Rename(tmp, target)
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	// The source's mode, whatever the umask: equal compares it.
	if err := out.Chmod(perm); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
