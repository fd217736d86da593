package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract"
	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// outputChunk is the most one output event carries (before base64): a
// command's output goes to the host as it comes, in reads of at most
// this.
const outputChunk = 32 << 10

// execJob is how the command of `landlock-vmtest exec` runs: with its own
// arguments, in its directory (made if the initramfs has nothing under
// it), its stdout and stderr sent apart as they come, killed at the
// timeout.
func (r *Runner) execJob(m *contract.Manifest, b contract.Binary) (job, error) {
	for _, d := range append([]string{b.Dir}, b.Dirs...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return job{}, fmt.Errorf("making the command's directories: %w", err)
		}
	}
	return job{
		args:  b.Args,
		limit: time.Duration(m.Timeout),
		what:  "command",
		conv:  &outputConverter{emit: r.Emit, pkg: b.Package},
	}, nil
}

// A splitter is a converter that reads the binary's stderr apart from its
// stdout: execute gives it a second pipe.
type splitter interface {
	converter
	// startStderr begins reading the binary's stderr from errOut, which
	// is the converter's from then on.
	startStderr(errOut *os.File) error
}

// outputConverter sends what a command writes as output events, each
// stream on its own, in the order the reads return.
type outputConverter struct {
	emit func(event.Event) error
	pkg  string

	wg    sync.WaitGroup
	files []*os.File
	mu    sync.Mutex // serialises emit and guards err
	err   error
}

func (c *outputConverter) start(out *os.File) error {
	c.read(out, event.Stdout)
	return nil
}

func (c *outputConverter) startStderr(errOut *os.File) error {
	c.read(errOut, event.Stderr)
	return nil
}

func (c *outputConverter) read(f *os.File, stream string) {
	c.files = append(c.files, f)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, outputChunk)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				c.send(stream, buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
}

func (c *outputConverter) send(stream string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = c.emit(event.Event{Kind: event.KindOutput, Time: time.Now(), Binary: c.pkg, Stream: stream, Data: append([]byte(nil), data...)})
}

func (c *outputConverter) drain(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		// Something that left the process group holds a pipe: stop
		// reading (a closed pipe ends the blocked read).
		for _, f := range c.files {
			f.Close()
		}
		<-done
	}
	for _, f := range c.files {
		f.Close()
	}
}

func (c *outputConverter) finish(*event.Exit) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// sendFiles sends back the files of paths the command wrote, each in
// KindFile chunks at its guest path; a file it did not write is not sent,
// one that cannot be read is a KindFile event with the error.
func (r *Runner) sendFiles(b contract.Binary, paths []string) error {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			if eerr := r.Emit(event.Event{Kind: event.KindFile, Time: time.Now(), Binary: b.Package, Chunk: &event.Chunk{Path: p}, Error: err.Error()}); eerr != nil {
				return eerr
			}
			continue
		}
		if err := sendChunks(event.KindFile, b.Package, p, data, r.Emit); err != nil {
			return err
		}
	}
	return nil
}

// sendChunks sends data as events of kind, ChunkSize bytes at most each,
// as the parts of the file at path.
func sendChunks(kind event.Kind, binary, path string, data []byte, emit func(event.Event) error) error {
	parts := max((len(data)+ChunkSize-1)/ChunkSize, 1)
	for i := range parts {
		lo, hi := i*ChunkSize, min((i+1)*ChunkSize, len(data))
		ev := event.Event{Kind: kind, Time: time.Now(), Binary: binary, Chunk: &event.Chunk{
			Path: path, Part: i, Parts: parts, Data: data[lo:hi],
		}}
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}
