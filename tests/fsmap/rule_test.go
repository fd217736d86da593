package fsmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/bpfsandbox"
	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// ruleCase is an operation under the canonical rule "read anything, write
// only beneath D" (bpfsandbox.Rule(rw, nil) with rw = {D}). The operation
// runs twice, in fresh worlds: on dir = D, where it must give in, and on
// dir = the outside directory, where it must give out. A case with once
// set runs once (its operation names its objects itself) and must give
// in.
type ruleCase struct {
	name string
	// prep runs before the rule: fds, mappings, mounts.
	prep    func(w *world, dir string)
	op      func(w *world, dir string) error
	in, out error
	once    bool
}

// errUnsupported marks a prep that found the file system lacks what the
// case needs: the case skips with it.
var errUnsupported = errors.New("unsupported here")

// writeRow is a write-like row: allowed in D, EPERM outside.
func writeRow(name string, prep func(w *world, dir string), op func(w *world, dir string) error) ruleCase {
	return ruleCase{name: name, prep: prep, op: op, out: unix.EPERM}
}

// readRow is a read: allowed everywhere.
func readRow(name string, prep func(w *world, dir string), op func(w *world, dir string) error) ruleCase {
	return ruleCase{name: name, prep: prep, op: op}
}

func openDirFile(flags int) func(w *world, dir string) error {
	return func(w *world, dir string) error { return openClose(filepath.Join(dir, "f"), flags) }
}

// openF opens dir/f with flags before the rule.
func openF(flags int) func(w *world, dir string) {
	return func(w *world, dir string) { w.open(filepath.Join(dir, "f"), flags) }
}

func fdOf(w *world, dir string) int { return w.fd[filepath.Join(dir, "f")] }

