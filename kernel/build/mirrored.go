package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/internal/fsutil"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/mirror"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
)

// mirrored is where a mirrored build happens: a scratch copy of the tree
// (kept in step by package mirror) and the build directory beside it, one
// pair for every origin and config.
type mirrored struct {
	root, src, build, index string
	unlock                  func()
	// synced is what the last Sync did, for the stage's note.
	synced mirror.Stats
	// kept is true when the build directory's .config was kept: the
	// fragments and everything else that makes it were the same.
	kept bool
}

// configStamp is the file of a mirrored build directory that records what
// its .config was made from.
const configStamp = ".landlock-vmtest-config"

// building is the file of a mirrored build directory that says a make is
// going on there, or was killed: objects it was writing may be half made
// and yet newer than their sources (make cannot delete the targets of a
// killed recipe), so the next build starts the directory over.
const building = ".landlock-vmtest-building"

// MirrorSource is the file of a published build directory that names the
// mirror's source tree the build's vmlinux refers to, so that a debugger
// can map those paths to the build's own tree ("source").
const MirrorSource = ".landlock-vmtest-mirror-src"

// NewMirrored prepares a build of req in the cache, as New does, for the
// edit-build-test loop: when no finished build has req's key, the tree is
// mirrored into a scratch tree that stays in one place for req.Tree.Origin
// and the rest of the key (config, machine, compiler), and built in the
// build directory beside it. Only the files whose content changed since
// the last build there get a new time, so make rebuilds what the edit
// reaches, and ccache, whose paths are the same, hits what make asks for
// again. The image, vmlinux and the files the harness reads are then
// copied into the content-keyed build directory and marked done, for exact
// reuse.
func NewMirrored(c *cache.Cache, req Request) *Builder {
	b := New(c, req)
	if req.Tree.Origin == "" {
		return b
	}
	m := req.mach()
	root := c.Path("mirror", cache.Key(append([]string{"mirror-v1", req.Tree.Origin, req.Fragments.Hash(), Base, m.Name, compilerVersion(m.CrossCompile + "gcc")}, req.Extra...)...))
	b.mirror = &mirrored{root: root, src: filepath.Join(root, "src"), build: filepath.Join(root, "build"), index: filepath.Join(root, "index")}
	return b
}

// Mirrored tells whether the build is made through a mirror, and what
// the mirror's last sync wrote: "" for a build in its own directory.
func (b *Builder) Mirrored() string {
	if b.mirror == nil {
		return ""
	}
	s := b.mirror.synced
	if s.Fresh {
		return fmt.Sprintf("mirrored %d files afresh into %s", s.Files, b.mirror.root)
	}
	note := fmt.Sprintf("mirror %s: %d file(s) changed, %d removed", b.mirror.root, len(s.Written), len(s.Removed))
	if n := len(s.Written); n > 0 && n <= 3 {
		note += " (" + strings.Join(s.Written, ", ") + ")"
	}
	if b.mirror.kept {
		note += ", .config kept"
	}
	return note
}

// configureMirrored syncs the mirror and writes its build directory's
// .config unless the one there was made from the same fragments. It
// holds the mirror's lock until Compile ends (or Release).
func (b *Builder) configureMirrored() error {
	mr := b.mirror
	if err := os.MkdirAll(mr.root, 0o755); err != nil {
		return fmt.Errorf("creating the mirror: %w", err)
	}
	unlock, err := cache.Lock(mr.root)
	if err != nil {
		return err
	}
	mr.unlock = unlock
	emptyBuild := func() error {
		// Objects newer than a fresh copy's files would never be
		// remade: the build directory starts over with the mirror.
		if err := os.RemoveAll(mr.build); err != nil {
			return fmt.Errorf("emptying the mirror's build directory: %w", err)
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(mr.build, building)); err == nil {
		if err := emptyBuild(); err != nil {
			return err
		}
	}
	// The stamp goes until this configure has decided: an interruption
	// from here on configures afresh next time.
	stampPath := filepath.Join(mr.build, configStamp)
	prev, _ := os.ReadFile(stampPath)
	if err := os.Remove(stampPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resetting the mirror's config stamp: %w", err)
	}
	st, err := mirror.Sync(b.req.Tree.Dir, mr.src, mirror.Options{Index: mr.index, Link: b.req.Tree.Owned(), Skip: []string{".git"}, BeforeFresh: emptyBuild})
	if err != nil {
		return fmt.Errorf("mirror %s: %w", mr.root, err)
	}
	mr.synced = st
	if err := os.MkdirAll(mr.build, 0o755); err != nil {
		return fmt.Errorf("creating the mirror's build directory: %w", err)
	}
	stamp := b.req.Fragments.Hash()
	if !st.Fresh && string(prev) == stamp && !changesConfig(st) {
		if _, err := os.Stat(filepath.Join(mr.build, ".config")); err == nil {
			// make's own syncconfig follows a Kconfig the edit
			// changed; Compile checks the symbols again.
			mr.kept = true
			return os.WriteFile(stampPath, []byte(stamp), 0o644)
		}
	}
	m := b.mirrorMaker()
	if err := m.configure(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) && keepLog(ce.Log, b.res.Dir) == nil {
			ce.Log = filepath.Join(b.res.Dir, filepath.Base(ce.Log))
		}
		return err
	}
	return os.WriteFile(stampPath, []byte(stamp), 0o644)
}

