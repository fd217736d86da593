package fsmap

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/landlock-vmtest/landlock-vmtest/tests/internal/privdrop"
	ll "github.com/landlock-vmtest/landlock-vmtest/tests/landlockbpf"
)

// TestMapCreate: BPF_MAP_CREATE of BPF_MAP_TYPE_LANDLOCK_FS, attribute by
// attribute.
func TestMapCreate(t *testing.T) {
	skipUnlessV3(t)
	with := func(f func(a *ll.MapCreateAttr)) ll.MapCreateAttr {
		a := ll.FSMapAttr(8)
		f(&a)
		return a
	}
	for _, tc := range []struct {
		name string
		attr ll.MapCreateAttr
		want error
	}{
		{"key4_value4_max8", ll.FSMapAttr(8), nil},
		{"max1", ll.FSMapAttr(1), nil},
		{"max", ll.FSMapAttr(ll.FSMapMaxEntries), nil},
		{"max0", ll.FSMapAttr(0), unix.EINVAL},
		{"max_plus_1", ll.FSMapAttr(ll.FSMapMaxEntries + 1), unix.E2BIG},
		{"max_huge", ll.FSMapAttr(1 << 31), unix.E2BIG},
		{"key8", with(func(a *ll.MapCreateAttr) { a.KeySize = 8 }), unix.EINVAL},
		{"key0", with(func(a *ll.MapCreateAttr) { a.KeySize = 0 }), unix.EINVAL},
		{"value8", with(func(a *ll.MapCreateAttr) { a.ValueSize = 8 }), unix.EINVAL},
		{"value0", with(func(a *ll.MapCreateAttr) { a.ValueSize = 0 }), unix.EINVAL},
		{"flag_rdonly", with(func(a *ll.MapCreateAttr) { a.MapFlags = ll.MapFlagRdonly }), nil},
		{"flag_wronly", with(func(a *ll.MapCreateAttr) { a.MapFlags = ll.MapFlagWronly }), nil},
		{"flag_numa_node_0", with(func(a *ll.MapCreateAttr) { a.MapFlags = ll.MapFlagNUMANode }), nil},
		{"flag_no_prealloc", with(func(a *ll.MapCreateAttr) { a.MapFlags = unix.BPF_F_NO_PREALLOC }), unix.EINVAL},
		{"flag_rdonly_prog", with(func(a *ll.MapCreateAttr) { a.MapFlags = unix.BPF_F_RDONLY_PROG }), unix.EINVAL},
		{"flag_wronly_prog", with(func(a *ll.MapCreateAttr) { a.MapFlags = unix.BPF_F_WRONLY_PROG }), unix.EINVAL},
		{"flag_mmapable", with(func(a *ll.MapCreateAttr) { a.MapFlags = unix.BPF_F_MMAPABLE }), unix.EINVAL},
		{"flag_inner_map", with(func(a *ll.MapCreateAttr) { a.MapFlags = unix.BPF_F_INNER_MAP }), unix.EINVAL},
		{"flag_1<<20", with(func(a *ll.MapCreateAttr) { a.MapFlags = 1 << 20 }), unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := ll.MapCreate(tc.attr)
			if err == nil {
				unix.Close(fd)
			}
			assert.True(t, isErrno(err, tc.want), "BPF_MAP_CREATE %+v: got %s, want %s", tc.attr, errName(err), errName(tc.want))
		})
	}
}

