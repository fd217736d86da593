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

# The Landlock eBPF rules' cost, measured in the guest by tests/bpfbench:
# the patched kernel, and the same series built with the option off.
landlock_bench() {
	local name=$1 series=$2
	set +e
	CACHE_DIR="$BENCH_DIR/cache" GOCACHE="$BENCH_DIR/gocache" OUT="$BENCH_DIR/$name" \
		SERIES="$series" TESTS=./tests/bpfbench "$BIN" run >"$BENCH_DIR/$name.log" 2>&1
	local rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		echo "bench: the $name run failed (exit $rc); see $BENCH_DIR/$name.log" >&2
	fi
}
if [ "${LANDLOCK_BENCH:-1}" = 1 ] && [ -d tests/bpfbench ]; then
	echo "bench: Landlock eBPF rules, CONFIG_SECURITY_LANDLOCK_BPF=y" >&2
	landlock_bench landlock-y "$PWD/patches/series"
	off="$BENCH_DIR/series-off"
	rm -rf "$off" && cp -r patches "$off"
	printf '# CONFIG_SECURITY_LANDLOCK_BPF is not set\n' >"$off/landlock-bpf.config"
	echo "bench: Landlock eBPF rules, CONFIG_SECURITY_LANDLOCK_BPF=n" >&2
	landlock_bench landlock-n "$off/series"
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
def bench_lines(name):
    try:
        doc = json.load(open(f"{d}/{name}/results.json"))
    except OSError:
        return None
    lines = {}
    for ev in doc.get("events") or []:
        out = ((ev.get("Test") or {}).get("Output") or "")
        i = out.find("bench: op=")
        if i < 0:
            continue
        fields = dict(f.split("=", 1) for f in out[i + len("bench: "):].split() if "=" in f)
        # cgroup= (ABI version 2 on): 0 (no cgroup program, as in the
        # lines without it), 1 or sibling; the cgroup=0 keys stay those
        # of the lines before it.
        key = f'{fields["op"]} rules={fields["rules"]}'
        cgroup = fields.get("cgroup", "0")
        if cgroup != "0":
            key += f" cgroup={cgroup}"
        # rule=fs_beneath (ABI version 3 on): the canonical "write only
        # beneath D" rule (rules=1) or none (rules=0), on a file depth=
        # directories below D (dir=inside) or below its sibling
        # (dir=outside, where the open is denied with EPERM).
        if "rule" in fields:
            key += f' rule={fields["rule"]} depth={fields["depth"]} dir={fields["dir"]}'
        lines[key] = float(fields["ns/op"])
    return lines
y, n = bench_lines("landlock-y"), bench_lines("landlock-n")
if y is not None:
    out["landlock_bpf_ns_per_op"] = {"option_on": y, "option_off": n}
    ratios = {}
    for op in ("open+close", "stat"):
        base = (n or {}).get(f"{op} rules=0")
        zero, one = y.get(f"{op} rules=0"), y.get(f"{op} rules=1")
        if base and zero:
            ratios[f"{op}: 0 rules vs option off"] = round(zero / base, 3)
        if zero and one:
            ratios[f"{op}: 1 rule vs 0 rules"] = round(one / zero, 3)
        # A program on the task's cgroup, or on a sibling only (the static
        # key on, the task's cgroup empty), against none, with as many
        # rules of the task's own.
        for rules in (0, 1):
            without = y.get(f"{op} rules={rules}")
            for cgroup in ("1", "sibling"):
                with_cg = y.get(f"{op} rules={rules} cgroup={cgroup}")
                if without and with_cg:
                    noun = "rule" if rules == 1 else "rules"
                    ratios[f"{op}: cgroup={cgroup} vs cgroup=0, {rules} {noun}"] = round(with_cg / without, 3)
    # The canonical fs_beneath rule against no rule on the same file, and
    # a file 8 directories below D against one 1 below (both under the
    # rule). Outside D the open is the EPERM path.
    for op in ("open-wronly+close", "stat"):
        for where in ("inside", "outside"):
            for depth in (1, 8):
                base = y.get(f"{op} rules=0 rule=fs_beneath depth={depth} dir={where}")
                ruled = y.get(f"{op} rules=1 rule=fs_beneath depth={depth} dir={where}")
                if base and ruled:
                    ratios[f"{op}: fs_beneath rule vs none, depth={depth} dir={where}"] = round(ruled / base, 3)
            one = y.get(f"{op} rules=1 rule=fs_beneath depth=1 dir={where}")
            eight = y.get(f"{op} rules=1 rule=fs_beneath depth=8 dir={where}")
            if one and eight:
                ratios[f"{op}: fs_beneath rule, depth=8 vs depth=1, dir={where}"] = round(eight / one, 3)
    out["landlock_bpf_ratios"] = ratios
print(json.dumps(out, indent=2))
PY
