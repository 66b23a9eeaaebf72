#!/usr/bin/env bash
# catalog-examples/ builds cleanly, as the README's quick start runs it, and every one of its
# tests passes, from the sources and from the built catalog.
source "$(dirname "$0")/lib.sh"
cd "$REPO"
expect_status 0 "$FLOWCTL" build --source catalog-examples/flow.yaml --catalog "$WORK/ex.db"
expect_err "collections:"
q() { sqlite3 -batch -noheader "$WORK/ex.db" "$1"; }
expect_eq "both target kinds" "$(q 'SELECT group_concat(kind) FROM (SELECT kind FROM materialization_targets ORDER BY kind)')" "postgres,sqlite"
expect_eq "every strategy used" \
  "$(q 'SELECT count(DISTINCT reduce_strategy) FROM inferred_shapes WHERE reduce_strategy IS NOT NULL')" 8
[[ $(q "SELECT count(*) FROM transforms WHERE read_delay_seconds > 0") -ge 1 ]] || fail "no read delay"

tests=$(grep -cE '^  "[^"]+":$' catalog-examples/tests.flow.yaml)
expect_status 0 "$FLOWCTL" test --source catalog-examples/flow.yaml
expect_err "$tests passed, 0 failed"
expect_status 0 "$FLOWCTL" test --catalog "$WORK/ex.db"
expect_err "$tests passed, 0 failed"
expect_status 0 "$FLOWCTL" test --source catalog-examples/flow.yaml --filter "idle bikes"
expect_err "1 passed, 0 failed"
expect_status 1 "$FLOWCTL" test --source catalog-examples/flow.yaml --filter "no such test"
expect_err "no test name contains"
finish
