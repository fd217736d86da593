// Package source provides the kernel tree a run builds: Debian's
// linux-source tarball extracted once into the cache, or a tree of the
// user's (KERNEL_SRC), and a patched copy of either with a series applied.
// A user's tree is never modified.
package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
)

// DefaultTarball is where Debian's linux-source-6.12 package puts the source.
const DefaultTarball = "/usr/src/linux-source-6.12.tar.xz"

// Tree is a kernel source tree ready to configure and build out of tree.
type Tree struct {
	// Dir is the tree's top directory.
	Dir string
	// Key identifies the tree's content (for cache keys).
	Key string
	// Desc says where the tree came from, for reports.
	Desc string
	// Origin names what the tree was made from, the same through every
	// edit of it: Debian's source, or the user's tree by its path. A
	// patched or derived tree has its base's. Builds of one origin with
	// one config share a mirrored build directory (build.NewMirrored).
	Origin string
	// owned is true when the tree lives in our cache, so copies may
	// share its files through hard links.
	owned bool
}

// Debian extracts the linux-source tarball into the cache, keyed by the
// tarball's SHA-256, unless that was done before.
func Debian(c *cache.Cache, tarball string) (*Tree, error) {
	sum, err := tarballSum(c, tarball)
	if err != nil {
		return nil, err
	}
	dir := c.Path("src", sum[:24])
	if _, err := cache.Build(dir, func(tmp string) error {
		cmd := exec.Command("tar", "-xf", tarball, "-C", tmp, "--strip-components=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("extracting %s: %w\n%s", tarball, err, out)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	desc := "Debian " + filepath.Base(tarball)
	if v, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "linux-source-6.12").Output(); err == nil && len(v) > 0 {
		desc += " " + string(v)
	}
	return &Tree{Dir: dir, Key: "tarball:" + sum, Desc: desc + " (sha256 " + sum[:12] + ")", Origin: "debian", owned: true}, nil
}

// DebianKey is the Key the tree Debian extracts from tarball has, without
// extracting it (landlock-vmtest cache-key).
func DebianKey(c *cache.Cache, tarball string) (string, error) {
	sum, err := tarballSum(c, tarball)
	if err != nil {
		return "", err
	}
	return "tarball:" + sum, nil
}

// tarballSum returns the tarball's SHA-256, remembered in the cache by the
// file's size, modification time and inode so that a warm run does not read
// 150 MB again.
func tarballSum(c *cache.Cache, tarball string) (string, error) {
	st, err := os.Stat(tarball)
	if err != nil {
		return "", fmt.Errorf("kernel source tarball: %w", err)
	}
	id := cache.Key(tarball, fmt.Sprint(st.Size()), st.ModTime().String(), fmt.Sprint(inode(st)))
	memo := c.Path("sums", id)
	if b, err := os.ReadFile(memo); err == nil && len(b) == 64 {
		return string(b), nil
	}
	sum, err := cache.FileSHA256(tarball)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(memo), 0o755); err == nil {
		_ = os.WriteFile(memo, []byte(sum), 0o644)
	}
	return sum, nil
}

// Local describes a kernel tree of the user's, git or plain. It checks that
// the tree is a kernel tree for arch (its directory under arch/: x86,
// arm64) that can be built out of tree.
func Local(dir, arch string) (*Tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("KERNEL_SRC %s: %w", dir, err)
	}
	for _, f := range []string{"Makefile", "Kconfig", "arch/" + arch + "/Kconfig"} {
		if _, err := os.Stat(filepath.Join(abs, f)); err != nil {
			return nil, fmt.Errorf("KERNEL_SRC %s is not an %s kernel tree: %w", abs, arch, err)
		}
	}
	for _, f := range []string{".config", "include/config"} {
		if _, err := os.Stat(filepath.Join(abs, f)); err == nil {
			return nil, fmt.Errorf("KERNEL_SRC %s has been built in place (%s exists); out-of-tree builds need a clean tree: run 'make -C %s mrproper' or use a clean worktree", abs, f, abs)
		}
	}
	key, desc, err := localKey(abs)
	if err != nil {
		return nil, err
	}
	return &Tree{Dir: abs, Key: key, Desc: desc, Origin: "local:" + abs}, nil
}

