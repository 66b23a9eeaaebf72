#!/usr/bin/env bash
# Benchmark of `flowctl combine`: N generated events of ~300 bytes (bench/combine/gen.js) over
# KEYS ids of collection bench/events (bench/combine/flow.yaml), combined with the default
# memory budget and with --memory-budget 64MiB, next to a parse-only RapidJSON baseline
# (bench/combine/json_parse.cc) and to DuckDB's equivalent reduction of the same file in the
# same run: read_json of the lines and a GROUP BY id with the schema's reductions (sums,
# maximum, the last value in file order, lists concatenated in file order, counts per kind),
# written as JSON lines in id order (bench/peers/duckdb.js). Each tool may use every core
# and gets the same thread count (lib.sh: BENCH_THREADS, default nproc; `--threads` is passed
# to flowctl when it has one). Prints docs/s, MB/s (10^6 input bytes), wall and CPU time,
# peak RSS and output keys per run, flowctl's docs/s as a fraction of the baseline's, its
# speed relative to DuckDB's (DuckDB's time / flowctl's) and the command lines. Fails (exit
# 1) unless both flowctl outputs are byte-identical, have one line per distinct id in
# strictly increasing id order, their event counts add up to N, and DuckDB's result holds
# the same documents. Targets: >= 400000 docs/s at the default budget, peak RSS < 300 MiB at
# 64MiB, at least DuckDB's speed (ratio >= 1.0); enforced only when N >= 1000000 (a smaller N
# is a smoke run, as in the test suite, which skips DuckDB when it cannot be installed).
# DuckDB's order-free query (last() and list() without ORDER BY, which do not give
# flowctl's result) is timed too, for information.
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
threads_option combine
if ((${#threads_opt[@]})); then
  echo "flowctl combine: --threads $threads"
else
  echo "flowctl combine: no --threads option (one thread)"
fi
duckdb_setup "$n" "$full"

# Baseline: its own figures (parsing only, without process start-up).
parse_baseline "$baseline" "$data"
if [[ $base_docs != "$n" ]]; then
  echo "FAIL: the baseline parsed $base_docs docs, expected $n"
  exit 1
fi
printf '%-26s %10s %8s %8s %7s %13s %9s %12s\n' run docs/s MB/s wall_s cpu_s peak_RSS_MiB keys vs_baseline
printf '%-26s %10.0f %8.1f %8.2f %7s %13s %9s %12s\n' "parse baseline" "$base_rate" "$base_mbs" \
  "$secs" "$cpu_secs" "$rss_mib" - 1.00x

# row LABEL KEYS: the table row of the last run.
row() {
  awk -v label="$1" -v n="$n" -v b="$bytes" -v s="$secs" -v cpu="$cpu_secs" -v rss="$rss_mib" \
    -v k="$2" -v base="$base_rate" 'BEGIN {
      t = s < 0.01 ? 0.01 : s # /usr/bin/time has 10 ms resolution
      printf "%-26s %10.0f %8.1f %8.2f %7s %13s %9d %11.2fx\n", label, n / t, b / 1e6 / t, s, cpu,
        rss, k, n / t / base }'
}

# check_output LABEL FILE: one line per distinct id, in strictly increasing id order, whose
# counts add up to N.
check_output() {
  local label=$1 out=$2 lines ids sum
  lines=$(wc -l < "$out")
  [[ $lines -eq $distinct ]] || fail "$label: $lines output lines for $distinct distinct ids"
  ids=$(grep -oE '"id" *: *"[^"]*"' "$out" | wc -l || true)
  [[ $ids -eq $lines ]] || fail "$label: $ids of $lines output lines carry an \"id\""
  grep -oE '"id" *: *"[^"]*"' "$out" | sort -c -u 2> "$work/order" \
    || fail "$label: output not in strictly increasing key order: $(cat "$work/order")"
  sum=$(grep -oE '"count" *: *[0-9]+' "$out" | awk -F: '{ s += $2 } END { printf "%.0f", s }' || true)
  [[ $sum == "$n" ]] || fail "$label: reduced counts add up to $sum, not $n"
}

# combine NAME LABEL [OPTION...]: one combine run, its figures, and the checks of its output.
combine() {
  local name=$1 label=$2
  shift 2
  run "$name" "$flowctl" combine --collection bench/events --source "$catalog" "${threads_opt[@]}" "$@" "$data"
  row "$label" "$(wc -l < "$work/$name.out")"
  rate=$(rate "$n" "$secs")
  check_output "$label" "$work/$name.out"
}

combine default "default budget"
rate_default=$rate secs_default=$secs
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

# DuckDB's equivalent reduction: `o` is the line's position in the file, which orders the
# last values and the concatenated lists as flowctl's reductions do. The columns are the
# schema's; by_kind, an object of counts per kind, is a struct of the generator's six kinds
# (what DuckDB's own schema detection makes of it).
duckdb_query() { # ORDERED(1|0) OUTPUT
  local last='arg_max(%s, o)' list='flatten(list(tags ORDER BY o))'
  local numbered='WITH ORDINALITY AS t(id, "count", total, last_seen, region, page, user_agent, tags, by_kind, o)'
  if (($1 == 0)); then last='last(%s)' list='flatten(list(tags))' numbered=; fi
  cat << SQL
COPY (
  SELECT id, sum("count") AS "count", sum(total) AS total, max(last_seen) AS last_seen,
    $(printf "$last" region) AS region, $(printf "$last" page) AS page,
    $(printf "$last" user_agent) AS user_agent,
    $list AS tags,
    {'click': sum(by_kind.click), 'view': sum(by_kind.view), 'scroll': sum(by_kind.scroll),
     'hover': sum(by_kind.hover), 'share': sum(by_kind.share),
     'purchase': sum(by_kind.purchase)} AS by_kind
  FROM read_json($(sql_string "$data"), format = 'newline_delimited', columns = {
    id: 'VARCHAR', "count": 'BIGINT', total: 'DOUBLE', last_seen: 'VARCHAR', region: 'VARCHAR',
    page: 'VARCHAR', user_agent: 'VARCHAR', tags: 'VARCHAR[]',
    by_kind: 'STRUCT(click BIGINT, "view" BIGINT, scroll BIGINT, hover BIGINT, share BIGINT, purchase BIGINT)'})
    $numbered
  GROUP BY id ORDER BY id
) TO $(sql_string "$2") (FORMAT json)
SQL
}
ratio=
if ((${#duckdb[@]})); then
  duckdb_query 1 "$work/duckdb.jsonl" > "$work/duckdb.sql"
  run duckdb "${duckdb[@]}" "$work/duckdb.sql"
  row "duckdb GROUP BY" "$(wc -l < "$work/duckdb.jsonl")"
  secs_duckdb=$secs
  check_output "duckdb" "$work/duckdb.jsonl"
  node "$here/peers/same_docs.js" "$work/default.out" "$work/duckdb.jsonl" > "$work/same" \
    || fail "DuckDB's result differs from flowctl's: $(cat "$work/same")"
  duckdb_query 0 "$work/duckdb-unordered.jsonl" > "$work/duckdb-unordered.sql"
  run duckdb-unordered "${duckdb[@]}" "$work/duckdb-unordered.sql"
  row "duckdb, file order lost" "$(wc -l < "$work/duckdb-unordered.jsonl")"
  secs_unordered=$secs
  ratio=$(awk -v d="$secs_duckdb" -v f="$secs_default" 'BEGIN { printf "%.2f", d / (f < 0.01 ? 0.01 : f) }')
  echo "DuckDB ($(head -n 1 "$work/duckdb.err")): $(cat "$work/same") as flowctl's"
  echo "flowctl $secs_default s vs DuckDB's equivalent GROUP BY $secs_duckdb s: flowctl at ${ratio}x of DuckDB's speed" \
    "(DuckDB's order-free query, whose last values and lists differ: $secs_unordered s," \
    "$(awk -v d="$secs_unordered" -v f="$secs_default" 'BEGIN { printf "%.2f", d / (f < 0.01 ? 0.01 : f) }')x)"
fi
show_commands
if ((${#duckdb[@]})); then
  echo "DuckDB's SQL (duckdb-unordered: last(x) and list(tags) for arg_max(x, o) and list(tags ORDER BY o), no ordinality):"
  sed 's/^/  /' "$work/duckdb.sql"
fi

rate_verdict=$(awk -v r="$rate_default" -v t="$target_rate" 'BEGIN { print (r >= t ? "met" : "MISSED") }')
rss_verdict=$(awk -v r="$rss_small" -v t="$target_rss" 'BEGIN { print (r < t ? "met" : "MISSED") }')
echo "target >= $target_rate docs/s at the default budget: $rate_verdict ($rate_default docs/s)"
echo "target peak RSS < $target_rss MiB at $small_budget: $rss_verdict ($rss_small MiB)"
peer_verdict=met
if [[ -n $ratio ]]; then
  peer_verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 1.0 ? "met" : "MISSED") }')
  echo "target at least DuckDB's speed (ratio >= 1.0): $peer_verdict (${ratio}x)"
fi
if ((failures > 0)); then
  echo "combine benchmark: $failures check(s) FAILED"
  exit 1
fi
if ((n < full)); then
  echo "combine benchmark: checks passed (smoke run: N=$n < $full, targets not enforced)"
elif [[ $rate_verdict == met && $rss_verdict == met && $peer_verdict == met ]]; then
  echo "combine benchmark: checks passed, targets met"
else
  echo "combine benchmark: checks passed, targets MISSED"
  exit 1
fi