// aclXattr is an access ACL in the xattr format: version 2, then
// {tag, perm, id} entries: owner rw, user 4242 r, group r, mask r, other
// r (the ACL_USER entry keeps it from being a mere mode).
func aclXattr() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{0x01, 6, ^uint32(0)}, {0x02, 4, 4242}, {0x04, 4, ^uint32(0)}, {0x10, 4, ^uint32(0)}, {0x20, 4, ^uint32(0)}} {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

const aclAccess = "system.posix_acl_access"

var ruleCases = []ruleCase{
	writeRow("open_wronly", nil, openDirFile(unix.O_WRONLY)),
	writeRow("open_rdwr", nil, openDirFile(unix.O_RDWR)),
	writeRow("open_append", nil, openDirFile(unix.O_WRONLY|unix.O_APPEND)),
	writeRow("open_trunc", nil, openDirFile(unix.O_WRONLY|unix.O_TRUNC)),
	writeRow("open_rdonly_trunc", nil, openDirFile(unix.O_RDONLY|unix.O_TRUNC)),
	writeRow("open_creat_excl", nil, func(w *world, dir string) error {
		return openClose(filepath.Join(dir, "new"), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY)
	}),
	writeRow("mkdir", nil, func(w *world, dir string) error { return unix.Mkdir(filepath.Join(dir, "n"), 0o755) }),
	writeRow("mknod_fifo", nil, func(w *world, dir string) error {
		return unix.Mknod(filepath.Join(dir, "p"), unix.S_IFIFO|0o600, 0)
	}),
	writeRow("symlink", nil, func(w *world, dir string) error { return unix.Symlink("f", filepath.Join(dir, "s")) }),
	writeRow("link_same_dir", nil, func(w *world, dir string) error {
		return unix.Link(filepath.Join(dir, "f"), filepath.Join(dir, "f2"))
	}),
	{name: "link_outside_file_into_D", once: true, in: unix.EPERM, op: func(w *world, _ string) error {
		return unix.Link(filepath.Join(w.out, "f"), filepath.Join(w.d, "lo"))
	}},
	{name: "link_D_file_to_outside", once: true, in: unix.EPERM, op: func(w *world, _ string) error {
		return unix.Link(filepath.Join(w.d, "f"), filepath.Join(w.out, "ld"))
	}},
	writeRow("unlink", nil, func(w *world, dir string) error { return unix.Unlink(filepath.Join(dir, "f")) }),
	writeRow("rmdir", nil, func(w *world, dir string) error { return unix.Rmdir(filepath.Join(dir, "e")) }),
	writeRow("rename_same_dir", nil, func(w *world, dir string) error {
		return unix.Rename(filepath.Join(dir, "f"), filepath.Join(dir, "g"))
	}),
	{name: "rename_D_to_outside", once: true, in: unix.EPERM, op: func(w *world, _ string) error {
		return unix.Rename(filepath.Join(w.d, "f"), filepath.Join(w.out, "g"))
	}},
	{name: "rename_outside_to_D", once: true, in: unix.EPERM, op: func(w *world, _ string) error {
		return unix.Rename(filepath.Join(w.out, "f"), filepath.Join(w.d, "g"))
	}},
	{name: "rename_exchange_across", once: true, in: unix.EPERM, op: func(w *world, _ string) error {
		return unix.Renameat2(unix.AT_FDCWD, filepath.Join(w.d, "f"), unix.AT_FDCWD, filepath.Join(w.out, "f"), unix.RENAME_EXCHANGE)
	}},
	writeRow("truncate", nil, func(w *world, dir string) error { return unix.Truncate(filepath.Join(dir, "f"), 1) }),
	writeRow("ftruncate_fd_before", openF(unix.O_RDWR), func(w *world, dir string) error {
		return unix.Ftruncate(fdOf(w, dir), 1)
	}),
	writeRow("chmod", nil, func(w *world, dir string) error { return unix.Chmod(filepath.Join(dir, "f"), 0o600) }),
	writeRow("chown_same_owner", nil, func(w *world, dir string) error {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, "f"), &st); err != nil {
			return fmt.Errorf("stat: %w", err)
		}
		return unix.Fchownat(unix.AT_FDCWD, filepath.Join(dir, "f"), int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
	}),
	writeRow("utimensat", nil, func(w *world, dir string) error { return utimes(filepath.Join(dir, "f")) }),
	writeRow("setxattr_user", nil, func(w *world, dir string) error {
		return unix.Setxattr(filepath.Join(dir, "f"), "user.x", []byte("2"), 0)
	}),
	writeRow("removexattr_user", nil, func(w *world, dir string) error {
		return unix.Removexattr(filepath.Join(dir, "f"), "user.x")
	}),
	writeRow("set_posix_acl", func(w *world, dir string) {
		w.do("probing POSIX ACLs", func() error {
			_, err := unix.Getxattr(filepath.Join(dir, "f"), aclAccess, nil)
			if errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("%w: tmpfs keeps no POSIX ACLs (CONFIG_TMPFS_POSIX_ACL)", errUnsupported)
			}
			if err != nil && !errors.Is(err, unix.ENODATA) {
				return err
			}
			return nil
		})
	}, func(w *world, dir string) error {
		return unix.Setxattr(filepath.Join(dir, "f"), aclAccess, aclXattr(), 0)
	}),
	writeRow("write_fd_before", openF(unix.O_RDWR), func(w *world, dir string) error {
		_, err := unix.Write(fdOf(w, dir), []byte("w"))
		return err
	}),
	writeRow("pwrite_fd_before", openF(unix.O_RDWR), func(w *world, dir string) error {
		_, err := unix.Pwrite(fdOf(w, dir), []byte("w"), 0)
		return err
	}),
	writeRow("mmap_shared_write", openF(unix.O_RDWR), func(w *world, dir string) error {
		mem, err := unix.Mmap(fdOf(w, dir), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		return unix.Munmap(mem)
	}),
	writeRow("mprotect_shared_write", func(w *world, dir string) {
		openF(unix.O_RDWR)(w, dir)
		w.mmap(filepath.Join(dir, "f"), unix.PROT_READ, unix.MAP_SHARED)
	}, func(w *world, dir string) error {
		return unix.Mprotect(w.mem[filepath.Join(dir, "f")], unix.PROT_READ|unix.PROT_WRITE)
	}),
	writeRow("unix_socket_bind", nil, func(w *world, dir string) error {
		s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		defer unix.Close(s)
		return unix.Bind(s, &unix.SockaddrUnix{Name: filepath.Join(dir, "sock")})
	}),

	readRow("open_rdonly", nil, openDirFile(unix.O_RDONLY)),
	readRow("stat", nil, func(w *world, dir string) error {
		var st unix.Stat_t
		return unix.Stat(filepath.Join(dir, "f"), &st)
	}),
	readRow("read_fd_before", openF(unix.O_RDONLY), func(w *world, dir string) error {
		_, err := unix.Read(fdOf(w, dir), make([]byte, 4))
		return err
	}),
	readRow("getdents", nil, func(w *world, dir string) error {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		_, err = unix.Getdents(fd, make([]byte, 4096))
		return err
	}),
	readRow("getxattr_user", nil, func(w *world, dir string) error {
		_, err := unix.Getxattr(filepath.Join(dir, "f"), "user.x", make([]byte, 16))
		return err
	}),
	readRow("readlink", nil, func(w *world, dir string) error {
		_, err := unix.Readlink(filepath.Join(dir, "l"), make([]byte, 64))
		return err
	}),
	readRow("mmap_private_write", openF(unix.O_RDONLY), func(w *world, dir string) error {
		mem, err := unix.Mmap(fdOf(w, dir), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
		if err != nil {
			return err
		}
		return unix.Munmap(mem)
	}),
	{name: "write_dev_null", once: true, op: func(w *world, _ string) error { return writeFile(os.DevNull) }},
	{
		// Overlayfs inside D with lower, upper and work in D: writing a
		// lower file copies it up, judged in D.
		name: "overlay_in_D_copy_up", once: true,
		prep: func(w *world, _ string) {
			ov := filepath.Join(w.d, "ov")
			for _, sub := range []string{"lower", "upper", "work", "m"} {
				w.mkdirAll(filepath.Join(ov, sub))
			}
			w.file(filepath.Join(ov, "lower", "lf"))
			w.mount("overlay", filepath.Join(ov, "m"), "overlay", 0, fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
				filepath.Join(ov, "lower"), filepath.Join(ov, "upper"), filepath.Join(ov, "work")))
		},
		op: func(w *world, _ string) error { return writeFile(filepath.Join(w.d, "ov", "m", "lf")) },
	},
}

