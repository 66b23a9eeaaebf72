#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: unit tests, catalog scenarios, end-to-end
# tests of the real binary and benchmark smoke runs. Ends with ctest's summary line.
# First, before anything is built, the include rules are checked
# (scripts/check-includes.py): a violation ends the run at once.
# In CI (CI=true) two stages run first: the fuzz targets, each for $FUZZ_SECONDS (default
# 20) under ASan and UBSan (scripts/fuzz.sh), and the tests under ASan and UBSan
# (scripts/test-sanitizers.sh); docs/internals/testing.md lists what runs and its times.
# When either failed, a last line `N passed, M failed` counts the stages' failures with
# the main run's tests, and the exit status is 1.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/check-includes.py
werror=OFF
failed_stages=()
if [[ "${CI:-}" == "true" ]]; then
  werror=ON
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}" || failed_stages+=(fuzz)
  scripts/test-sanitizers.sh || failed_stages+=(sanitizers)
fi
scripts/build.sh -DFLOWCTL_WERROR=$werror
scripts/setup.sh --test  # headless Chromium for the docs site's browser test
scripts/npm-deps.sh  # npm packages the tests use (DuckDB for the lake test), into .deps/npm
jobs=$(nproc 2>/dev/null || echo 2)
cd "${BUILD_DIR:-build}"
if ((${#failed_stages[@]} == 0)); then
  exec ctest --output-on-failure -j"$jobs" "$@"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest --output-on-failure -j"$jobs" "$@" | tee "$log" || true
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)
total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$summary")
total=${total:-0} failed=${failed:-0}
echo "failed before the main run: ${failed_stages[*]} (see their output above)"
echo "$((total - failed)) passed, $((failed + ${#failed_stages[@]})) failed"
exit 1
