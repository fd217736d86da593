// Package cache keeps the harness's content-keyed caches (extracted kernel
// sources, patched trees, kernel builds, initramfs images) outside the
// checkout, under $XDG_CACHE_HOME/landlock-vmtest or ~/.cache/landlock-vmtest.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Cache is a cache root directory.
type Cache struct {
	Root string
}

// Default returns the cache under dir if dir is set, else under
// $XDG_CACHE_HOME or ~/.cache.
func Default(dir string) (*Cache, error) {
	if dir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, fmt.Errorf("finding the cache directory: %w", err)
			}
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "landlock-vmtest")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	return &Cache{Root: abs}, nil
}

// Path returns the path of a cache entry: Root/kind/key.
func (c *Cache) Path(kind, key string) string {
	return filepath.Join(c.Root, kind, key)
}

// doneMarker is written last into an entry that is complete.
const doneMarker = ".landlock-vmtest-done"

// Done reports whether the entry at dir was completed.
func Done(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, doneMarker))
	return err == nil
}

// MarkDone records that the entry at dir is complete.
func MarkDone(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, doneMarker), nil, 0o644); err != nil {
		return fmt.Errorf("marking cache entry %s complete: %w", dir, err)
	}
	return nil
}

// Build fills the entry at dir with fill unless it is already complete.
// fill writes into a temporary sibling directory that is renamed to dir
// once fill succeeded, so an interrupted fill never looks complete; runs
// that want the same entry at once take turns. It reports whether fill
// ran.
func Build(dir string, fill func(tmp string) error) (bool, error) {
	if Done(dir) {
		markUsed(dir)
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, fmt.Errorf("creating cache directory: %w", err)
	}
	unlock, err := Lock(dir)
	if err != nil {
		return false, err
	}
	defer unlock()
	if Done(dir) {
		// Another run filled it while this one waited.
		return false, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+tmpMarker)
	if err != nil {
		return false, fmt.Errorf("creating cache entry: %w", err)
	}
	if err := fill(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return true, err
	}
	if err := MarkDone(tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return true, err
	}
	if err := os.RemoveAll(dir); err != nil {
		_ = os.RemoveAll(tmp)
		return true, fmt.Errorf("replacing incomplete cache entry %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return true, fmt.Errorf("completing cache entry %s: %w", dir, err)
	}
	return true, nil
}

// Key hashes its parts into a short hex key. Parts are length-prefixed so
// that ("ab","c") and ("a","bc") differ.
func Key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\x00", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// FileSHA256 returns the hex SHA-256 of a file's content.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Lock takes an exclusive lock on path+".lock", waiting for another
// process of the harness that holds it (two runs building the same entry
// at the same time), and marks the entry used (see Prune). The returned
// function releases it.
func Lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	markUsed(path)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