// keepLog copies a log of the mirror's build directory, which the next
// build there overwrites, into the keyed directory dir.
func keepLog(log, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fsutil.CopyFile(log, filepath.Join(dir, filepath.Base(log)))
}

// changesConfig tells whether a sync wrote or removed a file that the
// configuration is made from: a Kconfig file, a fragment that tinyconfig
// merges (kernel/configs/, arch/*/configs/), or anything under scripts/
// (kconfig itself, and the scripts Kconfig runs to probe the toolchain).
func changesConfig(st mirror.Stats) bool {
	for _, list := range [][]string{st.Written, st.Removed} {
		for _, rel := range list {
			if strings.HasPrefix(filepath.Base(rel), "Kconfig") || strings.HasPrefix(rel, "kernel/configs/") ||
				(strings.HasPrefix(rel, "arch/") && strings.Contains(rel, "/configs/")) ||
				strings.HasPrefix(rel, "scripts/") {
				return true
			}
		}
	}
	return false
}

func (b *Builder) mirrorMaker() maker {
	req := b.req
	tree := *req.Tree
	tree.Dir = b.mirror.src
	req.Tree = &tree
	return maker{c: b.c, req: req, dir: b.mirror.build}
}

// compileMirrored builds in the mirror, checks the final .config against
// the fragments, and publishes the result in the content-keyed directory.
func (b *Builder) compileMirrored() (*Result, error) {
	defer b.Release()
	mr := b.mirror
	m := b.mirrorMaker()
	log := filepath.Join(mr.build, "build.log")
	mark := filepath.Join(mr.build, building)
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		return nil, fmt.Errorf("marking the mirror's build: %w", err)
	}
	steps, err := m.compile(log)
	b.res.Steps = steps
	if ctx := b.req.Ctx; ctx == nil || ctx.Err() == nil {
		// make ended by itself: a recipe that failed had its target
		// deleted (.DELETE_ON_ERROR). A killed make leaves the mark.
		_ = os.Remove(mark)
	}
	if err != nil {
		var be *Error
		if errors.As(err, &be) && keepLog(be.Log, b.res.Dir) == nil {
			be.Log = b.res.Log
		}
		return nil, err
	}
	final, err := os.Open(filepath.Join(mr.build, ".config"))
	if err != nil {
		return nil, fmt.Errorf("reading final .config: %w", err)
	}
	err = b.req.Fragments.Check(final, mr.src)
	final.Close()
	if err != nil {
		// A changed Kconfig dropped a requested symbol: configure
		// afresh next time, and say what is missing now.
		_ = os.Remove(filepath.Join(mr.build, configStamp))
		if keepLog(log, b.res.Dir) == nil {
			log = b.res.Log
		}
		return nil, &ConfigError{Err: err, Log: log}
	}
	if err := publish(mr.build, mr.src, b.res.Dir, b.req.mach().Image, b.req.Tree); err != nil {
		return nil, err
	}
	if err := cache.MarkDone(b.res.Dir); err != nil {
		return nil, err
	}
	return b.res, b.res.fill()
}

// Release lets go of the mirror's lock (Compile does, and a caller that
// stops after Configure must).
func (b *Builder) Release() {
	if b.mirror != nil && b.mirror.unlock != nil {
		b.mirror.unlock()
		b.mirror.unlock = nil
	}
}

// published are the files of a build directory a finished build is used
// through: booting (the image), decoding splats and gdb (vmlinux, its
// scripts), reports (.config, the release, the log).
var published = []string{"vmlinux", "System.map", ".config", "include/config/kernel.release", "build.log", "vmlinux-gdb.py", "scripts/gdb"}

// publish copies a mirrored build's files into the content-keyed
// directory dst, with a "source" link to the content-keyed tree, as a
// build of its own there would have. Symlinks into the mirror's source
// (the gdb scripts) point into that tree instead, which has the same
// files and does not change; the mirror's source path, which vmlinux's
// debug information names, is recorded in MirrorSource.
func publish(from, mirrorSrc, dst, image string, tree *source.Tree) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("publishing the build: %w", err)
	}
	retarget := func(to string) string {
		if rel, err := filepath.Rel(mirrorSrc, to); err == nil && filepath.IsAbs(to) && rel != ".." && !strings.HasPrefix(rel, "../") {
			return filepath.Join(tree.Dir, rel)
		}
		return to
	}
	for _, rel := range append([]string{image}, published...) {
		if err := copyAll(filepath.Join(from, rel), filepath.Join(dst, rel), retarget); err != nil {
			return fmt.Errorf("publishing the build: %w", err)
		}
	}
	link := filepath.Join(dst, "source")
	_ = os.Remove(link)
	if err := os.Symlink(tree.Dir, link); err != nil {
		return fmt.Errorf("publishing the build: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dst, MirrorSource), []byte(mirrorSrc+"\n"), 0o644); err != nil {
		return fmt.Errorf("publishing the build: %w", err)
	}
	return nil
}

// copyAll copies a file, a symlink (as a symlink, its target passed
// through retarget) or a directory tree, replacing what is there (never
// writing through it); what does not exist is left out.
func copyAll(src, dst string, retarget func(string) string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == src {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			to, err := os.Readlink(path)
			if err != nil {
				return err
			}
			_ = os.Remove(target)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.Symlink(retarget(to), target)
		case d.Type().IsRegular():
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			// A symlink or a hard link left there must not be
			// written through.
			if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return fsutil.CopyFile(path, target)
		}
		return nil
	})
}