// localKey identifies a user's tree: for git, HEAD plus the uncommitted
// changes; otherwise the names, sizes and times of every file.
func localKey(dir string) (key, desc string, err error) {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		head, err := gitOut(dir, "rev-parse", "HEAD")
		if err != nil {
			return "", "", err
		}
		status, err := gitOut(dir, "status", "--porcelain=v1", "--untracked-files=all")
		if err != nil {
			return "", "", err
		}
		diff, err := gitOut(dir, "diff", "HEAD")
		if err != nil {
			return "", "", err
		}
		// Untracked files appear in status by name only: hash their
		// content too, or editing one would not change the key.
		untracked, err := gitOut(dir, "ls-files", "--others", "--exclude-standard", "-z")
		if err != nil {
			return "", "", err
		}
		uh := sha256.New()
		for _, f := range strings.Split(untracked, "\x00") {
			if f == "" {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return "", "", fmt.Errorf("reading untracked %s in KERNEL_SRC: %w", f, err)
			}
			fmt.Fprintf(uh, "%s\x00%d\x00", f, len(b))
			uh.Write(b)
		}
		diff += "\x00untracked:" + hex.EncodeToString(uh.Sum(nil))
		head = strings.TrimSpace(head)
		desc := fmt.Sprintf("git tree %s at %s", dir, head[:12])
		if status != "" {
			desc += " with uncommitted changes"
		}
		return "git:" + cache.Key(dir, head, status, diff), desc, nil
	}
	h := sha256.New()
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", rel, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", "", fmt.Errorf("reading KERNEL_SRC %s: %w", dir, err)
	}
	return "plain:" + hex.EncodeToString(h.Sum(nil)), "tree " + dir, nil
}

func gitOut(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// PatchedPrefix starts the Key of a patched tree.
const PatchedPrefix = "patched:"

// PatchedKey is the Key Patched gives t with s applied, without applying
// it: t's own with an empty series.
func PatchedKey(t *Tree, s *series.Series) (string, error) {
	if len(s.Patches) == 0 {
		return t.Key, nil
	}
	key, err := patchedKey(t, s)
	return PatchedPrefix + key, err
}

func patchedKey(t *Tree, s *series.Series) (string, error) {
	sh, err := s.Hash()
	if err != nil {
		return "", err
	}
	return cache.Key(t.Key, sh), nil
}

// Patched returns a copy of t with the series applied, cached by the tree's
// key and the series' hash. An empty series returns t itself: building out
// of tree leaves the source untouched. The copy shares unchanged files with
// t through hard links when t is the cache's own; a user's tree is copied
// (patch(1) replaces the files it changes, so the links never carry a
// change back).
func Patched(c *cache.Cache, t *Tree, s *series.Series) (*Tree, error) {
	if len(s.Patches) == 0 {
		return t, nil
	}
	key, err := patchedKey(t, s)
	if err != nil {
		return nil, err
	}
	dir := c.Path("trees", key)
	_, err = cache.Build(dir, func(tmp string) error {
		if err := copyTree(t.Dir, tmp, t.owned); err != nil {
			return err
		}
		return s.Apply(tmp)
	})
	if err != nil {
		return nil, err
	}
	return &Tree{
		Dir:    dir,
		Key:    PatchedPrefix + key,
		Desc:   fmt.Sprintf("%s + %d patch(es)", t.Desc, len(s.Patches)),
		Origin: t.Origin,
		owned:  true,
	}, nil
}

// CopyTo copies the tree into the existing directory dst, sharing
// unchanged files through hard links when the tree is the cache's own.
// patch(1) replaces the files it changes, so a patched copy never writes
// through a link; other writers must replace files too, not rewrite them.
func (t *Tree) CopyTo(dst string) error { return copyTree(t.Dir, dst, t.owned) }

// Owned reports whether the tree lives in the cache: its files are
// replaced, never rewritten, so copies may share them through hard links.
func (t *Tree) Owned() bool { return t.owned }

// copyTree copies src into the existing directory dst, without .git.
func copyTree(src, dst string, link bool) error {
	var cmd *exec.Cmd
	if link {
		cmd = exec.Command("cp", "-al", src+"/.", dst+"/")
	} else {
		cmd = exec.Command("sh", "-c", `tar -C "$1" --exclude=./.git -cf - . | tar -C "$2" -xf -`, "sh", src, dst)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("copying kernel tree %s: %w\n%s", src, err, out)
	}
	if link {
		// A hard-linked .git would be shared; the copy needs none.
		if err := os.RemoveAll(filepath.Join(dst, ".git")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("copying kernel tree: %w", err)
		}
	}
	return nil
}

// Derived returns a copy of t changed by edit, cached under t's key and
// variant (which must name the change: a different edit needs a different
// variant). The copy shares t's files through hard links when t is the
// cache's own, so edit must replace a file it changes (write a new file,
// then rename it over the old one) rather than write into it. A user's
// tree is copied in full and never modified.
func Derived(c *cache.Cache, t *Tree, variant, desc string, edit func(dir string) error) (*Tree, error) {
	key := cache.Key(t.Key, "derived", variant)
	dir := c.Path("trees", key)
	if _, err := cache.Build(dir, func(tmp string) error {
		if err := copyTree(t.Dir, tmp, t.owned); err != nil {
			return err
		}
		return edit(tmp)
	}); err != nil {
		return nil, err
	}
	return &Tree{
		Dir:    dir,
		Key:    "derived:" + key,
		Desc:   t.Desc + " + " + desc,
		Origin: t.Origin,
		owned:  true,
	}, nil
}
