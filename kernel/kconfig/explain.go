package kconfig

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Explain looks up the definition of symbol in the Kconfig files of the
// kernel tree at srcDir and returns a short reason a requested value may not
// have stuck: "unsatisfied dependency: depends on X && Y (lib/Kconfig.debug:2204)",
// "no prompt: ...", or "not defined in any Kconfig file". It reads only the
// definition itself: conditions from enclosing `if` and `menu` blocks are
// not evaluated.
func Explain(srcDir, symbol string) string {
	var found []string
	_ = filepath.WalkDir(srcDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "Documentation", "tools", "scripts", "samples", "LICENSES":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(d.Name(), "Kconfig") {
			return nil
		}
		if desc := definition(path, srcDir, symbol); desc != "" {
			found = append(found, desc)
		}
		return nil
	})
	if len(found) == 0 {
		return notDefined
	}
	return strings.Join(found, "; ")
}

// definition scans one Kconfig file for `config SYMBOL` and describes its
// dependencies.
func definition(path, srcDir, symbol string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var (
		at     int
		deps   []string
		prompt bool
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if at == 0 {
			if (fields[0] == "config" || fields[0] == "menuconfig") && len(fields) > 1 && fields[1] == symbol {
				at = n
			}
			continue
		}
		if endsEntry[fields[0]] {
			break
		}
		switch fields[0] {
		case "depends":
			if len(fields) > 2 && fields[1] == "on" {
				deps = append(deps, strings.Join(fields[2:], " "))
			}
		case "bool", "tristate", "string", "int", "hex", "prompt":
			prompt = prompt || len(fields) > 1
		}
	}
	if at == 0 {
		return ""
	}
	rel, err := filepath.Rel(srcDir, path)
	if err != nil {
		rel = path
	}
	where := fmt.Sprintf("%s:%d", rel, at)
	switch {
	case len(deps) > 0:
		return fmt.Sprintf("unsatisfied dependency? depends on %s (%s)", strings.Join(deps, " && "), where)
	case !prompt:
		return fmt.Sprintf("no prompt: only set when another option selects it (%s)", where)
	default:
		return fmt.Sprintf("defined at %s: check the enclosing if/menu conditions", where)
	}
}

// endsEntry are the Kconfig keywords that end a config entry's attributes.
var endsEntry = map[string]bool{
	"config": true, "menuconfig": true, "menu": true, "endmenu": true,
	"if": true, "endif": true, "choice": true, "endchoice": true,
	"source": true, "comment": true, "help": true, "---help---": true,
}

const notDefined = "not defined in any Kconfig file of this tree"

// Defined reports whether some Kconfig file of the tree at srcDir defines
// symbol (without CONFIG_).
func Defined(srcDir, symbol string) bool { return Explain(srcDir, symbol) != notDefined }
