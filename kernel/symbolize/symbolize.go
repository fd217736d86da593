// Package symbolize turns a splat's frames ("function+0xoffset/0xsize")
// into source lines with the kernel's own scripts/faddr2line, run against
// the build's vmlinux. It needs a kernel built with CONFIG_DEBUG_INFO (the
// debug flavour has it) and binutils for the kernel's architecture.
package symbolize

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/kernel/kconfig"
)

// Location is where one frame is in the source.
type Location struct {
	// Frame is the frame as asked, "function+0xoffset/0xsize".
	Frame string
	// Function and Source are the innermost function at the address and
	// its "file:line" (relative to the source tree, as faddr2line
	// prints it, "(discriminator N)" dropped). When the compiler inlined
	// code there, Function is the inlined function, not the frame's.
	Function, Source string
	// InlinedBy are the callers the innermost function was inlined into,
	// innermost first, each as "function at file:line".
	InlinedBy []string
}

// Symbolizer decodes frames against one vmlinux.
type Symbolizer struct {
	// Script is the kernel's scripts/faddr2line.
	Script string
	// Vmlinux is the build's vmlinux, with debug info.
	Vmlinux string
	// CrossCompile is the binutils prefix for a foreign architecture
	// ("aarch64-linux-gnu-"), "" for the host's.
	CrossCompile string
}

// ErrNoDebugInfo says that the kernel was built without CONFIG_DEBUG_INFO:
// its frames keep their function+offset form.
var ErrNoDebugInfo = errors.New("the kernel has no debug info (CONFIG_DEBUG_INFO is not set; DEBUG=1 builds one that has)")

// ForBuild is the symbolizer of an O= build directory: its vmlinux, and
// the faddr2line of the source tree it was built from (the build
// directory's "source" link, which the kernel's make writes). config is
// the build's .config; without CONFIG_DEBUG_INFO=y the error is
// ErrNoDebugInfo.
func ForBuild(dir, config, crossCompile string) (*Symbolizer, error) {
	ok, err := HasDebugInfo(config)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoDebugInfo
	}
	vmlinux := filepath.Join(dir, "vmlinux")
	if _, err := os.Stat(vmlinux); err != nil {
		return nil, fmt.Errorf("decoding frames: %w", err)
	}
	return New(filepath.Join(dir, "source"), vmlinux, crossCompile)
}

// HasDebugInfo tells whether the build's .config, config, has
// CONFIG_DEBUG_INFO=y.
func HasDebugInfo(config string) (bool, error) {
	settings, err := kconfig.ParseFile(config)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(settings, func(s kconfig.Setting) bool { return s.Symbol == "DEBUG_INFO" && s.Value == "y" }), nil
}

// New is the symbolizer of vmlinux with the faddr2line of the source tree
// src; it fails when src has no scripts/faddr2line.
func New(src, vmlinux, crossCompile string) (*Symbolizer, error) {
	s := &Symbolizer{Script: filepath.Join(src, "scripts", "faddr2line"), Vmlinux: vmlinux, CrossCompile: crossCompile}
	if _, err := os.Stat(s.Script); err != nil {
		return nil, fmt.Errorf("decoding frames: %w", err)
	}
	return s, nil
}

// frameRe is a frame faddr2line can decode: a vmlinux symbol (a module's
// frame carries " [module]" and is left out), its offset and the
// function's size.
var frameRe = regexp.MustCompile(`^([A-Za-z0-9_.$]+)\+(0x[0-9a-f]+)/(0x[0-9a-f]+)$`)

// Decode returns the location of each frame it could decode, by frame;
// frames of modules, and frames faddr2line finds nothing for, are absent.
// One faddr2line run decodes them all.
func (s *Symbolizer) Decode(ctx context.Context, frames []string) (map[string]Location, error) {
	var ask []string
	seen := map[string]bool{}
	for _, f := range frames {
		if frameRe.MatchString(f) && !seen[f] {
			seen[f] = true
			ask = append(ask, f)
		}
	}
	if len(ask) == 0 {
		return map[string]Location{}, nil
	}
	cmd := exec.CommandContext(ctx, s.Script, append([]string{s.Vmlinux}, ask...)...)
	cmd.Env = append(os.Environ(), "CROSS_COMPILE="+s.CrossCompile)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", s.Script, s.Vmlinux, err, strings.TrimSpace(stderr.String()))
	}
	return Parse(stdout.String(), ask), nil
}

// key identifies a frame whatever the spelling of its numbers.
type key struct {
	name         string
	offset, size uint64
}

func keyOf(frame string) (key, bool) {
	m := frameRe.FindStringSubmatch(frame)
	if m == nil {
		return key{}, false
	}
	off, err1 := strconv.ParseUint(m[2], 0, 64)
	size, err2 := strconv.ParseUint(m[3], 0, 64)
	if err1 != nil || err2 != nil {
		return key{}, false
	}
	return key{m[1], off, size}, true
}

var (
	// headerRe opens one answer: "function+0xoffset/0xsize:".
	headerRe = regexp.MustCompile(`^(\S+\+0x[0-9a-f]+/0x[0-9a-f]+):$`)
	// atRe is a location line: "function at file:line", maybe with
	// " (discriminator N)", maybe after "(inlined by) ".
	atRe = regexp.MustCompile(`^(\(inlined by\) )?(\S+) at (\S+:\d+)( \(discriminator \d+\))?$`)
)

// Parse reads faddr2line's output for the frames asked and returns their
// locations by frame as asked (faddr2line may spell an offset
// differently). Lines it does not know (faddr2line's "skipping ..."
// notes) are ignored, as are answers to frames not asked.
func Parse(out string, asked []string) map[string]Location {
	byKey := map[key]string{}
	for _, f := range asked {
		if k, ok := keyOf(f); ok {
			byKey[k] = f
		}
	}
	locs := map[string]Location{}
	var cur *Location
	flush := func() {
		if cur != nil && cur.Source != "" {
			if _, dup := locs[cur.Frame]; !dup {
				locs[cur.Frame] = *cur
			}
		}
		cur = nil
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := headerRe.FindStringSubmatch(line); m != nil {
			flush()
			k, ok := keyOf(m[1])
			if f, asked := byKey[k]; ok && asked {
				cur = &Location{Frame: f}
			}
			continue
		}
		m := atRe.FindStringSubmatch(line)
		if m == nil || cur == nil || strings.HasPrefix(m[3], "??") {
			continue
		}
		switch {
		case m[1] == "" && cur.Source == "":
			cur.Function, cur.Source = m[2], m[3]
		case m[1] != "" && cur.Source != "":
			cur.InlinedBy = append(cur.InlinedBy, m[2]+" at "+m[3])
		}
	}
	flush()
	return locs
}
