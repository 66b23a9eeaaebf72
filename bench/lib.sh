# Shared pieces of the benchmark scripts. Source it after setting $work (a scratch
# directory). Provides:
#   pin                  the command prefix that pins a run to CPU 0 (empty when impossible)
#   fail MESSAGE...      prints FAIL and counts it in $failures
#   run NAME COMMAND...  runs COMMAND pinned under /usr/bin/time, stdout to $work/NAME.out,
#                        stderr to $work/NAME.err; sets $secs and $rss_mib; a failing
#                        command ends the benchmark
#   rate DOCS SECS       prints DOCS / SECS, rounded (SECS under 0.01 counts as 0.01)
#   parse_baseline BASELINE DATA
#                        runs the RapidJSON parse baseline; sets $base_rate, $base_docs,
#                        $base_mbs (and $secs, $rss_mib)

pin=()
if command -v taskset > /dev/null && taskset -c 0 true 2> /dev/null; then
  pin=(taskset -c 0)
  echo "runs pinned to CPU 0 (taskset -c 0)"
else
  echo "runs NOT pinned to one CPU (taskset unavailable or CPU 0 not allowed)"
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

run() {
  local name=$1 kb
  shift
  if ! "${pin[@]}" /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" \
    > "$work/$name.out" 2> "$work/$name.err"; then
    echo "FAIL: $* exited non-zero:"
    sed 's/^/  /' "$work/$name.err" | head -n 20
    tail -n 1 "$work/$name.time" 2> /dev/null | sed 's/^/  /'
    exit 1
  fi
  read -r secs kb < <(tail -n 1 "$work/$name.time")
  rss_mib=$(awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }')
}

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
