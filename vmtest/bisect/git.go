package bisect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/internal/textutil"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
	"github.com/landlock-vmtest/landlock-vmtest/kernel/series"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/hosttools"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/pipeline"
	"github.com/landlock-vmtest/landlock-vmtest/vmtest/step"
)

// gitState is what the bisection hands to each bisect-step: git bisect
// run starts a new process per commit.
type gitState struct {
	Run    pipeline.Options `json:"run"`
	Series string           `json:"series"`
	Split  string           `json:"split"`
	Test   string           `json:"test"`
	Runs   int              `json:"runs"`
	// Src is the bisection's git worktree, Build its build directory.
	Src   string `json:"src"`
	Build string `json:"build"`
	// Steps is where each commit's results go.
	Steps string `json:"steps"`
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// Git bisects the history GOOD..BAD of the git tree Run.KernelSrc with
// git bisect run, the series (if any) applied on top of every commit.
// The user's tree is never checked out: the bisection runs in a git
// worktree of it in the cache, built incrementally in one build
// directory.
func Git(ctx context.Context, o Options) (*Report, exitcode.Code) {
	w := o.Stdout
	rep := &Report{Mode: "git", Test: o.Test, Runs: o.Runs}
	if _, code := setup(&o, rep); code != exitcode.OK {
		return rep, code
	}
	fail := func(code exitcode.Code, format string, args ...any) (*Report, exitcode.Code) {
		rep.Message = fmt.Sprintf(format, args...)
		fmt.Fprintln(w, "bisect: "+rep.Message)
		return rep, code
	}
	if _, err := hosttools.Real().Ensure(hosttools.For(hosttools.Request{Machine: o.Run.Mach(), Kselftests: len(o.Run.Kselftests) > 0, Git: true}), w); err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	src, err := filepath.Abs(o.Run.KernelSrc)
	if err != nil {
		return fail(exitcode.Usage, "KERNEL_SRC: %v", err)
	}
	if _, err := git(src, "rev-parse", "--git-dir"); err != nil {
		return fail(exitcode.Usage, "KERNEL_SRC=%s is not a git repository: %v", src, err)
	}
	good, err := git(src, "rev-parse", "--verify", o.Good+"^{commit}")
	if err != nil {
		return fail(exitcode.Usage, "GOOD=%s: %v", o.Good, err)
	}
	bad, err := git(src, "rev-parse", "--verify", o.Bad+"^{commit}")
	if err != nil {
		return fail(exitcode.Usage, "BAD=%s: %v", o.Bad, err)
	}
	if _, err := git(src, "merge-base", "--is-ancestor", good, bad); err != nil {
		return fail(exitcode.Usage, "GOOD=%s is not an ancestor of BAD=%s", o.Good, o.Bad)
	}
	c, err := cache.Default(o.Run.CacheDir)
	if err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	root := c.Path("bisect-git", cache.Key(src))
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	unlock, err := cache.Lock(root)
	if err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	defer unlock()
	wt := filepath.Join(root, "src")
	if err := worktreeAt(src, wt, bad); err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	outAbs, err := filepath.Abs(o.Run.Out)
	if err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	st := gitState{Run: o.Run, Series: o.Series, Split: filepath.Join(outAbs, "series"), Test: o.Test, Runs: o.Runs,
		Src: wt, Build: filepath.Join(root, "build"), Steps: filepath.Join(outAbs, "steps")}
	st.Run.Stdout = nil
	st.Run.Out = outAbs
	stateDir := filepath.Join(outAbs, "state")
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fail(exitcode.Infra, "recording the bisection's state: %v", err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "state.json"), js, 0o644); err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(exitcode.Infra, "finding this program for git bisect run: %v", err)
	}

	// git takes BAD on trust; check it, or a test that never fails
	// would make BAD the culprit. This first build also seeds the
	// build directory every later step builds on.
	fmt.Fprintf(w, "bisect: checking that %q fails at BAD=%s\n", o.Test, short(bad))
	first := gitStep(ctx, st, w)
	switch first.Verdict.Decision {
	case Stop:
		rep.Steps = readSteps(st.Steps)
		rep.Message = "stopped at BAD: " + first.Verdict.Why
		return done(rep, outAbs, w, exitcode.Infra)
	case Good:
		rep.Steps = readSteps(st.Steps)
		rep.Message = fmt.Sprintf("nothing to bisect: %q does not fail at BAD=%s (%s)", o.Test, o.Bad, first.Verdict.Why)
		return done(rep, outAbs, w, exitcode.TestsFailed)
	case Skip:
		rep.Steps = readSteps(st.Steps)
		rep.Message = fmt.Sprintf("BAD=%s cannot be tested: %s", o.Bad, first.Verdict.Why)
		return done(rep, outAbs, w, exitcode.TestsFailed)
	}

	_, _ = git(wt, "bisect", "reset", "--quiet")
	if _, err := git(wt, "bisect", "start", bad, good); err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	defer func() { _, _ = git(wt, "bisect", "reset", "--quiet") }()
	fmt.Fprintf(w, "bisect: %s (good) .. %s (bad) in %s, driven by git bisect run\n", short(good), short(bad), wt)
	// git bisect run starts the step in the worktree; the step needs to
	// run from this repository (it builds the guest's programs).
	cmd := exec.CommandContext(ctx, "git", "-C", wt, "bisect", "run", "sh", "-c", `cd "$1" && exec "$2" bisect-step -state "$3"`, "sh", o.Run.Repo, self, stateDir)
	logPath := filepath.Join(outAbs, "git-bisect-run.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fail(exitcode.Infra, "%v", err)
	}
	var buf strings.Builder
	cmd.Stdout = io.MultiWriter(w, logFile, &buf)
	cmd.Stderr = cmd.Stdout
	runErr := cmd.Run()
	logFile.Close()
	if blog, err := git(wt, "bisect", "log"); err == nil {
		_ = os.WriteFile(filepath.Join(outAbs, "git-bisect.log"), []byte(blog+"\n"), 0o644)
	}
	rep.Steps = readSteps(st.Steps)
	out := buf.String()
	if m := regexp.MustCompile(`(?m)^([0-9a-f]{40}) is the first bad commit`).FindStringSubmatch(out); m != nil {
		culprit := m[1]
		subject, _ := git(wt, "log", "-1", "--format=%s", culprit)
		rep.Found, rep.Culprit, rep.Subject = true, culprit, subject
		rep.AtCulprit = findStep(rep.Steps, culprit)
		parent, err := git(wt, "rev-parse", culprit+"^")
		if err == nil {
			rep.Before = findStep(rep.Steps, parent)
			if rep.Before == nil {
				// git took GOOD on trust: test the parent for the report.
				_, _ = git(wt, "bisect", "reset", "--quiet")
				if _, err := git(wt, "checkout", "--quiet", "--detach", parent); err == nil {
					fmt.Fprintf(w, "bisect: testing the culprit's parent %s for the report\n", short(parent))
					gitStep(ctx, st, w)
					rep.Steps = readSteps(st.Steps)
					rep.Before = findStep(rep.Steps, parent)
				}
			}
		}
		if rep.AtCulprit != nil {
			rep.Confidence = confidence(rep.AtCulprit, rep.Before)
		}
		rep.Message = fmt.Sprintf("the first bad commit is %s: %s", short(culprit), subject)
		return done(rep, outAbs, w, exitcode.OK)
	}
	if strings.Contains(out, "only 'skip'ped commits left") {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(f[0]) {
				rep.Candidates = append(rep.Candidates, f[0])
			}
		}
		rep.Message = fmt.Sprintf("the first bad commit could be any of %d commits that do not build or boot: %s", len(rep.Candidates), strings.Join(rep.Candidates, " "))
		return done(rep, outAbs, w, exitcode.TestsFailed)
	}
	if runErr != nil {
		rep.Message = fmt.Sprintf("git bisect run stopped: %v (log %s)", runErr, logPath)
		return done(rep, outAbs, w, exitcode.Infra)
	}
	rep.Message = "git bisect run ended without naming a commit (log " + logPath + ")"
	return done(rep, outAbs, w, exitcode.Infra)
}

