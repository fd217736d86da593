package privdrop

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// keep changes nothing, so that the plumbing can be tested anywhere,
// without privileges.
var keep = Privs{UID: Keep, GID: Keep}

func TestRunPattern(t *testing.T) {
	for name, want := range map[string]string{
		"TestA":                `^TestA$`,
		"TestA/case":           `^TestA$/^case$`,
		"TestA/b/c":            `^TestA$/^b$/^c$`,
		"TestA/a_(b)|c[d]*.+?": `^TestA$/^a_\(b\)\|c\[d\]\*\.\+\?$`,
		"TestA/x#01":           `^TestA$/^x#01$`,
	} {
		assert.Equal(t, want, runPattern(name), name)
	}
}

func TestParseStatus(t *testing.T) {
	const status = "Name:\tx.test\nUmask:\t0022\nState:\tR (running)\n" +
		"Uid:\t0\t65534\t1\t2\nGid:\t3\t4\t5\t6\nGroups:\t10 20 \n" +
		"NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n" +
		"CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffdfffff\n" +
		"CapBnd:\t0000000000200000\nCapAmb:\t0000000000000001\n"
	s, err := parseStatus([]byte(status))
	require.NoError(t, err)
	assert.Equal(t, Status{
		UID: [4]int{0, 65534, 1, 2}, GID: [4]int{3, 4, 5, 6}, Groups: []int{10, 20},
		CapPrm: 0x1ffffffffff, CapEff: 0x1ffffdfffff, CapBnd: 1 << 21, CapAmb: 1,
		NoNewPrivs: true, Seccomp: 2,
	}, s)
	assert.False(t, s.HasEffective(unix.CAP_SYS_ADMIN))
	assert.True(t, s.HasEffective(unix.CAP_SETUID))
	assert.True(t, s.HasBounding(unix.CAP_SYS_ADMIN))
	assert.False(t, s.HasBounding(unix.CAP_SETUID))

	_, err = parseStatus([]byte("Uid:\t0\t0\t0\t0\n"))
	assert.ErrorContains(t, err, "no Gid field")
	_, err = parseStatus([]byte(strings.Replace(status, "Uid:\t0\t65534\t1\t2", "Uid:\t0\t1", 1)))
	assert.ErrorContains(t, err, "field Uid")
	_, err = parseStatus([]byte(strings.Replace(status, "000001ffffdfffff", "zz", 1)))
	assert.ErrorContains(t, err, "field CapEff")
}

func TestCurrent(t *testing.T) {
	s, err := Current()
	require.NoError(t, err)
	assert.Equal(t, os.Geteuid(), s.UID[1])
	assert.Equal(t, os.Getegid(), s.GID[1])
}

func TestPrivs(t *testing.T) {
	n := Nobody()
	assert.Equal(t, Privs{UID: 65534, GID: 65534, DropAllCaps: true}, n)
	assert.Equal(t, "uid=65534 gid=65534 caps=none", n.String())
	assert.Equal(t, "uid=65534 gid=65534 caps=none no_new_privs", n.WithNoNewPrivs().String())
	assert.False(t, n.NoNewPrivs, "WithNoNewPrivs must not change its receiver")

	r := RootWithout(unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN)
	assert.Equal(t, "uid=0 gid=keep drop-caps=21,12", r.String())
	rn := r.WithNoNewPrivs()
	rn.DropCaps[0] = 0
	assert.Equal(t, uintptr(unix.CAP_SYS_ADMIN), r.DropCaps[0], "WithNoNewPrivs must copy DropCaps")

	enc, err := json.Marshal(r)
	require.NoError(t, err)
	var back Privs
	require.NoError(t, json.Unmarshal(enc, &back))
	assert.Equal(t, r, back)
}

func TestValidateAndDropMask(t *testing.T) {
	assert.NoError(t, Nobody().validate())
	assert.ErrorContains(t, Privs{UID: -2, GID: Keep}.validate(), "invalid uid")
	assert.ErrorContains(t, Privs{UID: Keep, GID: -5}.validate(), "invalid gid")
	assert.ErrorContains(t, Privs{UID: Keep, GID: Keep, DropCaps: []uintptr{64}}.validate(), "invalid capability")

	m, err := Nobody().dropMask(40)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x1ffffffffff), m)
	m, err = Nobody().dropMask(63)
	require.NoError(t, err)
	assert.Equal(t, ^uint64(0), m)
	m, err = RootWithout(unix.CAP_SYS_ADMIN, 0).dropMask(40)
	require.NoError(t, err)
	assert.Equal(t, uint64(1<<21|1), m)
	m, err = keep.dropMask(40)
	require.NoError(t, err)
	assert.Zero(t, m)
	_, err = RootWithout(41).dropMask(40)
	assert.ErrorContains(t, err, "unknown to this kernel")
}

func TestCheck(t *testing.T) {
	root := Status{CapEff: 0x1ffffffffff, CapPrm: 0x1ffffffffff, CapBnd: 0x1ffffffffff, Groups: []int{0}}
	nobody := Status{UID: [4]int{65534, 65534, 65534, 65534}, GID: [4]int{65534, 65534, 65534, 65534}}
	assert.NoError(t, check(Nobody(), 0x1ffffffffff, root, nobody))

	bad := nobody
	bad.UID[2] = 0
	bad.CapBnd = 1 << 21
	bad.Groups = []int{0}
	err := check(Nobody().WithNoNewPrivs(), 0x1ffffffffff, root, bad)
	require.Error(t, err)
	for _, want := range []string{"Uid is [65534 65534 0 65534]", "CapBnd is 0000000000200000", "Groups is [0]", "NoNewPrivs is false, want true"} {
		assert.ErrorContains(t, err, want)
	}

	// Kept ids stay as they were; no_new_privs, once set, stays set.
	before := Status{UID: [4]int{7, 7, 7, 7}, NoNewPrivs: true}
	assert.NoError(t, check(keep, 0, before, before))
	after := before
	after.NoNewPrivs = false
	assert.ErrorContains(t, check(keep, 0, before, after), "NoNewPrivs is false, want true")
}

