#!/usr/bin/env bash
# make bench: times a cold run of the harness (empty harness cache, ccache
# and Go build cache) and a warm run (nothing changed), and the kernel's own kunit.py on
# the same source, cold and warm. Prints one JSON document on stdout; the
# runs' own output goes to $BENCH_DIR/*.log.
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

# Cold: empty harness cache (source, trees, builds, ccache, initramfs) and
# an empty Go build cache for what the harness compiles.
rm -rf "$BENCH_DIR/cache" "$BENCH_DIR/gocache"
echo "bench: cold harness run (empty caches in $BENCH_DIR)" >&2
cold=$(harness_run cold)
echo "bench: warm harness run" >&2
warm=$(harness_run warm)

# kunit.py on the same source tree (the one the cold run extracted), with
# its own build directory, cold then warm.
src=$(ls -d "$BENCH_DIR"/cache/src/*/ | head -1)
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
else
	kcold=null kwarm=null
fi

python3 - "$BENCH_DIR" "$cold" "$warm" "$kcold" "$kwarm" <<'PY'
import json, sys
d, cold, warm, kcold, kwarm = sys.argv[1:]
def run(name, wall):
    md = json.load(open(f"{d}/{name}/results.json"))["metadata"]
    return {
        "wall_seconds": round(float(wall), 1),
        "stages": {s["name"]: round(s["seconds"], 2) for s in md["stages"]},
        "qemu_start_to_first_test_event_seconds": round(md["first_test_seconds"], 2),
        "accelerator": md["accelerator"],
        "exit_code": md["exit_code"],
    }
def num(v):
    return None if v == "null" else round(float(v), 1)
out = {
    "cold": run("cold", cold),
    "warm": run("warm", warm),
    "kunit": {"cold_wall_seconds": num(kcold), "warm_wall_seconds": num(kwarm),
              "command": "kunit.py run --arch=x86_64 --kunitconfig=security/landlock --build_dir=..."},
    "logs": d,
}
print(json.dumps(out, indent=2))
PY
