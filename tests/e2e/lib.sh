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

# expect_out TEXT: the last command's stdout contains TEXT.
expect_out() {
  grep -qF -- "$1" "$WORK/out" || { fail "stdout lacks: $1"; sed 's/^/    /' "$WORK/out" | head -20 >&2; }
}

# expect_eq WHAT GOT WANT
expect_eq() {
  [[ "$2" == "$3" ]] || fail "$1: got '$2', want '$3'"
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s; false after SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# A `flowctl develop` in the background, over data/ in the current directory (or the
# directory $dev_data names), on a free port: start_develop [ARG...] starts it (output
# appended to dev.out and dev.err), waits until it listens (develop.json in its data
# directory names its pid) and sets $dev_pid and $url; it is
# killed at exit if still running. stop_develop SIGNAL stops it; its exit status is in
# $dev_rc.
dev_pid=
dev_data=data
develop_listening() { grep -q "\"pid\":$dev_pid}" "$dev_data/develop.json" 2>/dev/null; }
start_develop() {
  for _ in $(seq 100); do [[ -x $FLOWCTL ]] && break; sleep 0.2; done  # while it is rebuilt
  trap 'if [[ -n $dev_pid ]]; then kill -KILL "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
        rm -rf "$WORK"' EXIT
  "$FLOWCTL" develop --port 0 --data-dir "$dev_data" "$@" >>dev.out 2>>dev.err &
  dev_pid=$!
  wait_until 20 develop_listening || { fail "develop did not start: $(tail -5 dev.err)"; finish; }
  url=$(sed 's/.*"url":"\([^"]*\)".*/\1/' "$dev_data/develop.json")
}
stop_develop() {
  kill "-$1" "$dev_pid"
  set +e
  wait "$dev_pid" 2>/dev/null
  dev_rc=$?
  set -e
  dev_pid=
}

finish() {
  if ((failures)); then
    echo "$failures check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
}
