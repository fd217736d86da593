#!/usr/bin/env bash
# make bench: times a cold run of the harness (empty harness cache, ccache
# and Go build cache) and a warm run (nothing changed), and the kernel's own kunit.py on
# the same source, cold and warm, then measures the Landlock eBPF rules'
# cost in the guest (below). Prints one JSON document on stdout
# (scripts/bench_report.py); the runs' own output goes to $BENCH_DIR/*.log.
# BENCH_HARNESS=0 skips the harness and kunit.py timings and measures only
# the rules, with the usual cache (CACHE_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/landlock-vmtest
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/landlock-vmtest-bench.XXXXXX)}
mkdir -p "$BENCH_DIR"
command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 >&2

now() { date +%s.%N; }

# harness_run NAME: one run with the bench's own cache; prints its wall time.
harness_run() {
	local name=$1 start end rc
	start=$(now)
	set +e
	CACHE_DIR="$BENCH_DIR/cache" GOCACHE="$BENCH_DIR/gocache" OUT="$BENCH_DIR/$name" TESTS="${TESTS:-./tests/...}" \
		"$BIN" run >"$BENCH_DIR/$name.log" 2>&1
	rc=$?
	set -e
	end=$(now)
	if [ $rc -ne 0 ]; then
		echo "bench: the $name run failed (exit $rc); see $BENCH_DIR/$name.log" >&2
		tail -5 "$BENCH_DIR/$name.log" >&2
		exit 1
	fi
	python3 -c "print($end - $start)"
}

# edit_one_line DIR: changes a line a patch of DIR adds to a .c file of
# security/landlock/ that no later patch touches (so that every patch
# still applies): a comment appended, the hunk's counts unchanged. It
# records which in DIR/.edited.
edit_one_line() {
	python3 - "$1" <<'PY'
import glob, sys
d = sys.argv[1]
later = set()
for p in sorted(glob.glob(f"{d}/0*.patch"), reverse=True):
    lines = open(p).read().split("\n")
    files = {l[6:] for l in lines if l.startswith("+++ b/")} | {l[6:] for l in lines if l.startswith("--- a/")}
    cur = None
    for i, l in enumerate(lines):
        if l.startswith("+++ b/"):
            cur = l[6:]
        elif (cur and cur not in later and cur.startswith("security/landlock/") and cur.endswith(".c")
              and l.startswith("+") and not l.startswith("+++") and l.rstrip().endswith(";")):
            lines[i] = l + " /* bench edit */"
            open(p, "w").write("\n".join(lines))
            open(f"{d}/.edited", "w").write(f"{p.rsplit('/', 1)[1]}: {cur}")
            sys.exit(0)
    later |= files
sys.exit("bench: no line to edit in the series")
PY
}

if [ "${BENCH_HARNESS:-1}" = 1 ]; then
	# Cold: empty harness cache (source, trees, builds, ccache, initramfs) and
	# an empty Go build cache for what the harness compiles.
	rm -rf "$BENCH_DIR/cache" "$BENCH_DIR/gocache"
	echo "bench: cold harness run (empty caches in $BENCH_DIR)" >&2
	cold=$(harness_run cold)
	echo "bench: warm harness run" >&2
	warm=$(harness_run warm)
	# The whole suite on 1 vCPU and on 2 (the kernel cached): the tests
	# stage's time, binaries side by side on 2.
	echo "bench: the suite on 1 vCPU" >&2
	smp1=$(SMP=1 harness_run smp1)
	echo "bench: the suite on 2 vCPUs" >&2
	smp2=$(SMP=2 harness_run smp2)

	# The inner loop: one line of one patch's C code changed (the series
	# copied, the line's end commented), then the smoke tests alone.
	edit="$BENCH_DIR/series-edit"
	rm -rf "$edit" && cp -r patches "$edit"
	edit_one_line "$edit"
	echo "bench: inner loop, $(cat "$edit/.edited")" >&2
	inner=$(SERIES="$edit/series" TESTS=./tests/smoke KSELFTESTS=none harness_run inner)

	# kunit.py on the same source (the tree the cold run extracted, copied:
	# the cache's files are shared through hard links and must not be
	# edited), with its own build directory: cold, warm, then after a
	# one-line edit of security/landlock/fs.c.
	src="$BENCH_DIR/kunit-src"
	rm -rf "$src" && cp -a "$(ls -d "$BENCH_DIR"/cache/src/*/ | head -1)" "$src"
	kunit_run() {
		local name=$1 start end rc
		start=$(now)
		set +e
		(cd "$src" && python3 tools/testing/kunit/kunit.py run --arch=x86_64 \
			--kunitconfig=security/landlock --build_dir="$BENCH_DIR/kunit-build" \
			--jobs="$(nproc)") >"$BENCH_DIR/kunit-$name.log" 2>&1
		rc=$?
		set -e
		end=$(now)
		if [ $rc -ne 0 ]; then
			echo "bench: kunit.py $name run failed (exit $rc); see $BENCH_DIR/kunit-$name.log" >&2
			echo null
			return
		fi
		python3 -c "print($end - $start)"
	}
	if [ "${KUNIT:-1}" = 1 ]; then
		echo "bench: kunit.py cold run" >&2
		kcold=$(kunit_run cold)
		echo "bench: kunit.py warm run" >&2
		kwarm=$(kunit_run warm)
		sed -i '0,/;$/s//; \/* bench edit *\//' "$src/security/landlock/fs.c"
		echo "bench: kunit.py after a one-line edit of security/landlock/fs.c" >&2
		kincr=$(kunit_run incremental)
	else
		kcold=null kwarm=null kincr=null
	fi