// TestMapCreateNeedsCAPBPF: without CAP_BPF (and CAP_SYS_ADMIN, which
// bpf_capable also takes), creating the map is EPERM: below version 4
// because the map type needs CAP_BPF, from version 4 on only while
// kernel.unprivileged_bpf_disabled is not 0 (TestMapCreateUnprivileged
// has the value 0).
func TestMapCreateNeedsCAPBPF(t *testing.T) {
	skipUnlessV3(t)
	v, err := ll.KernelABIVersion()
	require.NoError(t, err)
	// What it expects depends on the value: no test of another binary
	// may change it meanwhile.
	ll.HoldSysctls(t)
	sysctl, err := ll.ReadSysctl(ll.UnprivBPFSysctl)
	require.NoError(t, err)
	if v >= ll.UnprivilegedABI && sysctl == "0" {
		t.Skipf("ABI version %d with kernel.unprivileged_bpf_disabled = 0: the map needs no CAP_BPF (TestMapCreateUnprivileged)", v)
	}
	privdrop.Run(t, privdrop.RootWithout(unix.CAP_BPF, unix.CAP_SYS_ADMIN), func(t *testing.T) {
		fd, err := ll.MapCreate(ll.FSMapAttr(8))
		if err == nil {
			unix.Close(fd)
		}
		assert.ErrorIs(t, err, unix.EPERM, "BPF_MAP_CREATE without CAP_BPF (ABI version %d, kernel.unprivileged_bpf_disabled = %s)", v, sysctl)
	})
}

// TestMapCreateUnprivileged: from version 4 on, with
// kernel.unprivileged_bpf_disabled = 0 (set here, restored after), nobody,
// with no_new_privs or without (bpf(2) does not look at it), creates a
// BPF_MAP_TYPE_LANDLOCK_FS map and an array map, writes an fd it opened
// itself (its own directory, O_PATH) into the map, overwrites and deletes
// it; lookup stays EOPNOTSUPP and an out-of-range key E2BIG, as for root.
func TestMapCreateUnprivileged(t *testing.T) {
	skipUnlessV3(t)
	ll.SkipUnlessUnprivileged(t)
	ll.AllowUnprivilegedBPF(t)
	for _, tc := range []struct {
		name  string
		privs privdrop.Privs
	}{
		{"nobody", privdrop.Nobody()},
		{"nobody_no_new_privs", privdrop.Nobody().WithNoNewPrivs()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privdrop.Run(t, tc.privs, func(t *testing.T) {
				st, err := privdrop.Current()
				require.NoError(t, err)
				require.Zero(t, st.CapEff|st.CapPrm, "capabilities of %s", tc.privs)

				m, err := ll.MapCreate(ll.FSMapAttr(8))
				require.NoError(t, err, "BPF_MAP_CREATE of BPF_MAP_TYPE_LANDLOCK_FS as %s", tc.privs)
				defer unix.Close(m)
				arr, err := ll.MapCreate(ll.MapCreateAttr{MapType: uint32(ebpf.Array), KeySize: 4, ValueSize: 8, MaxEntries: 1})
				require.NoError(t, err, "BPF_MAP_CREATE of an array map as %s", tc.privs)
				unix.Close(arr)

				dir := testDir(t) // made after the drop: nobody's
				v := openFD(t, dir, unix.O_PATH)
				f := openFD(t, filepath.Join(dir, "f"), unix.O_RDONLY)
				assert.NoError(t, ll.MapUpdate(m, 0, v, ll.UpdateAny), "update with an O_PATH fd of its own directory")
				assert.NoError(t, ll.MapUpdate(m, 0, f, ll.UpdateExist), "overwrite with a file it opened")
				assert.NoError(t, ll.MapUpdate(m, 7, v, ll.UpdateNoExist), "update of the last key")
				assert.ErrorIs(t, ll.MapUpdate(m, 8, v, ll.UpdateAny), unix.E2BIG, "key 8 of 8")
				_, err = ll.MapLookup(m, 0)
				assert.ErrorIs(t, err, unix.EOPNOTSUPP, "lookup from userland")
				assert.NoError(t, ll.MapDelete(m, 0), "delete")
				assert.ErrorIs(t, ll.MapDelete(m, 0), unix.ENOENT, "delete again")

				// A rule that calls bpf_landlock_fs_beneath with the
				// map loads unprivileged too.
				prog := append(ll.FSBeneathCall(asm.R1, m, 0), asm.Mov.Imm(asm.R0, 0), asm.Return())
				fd, err := ll.ProgLoad(prog, ll.AttachLandlockFS, 0)
				if assert.NoError(t, err, "loading a rule calling bpf_landlock_fs_beneath with the map, as %s", tc.privs) {
					unix.Close(fd)
				}
			})
		})
	}
}

