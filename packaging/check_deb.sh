#!/usr/bin/env bash
# The Debian package: built with cpack from BUILD_DIR into a scratch directory, named
# flowctl_VERSION_amd64.deb, declaring Node.js and the Debian libraries the executable
# links, holding the executable, its runtime npm packages, the man page and completions
# under /usr; unpacked into a scratch root, its flowctl prints VERSION and builds and tests
# a catalog with a TypeScript lambda (packaging/check_install.sh checks the same of an
# install tree moved elsewhere).
# Usage: packaging/check_deb.sh BUILD_DIR VERSION
set -euo pipefail
build=$(cd "${1:?usage: check_deb.sh BUILD_DIR VERSION}" && pwd)
version=${2:?usage: check_deb.sh BUILD_DIR VERSION}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; exit 1; }
deb=$work/out/flowctl_${version}_amd64.deb
[[ -f $deb ]] || { fail "no $(basename "$deb"): $(ls "$work/out")"; exit 1; }
echo "built $(basename "$deb"): $(du -h "$deb" | cut -f1)"

field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == flowctl ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version), not $version"
[[ $(field Architecture) == amd64 ]] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
for dep in nodejs libpq5 libsqlite3-0 libyaml-cpp libcurl libzstd1 zlib1g libstdc++6 libfmt; do
  grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/flowctl ./usr/share/man/man1/flowctl.1 ./usr/share/bash-completion/completions/flowctl \
  ./usr/share/zsh/vendor-completions/_flowctl ./usr/share/fish/vendor_completions.d/flowctl.fish \
  ./usr/lib/flowctl/node_modules/.bin/esbuild ./usr/share/doc/flowctl/README.md; do
  grep -qx -- "$f" <<<"$contents" || fail "the package lacks $f"
done
if grep -v '^\./usr' <<<"$contents" | grep -v '^\./$' >/dev/null; then
  fail "files outside /usr: $(grep -v '^\./usr' <<<"$contents" | head -3)"
fi

# Unpacked into a scratch root: the executable finds its runtime files beside itself.
dpkg-deb -x "$deb" "$work/root"
flowctl=$work/root/usr/bin/flowctl
[[ $("$flowctl" --version) == "flowctl $version" ]] || fail "--version: $("$flowctl" --version)"
mkdir "$work/p" && cd "$work/p"
cat >flow.yaml <<'YAML'
collections:
  - name: shop/orders
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, n: {type: integer}}}
  - name: shop/copied
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, n: {type: integer}}}
    derivation:
      transform:
        copy:
          source: {name: shop/orders}
          publish: {nodeJS: "return [{ id: source.id, n: (source.n ?? 0) + 1 }];"}
tests:
  "copies add one":
    - ingest: {collection: shop/orders, documents: [{id: 1, n: 1}]}
    - verify: {collection: shop/copied, documents: [{id: 1, n: 2}]}
YAML
if out=$(env -i PATH=/usr/bin:/bin HOME="$work" "$flowctl" test --source flow.yaml 2>&1); then
  grep -qx '1 passed, 0 failed' <<<"$out" || fail "flowctl test: $out"
else
  fail "flowctl test from the unpacked package failed: $out"
fi
if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
