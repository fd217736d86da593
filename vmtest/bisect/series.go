package bisect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/step"
)

// Series finds the first patch of the series at which the test fails:
// it checks that the test fails with the whole series and does not fail
// on the base tree, then bisects the prefixes in between. Exit codes: 0
// when the culprit was found, TestsFailed when the ends do not differ as
// they must, Infra when a step stopped the bisection.
func Series(ctx context.Context, o Options) (*Report, exitcode.Code) {
	w := o.Stdout
	rep := &Report{Mode: "series", Test: o.Test, Runs: o.Runs}
	re, code := setup(&o, rep)
	if code != exitcode.OK {
		return rep, code
	}
	env, err := step.Setup(o.Run, o.Series, filepath.Join(o.Run.Out, "series"), "bisect", w)
	if err != nil {
		rep.Message = err.Error()
		fmt.Fprintf(w, "bisect: %v\n", err)
		return rep, exitcode.Of(err)
	}
	defer env.Close()
	n := len(env.Series.Patches)
	if n == 0 {
		rep.Message = "the series is empty"
		fmt.Fprintln(w, "bisect: the series is empty (SERIES=)")
		return rep, exitcode.Usage
	}
	t := &tester{env: env, test: re, runs: o.Runs, log: w}
	results := map[int]*StepResult{}
	at := func(k int) *StepResult {
		if r, ok := results[k]; ok {
			return r
		}
		label := "base tree"
		if k > 0 {
			p := env.Series.Patches[k-1]
			label = fmt.Sprintf("patch %d %s", k, p.Subject)
		}
		dir := filepath.Join(o.Run.Out, "steps", fmt.Sprintf("%02d", k))
		var r *StepResult
		if err := env.WT.ApplyN(env.Series, k); err != nil {
			r = &StepResult{Step: strconv.Itoa(k), Label: label, Out: dir, Runs: []Run{{Code: exitcode.Of(err)}}}
			r.Verdict = Decide(r.Runs)
			fmt.Fprintf(w, "<== step %d: %s (%v)\n", k, r.Verdict.Name, err)
		} else {
			r = t.run(ctx, strconv.Itoa(k), label, dir)
		}
		results[k] = r
		rep.Steps = append(rep.Steps, r)
		return r
	}
	end := func(code exitcode.Code, msg string) (*Report, exitcode.Code) {
		rep.Message = msg
		if err := os.MkdirAll(o.Run.Out, 0o755); err == nil {
			if err := finish(rep, o.Run.Out, w); err != nil {
				fmt.Fprintln(w, err)
				return rep, exitcode.Infra
			}
		}
		return rep, code
	}

	last := at(n)
	switch last.Verdict.Decision {
	case Stop:
		return end(exitcode.Infra, "stopped: "+last.Verdict.Why)
	case Skip:
		return end(exitcode.TestsFailed, fmt.Sprintf("cannot start: the whole series cannot tell (%s)", last.Verdict.Why))
	case Good:
		return end(exitcode.TestsFailed, fmt.Sprintf("nothing to bisect: %q does not fail with the whole series (%s)", o.Test, last.Verdict.Why))
	}
	first := at(0)
	switch first.Verdict.Decision {
	case Stop:
		return end(exitcode.Infra, "stopped: "+first.Verdict.Why)
	case Bad:
		return end(exitcode.TestsFailed, fmt.Sprintf("%q already fails on the base tree: the series did not break it", o.Test))
	case Skip:
		return end(exitcode.TestsFailed, fmt.Sprintf("the base tree cannot tell (%s)", first.Verdict.Why))
	}
	good, bad := 0, n
	skipped := map[int]bool{}
	for {
		k, ok := Next(good, bad, skipped)
		if !ok {
			break
		}
		r := at(k)
		switch r.Verdict.Decision {
		case Stop:
			return end(exitcode.Infra, fmt.Sprintf("stopped at step %d: %s", k, r.Verdict.Why))
		case Good:
			good = k
		case Bad:
			bad = k
		case Skip:
			skipped[k] = true
		}
	}
	culprit := results[bad]
	p := env.Series.Patches[bad-1]
	rep.Found = true
	rep.Culprit, rep.Subject = p.Name, p.Subject
	rep.AtCulprit = culprit
	rep.Before = results[good]
	if bad-good > 1 {
		for k := good + 1; k <= bad; k++ {
			rep.Candidates = append(rep.Candidates, env.Series.Patches[k-1].Name)
		}
		rep.Found = false
		rep.Confidence = confidence(culprit, rep.Before)
		return end(exitcode.TestsFailed, fmt.Sprintf("the first bad patch is one of %v: the ones before %s could not be tested", rep.Candidates, p.Name))
	}
	rep.Confidence = confidence(culprit, rep.Before)
	return end(exitcode.OK, fmt.Sprintf("the first bad patch is %d/%d %s: %s", bad, n, p.Name, p.Subject))
}

// setup checks the options shared by both modes.
func setup(o *Options, rep *Report) (*regexp.Regexp, exitcode.Code) {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Test == "" {
		rep.Message = "TEST= is required: a regexp naming the failing test"
		fmt.Fprintln(o.Stdout, "bisect: "+rep.Message)
		return nil, exitcode.Usage
	}
	re, err := regexp.Compile(o.Test)
	if err != nil {
		rep.Message = fmt.Sprintf("TEST=%q: %v", o.Test, err)
		fmt.Fprintln(o.Stdout, "bisect: "+rep.Message)
		return nil, exitcode.Usage
	}
	if o.Runs < 1 {
		o.Runs = 1
	}
	rep.Runs = o.Runs
	if err := os.MkdirAll(o.Run.Out, 0o755); err != nil {
		rep.Message = err.Error()
		return nil, exitcode.Infra
	}
	return re, exitcode.OK
}