// fdSource opens an fd to write into the map, closed when t ends.
type fdSource struct {
	name string
	open func(t *testing.T, dir string, mapFD int) uint32
	want error
}

func openFD(t *testing.T, p string, flags int) uint32 {
	t.Helper()
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	require.NoError(t, err, "open %s", p)
	t.Cleanup(func() { unix.Close(fd) })
	return uint32(fd)
}

func keep(t *testing.T, fd int, err error, what string) uint32 {
	t.Helper()
	require.NoError(t, err, what)
	t.Cleanup(func() { unix.Close(fd) })
	return uint32(fd)
}

var fdSources = []fdSource{
	{"dir", func(t *testing.T, dir string, _ int) uint32 { return openFD(t, dir, unix.O_RDONLY|unix.O_DIRECTORY) }, nil},
	{"o_path_dir", func(t *testing.T, dir string, _ int) uint32 { return openFD(t, dir, unix.O_PATH) }, nil},
	{"regular_file", func(t *testing.T, dir string, _ int) uint32 { return openFD(t, filepath.Join(dir, "f"), unix.O_RDONLY) }, nil},
	{"o_path_nofollow_symlink", func(t *testing.T, dir string, _ int) uint32 {
		return openFD(t, filepath.Join(dir, "l"), unix.O_PATH|unix.O_NOFOLLOW)
	}, nil},
	{"closed_fd", func(t *testing.T, _ string, _ int) uint32 {
		var p [2]int
		require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
		unix.Close(p[0])
		unix.Close(p[1])
		return uint32(p[1])
	}, unix.EBADF},
	{"value_0xffffffff", func(*testing.T, string, int) uint32 { return 0xffffffff }, unix.EBADF},
	{"value_1<<20", func(*testing.T, string, int) uint32 { return 1 << 20 }, unix.EBADF},
	{"pipe", func(t *testing.T, _ string, _ int) uint32 {
		var p [2]int
		require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
		t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
		return uint32(p[0])
	}, unix.EINVAL},
	{"socket", func(t *testing.T, _ string, _ int) uint32 {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return keep(t, fd, err, "socket")
	}, unix.EINVAL},
	{"eventfd", func(t *testing.T, _ string, _ int) uint32 {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		return keep(t, fd, err, "eventfd")
	}, unix.EINVAL},
	{"memfd", func(t *testing.T, _ string, _ int) uint32 {
		fd, err := unix.MemfdCreate("fsmap", unix.MFD_CLOEXEC)
		return keep(t, fd, err, "memfd_create")
	}, unix.EINVAL},
	{"the_maps_own_fd", func(_ *testing.T, _ string, mapFD int) uint32 { return uint32(mapFD) }, unix.EINVAL},
}

// testDir makes a directory with a file f and a symlink l to it.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte(fileContent), 0o644))
	require.NoError(t, os.Symlink("f", filepath.Join(dir, "l")))
	return dir
}

// TestMapUpdateValues: BPF_MAP_UPDATE_ELEM with each kind of value.
func TestMapUpdateValues(t *testing.T) {
	skipUnlessV3(t)
	dir := testDir(t)
	for _, src := range fdSources {
		t.Run(src.name, func(t *testing.T) {
			m := newFSMap(t, 8)
			fd := src.open(t, dir, m)
			err := ll.MapUpdate(m, 0, fd, ll.UpdateAny)
			assert.True(t, isErrno(err, src.want), "update with %s (fd %d): got %s, want %s", src.name, fd, errName(err), errName(src.want))
		})
	}
	t.Run("bpffs_dir", func(t *testing.T) {
		m := newFSMap(t, 8)
		mnt := t.TempDir()
		var err error
		ll.RunOnRuleThread(func() {
			// A bpffs of this thread's own mount namespace.
			if err = unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return
			}
			if err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return
			}
			if err = unix.Mount("bpf", mnt, "bpf", 0, ""); err != nil {
				return
			}
			var fd int
			if fd, err = unix.Open(mnt, unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
				return
			}
			defer unix.Close(fd)
			err = ll.MapUpdate(m, 0, uint32(fd), ll.UpdateAny)
		})
		assert.ErrorIs(t, err, unix.EINVAL, "update with the root of a bpffs")
	})
}

