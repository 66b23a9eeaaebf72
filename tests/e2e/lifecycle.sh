#!/usr/bin/env bash
# The pipeline lifecycle (SPEC 11), into SQLite and a real PostgreSQL server: a wiped data
# directory, an edited lambda, a table dropped by hand and `flowctl reset` are never
# silently stale: the task refuses, naming the back-fill, and after `run --backfill` each
# table equals `flowctl read --reduced` of its collection. `--plan` says what a back-fill
# resets; an unknown name is an error with a hint.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
chmod 755 "$WORK"  # the server runs as another user when we are root
pg=$WORK/pg
uri=$("$REPO/scripts/pg.sh" start "$pg" | tail -n 1)
trap '"$REPO/scripts/pg.sh" stop "$pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
psql() { "$REPO/scripts/pg.sh" psql "$pg" -At "$@"; }
lite() { sqlite3 -batch -noheader views.db "$1"; }

# render FACTOR: the catalog, its lambda multiplying totals by FACTOR.
render() {
  cat > flow.yaml <<YAML
collections:
  - name: acme/orders
    key: [/id]
    schema:
      type: object
      required: [id, customer, total]
      properties:
        id: {type: integer}
        customer: {type: string}
        total: {type: integer}
  - name: acme/spend
    key: [/customer]
    schema:
      type: object
      required: [customer]
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: integer, reduce: {strategy: sum}}
    derivation:
      transform:
        fromOrders:
          source: {name: acme/orders}
          publish: {sqlite: "SELECT \$customer AS customer, \$total * $1 AS spent"}
materializationTargets:
  lite: {sqlite: {path: views.db}}
  warehouse: {postgres: {uri: "$uri"}}
materializations:
  acme/lite:
    target: lite
    bindings: [{source: acme/spend, table: spend}]
  acme/pg:
    target: warehouse
    bindings: [{source: acme/spend, table: spend}]
YAML
}
# The reduced derived collection as `customer|spent` lines, and each table the same way.
reduced() {
  "$FLOWCTL" read acme/spend --reduced --data-dir data | node -e '
    for (const l of require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean)) {
      const d = JSON.parse(l); console.log(`${d.customer}|${d.spent}`);
    }'
}
tables_equal_reduced() {  # LABEL
  local want
  want=$(reduced)
  expect_eq "$1: the SQLite table" "$(lite 'SELECT customer, spent FROM spend ORDER BY customer')" "$want"
  expect_eq "$1: the PostgreSQL table" "$(psql -c 'SELECT customer, spent FROM spend ORDER BY customer')" "$want"
}
orders() {  # FIRST LAST: orders FIRST..LAST over customers c0..c9, total = id
  node -e "for (let i = $1; i <= $2; i++) console.log(JSON.stringify({id: i, customer: 'c' + (i % 10), total: i}))"
}

render 1
orders 1 200 > a.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders a.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
tables_equal_reduced "the first run"
expect_eq "c0's spend" "$(lite "SELECT spent FROM spend WHERE customer = 'c0'")" "2100"

