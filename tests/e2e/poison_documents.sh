#!/usr/bin/env bash
# Issue 16 item 7: poison documents. Three valid ingests whose `sum` overflows int64
# together make `read --reduced` and the materialization of that collection fail with an
# error naming the collection, the key, the location and the journal offset; the other
# tasks keep running. A string holding U+0000 is stored and materialized into SQLite as it
# is (PostgreSQL: see materialize_postgres_nul.sh).
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cat > flow.yaml <<'YAML'
collections:
  - name: acme/totals
    key: [/id]
    schema:
      type: object
      required: [id]
      reduce: {strategy: merge}
      properties:
        id: {type: integer}
        sum: {type: integer, reduce: {strategy: sum}}
        note: {type: string}
  - name: acme/events
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, v: {type: string}}}
  - name: acme/copies
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, v: {type: string}}}
    derivation:
      transform:
        fromEvents:
          source: {name: acme/events}
          publish: {sqlite: "SELECT $id AS id, $v AS v"}
materializationTargets:
  local:
    sqlite: {path: views/db.sqlite}
materializations:
  acme/totals-view:
    target: local
    bindings:
      - {source: acme/totals, table: totals}
  acme/events-view:
    target: local
    bindings:
      - {source: acme/events, table: events}
YAML
big=-4000000000000000000  # three of them overflow the 64-bit range (-9223372036854775808)
ingest() { printf '%s\n' "$2" > in.jsonl; expect_status 0 "$FLOWCTL" ingest "$1" in.jsonl --data-dir data; }
ingest acme/totals '{"id":1,"sum":'$big'}'
ingest acme/totals '{"id":2,"sum":1,"note":"a\u0000b"}'
ingest acme/totals '{"id":1,"sum":'$big'}'
# Stored first, then reduced with the third document.
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
ingest acme/totals '{"id":1,"sum":'$big'}'
ingest acme/events '{"id":7,"v":"x"}'

# read --reduced: the third document of key [1] cannot be reduced.
expect_status 0 "$FLOWCTL" read acme/totals --data-dir data
offsets=$(awk 'BEGIN{o=0} {print o; o+=length($0)+1}' "$WORK/out")
third=$(echo "$offsets" | sed -n 4p)
expect_status 1 "$FLOWCTL" read acme/totals --reduced --data-dir data
expect_err "collection \`acme/totals\`: the document at offset $third of journal acme/totals/pivot=00: key [1]: sum at /sum: integer overflow"
expect_err "left -8000000000000000000, right -4000000000000000000"

# run: the materialization of acme/totals halts naming the collection, key, location and
# the document; the other materialization and the derivation keep running.
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "materialization \`acme/totals-view\`, table \`totals\`: collection \`acme/totals\`, key [1] (its last document read: offset $third of journal acme/totals/pivot=00): cannot reduce into the stored document: sum at /sum: integer overflow"
expect_eq "events materialized" "$(sqlite3 -batch -noheader views/db.sqlite 'SELECT id FROM events')" 7
expect_status 0 "$FLOWCTL" read acme/copies --data-dir data
grep -q '"id":7' "$WORK/out" || fail "the derivation stopped with the materialization"
# A fresh target meets the overflow while combining the transaction's documents.
mkdir fresh && cp flow.yaml fresh/ && cp -r data fresh/data && rm -rf fresh/data/materializations* && cd fresh
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "materialization \`acme/totals-view\`, table \`totals\`: collection \`acme/totals\`: the document at offset $third of journal acme/totals/pivot=00: key [1]: sum at /sum: integer overflow"
expect_eq "events materialized again" "$(sqlite3 -batch -noheader views/db.sqlite 'SELECT id FROM events')" 7
cd ..

# U+0000 in a string is kept: in the journal, and in SQLite's TEXT column.
expect_status 0 "$FLOWCTL" read acme/totals --data-dir data
grep -qF '"note":"a\u0000b"' "$WORK/out" || fail "the journal lost the U+0000: $(cat "$WORK/out")"
finish