// TestMapKeysAndFlags: keys out of range, update flags, delete, lookup,
// get_next_key, freeze, a read-only map fd.
func TestMapKeysAndFlags(t *testing.T) {
	skipUnlessV3(t)
	dir := testDir(t)
	value := func(t *testing.T) uint32 { return openFD(t, dir, unix.O_PATH) }

	t.Run("update_key_bounds", func(t *testing.T) {
		m := newFSMap(t, 8)
		v := value(t)
		assert.NoError(t, ll.MapUpdate(m, 7, v, ll.UpdateAny), "key 7 of 8")
		assert.ErrorIs(t, ll.MapUpdate(m, 8, v, ll.UpdateAny), unix.E2BIG, "key 8 of 8")
		assert.ErrorIs(t, ll.MapUpdate(m, 0xffffffff, v, ll.UpdateAny), unix.E2BIG, "key 0xffffffff")
	})
	t.Run("update_flags", func(t *testing.T) {
		m := newFSMap(t, 8)
		v := value(t)
		assert.ErrorIs(t, ll.MapUpdate(m, 0, v, ll.UpdateExist), unix.ENOENT, "BPF_EXIST on an empty key")
		assert.NoError(t, ll.MapUpdate(m, 0, v, ll.UpdateNoExist), "BPF_NOEXIST on an empty key")
		assert.ErrorIs(t, ll.MapUpdate(m, 0, v, ll.UpdateNoExist), unix.EEXIST, "BPF_NOEXIST on a taken key")
		assert.NoError(t, ll.MapUpdate(m, 0, v, ll.UpdateExist), "BPF_EXIST on a taken key")
		assert.NoError(t, ll.MapUpdate(m, 0, v, ll.UpdateAny), "BPF_ANY on a taken key")
		for _, f := range []uint64{3, ll.UpdateLock, 8, 1 << 32} {
			assert.ErrorIs(t, ll.MapUpdate(m, 1, v, f), unix.EINVAL, "update flags %#x", f)
		}
	})
	t.Run("delete", func(t *testing.T) {
		m := newFSMap(t, 8)
		require.NoError(t, ll.MapUpdate(m, 2, value(t), ll.UpdateAny))
		assert.NoError(t, ll.MapDelete(m, 2), "delete a taken key")
		assert.ErrorIs(t, ll.MapDelete(m, 2), unix.ENOENT, "delete it again")
		assert.ErrorIs(t, ll.MapDelete(m, 3), unix.ENOENT, "delete an empty key")
		assert.ErrorIs(t, ll.MapDelete(m, 8), unix.E2BIG, "delete key 8 of 8")
	})
	t.Run("lookup", func(t *testing.T) {
		m := newFSMap(t, 8)
		require.NoError(t, ll.MapUpdate(m, 0, value(t), ll.UpdateAny))
		for _, k := range []uint32{0, 1} {
			_, err := ll.MapLookup(m, k)
			assert.ErrorIs(t, err, unix.EOPNOTSUPP, "lookup of key %d", k)
		}
	})
	t.Run("get_next_key", func(t *testing.T) {
		m := newFSMap(t, 8)
		next, err := ll.MapGetNextKey(m, nil)
		assert.NoError(t, err, "get_next_key(NULL)")
		assert.Equal(t, uint32(0), next)
		for k := uint32(0); k < 7; k++ {
			next, err = ll.MapGetNextKey(m, &k)
			assert.NoError(t, err, "get_next_key(%d)", k)
			assert.Equal(t, k+1, next, "get_next_key(%d), every key, taken or not", k)
		}
		last := uint32(7)
		_, err = ll.MapGetNextKey(m, &last)
		assert.ErrorIs(t, err, unix.ENOENT, "get_next_key(7) of 8")
	})
	t.Run("freeze", func(t *testing.T) {
		m := newFSMap(t, 8)
		v := value(t)
		require.NoError(t, ll.MapUpdate(m, 0, v, ll.UpdateAny))
		require.NoError(t, ll.MapFreeze(m), "BPF_MAP_FREEZE")
		assert.ErrorIs(t, ll.MapUpdate(m, 1, v, ll.UpdateAny), unix.EPERM, "update after freeze")
		assert.ErrorIs(t, ll.MapUpdate(m, 0, v, ll.UpdateAny), unix.EPERM, "overwrite after freeze")
		assert.ErrorIs(t, ll.MapDelete(m, 0), unix.EPERM, "delete after freeze")
	})
	t.Run("rdonly_map", func(t *testing.T) {
		a := ll.FSMapAttr(8)
		a.MapFlags = ll.MapFlagRdonly
		m, err := ll.MapCreate(a)
		require.NoError(t, err)
		defer unix.Close(m)
		assert.ErrorIs(t, ll.MapUpdate(m, 0, value(t), ll.UpdateAny), unix.EPERM, "update through a BPF_F_RDONLY map's fd")
	})
}

