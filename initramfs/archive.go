package initramfs

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/landlock-vmtest/landlock-vmtest/contract"

	"github.com/u-root/mkuimage/cpio"
)

// WriteTests writes the test layer: every file of files (guest path →
// host path) and the manifest at contract.ManifestPath, as a newc cpio.
func WriteTests(out string, m *contract.Manifest, files map[string]string) error {
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding test manifest: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("creating test archive: %w", err)
	}
	defer f.Close()
	w := cpio.NewDedupWriter(cpio.Newc.Writer(f))

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	recs := []cpio.Record{cpio.StaticFile(strings.TrimPrefix(contract.ManifestPath, "/"), string(mj), 0o644)}
	var opened []*os.File
	defer func() {
		for _, o := range opened {
			o.Close()
		}
	}()
	for _, n := range names {
		hf, err := os.Open(files[n])
		if err != nil {
			return fmt.Errorf("packing %s: %w", n, err)
		}
		opened = append(opened, hf)
		st, err := hf.Stat()
		if err != nil {
			return fmt.Errorf("packing %s: %w", n, err)
		}
		recs = append(recs, cpio.Record{
			ReaderAt: hf,
			Info: cpio.Info{
				Name:     n,
				Mode:     cpio.S_IFREG | uint64(st.Mode().Perm()),
				FileSize: uint64(st.Size()),
			},
		})
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		return fmt.Errorf("writing test archive: %w", err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return fmt.Errorf("writing test archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing test archive: %w", err)
	}
	return nil
}

// Concat writes the archives end to end into out: the kernel unpacks them
// in order.
func Concat(out string, parts ...string) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("creating initramfs: %w", err)
	}
	defer f.Close()
	for _, p := range parts {
		in, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("assembling initramfs: %w", err)
		}
		_, err = io.Copy(f, in)
		in.Close()
		if err != nil {
			return fmt.Errorf("assembling initramfs from %s: %w", p, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing initramfs: %w", err)
	}
	return nil
}
