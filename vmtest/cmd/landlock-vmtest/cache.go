package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/landlock-vmtest/landlock-vmtest/exitcode"

	"github.com/landlock-vmtest/landlock-vmtest/cache"
)

// defaultAge is how long an unused cache entry is kept by `cache prune`.
const defaultAge = 14 * 24 * time.Hour

// cacheCmd shows the cache's disk use (`cache`) or prunes it (`cache
// prune`): entries not used for AGE (default 14d) go.
func cacheCmd(args []string) exitcode.Code {
	prune := false
	if len(args) > 0 && args[0] == "prune" {
		prune, args = true, args[1:]
	}
	fs := flag.NewFlagSet("landlock-vmtest cache", flag.ContinueOnError)
	dir := fs.String("cache", os.Getenv("CACHE_DIR"), "cache directory (CACHE_DIR; default $XDG_CACHE_HOME/landlock-vmtest)")
	ageText := fs.String("age", os.Getenv("AGE"), "prune: remove entries not used for this long, e.g. 14d or 36h (AGE; default 14d; 0 removes every entry no run holds: use it only while no run is going)")
	if err := fs.Parse(args); err != nil {
		return exitcode.Usage
	}
	if rest := fs.Args(); len(rest) > 0 {
		fmt.Fprintf(os.Stderr, "cache: unknown arguments %q (cache, or cache prune)\n", rest)
		return exitcode.Usage
	}
	age := defaultAge
	if *ageText != "" {
		var err error
		if age, err = parseAge(*ageText); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitcode.Usage
		}
	}
	c, err := cache.Default(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Infra
	}
	if !prune {
		if err := showCache(os.Stdout, c, age); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitcode.Infra
		}
		return exitcode.OK
	}
	if err := pruneCache(os.Stdout, c, age); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitcode.Infra
	}
	return exitcode.OK
}

// parseAge reads a Go duration or a number of days ("14d").
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err == nil && n >= 0 {
			return time.Duration(n * float64(24*time.Hour)), nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, fmt.Errorf("AGE=%s: give a duration such as 14d or 36h", s)
}

// days prints an age in days when it is a whole number of them.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// gib prints a size in GiB, or in MiB below one GiB.
func gib(n int64) string {
	if n < 1<<30 {
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	}
}

func showCache(w io.Writer, c *cache.Cache, age time.Duration) error {
	per, total, err := c.Usage()
	if err != nil {
		return err
	}
	entries, err := c.Entries()
	if err != nil {
		return err
	}
	type info struct {
		n, stale int
		newest   time.Time
	}
	byKind := map[string]*info{}
	cutoff := time.Now().Add(-age)
	for _, e := range entries {
		i := byKind[e.Kind]
		if i == nil {
			i = &info{}
			byKind[e.Kind] = i
		}
		i.n++
		if e.Incomplete || e.LastUsed.Before(cutoff) {
			i.stale++
		}
		if e.LastUsed.After(i.newest) {
			i.newest = e.LastUsed
		}
	}
	kinds := make([]string, 0, len(per))
	for k := range per {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "cache %s: %s (a file linked from several entries counts once)\n", c.Root, gib(total))
	for _, k := range kinds {
		line := fmt.Sprintf("  %-11s %9s", k, gib(per[k]))
		if i := byKind[k]; i != nil {
			line += fmt.Sprintf("  %d entries, last used %s, %d unused for %s", i.n, ago(i.newest), i.stale, days(age))
		} else if k == "ccache" {
			line += "  ccache keeps its own limit (ccache -s, ccache -M)"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "landlock-vmtest cache prune (make cache-prune) removes the entries unused for AGE (now %s)\n", days(age))
	return nil
}

func pruneCache(w io.Writer, c *cache.Cache, age time.Duration) error {
	_, before, err := c.Usage()
	if err != nil {
		return err
	}
	removed, err := c.Prune(time.Now().Add(-age))
	if err != nil {
		return err
	}
	_, after, err := c.Usage()
	if err != nil {
		return err
	}
	gone := 0
	for _, r := range removed {
		switch {
		case r.InUse:
			fmt.Fprintf(w, "  kept %s/%s: a run holds it\n", r.Kind, r.Name)
		case r.Incomplete:
			gone++
			fmt.Fprintf(w, "  removed %s/%s (incomplete)\n", r.Kind, r.Name)
		default:
			gone++
			fmt.Fprintf(w, "  removed %s/%s (last used %s)\n", r.Kind, r.Name, ago(r.LastUsed))
		}
	}
	fmt.Fprintf(w, "cache prune: removed %d entries unused for %s, freed %s; %s left in %s\n", gone, days(age), gib(before-after), gib(after), c.Root)
	return nil
}