else
	cold=null warm=null kcold=null kwarm=null inner=null kincr=null smp1=null smp2=null
	# The rules' runs use the usual cache; a smoke run says which
	# accelerator this host gets.
	OUT="$BENCH_DIR/cold" TESTS=./tests/smoke KSELFTESTS=none "$BIN" run >"$BENCH_DIR/cold.log" 2>&1 || {
		echo "bench: the smoke run failed; see $BENCH_DIR/cold.log" >&2
		exit 1
	}
fi

# The Landlock eBPF rules' cost, measured in the guest by tests/bpfbench:
# the patched kernel, and the same series built with the option off, each
# booted BENCH_RUNS times (default 5) so that the JSON shows how much a
# figure moves from one boot to the next. Under TCG the guest's clock
# counts instructions (QEMU's -icount, ICOUNT=shift, default
# BENCH_ICOUNT_SHIFT): the figures are then instruction counts, the same
# whatever else the host does. Under KVM (or with ICOUNT= set empty) they
# are wall-clock times.
accel=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["accelerator"])' "$BENCH_DIR/cold/results.json")
if [ -z "${ICOUNT+set}" ]; then
	ICOUNT=
	[ "$accel" = tcg ] && ICOUNT=${BENCH_ICOUNT_SHIFT:-1}
fi
runs=${BENCH_RUNS:-5}
if [ "${BENCH_HARNESS:-1}" = 1 ]; then
	# The rules' runs reuse the cold run's cache.
	export CACHE_DIR="$BENCH_DIR/cache" GOCACHE="$BENCH_DIR/gocache"
fi
landlock_bench() {
	local name=$1 series=$2
	set +e
	# One vCPU: instruction counting runs the vCPUs in turn on one TCG
	# thread, and the figures stay comparable with earlier ones.
	SMP=1 OUT="$BENCH_DIR/$name" ICOUNT="$ICOUNT" SERIES="$series" TESTS=./tests/bpfbench KSELFTESTS=none "$BIN" run >"$BENCH_DIR/$name.log" 2>&1
	local rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		echo "bench: the $name run failed (exit $rc); see $BENCH_DIR/$name.log" >&2
	fi
}
if [ "${LANDLOCK_BENCH:-1}" = 1 ] && [ -d tests/bpfbench ]; then
	# The series with only the option off, as e2e.SeriesWithOptionOff
	# makes it: the fragment's other symbols (CGROUP_BPF, MEMCG, ...) stay,
	# so the two kernels differ by the option alone (and the e2e test's
	# kernel is this one, built once).
	off="$BENCH_DIR/series-off"
	rm -rf "$off" && cp -r patches "$off"
	sed -i 's/^CONFIG_SECURITY_LANDLOCK_BPF=y$/# CONFIG_SECURITY_LANDLOCK_BPF is not set/' "$off"/*.config
	if [ "$(grep -c '^# CONFIG_SECURITY_LANDLOCK_BPF is not set$' "$off"/*.config | awk -F: '{n += $NF} END {print n}')" != 1 ]; then
		echo "bench: the series' fragments must set CONFIG_SECURITY_LANDLOCK_BPF=y exactly once" >&2
		exit 1
	fi
	clock="wall clock"
	[ -n "$ICOUNT" ] && clock="instruction counting, ICOUNT=$ICOUNT"
	for i in $(seq 1 "$runs"); do
		echo "bench: Landlock eBPF rules, CONFIG_SECURITY_LANDLOCK_BPF=y, run $i of $runs ($clock)" >&2
		landlock_bench "landlock-y-$i" "$PWD/patches/series"
		echo "bench: Landlock eBPF rules, CONFIG_SECURITY_LANDLOCK_BPF=n, run $i of $runs ($clock)" >&2
		landlock_bench "landlock-n-$i" "$off/series"
	done
fi

python3 scripts/bench_report.py "$BENCH_DIR" "$cold" "$warm" "$kcold" "$kwarm" "${runs:-0}" "${ICOUNT:-}" "$accel" "$inner" "$kincr" "$smp1" "$smp2"

