#!/usr/bin/env bash
# Builds the Debian package flowctl_<version>_amd64.deb into build/ (or $BUILD_DIR): sets up
# and builds what is missing (scripts/build.sh, the flowctl target and its man page and
# completions only), then runs cpack. Install it with `sudo apt install ./build/flowctl_*.deb`
# (docs/install.md).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
FLOWCTL_TARGETS="flowctl flowctl_extras" scripts/build.sh
cpack --config "$build_dir/CPackConfig.cmake" -B "$build_dir" >/dev/null
ls "$build_dir"/flowctl_*_amd64.deb
