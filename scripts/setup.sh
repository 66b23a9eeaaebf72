#!/usr/bin/env bash
# Installs what flowctl needs to build and test on Debian 12, and nothing when it is all
# present (a fast no-op: one dpkg query). Valijson's headers are unpacked from the Debian
# package into .deps/ instead of `apt install libvalijson-dev`, which would pull in the
# Qt and Poco development packages (hundreds of MB) for adapters flowctl never uses.
# `scripts/setup.sh --test` also installs what only the tests need: headless Chromium and
# a font for the docs site's browser test and benchmark (the quickstart does not need them),
# and clang for the fuzz targets; `scripts/setup.sh --fuzz` installs only the latter. Clang
# is Debian 12's, version 14, named by version so that an upgrade is a deliberate change;
# libFuzzer is part of its compiler runtime (libclang-rt-14-dev, only a recommendation of
# clang-14, hence listed).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_packages=(clang-14 libclang-rt-14-dev)
test_packages=()
[[ "${1:-}" == "--test" ]] && test_packages=(chromium fonts-dejavu-core zsh fish "${fuzz_packages[@]}")
[[ "${1:-}" == "--fuzz" ]] && test_packages=("${fuzz_packages[@]}")

packages=(
  build-essential cmake pkg-config ca-certificates
  libcli11-dev libyaml-cpp-dev rapidjson-dev libsqlite3-dev libpq-dev libfmt-dev doctest-dev
  zlib1g-dev libdeflate-dev libzstd-dev libsimdjson-dev libssl-dev libcsv-dev libcurl4-openssl-dev libboost-dev
  curl nodejs sqlite3 time bc jq
  "${test_packages[@]}"
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# nodejs from another repository (e.g. NodeSource) is fine as long as `node` runs.
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sed '/^$/d')

sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# valijson: headers only, from the Debian package, without its dependencies.
if [[ ! -f .deps/valijson/include/valijson/validator.hpp ]]; then
  echo "setup: unpacking valijson headers into .deps/valijson" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get download libvalijson-dev >/dev/null 2>&1); then
    "${sudo_cmd[@]}" apt-get update -qq
    (cd "$tmp" && apt-get download libvalijson-dev >/dev/null)
  fi
  dpkg-deb -x "$tmp"/libvalijson-dev_*.deb "$tmp/x"
  mkdir -p .deps/valijson
  rm -rf .deps/valijson/include
  cp -r "$tmp/x/usr/include" .deps/valijson/include
fi
# Our performance patches (see each patch file's header), applied once each, in order.
for patch in valijson-lazy-context valijson-properties-fast-path valijson-multipleof-double; do
  if [[ ! -f .deps/valijson/patched-${patch#valijson-} ]]; then
    echo "setup: patching valijson (scripts/patches/$patch.patch)" >&2
    patch -s -p1 -d .deps/valijson/include <"scripts/patches/$patch.patch"
    touch ".deps/valijson/patched-${patch#valijson-}"
  fi
done
# npm packages flowctl itself runs (esbuild, which transpiles nodeJS lambdas, and the
# TypeScript compiler, which type-checks them), into .deps/npm-runtime.
scripts/npm-deps.sh runtime
