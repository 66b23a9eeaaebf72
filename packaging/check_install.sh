#!/usr/bin/env bash
# The installed flowctl works wherever its tree is put: `cmake --install BUILD --prefix P
# --strip`, then P moved elsewhere, then, with the source and build trees hidden (a private
# mount namespace with empty directories over them, where the machine allows one) and a
# minimal environment, `flowctl build` and `flowctl test` of a catalog with a TypeScript
# lambda succeed from an empty directory. Also: the install holds the man page and the
# completions, the executable is stripped and well under 40 MB, and a missing runtime file
# is named with a hint.
# Usage: packaging/check_install.sh BUILD_DIR VERSION
set -euo pipefail
build=$(cd "${1:?usage: check_install.sh BUILD_DIR VERSION}" && pwd)
version=${2:?usage: check_install.sh BUILD_DIR VERSION}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

cmake --install "$build" --prefix "$work/prefix" --strip >"$work/install.log" ||
  { cat "$work/install.log" >&2; exit 1; }
mv "$work/prefix" "$work/moved"
p=$work/moved
for f in bin/flowctl share/man/man1/flowctl.1 share/bash-completion/completions/flowctl \
  share/zsh/vendor-completions/_flowctl share/fish/vendor_completions.d/flowctl.fish \
  lib/flowctl/node_modules/.bin/esbuild share/doc/flowctl/README.md; do
  [[ -e $p/$f ]] || fail "the install lacks $f"
done
size=$(stat -c %s "$p/bin/flowctl")
((size < 40 * 1024 * 1024)) || fail "bin/flowctl is $size bytes (want well under 40 MB)"
if readelf -S "$p/bin/flowctl" | grep '\.debug_info' >/dev/null; then fail "bin/flowctl is not stripped"; fi
grep -q '^\.TH FLOWCTL 1' "$p/share/man/man1/flowctl.1" || fail "the man page has no .TH line"

mkdir "$work/empty" "$work/home"
cat >"$work/project.yaml" <<'YAML'
collections:
  - name: shop/orders
    key: [/id]
    schema:
      type: object
      required: [id, total]
      properties: {id: {type: integer}, total: {type: number}}
  - name: shop/doubled
    key: [/id]
    schema:
      type: object
      required: [id, total]
      properties: {id: {type: integer}, total: {type: number}}
    derivation:
      transform:
        double:
          source: {name: shop/orders}
          publish:
            nodeJS: |
              const total: number = source.total * 2;
              return [{ id: source.id, total }];
tests:
  "totals double":
    - ingest: {collection: shop/orders, documents: [{id: 1, total: 2.5}]}
    - verify: {collection: shop/doubled, documents: [{id: 1, total: 5}]}
YAML
# Runs the moved flowctl from the empty directory, with PATH holding only the system's
# directories (Node.js, not esbuild) and the source and build trees hidden when possible.
hidden=
if unshare -m true 2>/dev/null; then hidden=1; fi
run_moved() {
  local script="cd '$work/empty' && cp '$work/project.yaml' flow.yaml && $*"
  if [[ -n $hidden ]]; then
    script="mount -t tmpfs none '$repo' && { [[ '$build' == '$repo'/* ]] || mount -t tmpfs none '$build'; } && $script"
    unshare -m env -i PATH=/usr/bin:/bin HOME="$work/home" bash -c "$script"
  else
    env -i PATH=/usr/bin:/bin HOME="$work/home" bash -c "$script"
  fi
}
[[ -n $hidden ]] || echo "note: cannot hide the source tree here (no mount namespace); it stays visible" >&2
out=$(run_moved "'$p/bin/flowctl' --version" 2>&1) || fail "--version: $out"
[[ $out == "flowctl $version" ]] || fail "--version printed '$out', not 'flowctl $version'"
if out=$(run_moved "'$p/bin/flowctl' build --source flow.yaml --catalog c.db && '$p/bin/flowctl' test --source flow.yaml" 2>&1); then
  grep -qx '1 passed, 0 failed' <<<"$out" || fail "flowctl test did not pass: $out"
else
  fail "build and test from the moved install failed: $out"
fi
# Node.js missing (not on PATH): named, with a hint.
mkdir "$work/nonode" && cp "$work/project.yaml" "$work/nonode/flow.yaml"
if out=$(cd "$work/nonode" && env -i PATH="$work/nonode" HOME="$work/home" "$p/bin/flowctl" test 2>&1); then
  fail "flowctl test passed without Node.js: $out"
else
  grep -q 'Node.js' <<<"$out" && grep -q 'apt install nodejs' <<<"$out" ||
    fail "the missing Node.js is not named with a hint: $out"
fi
# A runtime file missing: named, with a hint.
mv "$p/lib/flowctl/node_modules" "$p/lib/flowctl/gone"
if out=$(run_moved "'$p/bin/flowctl' build --source flow.yaml --catalog c.db" 2>&1); then
  fail "build succeeded without esbuild: $out"
else
  grep -q 'esbuild' <<<"$out" && grep -q "$p/lib/flowctl/node_modules" <<<"$out" ||
    fail "the missing esbuild is not named with where it was looked for: $out"
fi
mv "$p/lib/flowctl/gone" "$p/lib/flowctl/node_modules"
if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed (installed, moved, source tree $([[ -n $hidden ]] && echo hidden || echo visible))"
