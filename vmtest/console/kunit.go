package console

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/contract/event"
	"github.com/landlock-vmtest/landlock-vmtest/initramfs/guest/ktap"
)

// KUnit picks out of the console the KTAP that KUnit's executor prints
// while the kernel boots (lib/kunit/executor.c: "KTAP version 1", the plan
// of suites, each suite a nested block, "ok N suite") and turns it, through
// package ktap as a kselftest binary's output, into the events of a test
// binary: binary-start at the first "KTAP version" line, each suite a
// test, running from its "# Subtest:" line, and each of its cases a
// subtest ("landlock_fs/test_no_more_access"), binary-end once the plan's
// last suite has its result. So the suites land in the same report, JUnit
// file and closing line as the guest's tests, and a splat during a suite
// is that suite's (KUnit announces no case before its result, so the
// suite is the finest the console tells).
//
// Only the kernel's lines count (those with a printk timestamp, once one
// has been seen); a line of another part of the kernel printed in the
// middle of the KTAP becomes output of the running case. Its methods are
// safe to call from several goroutines.
type KUnit struct {
	pkg  string
	glob string
	emit func(event.Event)
	// base is the host's time at the kernel's printk time 0: each event
	// is timed by its line's stamp, so a case's elapsed time is the
	// kernel's.
	base time.Time

	mu      sync.Mutex
	stamped bool
	state   kunitState
	now     time.Time // the current line's time
	began   time.Time // the first KTAP line's
	conv    *ktap.Converter
	planned int // top-level plan, -1 before it
	results int // top-level results
	failed  bool
}

type kunitState int

const (
	kunitWaiting kunitState = iota
	kunitRunning
	kunitDone
)

var (
	kunitVersionRe = regexp.MustCompile(`^K?TAP version \d+$`)
	kunitPlanRe    = regexp.MustCompile(`^1\.\.(\d+)`)
	kunitResultRe  = regexp.MustCompile(`^(not ok|ok) \d+`)
	kunitStampRe   = regexp.MustCompile(`^(?:<\d+>)?\[\s*(\d+\.\d+)\]`)
)

// NewKUnit returns a KUnit that reports the suites under package pkg,
// expecting those that glob (KUNIT=) names, and sends their events to emit.
// start is when the VM started: the kernel's printk clock counts from
// about then.
func NewKUnit(pkg, glob string, start time.Time, emit func(event.Event)) *KUnit {
	return &KUnit{pkg: pkg, glob: glob, emit: emit, base: start, planned: -1}
}

// Feed consumes one console line.
func (k *KUnit) Feed(s string) {
	l := splitLine(s)
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.stamped {
		k.stamped = true
		if m := kunitStampRe.FindStringSubmatch(l.raw); m != nil {
			if sec, err := strconv.ParseFloat(m[1], 64); err == nil {
				k.now = k.base.Add(time.Duration(sec * float64(time.Second)))
			}
		}
	} else if k.stamped {
		return // user space's, not the kernel's
	} else {
		// No printk timestamps: the host's clock.
		k.now = time.Now()
	}
	body := strings.TrimRight(l.body, " \t")
	top := body == strings.TrimLeft(body, " \t")
	switch k.state {
	case kunitWaiting:
		if !top || !kunitVersionRe.MatchString(body) {
			return
		}
		k.state = kunitRunning
		k.began = k.now
		k.send(event.Event{Kind: event.KindBinaryStart})
		k.conv = ktap.New(k.pkg, func(te event.TestEvent) error {
			if te.Action == "fail" && te.Test != "" {
				k.failed = true
			}
			k.send(event.Event{Kind: event.KindTest, Test: &te})
			return nil
		}, func() time.Time { return k.now })
	case kunitDone:
		return
	}
	_ = k.conv.Line(body)
	if !top {
		return
	}
	switch {
	case k.planned < 0 && kunitPlanRe.MatchString(body):
		k.planned, _ = strconv.Atoi(kunitPlanRe.FindStringSubmatch(body)[1])
		if k.planned == 0 {
			k.missing(fmt.Sprintf("KUnit ran no suite: none built into this kernel matches KUNIT=%s (kunit.filter_glob); set the suite's CONFIG_ symbol with CONFIG=", k.glob))
			k.end("")
		}
	case kunitResultRe.MatchString(body):
		k.results++
		if k.planned >= 0 && k.results >= k.planned {
			k.end("")
		}
	}
}

// End closes the stream once the console has ended. reachedUser tells
// whether the kernel got as far as starting the guest's runner, after the
// boot-time suites: a kernel that did, with no KTAP or with an unfinished
// plan, gets a failed kunit package saying so. One that did not has its
// boot failure reported already; its suites that never ended are
// unfinished.
func (k *KUnit) End(reachedUser bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch k.state {
	case kunitWaiting:
		if !reachedUser {
			return
		}
		k.now = time.Now()
		k.send(event.Event{Kind: event.KindBinaryStart})
		k.missing(fmt.Sprintf("no KUnit output (KTAP) on the console before the guest's runner started, with KUNIT=%s: the kernel lacks CONFIG_KUNIT=y, or kunit.enable=0 was given", k.glob))
		k.send(event.Event{Kind: event.KindTest, Test: &event.TestEvent{Action: "fail", Package: k.pkg, Time: k.now}})
		k.send(event.Event{Kind: event.KindBinaryEnd, Exit: &event.Exit{Code: 1}})
		k.state = kunitDone
	case kunitRunning:
		if reachedUser {
			k.end(fmt.Sprintf("the KTAP ended after %d of the %d suite(s) it announced", k.results, k.planned))
			return
		}
		// The kernel died in a suite: what ran is reported, the suite
		// that was running is unfinished, as a crashed binary's test.
		_ = k.conv.Flush()
		k.state = kunitDone
	}
}

// missing reports the suites KUNIT asked for as one failed test, named
// by the glob, that says why none ran.
func (k *KUnit) missing(why string) {
	k.failed = true
	for _, te := range []event.TestEvent{
		{Action: "run", Test: k.glob},
		{Action: "output", Test: k.glob, Output: why + "\n"},
		{Action: "fail", Test: k.glob},
	} {
		te.Package, te.Time = k.pkg, k.now
		k.send(event.Event{Kind: event.KindTest, Test: &te})
	}
}

// end finishes the binary; why, when set, is an error of the binary's.
func (k *KUnit) end(why string) {
	k.state = kunitDone
	if why != "" {
		k.send(event.Event{Kind: event.KindError, Error: why})
	}
	sum, _ := k.conv.End()
	code := 0
	if why != "" || k.failed || sum.Failed > 0 {
		code = 1
	}
	k.send(event.Event{Kind: event.KindBinaryEnd, Exit: &event.Exit{Code: code, Seconds: k.now.Sub(k.began).Seconds()}})
}

func (k *KUnit) send(ev event.Event) {
	ev.Binary = k.pkg
	if ev.Time.IsZero() {
		ev.Time = k.now
	}
	k.emit(ev)
}
