#!/usr/bin/env bash
# A materialized collection's schema changes between runs, into SQLite and a real
# PostgreSQL server (started here by scripts/pg.sh): a new nullable field is added as a
# column, integer → number and a longer maxLength are widened, a field no longer selected
# stays as a nullable column; a change that cannot be migrated, and a table dropped by hand
# while its checkpoint survived, are refused naming the back-fill.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
chmod 755 "$WORK"  # the server runs as another user when we are root
pg=$WORK/pg
uri=$("$REPO/scripts/pg.sh" start "$pg" | tail -n 1)
trap '"$REPO/scripts/pg.sh" stop "$pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
psql() { "$REPO/scripts/pg.sh" psql "$pg" -At -c "$1"; }
lite() { sqlite3 -batch -noheader views/db.sqlite "$1"; }

# catalog REQUIRED TOTAL_TYPE MAX_LENGTH EXTRA_PROPERTIES FIELDS
catalog() {
  cat > flow.yaml <<YAML
collections:
  - name: acme/orders
    key: [/id]
    schema:
      type: object
      required: [$1]
      properties:
        id: {type: integer}
        customer: {type: string, maxLength: $3}
        total: {type: $2}
        region: {type: string}
$4
materializationTargets:
  lite: {sqlite: {path: views/db.sqlite}}
  warehouse: {postgres: {uri: "$uri"}}
materializations:
  acme/to-lite:
    target: lite
    bindings: [{source: acme/orders, table: orders$5}]
  acme/to-pg:
    target: warehouse
    bindings: [{source: acme/orders, table: orders$5}]
YAML
}
columns_pg() {
  psql "SELECT string_agg(column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '') || ' ' || is_nullable, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'orders'"
}
columns_lite() {
  lite "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\", ', ') FROM pragma_table_info('orders')"
}

catalog "id, customer, total, region" integer 8 "" ""
printf '%s\n' '{"id":1,"customer":"bo","total":5,"region":"EU"}' > t1.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders t1.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "postgres columns at first" "$(columns_pg)" \
  "id bigint NO, customer character varying(8) NO, region text NO, total bigint NO, flow_document json NO"

# v2: a new nullable field, total becomes a number, customer may be longer, region is no
# longer selected (and no longer required).
catalog "id, customer, total" number 32 "        note: {type: string}" ", fields: {include: [customer, total, note], exclude: [region]}"
printf '%s\n' '{"id":2,"customer":"a longer customer","total":2.5,"note":"hi"}' > t2.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders t2.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "postgres columns migrated" "$(columns_pg)" \
  "id bigint NO, customer character varying(32) NO, region text YES, total double precision NO, flow_document json NO, note text YES"
expect_eq "postgres rows" "$(psql 'SELECT id, customer, total, region, note FROM orders ORDER BY id')" \
  "1|bo|5|EU|
2|a longer customer|2.5||hi"
expect_eq "sqlite columns migrated" "$(columns_lite)" \
  "id INTEGER 1, customer TEXT 1, region TEXT 0, total INTEGER 1, flow_document TEXT 1, note TEXT 0"
expect_eq "sqlite rows" "$(lite 'SELECT id, customer, total, region, note FROM orders ORDER BY id')" \
  "1|bo|5|EU|
2|a longer customer|2.5||hi"

# v3: note becomes required, which the existing rows cannot satisfy: refused, untouched.
catalog "id, customer, total, note" number 32 "        note: {type: string}" ", fields: {include: [customer, total, note], exclude: [region]}"
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "table \`orders\` in target \`warehouse\` exists with a different shape that cannot be migrated"
expect_err "table \"orders\" in target \`lite\` ("
expect_err '  - column "note" may be NULL, expected NOT NULL: the existing rows may hold NULL'
expect_err "Nothing was changed; back-fill it to re-create the table: flowctl run --backfill acme/to-pg"
expect_err "Nothing was changed; back-fill it to re-create the table: flowctl run --backfill acme/to-lite"
expect_eq "postgres untouched" "$(columns_pg)" \
  "id bigint NO, customer character varying(32) NO, region text YES, total double precision NO, flow_document json NO, note text YES"

# A table dropped by hand while its checkpoint survived: refused rather than re-created empty.
catalog "id, customer, total" number 32 "        note: {type: string}" ", fields: {include: [customer, total, note], exclude: [region]}"
lite 'DROP TABLE orders'
psql 'DROP TABLE orders' >/dev/null
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "table \"orders\" is missing from target \`lite\` ("
expect_err "although flow_checkpoints holds a checkpoint for materialization \`acme/to-lite\`: creating it empty would silently miss every document before that checkpoint. Nothing was changed; back-fill it: flowctl run --backfill acme/to-lite"
expect_err "table \`orders\` is missing from target \`warehouse\`, although flow_checkpoints holds a checkpoint for materialization \`acme/to-pg\`"
expect_eq "nothing re-created" "$(lite "SELECT count(*) FROM sqlite_master WHERE name = 'orders'")|$(psql "SELECT to_regclass('orders') IS NULL")" "0|t"
finish