// loadSocketFilter loads insns as a socket filter.
func loadSocketFilter(insns asm.Instructions) (*ebpf.Program, error) {
	return ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type: ebpf.SocketFilter, Instructions: insns, License: "GPL",
	}, ebpf.ProgramOptions{LogDisabled: true})
}

// TestVerifier: the helper with the map loads; every other use of the map
// and every other map, or none, in R2 is refused at load.
func TestVerifier(t *testing.T) {
	skipUnlessV3(t)
	m := newFSMap(t, 8)
	arr, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	require.NoError(t, err)
	defer arr.Close()
	ret0 := asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
	cat := func(parts ...asm.Instructions) asm.Instructions {
		var out asm.Instructions
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	lookup := func(fd int) asm.Instructions {
		return asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, fd),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
		}
	}
	beneath := asm.BuiltinFunc(ll.FuncFSBeneath).Call()
	for _, tc := range []struct {
		name   string
		insns  asm.Instructions
		socket bool
		want   error
	}{
		{"fs_beneath_fsmap", cat(ll.FSBeneathCall(asm.R1, m, 0), ret0), false, nil},
		{"fs_beneath_fsmap_flags_1", cat(ll.FSBeneathCall(asm.R1, m, 1), ret0), false, nil},
		{"map_lookup_elem_fsmap", cat(lookup(m), ret0), false, unix.EINVAL},
		{"fs_beneath_array_map", cat(ll.FSBeneathCall(asm.R1, arr.FD(), 0), ret0), false, unix.EINVAL},
		{"fs_beneath_r2_scalar_0", cat(asm.Instructions{asm.Mov.Imm(asm.R2, 0), asm.Mov.Imm(asm.R3, 0), beneath}, ret0), false, unix.EACCES},
		{"fs_beneath_r2_ctx", cat(asm.Instructions{asm.Mov.Reg(asm.R2, asm.R1), asm.Mov.Imm(asm.R3, 0), beneath}, ret0), false, unix.EACCES},
		{"socket_filter_ld_imm64_fsmap", cat(asm.Instructions{asm.LoadMapPtr(asm.R2, m)}, ret0), true, unix.EINVAL},
		{"socket_filter_calls_fs_beneath", cat(ll.FSBeneathCall(asm.R1, m, 0), ret0), true, unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *ebpf.Program
			var err error
			if tc.socket {
				p, err = loadSocketFilter(tc.insns)
			} else {
				p, err = ll.Load(tc.insns)
			}
			if p != nil {
				p.Close()
			}
			if tc.want == nil {
				assert.NoError(t, err, "the program must load:\n%v", tc.insns)
				return
			}
			assert.ErrorIs(t, err, tc.want, "the program must be refused:\n%v", tc.insns)
		})
	}
}
