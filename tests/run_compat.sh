#!/usr/bin/env bash
# Runs one compatibility fixture: a catalog written in the style of Flow's preview must
# build, pass all of its catalog tests (from the sources and from the built catalog) and
# produce a docs site, as it did on Flow.
#
# Fixture layout (testdata/compat/NAME/):
#   flow.yaml           the root source (plus the files it imports or references)
#   expected-warnings   optional: one line per warning `flowctl build` must print, each the
#                       start of a diagnostic (`FILE:LINE:COL: warning:`, FILE relative to
#                       the fixture, optionally followed by the start of the message). The
#                       build must print exactly this many warnings, and `--deny-warnings`
#                       must then fail it. Without the file, the build prints no warning.
#   check.sh            optional: more checks, run in the fixture's scratch copy as
#                       `check.sh FLOWCTL CATALOG_DB`
#   README              optional: what the fixture exercises
# Test names must be quoted keys (`  "name":`), so that they can be counted here.
set -euo pipefail
flowctl=$1
src=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A scratch copy, so that nothing a command writes lands in the source tree.
cp -r "$src" "$work/fixture"
cd "$work/fixture"
export NO_COLOR=1

fail() {
  echo "FAIL: $(basename "$src"): $*"
  if [[ -n ${last:-} ]]; then
    echo "--- output of flowctl $last:"
    cat "$work/out" "$work/err" | head -60
  fi
  exit 1
}

# run STATUS ARGS...: runs flowctl ARGS, keeping its output, and requires exit STATUS.
run() {
  local want=$1
  shift
  last="$*"
  set +e
  "$flowctl" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  set -e
  [[ $rc -eq $want ]] || fail "expected exit status $want, got $rc"
}

# The number of catalog tests, counted independently of flowctl: the quoted keys of every
# top-level `tests:` map of the fixture's sources.
want_tests=0
for f in $(find . -name '*.yaml' | sort); do
  n=$(awk '/^tests:/ {t = 1; next} /^[^ #]/ {t = 0} t && /^  "[^"]+":[ ]*$/ {n++} END {print n + 0}' "$f")
  want_tests=$((want_tests + n))
done
((want_tests > 0)) || fail "no catalog tests found"

# build: succeeds, with exactly the expected warnings.
run 0 build --source flow.yaml --catalog "$work/catalog.db"
[[ -f $work/catalog.db ]] || fail "no built catalog was written"
if grep -E '^[^ ].*error: ' "$work/err" >/dev/null; then fail "the build printed errors"; fi
warnings=$(grep -E '^[^ ].*warning:' "$work/err" || true)
got=$(grep -c . <<<"$warnings" || true)
if [[ -f expected-warnings ]]; then
  want=$(grep -cve '^\s*$' expected-warnings)
  while IFS= read -r line; do
    [[ -z "${line// }" ]] && continue
    found=
    while IFS= read -r w; do [[ $w == "$line"* ]] && found=1; done <<<"$warnings"
    [[ -n $found ]] || fail "missing warning (or not at the start of one): $line"
  done <expected-warnings
  [[ $got -eq $want ]] || fail "expected $want warning(s), got $got"
  run 1 build --source flow.yaml --catalog "$work/denied.db" --deny-warnings
else
  [[ $got -eq 0 ]] || fail "unexpected warning(s): $warnings"
fi

# test: every catalog test passes, from the sources and from the built catalog.
for from in "--source flow.yaml" "--catalog $work/catalog.db"; do
  # shellcheck disable=SC2086
  run 0 test $from
  cat "$work/out" "$work/err" | grep -x "$want_tests passed, 0 failed" >/dev/null ||
    fail "flowctl test $from did not print '$want_tests passed, 0 failed'"
done

# docs: a site is written.
run 0 docs --source flow.yaml --output "$work/site"
[[ -f $work/site/index.html ]] || fail "flowctl docs wrote no index.html"

last=
if [[ -x check.sh ]]; then
  ./check.sh "$flowctl" "$work/catalog.db" || fail "check.sh failed"
fi
echo "ok: $(basename "$src") ($want_tests tests)"
