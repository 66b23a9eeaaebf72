#!/usr/bin/env bash
# The built catalog holds each `deadLetters` (format 4), and a catalog of format 3, from
# before dead letters, is refused with the advice to rebuild it. Run by tests/run_compat.sh
# in a scratch copy of this directory as `check.sh FLOWCTL CATALOG_DB`.
set -euo pipefail
flowctl=$1
q() { sqlite3 -batch -noheader -separator ' ' "$2" "$1"; }
expect() { [[ "$2" == "$3" ]] || { echo "$1: got '$2', want '$3'" >&2; exit 1; }; }

expect "format" "$(q "SELECT value FROM meta WHERE key = 'format'" "$2")" 4
expect "transforms" "$(q "SELECT derivation, name, ifnull(dead_letters, '-') FROM transforms ORDER BY 1" "$2")" \
  "shop/customer-totals fromOrders shop/dead-letters
shop/dead-letter-counts fromDeadLetters -"
expect "bindings" "$(q "SELECT materialization, table_name, ifnull(dead_letters, '-') FROM materialization_bindings
  ORDER BY 1, idx" "$2")" \
  "shop/orders-lite orders shop/dead-letters
shop/views customer_totals shop/dead-letters
shop/views dead_letters -"

cp "$2" old.db
q "UPDATE meta SET value = '3' WHERE key = 'format'" old.db
for args in "test --catalog old.db" "read shop/orders --catalog old.db --data-dir data"; do
  set +e
  # shellcheck disable=SC2086
  "$flowctl" $args >out 2>err
  rc=$?
  set -e
  expect "exit status of flowctl $args" "$rc" 1
  grep -qF "old.db is not a usable built catalog: format \`3\`, expected 4; rebuild it with \`flowctl build\`" err ||
    { echo "flowctl $args: unexpected output:" >&2; cat err >&2; exit 1; }
done
