// Package fsutil holds the file helpers the harness's packages share:
// copying a file, and writing a report as Markdown and JSON side by side.
package fsutil

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CopyFile copies from to to, creating or truncating to.
func CopyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("copying %s: %w", from, err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying to %s: %w", to, err)
	}
	return out.Close()
}

// WriteReport writes dir/name.md (md) and dir/name.json (v, indented).
func WriteReport(dir, name string, md []byte, v any) error {
	if err := os.WriteFile(filepath.Join(dir, name+".md"), md, 0o644); err != nil {
		return fmt.Errorf("writing %s.md: %w", name, err)
	}
	js, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s.json: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s.json: %w", name, err)
	}
	return nil
}
