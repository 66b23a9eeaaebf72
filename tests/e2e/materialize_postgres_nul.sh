#!/usr/bin/env bash
# Poison documents in PostgreSQL (issue 16 item 7), against a real server (scripts/pg.sh):
# - U+0000 in a string: dropped from TEXT columns (PostgreSQL text cannot hold it), kept
#   escaped in JSON columns and `flow_document`; in a key column it is refused with an
#   error naming the collection, key, column and journal offset.
# - A value the server refuses (an integer beyond BIGINT) names the row's key and column.
# Either halts only its materialization; the others keep running. With `deadLetters` the
# key goes there (one the server refuses, one that cannot be loaded) and the rest is stored.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
chmod 755 "$WORK"  # the server runs as another user when we are root
pg=$WORK/pg
uri=$("$REPO/scripts/pg.sh" start "$pg" | tail -n 1)
trap '"$REPO/scripts/pg.sh" stop "$pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
psql() { "$REPO/scripts/pg.sh" psql "$pg" -At "$@"; }

cat > flow.yaml <<YAML
collections:
  - name: acme/notes
    key: [/id]
    schema:
      type: object
      required: [id]
      properties:
        id: {type: integer}
        note: {type: string}
        meta: {type: object}
        n: {type: integer}
    projections: {meta: /meta}
  - name: acme/names
    key: [/name]
    schema: {type: object, required: [name], properties: {name: {type: string}}}
  - name: acme/big
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, n: {type: integer}}}
  - name: acme/dead
    key: [/task, /binding, /journal, /offset]
    schema:
      type: object
      required: [task, binding, journal, offset]
      properties: {task: {type: string}, binding: {type: string}, journal: {type: string}, offset: {type: integer}}
materializationTargets:
  warehouse:
    postgres: {uri: "$uri"}
materializations:
  acme/notes-view:
    target: warehouse
    bindings: [{source: acme/notes, table: notes, fields: {include: [note, meta, n]}}]
  acme/names-view:
    target: warehouse
    bindings: [{source: acme/names, table: names}]
  acme/big-view:
    target: warehouse
    bindings: [{source: acme/big, table: big}]
  acme/dead-lettered:
    target: warehouse
    bindings:
      - {source: acme/big, table: big2, deadLetters: acme/dead}
      - {source: acme/names, table: names2, deadLetters: acme/dead}
YAML
ingest() { printf '%s\n' "$2" > in.jsonl; expect_status 0 "$FLOWCTL" ingest "$1" in.jsonl --data-dir data; }
ingest acme/notes '{"id":1,"note":"a\u0000b","meta":{"x":"c\u0000d"}}'
ingest acme/names '{"name":"ok"}'
ingest acme/big '{"id":1,"n":5}'
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "the TEXT column drops U+0000" "$(psql -c 'SELECT note FROM notes WHERE id = 1')" "ab"
expect_eq "the JSON column keeps it escaped" "$(psql -c "SELECT meta::text FROM notes WHERE id = 1")" '{"x":"c\u0000d"}'
psql -c 'SELECT flow_document::text FROM notes WHERE id = 1' | grep -F '"note":"a\u0000b"' >/dev/null ||
  fail "flow_document lost the U+0000: $(psql -c 'SELECT flow_document::text FROM notes')"
# Reduced again through Load (the stored document holds the escape).
ingest acme/notes '{"id":1,"note":"z\u0000"}'
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "updated" "$(psql -c 'SELECT note FROM notes WHERE id = 1')" "z"

# A key holding U+0000 halts acme/names-view only.
ingest acme/names '{"name":"k\u0000"}'
offset=$(sed -n 's/.*"acme\/names\/pivot=00":\([0-9]*\).*/\1/p' "$WORK/out")
ingest acme/big '{"id":2,"n":18446744073709551615}'
ingest acme/notes '{"id":2,"note":"after"}'
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "materialization \`acme/names-view\`, table \`names\`: collection \`acme/names\`, key [\"k\u0000\"] (its last document read: offset"
expect_err "of journal acme/names/pivot=00): PostgreSQL target \`warehouse\`: table \`names\`, column \`name\`: the key value \"k\u0000\" holds the character U+0000"
# The integer beyond BIGINT: the server's error with the key and the column.
expect_err "materialization \`acme/big-view\`, table \`big\`: collection \`acme/big\`, key [2] (its last document read: offset"
expect_err "(table \`big\`, key [2], column \`n\`); nothing of the transaction was stored"
expect_eq "the other materialization kept running" "$(psql -c 'SELECT note FROM notes WHERE id = 2')" "after"
expect_eq "nothing of the refused transactions" "$(psql -c 'SELECT count(*) FROM names'),$(psql -c 'SELECT count(*) FROM big')" "1,1"
# With deadLetters: both keys go there, the others are stored.
expect_eq "the rest is stored" "$(psql -c 'SELECT id FROM big2 ORDER BY id' | tr '\n' ' ')" "1 "
expect_eq "the rest is stored" "$(psql -c 'SELECT name FROM names2 ORDER BY name' | tr '\n' ' ')" "ok "
expect_status 0 "$FLOWCTL" read acme/dead --reduced --data-dir data
expect_eq "two dead letters" "$(grep -c . "$WORK/out")" 2
grep '"binding":"big2"' "$WORK/out" | grep -F 'is out of range for type bigint (table `big2`, key [2], column `n`)' >/dev/null ||
  fail "no dead letter for the integer beyond BIGINT: $(cat "$WORK/out")"
grep '"binding":"names2"' "$WORK/out" | grep -F 'table `names2`, column `name`: the key value' >/dev/null ||
  fail "no dead letter for the key holding U+0000: $(cat "$WORK/out")"
: "$offset"
finish
