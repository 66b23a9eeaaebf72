#!/usr/bin/env bash
# Benchmark of `flowctl combine`: N generated events of ~300 bytes (bench/combine/gen.js) over
# KEYS ids of collection bench/events (bench/combine/flow.yaml), combined on one core with the
# default memory budget and with --memory-budget 64MiB, next to a parse-only RapidJSON
# baseline (bench/combine/json_parse.cc). Prints docs/s, MB/s (10^6 input bytes), wall time,
# peak RSS and output keys per run, and flowctl's docs/s as a fraction of the baseline's.
# Fails (exit 1) unless both outputs are byte-identical, have one line per distinct id in
# strictly increasing id order, and their event counts add up to N. Targets: >= 400000 docs/s
# at the default budget, peak RSS < 300 MiB at 64MiB; enforced only when N >= 1000000 (a
# smaller N is a smoke run, as in the test suite).
# Usage: bench/combine_bench.sh FLOWCTL PARSE_BASELINE [N] [KEYS]   (defaults 1000000 100000)
set -euo pipefail
if [[ $# -lt 2 || $# -gt 4 ]]; then
  echo "usage: $0 FLOWCTL PARSE_BASELINE [N] [KEYS]" >&2
  exit 2
fi
flowctl=$1 baseline=$2 n=${3:-1000000} keys=${4:-100000}
seed=42 full=1000000 target_rate=400000 target_rss=300 small_budget=64MiB
here=$(cd "$(dirname "$0")" && pwd)
catalog=$here/combine/flow.yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C # byte order for sort, and '.' decimals for awk

# Input data, cached per N, KEYS, seed and generator version in the repository's build
# directory when there is one. The .keys file (distinct ids) is moved in last: if it exists,
# the data beside it is complete.
if [[ -d $here/../build ]]; then cache=$(cd "$here/../build" && pwd)/bench-data; else cache=$work; fi
mkdir -p "$cache"
data=$cache/combine-$n-$keys-$seed-$(cat "$here/combine/gen.js" "$here/rng.js" | sha256sum | cut -c1-12).jsonl
if [[ -s $data && -s $data.keys ]]; then
  echo "data: $data (cached)"
else
  node "$here/combine/gen.js" "$n" "$keys" "$seed" > "$data.$$" 2> "$work/gen" \
    || { cat "$work/gen"; rm -f "$data.$$"; exit 1; }
  sed 's/^gen: /data: generated /' "$work/gen"
  # Every line starts {"id":"...", so the id is the fourth "-separated field.
  cut -d'"' -f4 "$data.$$" | sort -u | wc -l > "$work/keys"
  mv -f "$data.$$" "$data"
  mv -f "$work/keys" "$data.keys.$$" && mv -f "$data.keys.$$" "$data.keys"
fi
distinct=$(< "$data.keys")
bytes=$(stat -c %s "$data")
awk -v n="$n" -v b="$bytes" -v k="$distinct" 'BEGIN {
  printf "data: %d docs, %.1f MB (%.1f bytes/doc), %d distinct ids\n", n, b / 1e6, n ? b / n : 0, k }'

source "$here/lib.sh"

# Baseline: its own figures (parsing only, without process start-up).
parse_baseline "$baseline" "$data"
if [[ $base_docs != "$n" ]]; then
  echo "FAIL: the baseline parsed $base_docs docs, expected $n"
  exit 1
fi
printf '%-22s %10s %8s %8s %13s %9s %12s\n' run docs/s MB/s wall_s peak_RSS_MiB keys vs_baseline
printf '%-22s %10.0f %8.1f %8.2f %13s %9s %12s\n' "parse baseline" "$base_rate" "$base_mbs" \
  "$secs" "$rss_mib" - 1.00x

# combine NAME LABEL [OPTION...]: one combine run, its figures, and the checks of its output.
combine() {
  local name=$1 label=$2 out lines ids sum
  shift 2
  run "$name" "$flowctl" combine --collection bench/events --source "$catalog" "$@" "$data"
  out=$work/$name.out
  lines=$(wc -l < "$out")
  awk -v label="$label" -v n="$n" -v b="$bytes" -v s="$secs" -v rss="$rss_mib" -v k="$lines" \
    -v base="$base_rate" 'BEGIN {
      t = s < 0.01 ? 0.01 : s # /usr/bin/time has 10 ms resolution
      printf "%-22s %10.0f %8.1f %8.2f %13s %9d %11.2fx\n", label, n / t, b / 1e6 / t, s, rss, k,
        n / t / base }'
  rate=$(rate "$n" "$secs")
  [[ $lines -eq $distinct ]] || fail "$label: $lines output lines for $distinct distinct ids"
  ids=$(grep -oE '"id" *: *"[^"]*"' "$out" | wc -l || true)
  [[ $ids -eq $lines ]] || fail "$label: $ids of $lines output lines carry an \"id\""
  grep -oE '"id" *: *"[^"]*"' "$out" | sort -c -u 2> "$work/order" \
    || fail "$label: output not in strictly increasing key order: $(cat "$work/order")"
  sum=$(grep -oE '"count" *: *[0-9]+' "$out" | awk -F: '{ s += $2 } END { printf "%.0f", s }' || true)
  [[ $sum == "$n" ]] || fail "$label: reduced counts add up to $sum, not $n"
}

combine default "default budget"
rate_default=$rate
combine small "--memory-budget $small_budget" --memory-budget "$small_budget"
rss_small=$rss_mib

sum_default=$(sha256sum < "$work/default.out" | cut -c1-64)
sum_small=$(sha256sum < "$work/small.out" | cut -c1-64)
if [[ $sum_default == "$sum_small" ]]; then
  echo "outputs identical: sha256 $sum_default"
else
  fail "outputs differ: sha256 $sum_default (default) vs $sum_small ($small_budget):" \
    "$(cmp "$work/default.out" "$work/small.out" 2>&1 | head -n 1)"
fi

rate_verdict=$(awk -v r="$rate_default" -v t="$target_rate" 'BEGIN { print (r >= t ? "met" : "MISSED") }')
rss_verdict=$(awk -v r="$rss_small" -v t="$target_rss" 'BEGIN { print (r < t ? "met" : "MISSED") }')
echo "target >= $target_rate docs/s at the default budget: $rate_verdict ($rate_default docs/s)"
echo "target peak RSS < $target_rss MiB at $small_budget: $rss_verdict ($rss_small MiB)"
if ((failures > 0)); then
  echo "combine benchmark: $failures check(s) FAILED"
  exit 1
fi
if ((n < full)); then
  echo "combine benchmark: checks passed (smoke run: N=$n < $full, targets not enforced)"
elif [[ $rate_verdict == met && $rss_verdict == met ]]; then
  echo "combine benchmark: checks passed, targets met"
else
  echo "combine benchmark: checks passed, targets MISSED"
  exit 1
fi
