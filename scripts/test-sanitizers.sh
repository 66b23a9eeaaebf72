#!/usr/bin/env bash
# Builds flowctl and its tests with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# the unit tests, the catalog scenarios, the compatibility fixtures and the end-to-end tests
# under them, except those listed in $excluded (docs/internals/testing.md says why each is
# left out). The build is the fuzz targets' (scripts/fuzz.sh): clang 14 with FLOWCTL_FUZZ,
# in build-asan/ (or $ASAN_BUILD_DIR), so that CI compiles the sources once for both; the
# coverage instrumentation it adds costs the tests some speed, not a second build.
# Undefined behaviour stops the program like an ASan finding. Reports are written to files
# (build-asan/sanitizer-reports/), so that one in a run a test expected to fail (a refused
# document exits 1 too) is not missed: any report fails this script, which prints them.
# Extra arguments go to ctest (e.g. -R unit).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ASAN_BUILD_DIR:-build-asan}
scripts/setup.sh --test  # clang, and what the tests need, as scripts/test.sh installs it
scripts/npm-deps.sh
# Configured exactly as scripts/fuzz.sh does (a different configuration rebuilds it all).
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DFLOWCTL_FUZZ=ON ${ASAN_CMAKE_ARGS:-} >/dev/null
fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake --build "$build_dir" -j"$jobs"
# Left out under the sanitizers (each still runs in the normal build):
# - e2e/crash, e2e/exactly_once: a minute each of SIGKILLs at random instants, three
#   times slower here; the recovery they check is fuzzed (ledger_recover) and unit-tested;
# - e2e/materialize_postgres, e2e/materialize_types: a PostgreSQL server of their own;
# - e2e/docs_site: mostly headless Chromium; the generator is in the unit tests;
# - bench/*: timings, meaningless under the sanitizers.
excluded='^(e2e/(crash|exactly_once|materialize_postgres|materialize_types|docs_site)|bench/.*)$'
reports=$(realpath -m "$build_dir")/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
export ASAN_OPTIONS=detect_leaks=1:log_path=$reports/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}
# Tests that bound flowctl's address space (ulimit -v) or its memory use skip those bounds:
# ASan reserves terabytes of address space for its shadow memory, and its own memory is
# not the program's.
export FLOWCTL_SANITIZED=1
status=0
(cd "$build_dir" && ctest --output-on-failure -j"$jobs" -E "$excluded" "$@") || status=$?
if compgen -G "$reports/*" >/dev/null; then
  for f in "$reports"/*; do
    echo "---- $f" >&2
    head -60 "$f" >&2
  done
  echo "sanitizers: $(ls "$reports" | wc -l) report(s) in $reports" >&2
  status=1
fi
exit $status
