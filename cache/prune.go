package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Prunable are the kinds of entries Prune may remove: everything the
// harness recreates on demand. ccache keeps its own size limit (ccache
// -M), and meta and sums are a few bytes.
var Prunable = []string{"bisect-git", "build", "initramfs", "kselftest", "mirror", "probe", "src", "trees", "worktree"}

// filledByBuild are the kinds whose entries Build fills, and so carry its
// done marker; the persistent directories (build, mirror, worktree,
// bisect-git) and the probe results do not.
var filledByBuild = map[string]bool{"initramfs": true, "kselftest": true, "src": true, "trees": true}

// tmpMarker is in the name of a fill's temporary directory (see Build).
const tmpMarker = ".tmp-"

// markUsed records that the entry at path is being used now: the mtime of
// its lock file, created if need be, is its last use (an entry's own
// mtime is when it was filled). Errors are ignored: the mark only informs
// Prune.
func markUsed(path string) {
	now := time.Now()
	if err := os.Chtimes(path+".lock", now, now); err == nil {
		return
	}
	if f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close()
	}
}

// Entry is one cache entry.
type Entry struct {
	Kind, Name string
	// Path is the entry's directory (or file, for probe results).
	Path string
	// LastUsed is its last use: the newer of its own mtime and its lock
	// file's.
	LastUsed time.Time
	// Incomplete is a fill's leftover temporary directory, or an entry
	// never marked complete.
	Incomplete bool
}

// Entries lists the entries of the prunable kinds, oldest use first.
func (c *Cache) Entries() ([]Entry, error) {
	var out []Entry
	for _, kind := range Prunable {
		dir := filepath.Join(c.Root, kind)
		des, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing the cache: %w", err)
		}
		for _, de := range des {
			name := de.Name()
			if strings.HasSuffix(name, ".lock") || strings.HasSuffix(name, ".log") {
				continue
			}
			p := filepath.Join(dir, name)
			st, err := os.Lstat(p)
			if err != nil {
				continue // removed meanwhile
			}
			e := Entry{Kind: kind, Name: name, Path: p, LastUsed: st.ModTime()}
			if lst, err := os.Stat(p + ".lock"); err == nil && lst.ModTime().After(e.LastUsed) {
				e.LastUsed = lst.ModTime()
			}
			e.Incomplete = strings.Contains(name, tmpMarker) || (st.IsDir() && filledByBuild[kind] && !Done(p))
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUsed.Before(out[j].LastUsed) })
	return out, nil
}

// Removed is an entry Prune removed, or left because a run holds it.
type Removed struct {
	Entry
	// InUse is set when the entry was left: a run holds its lock.
	InUse bool
}

// Prune removes the entries last used before cutoff, and every leftover
// of an interrupted fill. An entry whose lock a run holds is left alone.
// An entry that is in use without its lock held (a tree a running build
// reads) was marked used when that run started, so a cutoff in the past
// keeps it; a cutoff of now does not, so prune everything only while no
// run is going.
func (c *Cache) Prune(cutoff time.Time) ([]Removed, error) {
	entries, err := c.Entries()
	if err != nil {
		return nil, err
	}
	var out []Removed
	for _, e := range entries {
		if !e.Incomplete && !e.LastUsed.Before(cutoff) {
			continue
		}
		removed, err := removeUnlocked(e.Path)
		if err != nil {
			return out, err
		}
		out = append(out, Removed{Entry: e, InUse: !removed})
	}
	return out, nil
}

// removeUnlocked removes path and its lock and log files unless another
// process holds the lock; it reports whether it removed them.
func removeUnlocked(path string) (bool, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return false, fmt.Errorf("pruning %s: %w", path, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("pruning %s: %w", path, err)
	}
	defer func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }()
	if err := os.RemoveAll(path); err != nil {
		return false, fmt.Errorf("pruning %s: %w", path, err)
	}
	for _, side := range []string{path + ".log", path + ".lock"} {
		if err := os.Remove(side); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("pruning %s: %w", side, err)
		}
	}
	return true, nil
}

// Usage is the disk space of the cache, per kind, counting a file linked
// from several entries (trees share the extracted source's files) once,
// under the first kind in name order that links it.
func (c *Cache) Usage() (map[string]int64, int64, error) {
	kinds, err := os.ReadDir(c.Root)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the cache: %w", err)
	}
	seen := map[[2]uint64]bool{}
	per := map[string]int64{}
	var total int64
	for _, k := range kinds {
		if !k.IsDir() {
			continue
		}
		err := filepath.WalkDir(filepath.Join(c.Root, k.Name()), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while walking
				}
				return err
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			id := [2]uint64{st.Dev, st.Ino}
			if seen[id] {
				return nil
			}
			seen[id] = true
			n := st.Blocks * 512
			per[k.Name()] += n
			total += n
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("measuring the cache: %w", err)
		}
	}
	return per, total, nil
}
