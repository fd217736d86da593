package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// KmemleakFile is where a CONFIG_DEBUG_KMEMLEAK kernel takes its commands
// and lists the objects it suspects of being leaked.
const KmemleakFile = debugfsDir + "/kmemleak"

// kmemleakMinAge is how old an object must be before kmemleak reports it
// (MSECS_MIN_AGE in mm/kmemleak.c): the scan after the last binary waits
// that long after it, so that what it leaked at its end is old enough.
const kmemleakMinAge = 5 * time.Second

// forgetLeaks makes kmemleak forget what it suspects before the tests
// (what boot left: early allocations it cannot follow, the initramfs
// unpacking): one scan to find it, then "clear". It tells whether the
// kernel has kmemleak; any other problem is logged, and the tests run
// anyway.
func (in *Init) forgetLeaks() bool {
	if _, err := in.Sys.Kmemleak("scan"); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			in.log().Printf("kmemleak: %v", err)
		}
		return false
	}
	if _, err := in.Sys.Kmemleak("clear"); err != nil {
		in.log().Printf("kmemleak: %v", err)
	}
	return true
}

// reportLeaks scans for leaks once the test binaries have ended, twice
// (an object a register or a stack held during the first scan is seen
// referenced in the second), and sends what kmemleak suspects to the host
// in a KindKmemleak event naming the binaries that ran: kmemleak cannot
// say which of them leaked. It returns an error only when it could not
// emit; a scan that fails is logged, and sent as a KindError event.
func (in *Init) reportLeaks(binaries []string, ended time.Time, emit func(event.Event) error) error {
	if wait := kmemleakMinAge - time.Since(ended); wait > 0 {
		in.sleep(wait)
	}
	var text string
	var err error
	for _, cmd := range []string{"scan", "scan", ""} {
		if text, err = in.Sys.Kmemleak(cmd); err != nil {
			break
		}
	}
	if err != nil {
		msg := fmt.Sprintf("kmemleak: no scan after the tests: %v", err)
		in.log().Print(msg)
		return emit(event.Event{Kind: event.KindError, Time: time.Now(), Error: msg})
	}
	n := strings.Count(text, "unreferenced object ")
	fmt.Fprintf(in.console(), "landlock-vmtest: kmemleak: %d suspected leak(s) after %d test binar(ies)\n", n, len(binaries))
	if n == 0 {
		return nil
	}
	return emit(event.Event{Kind: event.KindKmemleak, Time: time.Now(), Text: text,
		Info: map[string]string{"binaries": strings.Join(binaries, " ")}})
}

// sleep is time.Sleep, or Init's Sleep in tests.
func (in *Init) sleep(d time.Duration) {
	if in.Sleep != nil {
		in.Sleep(d)
		return
	}
	time.Sleep(d)
}
