#!/usr/bin/env bash
# Installs missing dependencies (scripts/setup.sh), then configures and builds flowctl into
# build/ (or $BUILD_DIR). Extra arguments are passed to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
if [[ ! -f "$build_dir/CMakeCache.txt" ]] || (($#)); then
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
fi
cmake --build "$build_dir" -j"$jobs"
