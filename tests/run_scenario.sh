#!/usr/bin/env bash
# Runs one broken-catalog scenario: `flowctl build` must exit 1 and print exactly the
# diagnostics listed in the scenario's `expected` file.
#
# Scenario layout (testdata/broken/NAME/):
#   flow.yaml   the root source (plus any other files it imports or references)
#   expected    one line per expected diagnostic: `FILE:LINE:COL: error: MESSAGE`, where
#               FILE is relative to the scenario directory and MESSAGE is a prefix of
#               the printed message. The build must print exactly this many errors.
#   args        optional extra flags for `flowctl build` (one line; `$DIR` is the scenario)
#   README      optional: what the scenario breaks
set -euo pipefail
flowctl=$1
dir=$(cd "$2" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

extra=()
if [[ -f "$dir/args" ]]; then
  read -r -a extra < <(sed "s|\$DIR|$dir|g" "$dir/args")
fi
set +e
(cd "$dir" && NO_COLOR=1 "$flowctl" build --source flow.yaml --catalog "$out/catalog.db" "${extra[@]}") \
  >"$out/stdout" 2>"$out/stderr"
rc=$?
set -e
fail() {
  echo "FAIL: $*"
  echo "--- flowctl output:"
  cat "$out/stderr"
  exit 1
}
[[ $rc -eq 1 ]] || fail "expected exit status 1, got $rc"
[[ ! -e "$out/catalog.db" ]] || fail "a catalog was written despite errors"
got=$(grep -cE '^[^ ].*error: ' "$out/stderr" || true)
want=$(grep -cve '^\s*$' "$dir/expected")
while IFS= read -r line; do
  [[ -z "${line// }" ]] && continue
  grep -qF -- "$line" "$out/stderr" || fail "missing diagnostic: $line"
  # The expected text must start a diagnostic line, not just appear inside one.
  grep -E '^[^ ].*error: ' "$out/stderr" | grep -F -- "$line" >/dev/null || fail "not at the start of a diagnostic: $line"
done <"$dir/expected"
[[ "$got" -eq "$want" ]] || fail "expected $want diagnostic(s), got $got"
echo "ok: $(basename "$dir")"
