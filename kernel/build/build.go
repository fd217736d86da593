// Package build configures and builds a kernel out of tree, in a build
// directory keyed by the content of the source, the series and the config;
// when a finished build has the same key, no make runs at all.
package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/source"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
)

// Base is the documented minimal base config the fragments are merged onto.
const Base = "tinyconfig"

// Request says what to build.
type Request struct {
	Tree      *source.Tree
	Fragments *kconfig.Fragments
	// Jobs is make's -j (default: the number of CPUs).
	Jobs int
	// Log receives progress lines (one every ProgressEvery).
	Log io.Writer
	// ProgressEvery is how often progress is reported (default 15 s).
	ProgressEvery time.Duration
	// Extra are extra make variables ("W=1").
	Extra []string
	// Ctx, when done, stops make and everything it started.
	Ctx context.Context
	// Machine is the architecture built for (the zero value is
	// machine.Default).
	Machine machine.Machine
}

// mach is the request's machine, machine.Default when none is set.
func (r Request) mach() machine.Machine { return machine.OrDefault(r.Machine) }

// Result is a finished build.
type Result struct {
	// Dir is the build directory (O=).
	Dir string
	// Key is the build's cache key.
	Key string
	// Image is the bootable image (the machine's Image: bzImage, Image).
	Image string
	// Config is the final .config.
	Config string
	// ConfigHash is the SHA-256 of the final .config.
	ConfigHash string
	// Release is the kernel release string (uname -r in the guest).
	Release string
	// Cached is true when the build was found done and make did not run.
	Cached bool
	// Log is the build log.
	Log string
	// Steps is how many kbuild steps (CC, LD, ...) the make that made
	// it ran: 0 for a cached build.
	Steps int
}

// ConfigError is returned when the config could not be produced as asked.
type ConfigError struct {
	Err error
	// Log is the config step's log.
	Log string
}

// ExitCode is ConfigFailed: the run exits with it.
func (e *ConfigError) ExitCode() exitcode.Code { return exitcode.ConfigFailed }

