package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/kselftest"
)

// GuestRequest says what goes into the initramfs: the part of a boot that
// does not depend on the kernel, so that a run can prepare it while the
// kernel builds.
type GuestRequest struct {
	// Repo is this repository's root.
	Repo    string
	Cache   *cache.Cache
	Machine machine.Machine
	// Tests are the Go test packages (patterns, import paths,
	// directories); Run and Count go to every Go test binary; Retry
	// reruns each failed top-level Go test up to that many times.
	Tests []string
	Run   string
	Count int
	Retry int
	// Kselftests are the directories of Tree's selftests to build and
	// run; Tree is needed only with them.
	Kselftests []string
	Tree       *source.Tree
	Jobs       int
	// Shell asks for the base image with the shell's tools.
	Shell bool
	// Flavour is the kernel flavour ("debug", "" for the normal one),
	// given to the test binaries as contract.FlavourEnv.
	Flavour string
	// Exec, when set, is the one command the guest runs instead of the
	// tests (landlock-vmtest exec), with the host files it needs; the
	// base image is the shell's, whose tools the command may call.
	Exec *initramfs.Pack
}

// Guest is an initramfs being prepared: the base image and the compiled
// test binaries. Wait for it with Ready; Close removes its work files.
type Guest struct {
	ch   chan guestImage
	once bool
	img  guestImage
}

type guestImage struct {
	base     string
	built    bool
	manifest *contract.Manifest
	files    map[string]string
	work     string
	flavour  string
	took     time.Duration
	err      error
}

// Prepare starts preparing the initramfs of req in the background.
func Prepare(ctx context.Context, req GuestRequest) *Guest {
	g := &Guest{ch: make(chan guestImage, 1)}
	go func() {
		start := time.Now()
		img := prepare(ctx, req)
		img.took = time.Since(start)
		g.ch <- img
	}()
	return g
}

// ready waits for the preparation to end. Only the boot's goroutine calls
// it.
func (g *Guest) ready() guestImage {
	if !g.once {
		g.img, g.once = <-g.ch, true
	}
	return g.img
}

// Close waits for the preparation and removes its work directory.
func (g *Guest) Close() {
	if img := g.ready(); img.work != "" {
		os.RemoveAll(img.work)
	}
}

func fail(code exitcode.Code, err error) error {
	return &exitcode.StageError{Stage: "initramfs", Code: code, Err: err}
}

func prepare(ctx context.Context, req GuestRequest) guestImage {
	img := guestImage{flavour: req.Flavour}
	img.base, img.built, img.err = initramfs.Base(req.Cache, req.Repo, req.Machine.GOARCH, req.Shell || req.Exec != nil)
	if img.err != nil {
		img.err = fail(exitcode.Infra, img.err)
		return img
	}
	if req.Exec != nil {
		img.manifest, img.files = &contract.Manifest{Binaries: []contract.Binary{req.Exec.Binary}}, req.Exec.Files
		if img.work, img.err = os.MkdirTemp("", "landlock-vmtest-exec-"); img.err != nil {
			img.err = fail(exitcode.Infra, img.err)
		}
		return img
	}
	pkgs, err := initramfs.ListTestPackages(req.Repo, req.Tests)
	if err != nil {
		img.err = fail(exitcode.TestsFailed, err)
		return img
	}
	img.work, err = os.MkdirTemp("", "landlock-vmtest-tests-")
	if err != nil {
		img.err = fail(exitcode.Infra, err)
		return img
	}
	var args []string
	if req.Run != "" {
		args = append(args, "-test.run="+req.Run)
	}
	if req.Count > 1 {
		args = append(args, "-test.count="+strconv.Itoa(req.Count))
	}
	img.manifest, img.files, err = initramfs.Tests(img.work, req.Machine.GOARCH, pkgs, contract.Manifest{Args: args, Run: req.Run, Retry: max(req.Retry, 0)})
	if err != nil {
		img.err = fail(exitcode.TestsFailed, err)
		return img
	}
	if len(req.Kselftests) > 0 {
		if req.Tree == nil {
			img.err = fail(exitcode.Infra, errors.New("kselftests: no source tree to build them from"))
			return img
		}
		ks, err := kselftest.Build(ctx, req.Cache, kselftest.Request{Tree: req.Tree.Dir, TreeKey: req.Tree.Key, Dirs: req.Kselftests, Jobs: req.Jobs, Machine: req.Machine})
		if err == nil {
			err = ks.Add(img.manifest, img.files)
		}
		var missing *kselftest.MissingDirError
		switch {
		case errors.As(err, &missing):
			img.err = fail(exitcode.Usage, err)
		case err != nil:
			img.err = fail(exitcode.TestsFailed, err)
		}
	}
	return img
}

// retries is the manifest's Retry, 0 before the manifest is made.
func (img guestImage) retries() int {
	if img.manifest == nil {
		return 0
	}
	return img.manifest.Retry
}

// command reports whether the image runs exec's command, not tests.
func (img guestImage) command() bool {
	return img.manifest != nil && img.manifest.HasCommand()
}

// finish writes the initramfs at initrd: the base image and the test
// layer, whose manifest carries what depends on the kernel and the
// accelerator (the per-binary timeout, the kernel release). It returns
// the stage note and the number of test binaries.
func (img guestImage) finish(initrd, release string, timeout time.Duration, coverage bool) (string, int, error) {
	if img.err != nil {
		return "", 0, img.err
	}
	m := img.manifest
	m.Timeout = contract.Duration(timeout)
	m.Env = map[string]string{contract.ReleaseEnv: release}
	if img.flavour != "" {
		m.Env[contract.FlavourEnv] = img.flavour
	}
	m.Coverage = coverage
	layer := filepath.Join(img.work, "tests.cpio")
	if err := initramfs.WriteTests(layer, m, img.files); err != nil {
		return "", 0, fail(exitcode.Infra, err)
	}
	if err := initramfs.Concat(initrd, img.base, layer); err != nil {
		return "", 0, fail(exitcode.Infra, err)
	}
	how := "base cached"
	if img.built {
		how = "base built"
	}
	what := fmt.Sprintf("%d test binaries (Go and kselftest)", len(m.Binaries))
	if img.command() {
		what = fmt.Sprintf("the command and %d host file(s)", len(img.files))
	}
	return fmt.Sprintf("%s, %s; prepared alongside the kernel in %.1fs", how, what, img.took.Seconds()), len(m.Binaries), nil
}
