#!/usr/bin/env bash
# Benchmark of `flowctl build`: a generated catalog of 500 captured collections and 500
# derivations spread over 50 imported files (plus a shared schema file), built N times.
# Prints wall time and peak RSS per run and the best run against the 2 s target.
# Usage: bench/build_bench.sh [FLOWCTL] [RUNS]   (--check: exit 1 if the target is missed)
set -euo pipefail
check=0
args=()
for a in "$@"; do [[ "$a" == "--check" ]] && check=1 || args+=("$a"); done
flowctl=${args[0]:-$(dirname "$0")/../build/flowctl}
runs=${args[1]:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

files=50
"$(dirname "$0")/gen_catalog.sh" "$work" 500

best=
for ((r = 1; r <= runs; r++)); do
  /usr/bin/time -f "%e %M" -o "$work/time" "$flowctl" build --source "$work/flow.yaml" \
    --catalog "$work/catalog.db" 2> "$work/err" || { cat "$work/err"; exit 1; }
  read -r secs kb < "$work/time"
  printf 'run %d: wall %.2f s, peak RSS %.1f MiB\n' "$r" "$secs" "$(echo "$kb / 1024" | bc -l)"
  if [[ -z "$best" ]] || (($(echo "$secs < $best" | bc -l))); then best=$secs; fi
done
grep -E "collections:|transforms:" "$work/err" | sed 's/^ */  /'
verdict=met
(($(echo "$best < 2.0" | bc -l))) || verdict=MISSED
echo "build benchmark: best wall time $best s for 1000 collections (500 derived), $((files + 2)) files; target < 2 s: $verdict"
[[ $check -eq 0 || $verdict == met ]]
