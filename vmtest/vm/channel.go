package vm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
)

// frame is one line of the result channel, as hugelgupf/vmtest's guest
// emitter writes it: an action and, for events, the payload.
type frame struct {
	Action string          `json:"hugelgupf_vmtest_guest_action"`
	Actual json.RawMessage `json:",omitempty"`
}

const (
	actionEvent = "guestevent"
	actionDone  = "done"
)

// readEvents reads result-channel frames from r until EOF, calling onEvent
// for each event and onDone for the "done" marker. Lines that are not
// frames (noise on a serial line) are skipped; a malformed event is an
// error. The pty's EIO after the guest closed it is the end of the stream.
func readEvents(r io.Reader, onEvent func(event.Event), onDone func()) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var f frame
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			continue
		}
		switch f.Action {
		case actionEvent:
			var ev event.Event
			if err := json.Unmarshal(f.Actual, &ev); err != nil {
				return fmt.Errorf("malformed result event %s: %w", line, err)
			}
			onEvent(ev)
		case actionDone:
			onDone()
		}
	}
	err := sc.Err()
	var pe *os.PathError
	if errors.As(err, &pe) && errors.Is(pe.Err, syscall.EIO) {
		return nil
	}
	return err
}
