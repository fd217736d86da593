package bisect

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
)

// bisect-step reads the run's options back from the state file git
// bisect run hands it: every field a step needs survives the trip, and
// the in-process ones (callbacks, writers, exec's pack) do not stop it.
func TestGitStateRoundTrips(t *testing.T) {
	st := gitState{
		Run: pipeline.Options{
			Repo: "/repo", Series: "/s/series", Tests: []string{"./tests/smoke"}, Run: "^TestX$",
			Cmdline: []string{"lsm=landlock"}, Timeout: 3 * time.Minute, Debug: true,
			ExtraConfigs: []string{"a.config"}, KUnit: "",
			Exec:    &initramfs.Pack{},
			OnEvent: func(event.Event) bool { return false },
			Stdout:  os.Stdout,
		},
		Series: "/s/series", Split: "/o/series", Test: "^TestX$", Runs: 2,
		Src: "/c/src", Build: "/c/build", Steps: "/o/steps",
	}
	js, err := json.Marshal(st)
	require.NoError(t, err)
	var back gitState
	require.NoError(t, json.Unmarshal(js, &back))
	want := st
	want.Run.Exec, want.Run.OnEvent, want.Run.Stdout = nil, nil, nil
	assert.Equal(t, want, back)
}
