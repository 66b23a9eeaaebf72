#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: unit tests, catalog scenarios, end-to-end
# tests of the real binary and benchmark smoke runs. Ends with ctest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
werror=OFF
[[ "${CI:-}" == "true" ]] && werror=ON
scripts/build.sh -DFLOWCTL_WERROR=$werror
scripts/setup.sh --test  # headless Chromium for the docs site's browser test
scripts/npm-deps.sh  # npm packages the tests use (DuckDB for the lake test), into .deps/npm
jobs=$(nproc 2>/dev/null || echo 2)
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$jobs" "$@"
