#!/usr/bin/env bash
# No write amplification during back-fills (issue 19, item 2): a from-scratch `run
# --until-idle` of 100k orders -> per-customer totals over 5k customers (a derivation, and a
# second one chained after it) -> SQLite stores each final row about once (at most 1.1 row
# writes per final row), although the derivations commit many small transactions; and the
# tables equal `read --reduced`. Afterwards, keeping pace, a new order is stored at once.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

cat > flow.yaml <<'YAML'
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
        orders: {type: integer, reduce: {strategy: sum}}
        spent: {type: integer, reduce: {strategy: sum}}
    derivation:
      transform:
        fromOrders:
          source: {name: acme/orders}
          publish: {sqlite: "SELECT $customer AS customer, 1 AS orders, $total AS spent"}
  - name: acme/tiers
    key: [/tier]
    schema:
      type: object
      required: [tier]
      reduce: {strategy: merge}
      properties:
        tier: {type: integer}
        spent: {type: integer, reduce: {strategy: sum}}
    derivation:
      transform:
        fromSpend:
          source: {name: acme/spend}
          publish: {sqlite: "SELECT $spent % 50 AS tier, $spent AS spent"}
materializationTargets:
  lite: {sqlite: {path: views.db}}
materializations:
  acme/views:
    target: lite
    bindings:
      - {source: acme/spend, table: spend}
      - {source: acme/tiers, table: tiers}
YAML
awk 'BEGIN { for (i = 1; i <= 100000; i++) printf "{\"id\":%d,\"customer\":\"c%d\",\"total\":%d}\n", i, (i * 7919) % 5000, i % 100 }' > orders.jsonl
"$FLOWCTL" ingest acme/orders orders.jsonl --data-dir data > /dev/null 2> ingest.err || { cat ingest.err; exit 1; }

"$FLOWCTL" run --until-idle --data-dir data > run.out 2> run.err || { cat run.err; exit 1; }
published=$(grep -oE 'derivation `acme/spend`: 100000 documents read, [0-9]+ published' run.err | grep -oE '[0-9]+ published' | cut -d' ' -f1 || true)
stored=$(grep -oE 'materialization `acme/views`: [0-9]+ documents read, [0-9]+ rows stored' run.err | grep -oE '[0-9]+ rows' | cut -d' ' -f1 || true)
rows=$(sqlite3 views.db 'SELECT (SELECT count(*) FROM spend) + (SELECT count(*) FROM tiers)')
echo "acme/spend published ${published:-?} documents; acme/views stored ${stored:-?} rows for $rows final rows"
[[ -n $published && $published -gt 15000 ]] \
  || fail "expected the derivation to publish a value per customer in each of several transactions (> 15000 documents), got '${published:-}'"
[[ $rows -eq 5050 ]] || fail "expected 5000 + 50 final rows, got $rows"
[[ -n $stored ]] && awk -v s="$stored" -v r="$rows" 'BEGIN { exit !(s <= 1.1 * r) }' \
  || fail "write amplification: ${stored:-?} row writes for $rows final rows (at most 1.1 per row): $(cat run.err)"

# The tables equal the reduced collections.
for pair in spend:acme/spend tiers:acme/tiers; do
  table=${pair%%:*} collection=${pair#*:}
  "$FLOWCTL" read "$collection" --reduced --data-dir data | node -e '
    const key = process.argv[1];
    const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
    for (const l of lines) { const d = JSON.parse(l); console.log(`${d[key]}|${d.spent}`); }' \
    "$([[ $table == spend ]] && echo customer || echo tier)" | sort > want.$table
  sqlite3 views.db "SELECT $([[ $table == spend ]] && echo customer || echo tier), spent FROM $table" | sort > got.$table
  cmp -s want.$table got.$table || fail "table $table differs from read --reduced $collection: $(diff want.$table got.$table | head -5)"
done

# Keeping pace: one more order is stored by the next run, in one row of each table.
echo '{"id":100001,"customer":"c1","total":5}' | "$FLOWCTL" ingest acme/orders --data-dir data > /dev/null 2> ingest.err || { cat ingest.err; exit 1; }
"$FLOWCTL" run --until-idle --data-dir data > run.out 2> run.err || { cat run.err; exit 1; }
grep -q 'materialization `acme/views`: 2 documents read, 2 rows stored' run.err \
  || fail "expected the new order to be stored in one row of each table: $(cat run.err)"

exit $((failures > 0))
