#!/usr/bin/env bash
# Builds and tests every prefix 1..N of the series (the series must be
# bisectable): for each, the harness applies the first k patches, builds,
# boots and runs TESTS (default: the whole guest suite, whose tests skip
# what that prefix lacks). Prints one line per prefix and exits non-zero
# when one fails. (Issue 4's series-check will grow out of this.)
set -uo pipefail
cd "$(dirname "$0")/.."
series=${SERIES:-patches/series}
dir=$(dirname "$series")
mapfile -t patches < <(grep -v '^\s*#' "$series" | grep -v '^\s*$')
work=$(mktemp -d /tmp/series-prefixes.XXXXXX)
make -s build || exit 7
fail=0
for ((k = 1; k <= ${#patches[@]}; k++)); do
	p="$work/prefix-$k"
	mkdir -p "$p"
	cp "$dir"/*.config "$p"/ 2>/dev/null
	for ((i = 0; i < k; i++)); do cp "$dir/${patches[i]}" "$p/"; done
	printf '%s\n' "${patches[@]:0:k}" >"$p/series"
	start=$(date +%s)
	SERIES="$p/series" OUT="$work/out-$k" ./bin/landlock-vmtest run >"$work/prefix-$k.log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	printf 'prefix %d (%s): exit %d, %ds, %s\n' "$k" "${patches[k - 1]}" "$rc" "$took" "$(tail -1 "$work/prefix-$k.log")"
	[ $rc -eq 0 ] || fail=1
done
echo "logs in $work"
exit $fail
