package guest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// GcovDir is where a CONFIG_GCOV_KERNEL kernel shows its counters.
const GcovDir = "/sys/kernel/debug/gcov"

// ChunkSize is the most a coverage event carries (before base64).
const ChunkSize = 48 << 10

// SendCoverage reads every .gcda file under dir and emits it in
// KindCoverage events of at most ChunkSize bytes, with its path relative
// to dir. A file that cannot be read, or no file at all, is reported in a
// KindCoverage event's Error, so the host knows the counters are
// incomplete. It returns the number of files sent and an error only when
// it could not emit.
func SendCoverage(dir string, emit func(event.Event) error) (int, error) {
	var (
		files    []string
		problems []string
	)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, err.Error())
			return nil
		}
		// The .gcno entries are symbolic links to the build directory.
		if d.Type().IsRegular() && strings.HasSuffix(p, ".gcda") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		problems = append(problems, err.Error())
	}
	sort.Strings(files)
	sent := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			problems = append(problems, fmt.Sprintf("reading %s: %v", f, err))
			continue
		}
		rel, err := filepath.Rel(dir, f)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if err := sendChunks(event.KindCoverage, "", filepath.ToSlash(rel), data, emit); err != nil {
			return sent, err
		}
		sent++
	}
	if sent == 0 {
		problems = append(problems, fmt.Sprintf("no .gcda file under %s", dir))
	}
	for _, p := range problems {
		if err := emit(event.Event{Kind: event.KindCoverage, Time: time.Now(), Error: p}); err != nil {
			return sent, err
		}
	}
	return sent, nil
}