func TestVerdict(t *testing.T) {
	const name = "TestX/case"
	// A real exit status (there is no shell in the guest): this test
	// binary, given a flag it does not know, exits with status 2.
	exe, err := os.Executable()
	require.NoError(t, err)
	exit2 := exec.Command(exe, "-test.no-such-flag").Run()
	var ee *exec.ExitError
	require.ErrorAs(t, exit2, &ee)
	for _, tc := range []struct {
		desc, out string
		err       error
		want      Outcome
		wantErr   string
	}{
		{"pass", "=== RUN   TestX\n=== RUN   TestX/case\n--- PASS: TestX (0.00s)\n    --- PASS: TestX/case (0.00s)\nPASS\n", nil, Passed, ""},
		{"skip", "=== RUN   TestX/case\n    x_test.go:1: why\n--- SKIP: TestX/case (0.00s)\n--- PASS: TestX (0.00s)\nPASS\n", nil, Skipped, ""},
		{"fail", "--- FAIL: TestX/case (0.00s)\nFAIL\n", exit2, Failed, "exit status 2"},
		{"fail with status 0", "--- FAIL: TestX/case (0.00s)\n", nil, Failed, "exited with status 0"},
		{"not run", "testing: warning: no tests to run\nPASS\n", nil, Failed, "did not report test TestX/case"},
		{"other test only", "--- PASS: TestX/case2 (0.00s)\n--- PASS: TestX/cas (0.00s)\n", nil, Failed, "did not report"},
		{"cannot start", "", errors.New("fork/exec: no such file"), Failed, "running the child test binary"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			res := verdict(name, []byte(tc.out), tc.err)
			assert.Equal(t, tc.want, res.Outcome)
			assert.Equal(t, tc.out, res.Output)
			if tc.wantErr == "" {
				assert.NoError(t, res.Err)
			} else {
				assert.ErrorContains(t, res.Err, tc.wantErr)
			}
		})
	}
}

// The tests below re-execute this test binary.

func TestSpawnReportsTheChildsOutcome(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario func(t *testing.T)
		want     Outcome
		output   string
	}{
		{"passes", func(t *testing.T) { t.Log("scenario ran") }, Passed, "scenario ran"},
		{"fails", func(t *testing.T) { t.Error("intentional failure") }, Failed, "intentional failure"},
		{"skips", func(t *testing.T) { t.Skip("intentional skip") }, Skipped, "intentional skip"},
		{"panics", func(t *testing.T) { panic("intentional panic") }, Failed, "intentional panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Spawn(t, keep, tc.scenario)
			if res == nil {
				return // in the child
			}
			assert.Equal(t, tc.want, res.Outcome, res.Output)
			assert.Contains(t, res.Output, tc.output)
			assert.Contains(t, res.Output, "privileges dropped to uid=keep gid=keep")
		})
	}
}

func TestSpawnRunsOnlyItsTest(t *testing.T) {
	for _, name := range []string{"x", "xx", "a b(c)|d[e]/f"} {
		t.Run(name, func(t *testing.T) {
			res := Spawn(t, keep, func(t *testing.T) { t.Logf("scenario of %s", t.Name()) })
			if res == nil {
				return
			}
			require.Equal(t, Passed, res.Outcome, "%v\n%s", res.Err, res.Output)
			assert.Contains(t, res.Output, "scenario of "+t.Name())
			assert.Equal(t, 1, strings.Count(res.Output, "scenario of "), res.Output)
		})
	}
}

func TestRunPassesInTheParent(t *testing.T) {
	ran := Run(t, keep, func(t *testing.T) {
		if !InChild() {
			t.Error("scenario called in the parent")
		}
	})
	if !ran {
		return
	}
	assert.False(t, InChild())
}

func TestRunWithNoNewPrivs(t *testing.T) {
	// AllThreadsSyscall is refused in binaries that link cgo; probe it
	// with a harmless prctl.
	if _, _, errno := syscall.AllThreadsSyscall6(unix.SYS_PRCTL, unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0, 0); errno == syscall.ENOTSUP {
		t.Skip("syscall.AllThreadsSyscall is not supported in this binary (cgo)")
	}
	Run(t, keep.WithNoNewPrivs(), func(t *testing.T) {
		s, err := Current()
		require.NoError(t, err)
		assert.True(t, s.NoNewPrivs)
	})
}

func TestSpawnFailsWhenThePrivilegesCannotBeApplied(t *testing.T) {
	res := Spawn(t, Privs{UID: -2, GID: Keep}, func(t *testing.T) { t.Error("scenario ran") })
	if res == nil {
		return
	}
	assert.Equal(t, Failed, res.Outcome)
	assert.Contains(t, res.Output, "invalid uid -2")
	assert.NotContains(t, res.Output, "scenario ran")
}

func TestSpawnFailsWhenTheProcessesDisagree(t *testing.T) {
	// A test must call Run with the same privileges in both processes.
	p := keep
	p.NoNewPrivs = InChild()
	res := Spawn(t, p, func(t *testing.T) { t.Error("scenario ran") })
	if res == nil {
		return
	}
	assert.Equal(t, Failed, res.Outcome)
	assert.Contains(t, res.Output, "call Run the same way in both processes")
	assert.NotContains(t, res.Output, "scenario ran")
}