func (e *ConfigError) Error() string { return "kernel config: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Error is a failed kernel build.
type Error struct {
	// Log is the whole build log.
	Log string
	// Excerpt quotes the first errors of the log.
	Excerpt string
	Err     error
}

// ExitCode is BuildFailed: the run exits with it.
func (e *Error) ExitCode() exitcode.Code { return exitcode.BuildFailed }

func (e *Error) Error() string {
	return fmt.Sprintf("kernel build failed: %v (log: %s)\n%s", e.Err, e.Log, e.Excerpt)
}
func (e *Error) Unwrap() error { return e.Err }

// Key is the cache key of a build of req.
func Key(req Request) string {
	m := req.mach()
	parts := []string{"build-v1", req.Tree.Key, req.Fragments.Hash(), Base, m.Name, compilerVersion(m.CrossCompile + "gcc")}
	return cache.Key(append(parts, req.Extra...)...)
}

func compilerVersion(gcc string) string {
	out, err := exec.Command(gcc, "--version").Output()
	if err != nil {
		return "gcc?"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return first
}

// Builder builds one request in its cache directory.
type Builder struct {
	c   *cache.Cache
	req Request
	res *Result
	// incremental builds live in a directory the caller owns and are
	// never marked done: make decides what to rebuild.
	incremental bool
	// mirror, when set, is where a build not in the cache is made
	// (NewMirrored).
	mirror *mirrored
}

// NewIn prepares an incremental build of req in dir, a build directory the
// caller owns (and locks): nothing is looked up in or marked done in the
// cache, and make rebuilds only what changed since the last build there.
// The result's Key names dir and the final config.
func NewIn(c *cache.Cache, req Request, dir string) *Builder {
	return &Builder{c: c, req: req, incremental: true, res: &Result{
		Dir:    dir,
		Key:    cache.Key("incremental", dir),
		Image:  filepath.Join(dir, req.mach().Image),
		Config: filepath.Join(dir, ".config"),
		Log:    filepath.Join(dir, "build.log"),
	}}
}

// Make runs make in the build directory with extra variables and targets
// (for example W=1 and single objects), writing its output to logPath.
func (b *Builder) Make(logPath string, vars []string, targets ...string) error {
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating make log: %w", err)
	}
	defer log.Close()
	m := maker{c: b.c, req: b.req, dir: b.res.Dir}
	jobs := b.req.Jobs
	if jobs <= 0 {
		jobs = cpus()
	}
	args := append([]string{"-j" + strconv.Itoa(jobs)}, vars...)
	if err := m.command(log, append(args, targets...)...).Run(); err != nil {
		return &Error{Log: logPath, Excerpt: Excerpt(logPath, 30), Err: err}
	}
	return nil
}

// New prepares a build of req in the cache.
func New(c *cache.Cache, req Request) *Builder {
	key := Key(req)
	dir := c.Path("build", key)
	return &Builder{c: c, req: req, res: &Result{
		Dir:    dir,
		Key:    key,
		Image:  filepath.Join(dir, req.mach().Image),
		Config: filepath.Join(dir, ".config"),
		Log:    filepath.Join(dir, "build.log"),
	}}
}

// Lock waits for and takes the build directory's lock; call the returned
// function when done with Configure and Compile.
func (b *Builder) Lock() (func(), error) {
	return cache.Lock(b.res.Dir)
}

// Cached reports whether a finished build with the same key exists; then
// neither Configure nor Compile runs make.
func (b *Builder) Cached() bool { return !b.incremental && cache.Done(b.res.Dir) }

// Configure writes the .config (unless the build is cached).
func (b *Builder) Configure() error {
	if b.Cached() {
		return nil
	}
	if b.mirror != nil {
		return b.configureMirrored()
	}
	if err := os.MkdirAll(b.res.Dir, 0o755); err != nil {
		return fmt.Errorf("creating build directory: %w", err)
	}
	m := maker{c: b.c, req: b.req, dir: b.res.Dir}
	return m.configure()
}

// Compile builds the image (unless the build is cached) and returns the
// result.
func (b *Builder) Compile() (*Result, error) {
	if b.Cached() {
		b.res.Cached = true
		return b.res, b.res.fill()
	}
	if b.mirror != nil {
		return b.compileMirrored()
	}
	m := maker{c: b.c, req: b.req, dir: b.res.Dir}
	steps, err := m.compile(b.res.Log)
	b.res.Steps = steps
	if err != nil {
		return nil, err
	}
	if b.incremental {
		if err := b.res.fill(); err != nil {
			return nil, err
		}
		b.res.Key = cache.Key("incremental", b.res.Dir, b.res.ConfigHash, time.Now().String())
		return b.res, nil
	}
	if err := cache.MarkDone(b.res.Dir); err != nil {
		return nil, err
	}
	return b.res, b.res.fill()
}

// Build configures and compiles req in the cache, or returns the finished
// build with the same key.
func Build(c *cache.Cache, req Request) (*Result, error) {
	b := New(c, req)
	if err := b.Configure(); err != nil {
		return nil, err
	}
	return b.Compile()
}

func (r *Result) fill() error {
	if _, err := os.Stat(r.Image); err != nil {
		return fmt.Errorf("kernel image missing from finished build: %w", err)
	}
	rel, err := os.ReadFile(filepath.Join(r.Dir, "include/config/kernel.release"))
	if err != nil {
		return fmt.Errorf("reading kernel release: %w", err)
	}
	r.Release = strings.TrimSpace(string(rel))
	sum, err := cache.FileSHA256(r.Config)
	if err != nil {
		return err
	}
	r.ConfigHash = sum
	return nil
}

type maker struct {
	c   *cache.Cache
	req Request
	dir string
}

func (m *maker) command(log io.Writer, targets ...string) *exec.Cmd {
	mach := m.req.mach()
	args := append([]string{"-C", m.req.Tree.Dir, "O=" + m.dir}, mach.MakeArgs()...)
	if _, err := exec.LookPath("ccache"); err == nil {
		args = append(args, "CC=ccache "+mach.CrossCompile+"gcc", "HOSTCC=ccache gcc")
	}
	args = append(args, m.req.Extra...)
	args = append(args, targets...)
	ctx := m.req.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	cmd := exec.CommandContext(ctx, "make", args...)
	// make and its compilers form a process group, ended together when
	// the run is interrupted.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Env = append(os.Environ(),
		"CCACHE_DIR="+m.c.Path("ccache", ""),
		"CCACHE_BASEDIR="+m.req.Tree.Dir,
		"CCACHE_NOHASHDIR=1",
		"CCACHE_MAXSIZE=5G",
		"KBUILD_BUILD_TIMESTAMP=Thu Jan  1 00:00:00 UTC 1970",
		"KBUILD_BUILD_USER=landlock-vmtest",
		"KBUILD_BUILD_HOST=vmtest",
		"LC_ALL=C",
	)
	cmd.Stdout, cmd.Stderr = log, log
	return cmd
}

// configure writes .config: the base, then the merged fragments, then
// olddefconfig, then a check that every requested symbol stuck.
func (m *maker) configure() error {
	logPath := filepath.Join(m.dir, "config.log")
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating config log: %w", err)
	}
	defer log.Close()
	if err := m.command(log, Base).Run(); err != nil {
		return &ConfigError{Err: fmt.Errorf("make %s: %w (log: %s)", Base, err, logPath), Log: logPath}
	}
	cfg := filepath.Join(m.dir, ".config")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("opening .config: %w", err)
	}
	_, werr := f.WriteString("\n# landlock-vmtest fragments\n" + m.req.Fragments.Text())
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("writing .config: %w", werr)
	}
	if err := m.command(log, "olddefconfig").Run(); err != nil {
		return &ConfigError{Err: fmt.Errorf("make olddefconfig: %w (log: %s)", err, logPath), Log: logPath}
	}
	final, err := os.Open(cfg)
	if err != nil {
		return fmt.Errorf("reading final .config: %w", err)
	}
	defer final.Close()
	if err := m.req.Fragments.Check(final, m.req.Tree.Dir); err != nil {
		return &ConfigError{Err: err, Log: logPath}
	}
	return nil
}

