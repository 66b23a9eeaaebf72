#!/usr/bin/env bash
# Benchmark of materializations (issue 6): N card payments of ~280 bytes over N/10 accounts
# (bench/materialize/gen.js; a merge at the root with sums, maxima and a last-write-wins
# field, bench/materialize/flow.yaml) are ingested once (not timed), one transaction per
# round of N/10 distinct accounts so that the lake holds all N documents; then
# `flowctl run --until-idle --materialization NAME` materializes them, from a copy of that
# data directory, into a table of a fresh database (every core allowed, lib.sh; `--threads`
# is passed when flowctl has one):
#   sqlite    a SQLite file in the scratch directory
#   postgres  a private PostgreSQL server (scripts/pg.sh, started here, stopped at exit)
# Each back-fill runs 3 times (a fresh copy of the lake into a fresh table each time), and
# the best is printed: source documents/s, wall and CPU time, peak RSS, rows written (one per
# key per transaction) and rows in the table. For PostgreSQL, each back-fill is followed by
# one run of psql loading the same final rows with `\copy ... FROM` into an empty table of the
# same DDL (psql's process included): flowctl's best time as a multiple of psql's best (both
# best of 3, measured alternately), with every time and the median-to-median ratio printed
# too; and the command lines. Checks that every run read N
# documents, that each table has one row per account whose events add up to N and amounts
# to the generator's total, and that its flow_document column equals
# `flowctl read --reduced`, row for row (whose time is printed too, as a floor: reading and
# combining the N documents without a target). Then, per target, one more round of N/10
# documents (every account once) is ingested and materialized against the populated table
# (a load and an update of every row), and its time printed. Targets: >= 150k docs/s into
# SQLite; PostgreSQL within 3x of the COPY time; printed met or MISSED, enforced only when
# N >= 1000000.
# Usage: bench/materialize_bench.sh FLOWCTL [N] [VARIANT...]   (default 1000000, sqlite postgres)
set -euo pipefail
if [[ $# -lt 1 ]]; then
  echo "usage: $0 FLOWCTL [N] [sqlite|postgres...]" >&2
  exit 2
fi
flowctl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") n=${2:-1000000}
shift $(($# >= 2 ? 2 : 1))
variants=("$@")
((${#variants[@]})) || variants=(sqlite postgres)
for v in "${variants[@]}"; do
  [[ $v == sqlite || $v == postgres ]] || { echo "$0: unknown variant $v (sqlite or postgres)" >&2; exit 2; }
done
keys=$((n / 10 > 0 ? n / 10 : 1))
seed=11 full=1000000 target_rate=150000 target_ratio=3 copies=3
here=$(cd "$(dirname "$0")" && pwd)
source_catalog=$here/materialize/flow.yaml
work=$(mktemp -d)
chmod 755 "$work" # the PostgreSQL server runs as another user when we are root
pgdir=$work/pg
trap '[[ -d $pgdir ]] && "$here/../scripts/pg.sh" stop "$pgdir" > /dev/null 2>&1; rm -rf "$work"' EXIT
export LC_ALL=C # byte order for sort, and '.' decimals for awk
source "$here/lib.sh"
threads_option run
if ((${#threads_opt[@]})); then
  echo "flowctl run: --threads $threads"
else
  echo "flowctl run: no --threads option"
fi

# Input data, cached per N, seed and generator version in the repository's build directory
# when there is one. The .meta file (the generator's summary) is moved in last: if it
# exists, the data beside it is complete.
if [[ -d $here/../build ]]; then cache=$(cd "$here/../build" && pwd)/bench-data; else cache=$work; fi
mkdir -p "$cache"
data=$cache/materialize-$n-$keys-$seed-$(cat "$here/materialize/gen.js" "$here/rng.js" | sha256sum | cut -c1-12).jsonl
if [[ -s $data && -s $data.meta ]]; then
  echo "data: $data (cached)"
else
  node "$here/materialize/gen.js" "$n" "$keys" "$seed" > "$data.$$" 2> "$work/gen" \
    || { cat "$work/gen"; rm -f "$data.$$"; exit 1; }
  mv -f "$data.$$" "$data"
  mv -f "$work/gen" "$data.meta.$$" && mv -f "$data.meta.$$" "$data.meta"
fi
sed 's/^gen: /data: /' "$data.meta"
accounts=$(sed -n 's/.* \([0-9]*\) distinct accounts.*/\1/p' "$data.meta")
cents=$(sed -n 's/.* \([0-9]*\) cents.*/\1/p' "$data.meta")
[[ -n $accounts && -n $cents ]] || { echo "FAIL: unexpected generator summary: $(cat "$data.meta")"; exit 1; }

# Ingest, one transaction per round of $keys lines (no account repeats within one).
base=$work/base
split -l "$keys" -d -a 6 "$data" "$work/round."
for f in "$work"/round.*; do
  "$flowctl" ingest bench/accounts "$f" --format json --source "$source_catalog" --data-dir "$base" \
    > /dev/null 2> "$work/ingest.err" || { cat "$work/ingest.err"; exit 1; }
  rm -f "$f"
done
echo "data: $n documents ingested in $(((n + keys - 1) / keys)) transactions ($(du -sh "$base/lake" | cut -f1) in the lake)"
# The expected table contents, and how long reading and combining the N documents takes
# without any target (a floor under any materialization that reads them all).
run reduced "$flowctl" read bench/accounts --reduced --source "$source_catalog" --data-dir "$base"
reduced_secs=$secs reduced_rss=$rss_mib reduced_cpu=$cpu_secs

# The catalog of the runs: the source catalog bound to a SQLite file beside it and, when
# PostgreSQL runs, to the private server (whose URI is only known once it started).
pg_uri=
psql_bin=
if [[ " ${variants[*]} " == *" postgres "* ]]; then
  pg_uri=$("$here/../scripts/pg.sh" start "$pgdir" | tail -n 1)
  psql_bin=$(ls -d /usr/lib/postgresql/*/bin/psql 2> /dev/null | sort -t/ -k5,5 -V | tail -n 1)
  [[ -n $psql_bin ]] || psql_bin=$(command -v psql)
fi
psql() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$pg_uri" -At "$@"; }
{
  echo "import: [\"$source_catalog\"]"
  echo "materializationTargets:"
  echo "  lite: {sqlite: {path: accounts.db}}"
  [[ -z $pg_uri ]] || echo "  pg: {postgres: {uri: \"$pg_uri\"}}"
  echo "materializations:"
  echo "  bench/to-sqlite:"
  echo "    target: lite"
  echo "    bindings: [{source: bench/accounts, table: accounts}]"
  if [[ -n $pg_uri ]]; then
    echo "  bench/to-postgres:"
    echo "    target: pg"
    echo "    bindings: [{source: bench/accounts, table: accounts}]"
  fi
} > "$work/flow.yaml"

# task_stats NAME VARIANT: $stats, $read_docs and $written from run NAME's summary line.
task_stats() {
  stats=$(grep -F "materialization \`bench/to-$2\`:" "$work/$1.err" || true)
  read_docs=$(sed -n 's/.*: \([0-9]*\) documents read, .*/\1/p' <<< "$stats")
  written=$(sed -n 's/.* read, \([0-9]*\) rows stored.*/\1/p' <<< "$stats")
}

printf '%-20s %10s %8s %7s %13s %13s %11s\n' run docs/s wall_s cpu_s peak_RSS_MiB rows_written table_rows
printf '%-20s %10s %8.2f %7s %13s %13s %11s\n' "read --reduced" \
  "$(rate "$n" "$reduced_secs")" "$reduced_secs" "$reduced_cpu" \
  "$reduced_rss" - "$(wc -l < "$work/reduced.out")"
declare -A rate wall walls
best_copy= copy_secs=()
for v in "${variants[@]}"; do
  if [[ $v == sqlite ]]; then
    q() { sqlite3 -batch -noheader "$work/accounts.db" "$1"; }
  else
    q() { psql -c "$1"; }
  fi
  # $copies back-fills, each from a fresh copy of the lake into a fresh table; for
  # PostgreSQL each followed by one `\copy` of the final rows (below), so that both are
  # measured as often, and at the same times of the run (this machine's speed drifts).
  best= all=
  for ((a = 1; a <= copies; a++)); do
    dir=$work/data-$v
    rm -rf "$dir" "$work/accounts.db" "$work/accounts.db-wal" "$work/accounts.db-shm"
    cp -a "$base" "$dir"
    [[ $v == sqlite ]] || psql -c 'SET client_min_messages = warning; DROP TABLE IF EXISTS accounts, flow_checkpoints'
    run "$v$a" "$flowctl" run --until-idle --source "$work/flow.yaml" --data-dir "$dir" --materialization "bench/to-$v" \
      "${threads_opt[@]}"
    task_stats "$v$a" "$v"
    [[ $read_docs == "$n" ]] || fail "$v: ${read_docs:-no} documents read, expected $n ($stats)"
    read -r rows events total < <(q 'SELECT count(*), sum(events), sum("amountCents") FROM accounts' | tr '|' ' ')
    [[ $rows == "$accounts" ]] || fail "$v: $rows rows, expected one per account ($accounts)"
    [[ $events == "$n" ]] || fail "$v: events add up to $events, expected $n"
    [[ $total == "$cents" ]] || fail "$v: amountCents add up to $total, expected $cents"
    q 'SELECT flow_document FROM accounts ORDER BY account' > "$work/$v.table"
    cmp -s "$work/$v.table" "$work/reduced.out" \
      || fail "$v: flow_document differs from flowctl read --reduced: $(diff "$work/$v.table" "$work/reduced.out" | head -n 3 | tr '\n' ' ')"
    all+="$secs "
    if [[ -z $best ]] || awk -v a="$best" -v b="$secs" 'BEGIN { exit !(b < a) }'; then
      best=$secs best_cpu=$cpu_secs best_rss=$rss_mib best_written=${written:-?}
    fi
    if [[ $v == postgres ]]; then
      # The COPY baseline: flowctl's final rows (as the first back-fill left them) loaded by
      # psql into an empty table of the same DDL (LIKE ... INCLUDING ALL: columns, types,
      # NOT NULL, primary key).
      if ((a == 1)); then
        psql -c "\\copy accounts TO '$work/rows.copy'"
        psql -c 'CREATE TABLE copy_baseline (LIKE accounts INCLUDING ALL)'
      fi
      psql -c 'TRUNCATE copy_baseline'
      run "copy$a" "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$pg_uri" -c "\\copy copy_baseline FROM '$work/rows.copy'"
      copy_secs+=("$secs")
      if [[ -z $best_copy ]] || awk -v a="$best_copy" -v b="$secs" 'BEGIN { exit !(b < a) }'; then
        best_copy=$secs best_copy_cpu=$cpu_secs best_copy_rss=$rss_mib
      fi
      copied=$(psql -c 'SELECT count(*) FROM copy_baseline')
      [[ $copied == "$accounts" ]] || fail "COPY baseline: $copied rows, expected $accounts"
    fi
  done
  r=$(rate "$n" "$best")
  rate[$v]=$r wall[$v]=$best walls[$v]=$all
  printf '%-20s %10s %8.2f %7s %13s %13s %11s\n' "materialize $v" "$r" "$best" "$best_cpu" "$best_rss" "$best_written" "$rows"

  # Steady state: one more round (the data's first $keys lines: each account once) against
  # the populated table, which loads and updates every row.
  head -n "$keys" "$data" > "$work/update.jsonl"
  "$flowctl" ingest bench/accounts "$work/update.jsonl" --format json --source "$source_catalog" --data-dir "$dir" \
    > /dev/null 2> "$work/ingest.err" || { cat "$work/ingest.err"; exit 1; }
  run "$v-update" "$flowctl" run --until-idle --source "$work/flow.yaml" --data-dir "$dir" --materialization "bench/to-$v" \
    "${threads_opt[@]}"
  task_stats "$v-update" "$v"
  [[ $read_docs == "$keys" ]] || fail "$v update: ${read_docs:-no} documents read, expected $keys ($stats)"
  read -r rows events < <(q 'SELECT count(*), sum(events) FROM accounts' | tr '|' ' ')
  [[ $rows == "$accounts" ]] || fail "$v update: $rows rows, expected $accounts"
  [[ $events == "$((n + keys))" ]] || fail "$v update: events add up to $events, expected $((n + keys))"
  printf '%-20s %10s %8.2f %7s %13s %13s %11s\n' "update $v" \
    "$(rate "$keys" "$secs")" "$secs" "$cpu_secs" "$rss_mib" \
    "${written:-?}" "$rows"
  rm -rf "$dir"
done

# median VALUES...: the middle one (the lower of the two middle ones).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for v in "${variants[@]}"; do
  echo "materialize $v, each of $copies back-fills (s): ${walls[$v]}"
done
if [[ -n $pg_uri ]]; then
  printf '%-20s %10s %8.2f %7s %13s %13s %11s\n' "psql \\copy (best/$copies)" - "$best_copy" "$best_copy_cpu" "$best_copy_rss" "$accounts" "$accounts"
  echo "psql \\copy, each of $copies (s): ${copy_secs[*]}"
  ratio=$(awk -v f="${wall[postgres]}" -v c="$best_copy" 'BEGIN { printf "%.2f", f / (c < 0.01 ? 0.01 : c) }')
  median_ratio=$(awk -v f="$(median ${walls[postgres]})" -v c="$(median "${copy_secs[@]}")" \
    'BEGIN { printf "%.2f", f / (c < 0.01 ? 0.01 : c) }')
  echo "PostgreSQL: flowctl ${wall[postgres]} s vs psql \\copy of the final rows $best_copy s (best of $copies each): flowctl takes ${ratio}x COPY's time (${median_ratio}x median to median)"
fi

show_commands

# miss WHAT FIGURE: a missed target, a failure when N is the full size.
miss() {
  if ((n >= full)); then fail "target $1 MISSED ($2)"; else echo "target $1: MISSED ($2; smoke run, not enforced)"; fi
}
if [[ -n ${rate[sqlite]:-} ]]; then
  if ((rate[sqlite] >= target_rate)); then
    echo "target >= $target_rate docs/s into SQLite: met (${rate[sqlite]} docs/s)"
  else
    miss ">= $target_rate docs/s into SQLite" "${rate[sqlite]} docs/s"
  fi
fi
if [[ -n $pg_uri ]]; then
  if awk -v r="$ratio" -v t="$target_ratio" 'BEGIN { exit !(r <= t) }'; then
    echo "target PostgreSQL within ${target_ratio}x of COPY: met (${ratio}x)"
  else
    miss "PostgreSQL within ${target_ratio}x of COPY" "${ratio}x"
  fi
fi
if ((failures > 0)); then
  echo "materialize benchmark: $failures check(s) or target(s) FAILED"
  exit 1
fi
if ((n < full)); then
  echo "materialize benchmark: checks passed (smoke run: N=$n < $full, targets not enforced)"
else
  echo "materialize benchmark: checks passed, targets met"
fi
