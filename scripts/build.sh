#!/usr/bin/env bash
# Installs missing dependencies (scripts/setup.sh), then configures and builds flowctl into
# build/ (or $BUILD_DIR). Extra arguments are passed to cmake's configure step.
# FLOWCTL_TARGETS (space-separated) builds only those targets, e.g. "flowctl" for the
# executable without the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
if [[ ! -f "$build_dir/CMakeCache.txt" ]] || (($#)); then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
fi
targets=()
for t in ${FLOWCTL_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j"$jobs" "${targets[@]}"
