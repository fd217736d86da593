// Command landlock-bpf-sandbox runs a program with "read anything, write
// only beneath the --rw directories, mount nothing" (and, with --ro,
// nothing outside the --ro and --rw directories), enforced by a Landlock
// eBPF rule of this project's patch series, ABI version 3 (as root) or 4
// (unprivileged: it sets no_new_privs; without CAP_BPF it needs
// kernel.unprivileged_bpf_disabled = 0):
//
//	landlock-bpf-sandbox [--rw DIR]... [--ro DIR]... [--] PROGRAM [ARGS]...
//
// Package bpfsandbox/cli is the command; package bpfsandbox the rule.
package main

import (
	"os"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stderr))
}
