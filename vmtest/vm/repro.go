package vm

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WriteRepro writes the repro bundle into out: repro.sh, which boots the
// same VM again from the files in out (the image, as the machine names
// it, and the initramfs), and the exact QEMU command and kernel command
// line on their own, for bug reports.
func WriteRepro(cfg Config, out string) error {
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cfg.Kernel = filepath.Join(out, cfg.Machine.ImageName)
	cfg.Initramfs = filepath.Join(out, filepath.Base(cfg.Initramfs))
	args, err := cfg.Cmdline(filepath.Join(out, "repro-results.jsonl"))
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Boots the VM of this run again. The console is on stdio (Ctrl-A x quits);\n# the guest's result events go to repro-results.jsonl.\n")
	b.WriteString("# Add landlock_vmtest.shell to -append for a shell instead of the tests.\nexec")
	for _, a := range args {
		b.WriteString(" " + ShellQuote(a))
	}
	b.WriteString("\n")
	if err := os.WriteFile(filepath.Join(out, "repro.sh"), []byte(b.String()), 0o755); err != nil {
		return fmt.Errorf("writing repro.sh: %w", err)
	}
	quoted := make([]string, len(args))
	cmdline := ""
	for i, a := range args {
		quoted[i] = ShellQuote(a)
		if i > 0 && args[i-1] == "-append" {
			cmdline = a
		}
	}
	if err := os.WriteFile(filepath.Join(out, "qemu-command"), []byte(strings.Join(quoted, " ")+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing qemu-command: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "kernel-cmdline"), []byte(cmdline+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing kernel-cmdline: %w", err)
	}
	return nil
}

// ShellQuote quotes s for a POSIX shell, leaving plain words alone.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c == '-' || c == '_' || c == '.' || c == '/' || c == ':' || c == '=' || c == ',' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Shell boots the VM with the terminal attached (make shell); the result
// channel goes nowhere. It returns when QEMU exits.
func Shell(cfg Config, log io.Writer) error {
	args, err := cfg.Cmdline(os.DevNull)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "booting a shell (Ctrl-A x quits QEMU)\n%s\n", strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return &InfraError{Op: "QEMU", Err: err}
	}
	return nil
}
