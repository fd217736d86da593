package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(from, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(from, to); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(to); string(b) != "content" {
		t.Errorf("copy has %q", b)
	}
	if err := CopyFile(filepath.Join(dir, "absent"), to); err == nil {
		t.Error("copying a missing file succeeded")
	}
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	if err := WriteReport(dir, "r", []byte("# r\n"), map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "r.md")); string(b) != "# r\n" {
		t.Errorf("r.md has %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "r.json")); string(b) != "{\n  \"a\": 1\n}\n" {
		t.Errorf("r.json has %q", b)
	}
	if err := WriteReport(filepath.Join(dir, "absent"), "r", nil, 1); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
