#!/usr/bin/env bash
# Installs one set of pinned npm packages, and nothing when they are already there at the
# pinned versions (a fast no-op: no npm, no network). Usage: scripts/npm-deps.sh [SET]
#   test     (the default) scripts/npm/test/{package,package-lock}.json into .deps/npm: the
#            packages tests use (DuckDB for the lake test), which they put on NODE_PATH or
#            import from there.
#   runtime  scripts/npm/runtime/... into .deps/npm-runtime: what flowctl itself runs
#            (esbuild, which transpiles nodeJS lambdas, and typescript, whose tsc type-checks
#            them; the binary finds both beside itself, see src/lambda/node.h).
#            scripts/setup.sh installs this set.
set -euo pipefail
cd "$(dirname "$0")/.."

set_name=${1:-test}
case "$set_name" in
  test) dest=.deps/npm ;;
  runtime) dest=.deps/npm-runtime ;;
  *)
    echo "usage: scripts/npm-deps.sh [test|runtime]" >&2
    exit 2
    ;;
esac
src=scripts/npm/$set_name

# Every pinned dependency present at its version?
if node -e '
  const fs = require("fs"), path = require("path");
  const want = JSON.parse(fs.readFileSync(path.join(process.argv[1], "package.json"), "utf8")).dependencies;
  for (const [name, version] of Object.entries(want)) {
    const p = path.join(process.argv[2], "node_modules", name, "package.json");
    if (!fs.existsSync(p) || JSON.parse(fs.readFileSync(p, "utf8")).version !== version) process.exit(1);
  }
' "$src" "$dest" 2>/dev/null && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
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
echo "npm-deps: installing $(node -p 'Object.entries(require(process.argv[1]).dependencies).map(([n, v]) => n + "@" + v).join(" ")' "$PWD/$src/package.json") into $dest" >&2
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
# `npm install` with the lock file rather than `npm ci`: npm writes lock files without the
# optional per-platform binding packages of other platforms, which `npm ci` then rejects.
(cd "$dest" && npm install --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
# npm may rewrite the lock file's copy; keep ours, against which the check above compares.
cp "$src/package-lock.json" "$dest/"
