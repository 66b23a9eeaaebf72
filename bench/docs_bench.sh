#!/usr/bin/env bash
# Benchmark of `flowctl docs`: a generated catalog of N captured collections and N
# derivations (bench/gen_catalog.sh --docs: 50 files with captures, materializations and
# tests), its site written RUNS times (wall time and peak RSS; target at N=500: under 3 s),
# then the site in headless Chromium (bench/docs/browse.js): the index's load time
# (navigation timing), the time to filter its list after typing, and the lineage page's
# load time. Needs `chromium` and the pinned npm packages (scripts/npm-deps.sh).
# Usage: bench/docs_bench.sh [FLOWCTL] [N] [RUNS]   (the target is enforced only at N=500)
set -euo pipefail
flowctl=${1:-$(dirname "$0")/../build/flowctl}
n=${2:-500}
runs=${3:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$repo/bench/lib.sh"

"$repo/bench/gen_catalog.sh" "$work/catalog" "$n" --docs
best=
for ((r = 1; r <= runs; r++)); do
  rm -rf "$work/site"
  run docs "$flowctl" docs --source "$work/catalog/flow.yaml" --output "$work/site"
  echo "run $r: wall $secs s, peak RSS $rss_mib MiB ($(cat "$work/docs.err"))"
  if [[ -z "$best" ]] || (($(echo "$secs < $best" | bc -l))); then best=$secs; fi
done
pages=$(find "$work/site" -name '*.html' | wc -l)
echo "site: $pages pages, $(du -sh "$work/site" | cut -f1), index.html $(du -h "$work/site/index.html" | cut -f1), lineage.html $(du -h "$work/site/lineage.html" | cut -f1)"

"$repo/scripts/npm-deps.sh" >/dev/null
if ! command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1; then
  fail "chromium is not installed (scripts/test.sh installs it)"
else
  NODE_PATH="$repo/.deps/npm/node_modules" node "$repo/bench/docs/browse.js" "$work/site" || fail "browser run failed"
fi

verdict="met"
(($(echo "$best < 3.0" | bc -l))) || verdict="MISSED"
echo "docs benchmark: best wall time $best s for $((2 * n)) collections ($n derived); target < 3 s at 1000: $verdict"
if ((n == 500)) && [[ $verdict == MISSED ]]; then fail "flowctl docs took $best s, over the 3 s target"; fi
((failures == 0))
