// Package guestcmd is `landlock-vmtest exec [flags] -- CMD [ARGS]`: one
// command run in the guest of the cached kernel (built if need be), with
// the host files it names packed in, its output streamed to the host's
// stdout and stderr as it comes, and its exit status made the harness's.
// `go test -exec 'landlock-vmtest exec --'` runs a package's test binary
// that way, in the package's directory with its testdata/.
package guestcmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/exitcode"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs"
	"github.com/landlock-vmtest/landlock-vmtest/machine"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
)

// Options are one exec.
type Options struct {
	// Run are the run's knobs; Run.Out gets the run's files and its log
	// (exec.log), and Run.Stdout is not used.
	Run pipeline.Options
	// Name and Args are the command; Dir is the working directory on the
	// host, which the command gets in the guest too.
	Name string
	Args []string
	Dir  string
	// Stdout and Stderr receive the command's streams; the harness's own
	// messages go to Stderr, its stage lines to the log (and to Stderr
	// too with Run.Verbose).
	Stdout, Stderr io.Writer
}

// NotFound is the exit status of a command the guest could not start, as
// a shell has it.
const NotFound = 127

// timeoutGrace is how long after a Go test binary's own -test.timeout the
// guest kills it, when TIMEOUT= does not say: Go's timeout panic, with the
// goroutines' stacks, comes first.
const timeoutGrace = 30 * time.Second

// Exec runs the command and returns the exit status to leave with: the
// command's when it ran and the kernel stayed well (128+N when signal N
// killed it, NotFound when it could not start, exitcode.TestCrashed when
// it ran past its timeout), else the harness's code of what went wrong
// (boot, build, a kernel splat, infrastructure).
func Exec(ctx context.Context, o Options) int {
	msg := func(format string, args ...any) {
		fmt.Fprintf(o.Stderr, "landlock-vmtest exec: "+format+"\n", args...)
	}
	m := o.Run.Mach()
	pack, err := initramfs.PackCommand(initramfs.Command{Name: o.Name, Args: o.Args, Dir: o.Dir, LibDirs: LibDirs(m)})
	if err != nil {
		msg("%v", err)
		return int(exitcode.Usage)
	}
	if o.Run.Timeout == 0 {
		o.Run.Timeout = testTimeout(o.Args)
	}
	if err := os.MkdirAll(o.Run.Out, 0o755); err != nil {
		msg("%v", err)
		return int(exitcode.Infra)
	}
	// go test -exec runs packages side by side (-p): each exec has OUT
	// (its initramfs, kernel copy, console log) to itself, the others
	// wait, and one VM runs at a time.
	lock, err := os.OpenFile(filepath.Join(o.Run.Out, ".exec.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		msg("%v", err)
		return int(exitcode.Infra)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		msg("locking %s: %v", o.Run.Out, err)
		return int(exitcode.Infra)
	}
	logPath := filepath.Join(o.Run.Out, "exec.log")
	logf, err := os.Create(logPath)
	if err != nil {
		msg("%v", err)
		return int(exitcode.Infra)
	}
	defer logf.Close()
	var log io.Writer = logf
	if o.Run.Verbose {
		log = io.MultiWriter(logf, o.Stderr)
	}
	for _, n := range pack.Notes {
		fmt.Fprintln(log, n)
	}

	s := &stream{stdout: o.Stdout, stderr: o.Stderr, collect: pack.Binary.Collect, files: map[string][]byte{}}
	o.Run.Exec, o.Run.OnEvent, o.Run.Stdout = pack, s.event, log
	res := pipeline.New(o.Run).Execute(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.problems {
		msg("%s", p)
	}
	for _, e := range s.errors {
		msg("%s", e)
	}
	if res.Code != exitcode.OK || s.exit == nil {
		why := res.Reason
		if res.Code == exitcode.OK {
			res.Code, why = exitcode.Infra, "the guest never said how the command ended"
		}
		msg("%s (exit %d: %s); the run's log is %s, the console %s", why, res.Code, res.Code, logPath, filepath.Join(o.Run.Out, "console.log"))
		return int(res.Code)
	}
	return s.status(msg)
}

// LibDirs are the directories where the shared libraries of a dynamic
// executable for m are found on this host: the cross libraries of another
// architecture, the native ones of this one.
func LibDirs(m machine.Machine) []string {
	multiarch := filepath.Base(m.LibDir)
	return []string{
		"/usr/" + multiarch + "/lib", // Debian's libc6-<arch>-cross
		m.LibDir, "/lib/" + multiarch, "/lib64", "/usr/lib64", "/lib", "/usr/lib",
	}
}

// testTimeout is how long a Go test binary may run in the guest when its
// -test.timeout says (and TIMEOUT= does not): that and timeoutGrace;
// zero, the harness's default, otherwise.
func testTimeout(args []string) time.Duration {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "-test.timeout="); ok {
			d, err := time.ParseDuration(v)
			switch {
			case err != nil:
			case d == 0:
				// No limit for the binary: none short of a day.
				return 24 * time.Hour
			default:
				return d + timeoutGrace
			}
		}
	}
	return 0
}

