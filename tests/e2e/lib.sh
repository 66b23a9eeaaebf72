# Shared helpers for end-to-end tests of the real flowctl binary. Source it; it sets
# $FLOWCTL, $REPO and a scratch directory $WORK removed on exit.
set -euo pipefail
FLOWCTL=${FLOWCTL:?set FLOWCTL to the flowctl binary}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export NO_COLOR=1
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_status WANT CMD...: runs CMD, keeping stdout/stderr in $WORK/out and $WORK/err.
expect_status() {
  local want=$1
  shift
  set +e
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  set -e
  if [[ $rc -ne $want ]]; then
    fail "expected exit $want, got $rc from: $*"
    sed 's/^/    /' "$WORK/err" | head -20 >&2
  fi
}

# expect_err TEXT: the last command's stderr contains TEXT.
expect_err() {
  grep -qF -- "$1" "$WORK/err" || { fail "stderr lacks: $1"; sed 's/^/    /' "$WORK/err" | head -20 >&2; }
}

# expect_eq WHAT GOT WANT
expect_eq() {
  [[ "$2" == "$3" ]] || fail "$1: got '$2', want '$3'"
}

finish() {
  if ((failures)); then
    echo "$failures check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
}
