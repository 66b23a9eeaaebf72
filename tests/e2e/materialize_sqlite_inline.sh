#!/usr/bin/env bash
# The earliest preview form of a materialization, `{collection, sqlite: {path|uri, table}}`
# (SPEC 1.7), as Flow's 2020 example catalogs wrote it: it builds, `flowctl run` fills its
# table (the path relative to the declaring file), `flowctl docs` and the built catalog show
# it, and a mix of the two forms is refused.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
mkdir -p catalog
cat > catalog/flow.yaml <<'YAML'
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
  - name: acme/customers
    key: [/customer]
    schema:
      type: object
      required: [customer]
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: integer, reduce: {strategy: sum}}
        orders: {type: integer, reduce: {strategy: sum}}
    derivation:
      transform:
        fromOrders:
          source: {name: acme/orders}
          publish: {sqlite: "SELECT $customer AS customer, $total AS spent, 1 AS orders"}

materializations:
  # Flow's preview spelled the SQLite file `uri`; `path` is accepted too.
  customersLite:
    collection: acme/customers
    sqlite:
      uri: views/db.sqlite
      table: customers
  ordersLite:
    collection: acme/orders
    sqlite: {path: views/db.sqlite, table: orders}
YAML

# From another directory: the database is relative to catalog/flow.yaml, not to here.
expect_status 0 "$FLOWCTL" build --source catalog/flow.yaml --catalog catalog.db
expect_err "materializations:  2 into 2 targets (2 tables)"
expect_eq "inline targets in the built catalog" \
  "$(sqlite3 -batch -noheader catalog.db "SELECT name, kind, written, is_inline FROM materialization_targets ORDER BY name")" \
  "customersLite|sqlite|views/db.sqlite|1
ordersLite|sqlite|views/db.sqlite|1"
expect_eq "addresses relative to the declaring file" \
  "$(sqlite3 -batch -noheader catalog.db "SELECT DISTINCT address FROM materialization_targets")" \
  "$WORK/catalog/views/db.sqlite"
expect_eq "one binding each, default fields" \
  "$(sqlite3 -batch -noheader catalog.db "SELECT materialization, source_collection, table_name, fields_json FROM materialization_bindings ORDER BY materialization")" \
  'customersLite|acme/customers|customers|["customer","orders","spent","flow_document"]
ordersLite|acme/orders|orders|["id","customer","total","flow_document"]'

printf '{"id":1,"customer":"bo","total":5}\n{"id":2,"customer":"al","total":3}\n{"id":3,"customer":"bo","total":7}\n' > orders.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders orders.jsonl --source catalog/flow.yaml --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --source catalog/flow.yaml --data-dir data
[[ -f catalog/views/db.sqlite ]] || fail "the database is not beside catalog/flow.yaml"
[[ ! -e views ]] || fail "a database was created relative to the working directory"
expect_eq "customers rows" \
  "$(sqlite3 -batch -noheader catalog/views/db.sqlite 'SELECT customer, orders, spent FROM customers ORDER BY customer')" \
  "al|1|3
bo|2|12"
expect_eq "orders rows" \
  "$(sqlite3 -batch -noheader catalog/views/db.sqlite 'SELECT id, customer, total FROM orders ORDER BY id')" \
  "1|bo|5
2|al|3
3|bo|7"
expect_eq "one checkpoint per materialization" \
  "$(sqlite3 -batch -noheader catalog/views/db.sqlite 'SELECT materialization FROM flow_checkpoints ORDER BY 1')" \
  "customersLite
ordersLite"

# `flowctl materialize --target` reaches an inline target by its materialization's name.
expect_status 0 "$FLOWCTL" materialize --target ordersLite --collection acme/customers --table-name top \
  --yes --source catalog/flow.yaml --data-dir data
expect_eq "a one-off materialization into the inline target's database" \
  "$(sqlite3 -batch -noheader catalog/views/db.sqlite 'SELECT customer, spent FROM top ORDER BY customer')" "al|3
bo|12"

# The docs site names each inline materialization's database.
expect_status 0 "$FLOWCTL" docs --source catalog/flow.yaml --output site
grep -qF "Into target customersLite (sqlite views/db.sqlite)" site/index.html ||
  fail "the docs site does not show the inline target"

# Mixing the forms, and an unknown key in the inline form (with did-you-mean).
cat > mixed.yaml <<'YAML'
import: [catalog/flow.yaml]
materializationTargets:
  local: {sqlite: {path: other.db}}
materializations:
  both:
    target: local
    collection: acme/orders
    sqlite: {path: other.db, table: orders2}
  typo:
    collection: acme/orders
    sqlite: {path: other.db, tabel: orders3}
YAML
expect_status 1 "$FLOWCTL" build --source mixed.yaml --catalog mixed.db
expect_err "mixed.yaml:5:3: error: a materialization has either \`target\` and \`bindings\`, or \`collection\` with \`sqlite\` or \`postgres\` (the inline form), not both"
expect_err "mixed.yaml:11:30: error: unknown key \`tabel\` in a sqlite materialization"
expect_err "did you mean \`table\`?"
finish
