# Shared pieces of the benchmark scripts. Source it after setting $work (a scratch
# directory). Provides:
#   pin                  the command prefix of every run: empty (the default: a run may use
#                        every core, as its peers do), or `taskset -c 0` with BENCH_PIN=1
#   threads              the threads every tool is given: BENCH_THREADS, by default the cores
#                        available (nproc), or 1 with BENCH_PIN=1
#   fail MESSAGE...      prints FAIL and counts it in $failures
#   run NAME COMMAND...  runs COMMAND (with $pin) under /usr/bin/time, stdout to $work/NAME.out,
#                        stderr to $work/NAME.err; sets $secs (wall), $cpu_secs (user + system)
#                        and $rss_mib (peak RSS), and records the command line for
#                        show_commands; a failing command ends the benchmark
#   show_commands        prints the command line of every run so far, one per line
#   rate DOCS SECS       prints DOCS / SECS, rounded (SECS under 0.01 counts as 0.01)
#   threads_option SUBCOMMAND
#                        sets the array $threads_opt to (--threads $threads) when `flowctl
#                        SUBCOMMAND --help` offers --threads, else to nothing ($flowctl must be set)
#   duckdb_setup N FULL  makes DuckDB (the npm package @duckdb/node-api, scripts/npm-deps.sh)
#                        available: sets $duckdb to the command prefix running bench/peers/duckdb.js
#                        with $threads threads (usage: "${duckdb[@]}" SQL_FILE), or, when it
#                        cannot be installed, leaves $duckdb empty and either fails (N >= FULL)
#                        or says the DuckDB comparison is skipped (a smoke run)
#   sql_string TEXT      prints TEXT as an SQL string literal
#   parse_baseline BASELINE DATA
#                        runs the RapidJSON parse baseline; sets $base_rate, $base_docs,
#                        $base_mbs (and $secs, $rss_mib)

pin=()
if [[ ${BENCH_PIN:-0} == 1 ]]; then
  if command -v taskset > /dev/null && taskset -c 0 true 2> /dev/null; then
    pin=(taskset -c 0)
  else
    echo "BENCH_PIN=1 but taskset is unavailable or CPU 0 is not allowed: runs not pinned"
  fi
fi
if ((${#pin[@]})); then
  threads=${BENCH_THREADS:-1}
  echo "runs pinned to CPU 0 (BENCH_PIN=1: taskset -c 0), $threads thread(s) per tool"
else
  threads=${BENCH_THREADS:-$(nproc)}
  echo "runs not pinned: every tool may use all $(nproc) cores, $threads thread(s) per tool (BENCH_PIN=1 pins to CPU 0)"
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

run() {
  local name=$1 kb user sys
  shift
  printf '%s:' "$name" >> "$work/commands"
  printf ' %q' "${pin[@]}" "$@" >> "$work/commands"
  echo >> "$work/commands"
  if ! "${pin[@]}" /usr/bin/time -f '%e %M %U %S' -o "$work/$name.time" "$@" \
    > "$work/$name.out" 2> "$work/$name.err"; then
    echo "FAIL: $* exited non-zero:"
    sed 's/^/  /' "$work/$name.err" | head -n 20
    tail -n 1 "$work/$name.time" 2> /dev/null | sed 's/^/  /'
    exit 1
  fi
  read -r secs kb user sys < <(tail -n 1 "$work/$name.time")
  rss_mib=$(awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }')
  cpu_secs=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
}

show_commands() {
  echo "commands:"
  sed 's/^/  /' "$work/commands"
}

threads_option() {
  threads_opt=()
  if [[ $("$flowctl" "$1" --help 2>&1) == *--threads* ]]; then threads_opt=(--threads "$threads"); fi
}

duckdb_setup() {
  local repo
  repo=$(cd "$here/.." && pwd)
  duckdb=()
  if "$repo/scripts/npm-deps.sh" > "$work/npm.log" 2>&1; then
    duckdb=(env "NODE_PATH=$repo/.deps/npm/node_modules" node "$repo/bench/peers/duckdb.js" "$threads")
  elif (($1 >= $2)); then
    fail "DuckDB (@duckdb/node-api) cannot be installed (scripts/npm-deps.sh failed; it needs the npm registry once): $(tail -n 3 "$work/npm.log" | tr '\n' ' ')"
  else
    echo "DuckDB (@duckdb/node-api) cannot be installed (scripts/npm-deps.sh failed; it needs the npm registry once): the DuckDB comparison is skipped (smoke run)"
  fi
}

sql_string() { printf "'%s'" "${1//\'/\'\'}"; }

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / (s < 0.01 ? 0.01 : s) }'; }

parse_baseline() {
  run baseline "$1" "$2"
  local line
  line=$(cat "$work/baseline.out")
  base_rate=$(sed -n 's/^parse: \([0-9]*\) docs, \([0-9.]*\) docs\/s.*/\2/p' <<< "$line")
  base_docs=$(sed -n 's/^parse: \([0-9]*\) docs, .*/\1/p' <<< "$line")
  base_mbs=$(sed -n 's/.*docs\/s, \([0-9.]*\) MB\/s.*/\1/p' <<< "$line")
  if [[ -z $base_rate ]]; then
    echo "FAIL: unexpected baseline output: $line"
    exit 1
  fi
}