// compile makes the machine's image, logging to logPath and reporting
// progress; it returns how many kbuild steps make ran.
func (m *maker) compile(logPath string) (int, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return 0, fmt.Errorf("creating build log: %w", err)
	}
	defer log.Close()
	jobs := m.req.Jobs
	if jobs <= 0 {
		jobs = cpus()
	}
	// The step count of a build from scratch is the estimate for the
	// next one; a build that resumes in a directory that already has a
	// vmlinux (a few objects to remake) neither uses nor sets it.
	_, err = os.Stat(filepath.Join(m.dir, "vmlinux"))
	scratch := errors.Is(err, fs.ErrNotExist)
	expected := 0
	if scratch {
		expected = m.expectedSteps()
	}
	pr, pw := io.Pipe()
	prog := newProgress(m.req.Log, expected, m.req.ProgressEvery)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		prog.consume(pr, log)
	}()
	cmd := m.command(pw, "-j"+strconv.Itoa(jobs), m.req.mach().ImageTarget)
	runErr := cmd.Run()
	pw.Close()
	wg.Wait()
	prog.stop()
	if runErr != nil {
		return prog.steps(), &Error{Log: logPath, Excerpt: Excerpt(logPath, 30), Err: runErr}
	}
	if scratch {
		m.rememberSteps(prog.steps())
	}
	return prog.steps(), nil
}

func (m *maker) stepsFile() string {
	if n := m.req.mach().Name; n != machine.Default {
		return m.c.Path("meta", "build-steps-"+n)
	}
	return m.c.Path("meta", "build-steps")
}

func (m *maker) expectedSteps() int {
	b, err := os.ReadFile(m.stepsFile())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (m *maker) rememberSteps(n int) {
	if err := os.MkdirAll(filepath.Dir(m.stepsFile()), 0o755); err == nil {
		_ = os.WriteFile(m.stepsFile(), []byte(strconv.Itoa(n)), 0o644)
	}
}

func cpus() int {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return 2
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n < 1 {
		return 2
	}
	return n
}

// kbuildStep matches kbuild's quiet command lines ("  CC      kernel/fork.o").
var kbuildStep = regexp.MustCompile(`^  ([A-Z][A-Z0-9_]*(?: \[[A-Z]\])?)\s+(\S+)`)

// progress counts kbuild steps and prints a line every so often, so a long
// build is never silent.
type progress struct {
	out      io.Writer
	expected int
	every    time.Duration
	start    time.Time

	mu    sync.Mutex
	n     int
	last  string
	done  chan struct{}
	wg    sync.WaitGroup
	ended bool
}

func newProgress(out io.Writer, expected int, every time.Duration) *progress {
	if every <= 0 {
		every = 15 * time.Second
	}
	p := &progress{out: out, expected: expected, every: every, start: time.Now(), done: make(chan struct{})}
	if out != nil {
		p.wg.Add(1)
		go p.tick()
	}
	return p
}

func (p *progress) tick() {
	defer p.wg.Done()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			fmt.Fprintln(p.out, p.line())
		}
	}
}

// line renders the current progress.
func (p *progress) line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	el := time.Since(p.start).Round(time.Second)
	if p.expected > 0 {
		pct := 100 * p.n / p.expected
		if pct > 99 {
			pct = 99
		}
		return fmt.Sprintf("  build: %d/~%d steps (%d%%), %s, at %s", p.n, p.expected, pct, el, p.last)
	}
	return fmt.Sprintf("  build: %d steps, %s, at %s", p.n, el, p.last)
}

// consume copies make's output to the log, whatever the length of its
// lines, and counts the kbuild steps in it.
func (p *progress) consume(r io.Reader, log io.Writer) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			_, _ = io.WriteString(log, line)
			if m := kbuildStep.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil {
				p.mu.Lock()
				p.n++
				p.last = m[1] + " " + m[2]
				p.mu.Unlock()
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *progress) steps() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *progress) stop() {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	p.ended = true
	p.mu.Unlock()
	close(p.done)
	p.wg.Wait()
}

// errorLine matches compiler and make error lines in a build log.
var errorLine = regexp.MustCompile(`(: error: |: fatal error: |undefined reference to|\*\*\* \[|Error [0-9]+)`)

// Excerpt quotes the first error of a build log with a little context,
// at most max lines.
func Excerpt(logPath string, max int) string {
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	first := -1
	for i, l := range lines {
		if errorLine.MatchString(l) {
			first = i
			break
		}
	}
	if first < 0 {
		if len(lines) > max {
			lines = lines[len(lines)-max:]
		}
		return strings.Join(lines, "\n")
	}
	before := 3
	if before > max-1 {
		before = max - 1
	}
	from := first - before
	if from < 0 {
		from = 0
	}
	to := from + max
	if to > len(lines) {
		to = len(lines)
	}
	return strings.Join(lines[from:to], "\n")
}