# --plan: what a back-fill resets, without running anything.
expect_status 0 "$FLOWCTL" run --plan --data-dir data
expect_eq "--plan without a back-fill" "$(cat "$WORK/out")" "-- materialization \`acme/lite\`: no change
-- materialization \`acme/pg\`: no change"
expect_status 0 "$FLOWCTL" run --plan --backfill acme/spend --data-dir data
expect_eq "--plan of a derivation" "$(grep -v '^-- \|^ \|^[A-Z)]' "$WORK/out")" "derivation \`acme/spend\`: its collection and registers are reset, and it derives again from the start of its sources
materialization \`acme/lite\`: its tables are dropped, re-created and filled again from the start of its sources
materialization \`acme/pg\`: its tables are dropped, re-created and filled again from the start of its sources"
expect_status 0 "$FLOWCTL" run --plan --backfill acme/orders --data-dir data
grep -q "^derivation \`acme/spend\`" "$WORK/out" || fail "--plan of a source collection does not back-fill what reads it: $(cat "$WORK/out")"
expect_status 0 "$FLOWCTL" run --plan --backfill acme/lite --data-dir data
expect_eq "--plan of a materialization" "$(head -3 "$WORK/out")" \
  "materialization \`acme/lite\`: its tables are dropped, re-created and filled again from the start of its sources
-- materialization \`acme/lite\`: would run
DROP TABLE IF EXISTS \"spend\";"
grep -q '^-- materialization `acme/pg`: no change$' "$WORK/out" || fail "--plan of acme/lite changes acme/pg: $(cat "$WORK/out")"
expect_eq "--plan ran nothing" "$(lite 'SELECT count(*) FROM spend')" "10"
expect_status 1 "$FLOWCTL" run --plan --backfill acme/spnd --data-dir data
expect_err "--backfill \`acme/spnd\`: no derivation, materialization or collection of that name in the catalog; did you mean \`acme/spend\`?"

# 1. An edited lambda: `run` goes on with a warning naming the back-fill; the back-fill
#    derives everything again with the new logic, and both tables follow.
render 10
orders 201 210 > b.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders b.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_err "warning: derivation \`acme/spend\` changed since its checkpoint; it goes on from there"
expect_err "flowctl run --backfill acme/spend"
expect_eq "go-forward: c0 mixes both logics" "$(lite "SELECT spent FROM spend WHERE customer = 'c0'")" "$((2100 + 2100))"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data --backfill acme/spend
tables_equal_reduced "after the lambda's back-fill"
expect_eq "c0 over all history with the new logic" "$(lite "SELECT spent FROM spend WHERE customer = 'c0'")" "$(( (2100 + 210) * 10 ))"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "a run after the back-fill warns no more" "$(grep -c 'changed since its checkpoint' "$WORK/err" || true)" "0"
expect_status 0 "$FLOWCTL" fsck --data-dir data

# 2. A wiped data directory, refilled: both materializations refuse, naming the back-fill,
#    and change nothing; the back-fill rebuilds them from what the directory holds now.
rm -rf data
orders 1 50 > c.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders c.jsonl --data-dir data
before_lite=$(lite 'SELECT customer, spent FROM spend ORDER BY customer')
before_fence=$(lite "SELECT fence FROM flow_checkpoints WHERE materialization = 'acme/lite'")
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "materialization \`acme/lite\`: its checkpoint was taken over another data directory"
expect_err "Back-fill it to rebuild its tables from this data directory: flowctl run --backfill acme/lite"
expect_err "materialization \`acme/pg\`: its checkpoint was taken over another data directory"
expect_eq "the refused SQLite table is untouched" "$(lite 'SELECT customer, spent FROM spend ORDER BY customer')" "$before_lite"
expect_eq "the refusal took no fence" "$(lite "SELECT fence FROM flow_checkpoints WHERE materialization = 'acme/lite'")" "$before_fence"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data --backfill acme/lite --backfill acme/pg
tables_equal_reduced "after the wipe's back-fill"
expect_eq "c0 from the new directory only" "$(lite "SELECT spent FROM spend WHERE customer = 'c0'")" "$(( (10 + 20 + 30 + 40 + 50) * 10 ))"

# 3. A table dropped by hand: the materialization says so and changes nothing; the
#    back-fill re-creates and refills it.
lite 'DROP TABLE spend'
psql -c 'DROP TABLE spend' >/dev/null
expect_status 1 "$FLOWCTL" run --plan --data-dir data
expect_err "is missing from target \`lite\`"
grep -q '^-- materialization `acme/lite`: refused' "$WORK/out" || fail "--plan over a dropped table: $(cat "$WORK/out")"
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "is missing from target \`lite\`"
expect_err "back-fill it: flowctl run --backfill acme/lite"
expect_err "back-fill it: flowctl run --backfill acme/pg"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data --backfill acme/lite --backfill acme/pg
tables_equal_reduced "after the dropped tables' back-fill"

# 4. `flowctl reset`: a collection, then the whole directory. Without a terminal it needs
#    --yes; the tasks reading a reset collection stop, naming the back-fill.
expect_status 2 "$FLOWCTL" reset --collection acme/orders --data-dir data < /dev/null
expect_err "pass --yes to reset"
expect_status 1 "$FLOWCTL" reset --collection acme/ordrs --data-dir data --yes
expect_err "did you mean \`acme/orders\`?"
expect_status 0 "$FLOWCTL" reset --collection acme/orders --data-dir data --yes
expect_eq "a reset collection reads as empty" "$("$FLOWCTL" read acme/orders --data-dir data | wc -l)" "0"
orders 300 302 > d.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders d.jsonl --data-dir data
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "error: derivation \`acme/spend\`: journal acme/orders/pivot=00 was reset since its checkpoint (generation 1 then, 2 now)"
expect_err "flowctl run --backfill acme/spend"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data --backfill acme/orders
tables_equal_reduced "after the reset collection's back-fill"
expect_eq "only the orders ingested since the reset" "$(lite 'SELECT sum(spent) FROM spend')" "$(( (300 + 301 + 302) * 10 ))"
expect_status 0 "$FLOWCTL" fsck --data-dir data
lake_files=$(find data/lake -type f | wc -l)

expect_status 3 "$FLOWCTL" reset --data-dir nowhere --yes
expect_err "data directory nowhere does not exist"
[[ ! -e nowhere ]] || fail "reset created the data directory it was to empty"
expect_status 0 "$FLOWCTL" reset --data-dir data --yes
expect_err "it is empty, with a new identity"
expect_eq "no fragment is left" "$(find data/lake -type f 2>/dev/null | wc -l)" "0"
((lake_files > 0)) || fail "the directory had no fragments before the reset"
expect_eq "a reset directory reads as empty" "$("$FLOWCTL" read acme/spend --data-dir data | wc -l)" "0"
orders 1 3 > e.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders e.jsonl --data-dir data
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "its checkpoint was taken over another data directory"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data --backfill acme/lite --backfill acme/pg
tables_equal_reduced "after the directory's reset and back-fill"

# 5. A one-off materialization (`flowctl materialize`) names its own back-fill.
expect_status 0 "$FLOWCTL" materialize --target lite --collection acme/spend --table-name one --yes --data-dir data
expect_eq "the one-off table" "$(lite 'SELECT customer, spent FROM one ORDER BY customer')" "$(reduced)"
lite 'DROP TABLE one'
expect_status 1 "$FLOWCTL" materialize --target lite --collection acme/spend --table-name one --yes --data-dir data
expect_err "back-fill it: flowctl materialize --target lite --collection acme/spend --table-name one --backfill"
expect_status 0 "$FLOWCTL" materialize --target lite --collection acme/spend --table-name one --yes --data-dir data --backfill
expect_eq "the one-off table after its back-fill" "$(lite 'SELECT customer, spent FROM one ORDER BY customer')" "$(reduced)"
finish
