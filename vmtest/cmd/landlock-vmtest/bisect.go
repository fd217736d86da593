package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/vmtest/bisect"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
)

// bisectFlags are the knobs only bisect has.
type bisectFlags struct {
	test, good, bad string
	runs            int
	// state is where bisect-step keeps a git bisection's shared state.
	state string
	// noSeries leaves the series off in git mode (SERIES=none).
	noSeries bool
}

func (b *bisectFlags) register(fs *flag.FlagSet) {
	runs := 1
	if v := os.Getenv("RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "RUNS=%q: a number of runs per step, at least 1\n", v)
			os.Exit(int(exitcode.Usage))
		}
		runs = n
	}
	fs.StringVar(&b.test, "test", os.Getenv("TEST"), "regexp naming the failing test (TEST)")
	fs.StringVar(&b.good, "good", os.Getenv("GOOD"), "a good commit of the git tree KERNEL_SRC (GOOD)")
	fs.StringVar(&b.bad, "bad", os.Getenv("BAD"), "a bad commit of the git tree KERNEL_SRC (BAD)")
	fs.IntVar(&b.runs, "runs", runs, "runs of the test per step, for flaky tests (RUNS)")
	fs.StringVar(&b.state, "state", os.Getenv("LANDLOCK_VMTEST_BISECT_STATE"), "internal: the git bisection's state directory")
}

func bisectCmd(ctx context.Context, o pipeline.Options, b bisectFlags) exitcode.Code {
	opts := bisect.Options{Run: o, Series: o.Series, Test: b.test, Runs: b.runs, Good: b.good, Bad: b.bad, Stdout: os.Stdout}
	if o.Series == "none" || os.Getenv("SERIES") == "none" {
		opts.Series = ""
	}
	if b.good != "" || b.bad != "" || o.KernelSrc != "" {
		if o.KernelSrc == "" || b.good == "" || b.bad == "" {
			fmt.Fprintln(os.Stderr, "bisect on a git tree needs KERNEL_SRC= (a git repository), GOOD= and BAD=")
			return exitcode.Usage
		}
		_, code := bisect.Git(ctx, opts)
		return code
	}
	_, code := bisect.Series(ctx, opts)
	return code
}

// bisectStep is what `git bisect run` runs at each commit; its exit code
// is git's verdict (0 good, 1 bad, 125 skip, 128 stop).
func bisectStep(ctx context.Context, o pipeline.Options, b bisectFlags) exitcode.Code {
	return exitcode.Code(bisect.GitStep(ctx, bisect.Options{Run: o, Series: o.Series, Test: b.test, Runs: b.runs, Stdout: os.Stdout}, b.state))
}