// ruleResult is what a case of the canonical rule brings back.
type ruleResult struct {
	setupErr error
	opErr    error
}

// runUnderRule runs c on dir (D, or the outside directory when outside)
// of a new world at base, on a new thread under the canonical rule.
func runUnderRule(base string, c ruleCase, outside bool) (r ruleResult) {
	ll.RunOnRuleThread(func() {
		w := newWorld(base)
		defer w.close()
		dir := w.d
		if outside {
			dir = w.out
		}
		if c.prep != nil {
			c.prep(w, dir)
		}
		if w.err != nil {
			r.setupErr = w.err
			return
		}
		if err := appendCanonical(w.d); err != nil {
			r.setupErr = err
			return
		}
		r.opErr = c.op(w, dir)
	})
	return r
}

// appendCanonical appends bpfsandbox.Rule({rw}, nil) to the calling
// thread; the map and the program fds are closed again (the rule keeps
// them).
func appendCanonical(rw string) error {
	m, err := bpfsandbox.NewFSMap(1)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Add(rw); err != nil {
		return err
	}
	prog, err := ll.Load(bpfsandbox.Rule(m, nil))
	if err != nil {
		return err
	}
	defer prog.Close()
	return ll.Append(prog)
}

// TestWriteOnlyBeneath checks the canonical rule against every write-like
// row of the hook table, inside D (allowed) and outside (EPERM), and
// reads, allowed everywhere.
func TestWriteOnlyBeneath(t *testing.T) {
	skipUnlessV3(t)
	privdrop.Run(t, keepRoot, func(t *testing.T) {
		for _, c := range ruleCases {
			t.Run(c.name, func(t *testing.T) {
				variants := []struct {
					name    string
					outside bool
					want    error
				}{{"in_D", false, c.in}, {"outside", true, c.out}}
				if c.once {
					variants = variants[:1]
					variants[0].name = "once"
				}
				for _, v := range variants {
					t.Run(v.name, func(t *testing.T) {
						r := runUnderRule(t.TempDir(), c, v.outside)
						if errors.Is(r.setupErr, errUnsupported) {
							t.Skip(r.setupErr)
						}
						require.NoError(t, r.setupErr, "setup and rule")
						assert.True(t, isErrno(r.opErr, v.want), "%s: got %s (%v), want %s", c.name, errName(r.opErr), r.opErr, errName(v.want))
					})
				}
			})
		}
	})
}
