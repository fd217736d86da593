package bpfsandbox

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Load loads insns as a Landlock rule: a BPF_PROG_TYPE_LANDLOCK program
// with expected attach type BPF_LANDLOCK_FS, license GPL. Loading needs
// CAP_BPF in version 3; from version 4, without CAP_BPF,
// kernel.unprivileged_bpf_disabled = 0 (the verifier then runs in its
// unprivileged mode). Its errors are *BPFError.
func Load(insns asm.Instructions) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "landlock_sbox",
		Type:         ebpf.ProgramType(ProgTypeLandlock),
		AttachType:   ebpf.AttachType(AttachLandlockFS),
		Instructions: insns,
		License:      "GPL",
	}, ebpf.ProgramOptions{})
	if err != nil {
		return nil, &BPFError{fmt.Errorf("loading the Landlock rule (BPF_PROG_TYPE_LANDLOCK, %d)%s: %w", ProgTypeLandlock, errnoName(err), err)}
	}
	return prog, nil
}

// Append appends the rule prog to the calling thread's domain
// (seccomp(SECCOMP_APPEND_LANDLOCK_RULE, 0, &fd)); the thread keeps it for
// good, and its children and execve'd programs inherit it. It needs
// CAP_SYS_ADMIN in version 3 (EPERM otherwise); from version 4,
// no_new_privs on the calling thread is enough (SetNoNewPrivs). The
// caller has locked its goroutine to its OS thread.
func Append(prog *ebpf.Program) error {
	fd := uint32(prog.FD())
	_, err := seccomp(SeccompAppendLandlockRule, 0, unsafe.Pointer(&fd))
	runtime.KeepAlive(&fd)
	if err != nil {
		return fmt.Errorf("appending the Landlock rule with seccomp(SECCOMP_APPEND_LANDLOCK_RULE): %w", errnoText(err))
	}
	return nil
}

// Apply confines the calling thread, and whatever it starts or executes
// from now on: no mount-family system call, write-like actions only
// beneath the rw paths, and, when ro is not empty, no action at all
// outside the ro and rw paths (see the package documentation). rw may be
// empty: then nothing can be written (but character devices, pipes and
// sockets). At most MaxFSMapEntries paths each.
//
// The caller must have locked its goroutine to its OS thread
// (runtime.LockOSThread): the rule applies to this thread only. Without
// CAP_SYS_ADMIN (version 4), it must have set no_new_privs on it first
// (SetNoNewPrivs).
func Apply(rw, ro []string) (err error) {
	if err := checkMountSyscalls(); err != nil {
		return err
	}
	rwMap, err := newMapOf(rw)
	if err != nil {
		return fmt.Errorf("the --rw map: %w", err)
	}
	defer rwMap.Close()
	var roMap *FSMap
	if len(ro) > 0 {
		roMap, err = newMapOf(ro)
		if err != nil {
			return fmt.Errorf("the --ro map: %w", err)
		}
		defer roMap.Close()
	}
	// The maps stay open until the program is loaded; it keeps them.
	prog, err := Load(Rule(rwMap, roMap))
	if err != nil {
		return err
	}
	defer prog.Close()
	return Append(prog)
}

// SetNoNewPrivs sets no_new_privs on the calling thread
// (prctl(PR_SET_NO_NEW_PRIVS, 1)): neither it nor what it executes can
// gain privileges again (set-user-ID bits and file capabilities are
// ignored). From version 4 it lets a thread without CAP_SYS_ADMIN append
// a rule, as seccomp(2) lets it install a filter. The caller has locked
// its goroutine to its OS thread, the one that appends the rule and
// executes the program.
func SetNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS, 1): %w", errnoText(err))
	}
	return nil
}

// newMapOf makes a frozen map of paths (an empty one for none).
func newMapOf(paths []string) (*FSMap, error) {
	if len(paths) > MaxFSMapEntries {
		return nil, fmt.Errorf("%d paths: a BPF_MAP_TYPE_LANDLOCK_FS map holds at most %d", len(paths), MaxFSMapEntries)
	}
	m, err := NewFSMap(max(len(paths), 1))
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := m.Add(p); err != nil {
			return nil, errors.Join(err, m.Close())
		}
	}
	if err := m.Freeze(); err != nil {
		return nil, errors.Join(err, m.Close())
	}
	return m, nil
}