func done(rep *Report, out string, w io.Writer, code exitcode.Code) (*Report, exitcode.Code) {
	if err := finish(rep, out, w); err != nil {
		fmt.Fprintln(w, err)
		return rep, exitcode.Infra
	}
	return rep, code
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// worktreeAt makes wt a detached git worktree of src at commit, reusing
// it when it is one already.
func worktreeAt(src, wt, commit string) error {
	if _, err := os.Stat(filepath.Join(wt, ".git")); err == nil {
		_, _ = git(wt, "bisect", "reset", "--quiet")
		if err := cleanCheckout(wt); err == nil {
			_, err := git(wt, "checkout", "--quiet", "--detach", commit)
			return err
		}
		if err := os.RemoveAll(wt); err != nil {
			return fmt.Errorf("removing a broken worktree: %w", err)
		}
	}
	_, _ = git(src, "worktree", "prune")
	_, err := git(src, "worktree", "add", "--detach", wt, commit)
	return err
}

// GitStep is bisect-step: it tests the commit checked out in the
// bisection's worktree and returns git bisect run's exit code.
func GitStep(ctx context.Context, o Options, stateDir string) int {
	w := o.Stdout
	if w == nil {
		w = os.Stdout
	}
	data, err := os.ReadFile(filepath.Join(stateDir, "state.json"))
	if err != nil {
		fmt.Fprintf(w, "bisect-step: %v\n", err)
		return Stop.ExitCode()
	}
	var st gitState
	if err := json.Unmarshal(data, &st); err != nil {
		fmt.Fprintf(w, "bisect-step: %s: %v\n", stateDir, err)
		return Stop.ExitCode()
	}
	return gitStep(ctx, st, w).Verdict.Decision.ExitCode()
}

// gitStep tests the commit checked out in st.Src, with the series on top,
// and leaves the worktree clean for git.
func gitStep(ctx context.Context, st gitState, w io.Writer) *StepResult {
	sha, err := git(st.Src, "rev-parse", "HEAD")
	stopped := func(why string) *StepResult {
		fmt.Fprintf(w, "bisect-step: %s\n", why)
		r := &StepResult{Step: short(sha), Runs: []Run{{Code: exitcode.Infra}}}
		r.Verdict = Decide(r.Runs)
		return r
	}
	if err != nil {
		return stopped(err.Error())
	}
	subject, _ := git(st.Src, "log", "-1", "--format=%s", sha)
	re, err := regexp.Compile(st.Test)
	if err != nil {
		return stopped(err.Error())
	}
	c, err := cache.Default(st.Run.CacheDir)
	if err != nil {
		return stopped(err.Error())
	}
	s := &series.Series{}
	if st.Series != "" {
		if s, err = series.Open(st.Series, filepath.Join(st.Split, short(sha))); err != nil {
			return stopped(err.Error())
		}
	}
	opts := st.Run
	opts.Stdout = w
	env := step.NewGit(opts, c, s, st.Src, st.Build, w)
	dir := filepath.Join(st.Steps, short(sha))
	defer func() {
		// Back to the commit as git checked it out; the files the
		// series changed get new times, so the next build sees them.
		_ = cleanCheckout(st.Src)
	}()
	var r *StepResult
	applyErr := error(nil)
	for i := 1; i <= len(s.Patches); i++ {
		if applyErr = s.ApplyOne(st.Src, i); applyErr != nil {
			break
		}
		env.Applied = i
	}
	if applyErr != nil {
		r = &StepResult{Step: sha, Label: subject, Out: dir, Runs: []Run{{Code: exitcode.PatchFailed}}}
		r.Verdict = Decide(r.Runs)
		fmt.Fprintf(w, "<== %s: %s (the series does not apply: %v)\n", short(sha), r.Verdict.Name, textutil.FirstLine(applyErr.Error()))
	} else {
		t := &tester{env: env, test: re, runs: st.Runs, log: w}
		r = t.run(ctx, sha, subject, dir)
		r.Step = sha
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		if js, err := json.MarshalIndent(r, "", "  "); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "step.json"), js, 0o644)
		}
	}
	return r
}

// readSteps reads the step.json files the steps wrote, oldest first.
func readSteps(dir string) []*StepResult {
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "step.json"))
	type item struct {
		r    *StepResult
		time int64
	}
	var items []item
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r StepResult
		if json.Unmarshal(data, &r) != nil {
			continue
		}
		for _, d := range []Decision{Good, Bad, Skip, Stop} {
			if r.Verdict.Name == d.String() {
				r.Verdict.Decision = d
			}
		}
		st, _ := os.Stat(p)
		items = append(items, item{&r, st.ModTime().UnixNano()})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].time < items[j].time })
	out := make([]*StepResult, len(items))
	for i, it := range items {
		out[i] = it.r
	}
	return out
}

func findStep(steps []*StepResult, sha string) *StepResult {
	for _, s := range steps {
		if s.Step == sha {
			return s
		}
	}
	return nil
}

// cleanCheckout drops every change to the worktree wt: edits (git writes
// those files anew) and files the series added.
func cleanCheckout(wt string) error {
	if _, err := git(wt, "reset", "--quiet", "--hard"); err != nil {
		return err
	}
	_, err := git(wt, "clean", "-fdq")
	return err
}
