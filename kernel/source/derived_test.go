package source

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDerivedOwnKeyAndLinksUntouched(t *testing.T) {
	c := newCache(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Makefile"), []byte("obj-y := a.o\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := &Tree{Dir: src, Key: "k", Desc: "test tree", owned: true}
	edit := func(dir string) error {
		p := filepath.Join(dir, "Makefile")
		tmp := p + ".new"
		if err := os.WriteFile(tmp, []byte("changed\n"), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, p)
	}
	d, err := Derived(c, base, "v1", "edited", edit)
	if err != nil {
		t.Fatal(err)
	}
	if d.Key == base.Key || d.Dir == base.Dir || !d.owned {
		t.Errorf("derived tree %+v shares the base's identity", d)
	}
	if b, _ := os.ReadFile(filepath.Join(d.Dir, "Makefile")); string(b) != "changed\n" {
		t.Errorf("edit not applied: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "Makefile")); string(b) != "obj-y := a.o\n" {
		t.Errorf("base changed: %q", b)
	}
	again, err := Derived(c, base, "v1", "edited", func(string) error { t.Error("cached derived tree rebuilt"); return nil })
	if err != nil || again.Key != d.Key {
		t.Errorf("second call: %+v, %v", again, err)
	}
	other, err := Derived(c, base, "v2", "edited", edit)
	if err != nil || other.Key == d.Key {
		t.Errorf("another variant shares the key: %+v, %v", other, err)
	}
}
