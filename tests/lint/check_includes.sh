#!/usr/bin/env bash
# Self-test of scripts/check-includes.py: on a small tree of modules it accepts what the
# CMake graph allows (direct links, PUBLIC links of links, a module's own internals) and
# rejects, with exit status 1 and one line each, an include the graph does not allow, one
# through a PRIVATE link of a link, and one of another module's internals.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
check="$root/scripts/check-includes.py"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

module() {  # module NAME LINKS...: src/NAME/ with one header and one source
  local name=$1
  shift
  mkdir -p "$tree/src/$name"
  {
    echo "add_library(flow_$name $name.cc)"
    if (($#)); then echo "target_link_libraries(flow_$name $*)"; fi
  } >"$tree/src/$name/CMakeLists.txt"
  echo "#pragma once" >"$tree/src/$name/$name.h"
  printf '#include "%s/%s.h"\n' "$name" "$name" >"$tree/src/$name/$name.cc"
}
include() { printf '#include "%s"\n' "$2" >>"$tree/src/$1"; }

module base
module core PUBLIC flow_base
module impl PUBLIC flow_core PRIVATE flow_base
module app PUBLIC flow_impl
module tool PRIVATE
mkdir -p "$tree/src/core/inner"
echo "#pragma once" >"$tree/src/core/inner/detail.h"
include core/core.cc core/inner/detail.h  # a module's own internals
include impl/impl.cc core/core.h          # a PUBLIC link
include app/app.cc base/base.h            # a PUBLIC link of a PUBLIC link
include app/app.cc local.h                # not a module's header

out="$(python3 "$check" "$tree")" || fail "a tree following the rules was rejected: $out"
[[ "$out" == "check-includes: 8 module includes in 11 files follow the graph of 5 modules" ]] ||
  fail "unexpected summary: $out"

include base/base.cc core/core.h          # upwards
include tool/tool.cc impl/impl.h          # not linked at all
include app/app.cc core/inner/detail.h    # another module's internals
set +e
out="$(python3 "$check" "$tree")"
rc=$?
set -e
((rc == 1)) || fail "exit status $rc, not 1, for a tree with violations: $out"
expect() { grep -qxF -- "$1" <<<"$out" || fail "missing line: $1
in:
$out"; }
expect "src/app/app.cc:4: app may not include core/inner/detail.h (core/inner/ is internal to module core; use its public headers)"
expect "src/base/base.cc:2: base may not include core/core.h (its CMake library does not link flow_core, directly or through a PUBLIC link)"
expect "src/tool/tool.cc:2: tool may not include impl/impl.h (its CMake library does not link flow_impl, directly or through a PUBLIC link)"
expect "check-includes: 3 violation(s) of the include rules (docs/internals/architecture.md)"
[[ $(wc -l <<<"$out") -eq 4 ]] || fail "more lines than expected: $out"

# What a PRIVATE link exports is allowed; what a link links PRIVATE is not.
module lib PRIVATE flow_impl
include lib/lib.cc core/core.h            # impl exports core
out="$(python3 "$check" "$tree")" || true
if grep -q "src/lib/" <<<"$out"; then fail "an include through a PUBLIC link of a PRIVATE link was rejected: $out"; fi
module hidden PRIVATE flow_base
module viewer PUBLIC flow_hidden
include viewer/viewer.cc base/base.h      # hidden links base PRIVATE: not exported
out="$(python3 "$check" "$tree")" || true
expect "src/viewer/viewer.cc:2: viewer may not include base/base.h (its CMake library does not link flow_base, directly or through a PUBLIC link)"
echo "ok"
