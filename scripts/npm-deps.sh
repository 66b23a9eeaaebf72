#!/usr/bin/env bash
# Installs the npm packages that flowctl's tests use (scripts/npm/package.json, pinned by its
# package-lock.json) into .deps/npm/node_modules, and nothing when they are already there
# at the pinned versions (a fast no-op: no npm, no network). Tests that need them put
# .deps/npm/node_modules on NODE_PATH or import them from there.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=.deps/npm
# Every pinned dependency present at its version?
if node -e '
  const fs = require("fs"), path = require("path");
  const want = JSON.parse(fs.readFileSync("scripts/npm/package.json", "utf8")).dependencies;
  for (const [name, version] of Object.entries(want)) {
    const p = path.join(process.argv[1], "node_modules", name, "package.json");
    if (!fs.existsSync(p) || JSON.parse(fs.readFileSync(p, "utf8")).version !== version) process.exit(1);
  }
' "$dest" 2>/dev/null && cmp -s scripts/npm/package-lock.json "$dest/package-lock.json"; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  # Debian packages npm separately from nodejs.
  echo "npm-deps: installing npm" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
echo "npm-deps: installing $(node -p 'Object.entries(require("./scripts/npm/package.json").dependencies).map(([n, v]) => n + "@" + v).join(" ")') into $dest" >&2
mkdir -p "$dest"
cp scripts/npm/package.json scripts/npm/package-lock.json "$dest/"
# `npm install` with the lock file rather than `npm ci`: npm writes lock files without the
# optional per-platform binding packages of other platforms, which `npm ci` then rejects.
(cd "$dest" && npm install --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
# npm may rewrite the lock file's copy; keep ours, against which the check above compares.
cp scripts/npm/package-lock.json "$dest/"