// stream takes exec's events off the result channel as they come: the
// command's output, the files it wrote that come back, how it ended.
type stream struct {
	stdout, stderr io.Writer
	collect        []string

	mu       sync.Mutex
	files    map[string][]byte
	exit     *event.Exit
	errors   []string
	problems []string
}

func (s *stream) event(ev event.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch ev.Kind {
	case event.KindOutput:
		w := s.stdout
		if ev.Stream == event.Stderr {
			w = s.stderr
		}
		_, _ = w.Write(ev.Data)
		return true
	case event.KindFile:
		s.file(ev)
		return true
	case event.KindBinaryEnd:
		if ev.Exit != nil {
			e := *ev.Exit
			s.exit = &e
		}
	case event.KindError:
		s.errors = append(s.errors, ev.Error)
	}
	return false
}

// file keeps one chunk of a file the command wrote; the last writes it at
// its path on the host, which must be one the command's flags named.
func (s *stream) file(ev event.Event) {
	c := ev.Chunk
	switch {
	case c == nil:
		return
	case !slices.Contains(s.collect, c.Path):
		s.problems = append(s.problems, fmt.Sprintf("the guest sent back %s, which the command's flags do not name: not written", c.Path))
		return
	case ev.Error != "":
		s.problems = append(s.problems, fmt.Sprintf("%s could not be read in the guest: %s", c.Path, ev.Error))
		return
	}
	s.files[c.Path] = append(s.files[c.Path], c.Data...)
	if c.Part == c.Parts-1 {
		if err := os.WriteFile(c.Path, s.files[c.Path], 0o644); err != nil {
			s.problems = append(s.problems, fmt.Sprintf("writing %s back: %v", c.Path, err))
		}
		delete(s.files, c.Path)
	}
}

// status is the exit status of the command as it ended.
func (s *stream) status(msg func(string, ...any)) int {
	e := s.exit
	switch {
	case e.TimedOut:
		msg("the command ran past its timeout and was killed after %.1fs (TIMEOUT= sets it; a Go test binary's -test.timeout does when TIMEOUT= is unset)", e.Seconds)
		return int(exitcode.TestCrashed)
	case e.Signal != "":
		if n, ok := signalNumber(e.Signal); ok {
			return 128 + n
		}
		msg("the command was killed by signal %s", e.Signal)
		return int(exitcode.TestCrashed)
	case e.Code < 0:
		return NotFound
	}
	return e.Code
}

// signalNumber is the number of the signal the guest named as Go's
// syscall.Signal.String does ("killed", "segmentation fault").
func signalNumber(name string) (int, bool) {
	for n := 1; n < 65; n++ {
		if syscall.Signal(n).String() == name {
			return n, true
		}
	}
	return 0, false
}
