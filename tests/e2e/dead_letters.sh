#!/usr/bin/env bash
# Issue 16 item 7: dead letters. A materialization binding and a transform with
# `deadLetters` keep going past a document or key they cannot process: it goes, with its
# error and where it was read, to the collection named, once however often the task runs,
# and the other keys keep being updated. Without it the same input halts the task
# (poison_documents.sh).
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
  - name: acme/events
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, v: {type: string}}}
  - name: acme/copies
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, v: {}}}
    derivation:
      transform:
        fromEvents:
          source:
            name: acme/events
            schema: {type: object, required: [id], properties: {id: {type: integer}, v: {maxLength: 10}}}
          publish: {sqlite: "SELECT $id AS id, json($v) AS v"}
          deadLetters: acme/dead
  - name: acme/dead
    key: [/task, /binding, /journal, /offset]
    schema:
      type: object
      required: [task, taskKind, binding, collection, journal, offset, error, document]
      properties:
        task: {type: string}
        taskKind: {type: string}
        binding: {type: string}
        collection: {type: string}
        journal: {type: string}
        offset: {type: integer}
        error: {type: string}
        document: {type: object}
materializationTargets:
  local:
    sqlite: {path: views/db.sqlite}
materializations:
  acme/totals-view:
    target: local
    bindings:
      - {source: acme/totals, table: totals, deadLetters: acme/dead}
      - {source: acme/dead, table: dead_letters}
YAML
big=-4000000000000000000  # three of them overflow the 64-bit range (-9223372036854775808)
ingest() { printf '%s\n' "$2" > in.jsonl; expect_status 0 "$FLOWCTL" ingest "$1" in.jsonl --data-dir data; }
sql() { sqlite3 -batch -noheader views/db.sqlite "$1"; }
ingest acme/totals '{"id":1,"sum":'$big'}'
ingest acme/totals '{"id":2,"sum":1}'
ingest acme/totals '{"id":1,"sum":'$big'}'
ingest acme/totals '{"id":3,"sum":5000000000000000000}'
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
ingest acme/totals '{"id":1,"sum":'$big'}'
ingest acme/totals '{"id":2,"sum":10}'
# Key 3's sum fits JSON's and flowctl's range, but not a SQLite integer: the database refuses it.
ingest acme/totals '{"id":3,"sum":5000000000000000000}'
expect_status 0 "$FLOWCTL" read acme/totals --data-dir data
offsets=$(awk 'BEGIN{o=0} {print o; o+=length($0)+1}' "$WORK/out")
third=$(sed -n 5p <<<"$offsets")
sixth=$(sed -n 7p <<<"$offsets")
cp -r data data.before

# The key that cannot be reduced into its row keeps its row; the others are updated.
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_err "sent to dead letters \`acme/dead\`"
expect_err "rows stored, 2 sent to dead letters"
expect_eq "key 1 keeps its row" "$(sql 'SELECT sum FROM totals WHERE id = 1')" -8000000000000000000
expect_eq "key 2 is updated" "$(sql 'SELECT sum FROM totals WHERE id = 2')" 11
expect_eq "key 3 keeps its row" "$(sql 'SELECT sum FROM totals WHERE id = 3')" 5000000000000000000
expect_status 0 "$FLOWCTL" read acme/dead --reduced --data-dir data
expect_eq "two dead letters" "$(wc -l < "$WORK/out")" 2
letter=$(grep '"id":1' "$WORK/out")
for part in '"task":"acme/totals-view"' '"taskKind":"materialization"' '"binding":"totals"' \
  '"collection":"acme/totals"' '"journal":"acme/totals/pivot=00"' "\"offset\":$third," \
  'cannot reduce into the stored document: sum at /sum: integer overflow' '"document":{"id":1,"sum":-4000000000000000000'; do
  grep -qF -- "$part" <<<"$letter" || fail "the dead letter lacks $part: $letter"
done
letter=$(grep '"id":3' "$WORK/out")
for part in "\"offset\":$sixth," 'the integer 10000000000000000000 is beyond' '"id":3,"sum":10000000000000000000}'; do
  grep -qF -- "$part" <<<"$letter" || fail "the dead letter of key 3 lacks $part: $letter"
done
# They are materialized like any document, by the binding of acme/dead.
expect_eq "the dead letters' rows" "$(sql 'SELECT task, binding, "offset" FROM dead_letters ORDER BY "offset"')" \
  "acme/totals-view|totals|$third
acme/totals-view|totals|$sixth"
# Running again writes nothing again.
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_status 0 "$FLOWCTL" read acme/dead --data-dir data
expect_eq "still two dead letters" "$(wc -l < "$WORK/out")" 2

# A fresh target meets the overflow while combining the transaction's documents: the third
# document goes to dead letters, and the first two are stored.
mkdir fresh && cp flow.yaml fresh/ && cp -r data.before fresh/data && cd fresh
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "key 1 of the first two" "$(sql 'SELECT sum FROM totals WHERE id = 1')" -8000000000000000000
expect_eq "key 2" "$(sql 'SELECT sum FROM totals WHERE id = 2')" 11
expect_eq "the dead letter's row" "$(sql 'SELECT task, binding, "offset" FROM dead_letters WHERE "offset" = '$third)" \
  "acme/totals-view|totals|$third"
expect_status 0 "$FLOWCTL" read acme/dead --data-dir data
grep -qF 'the document at offset '"$third"' of journal acme/totals/pivot=00: key [1]: sum at /sum: integer overflow' "$WORK/out" ||
  fail "the dead letter does not say why: $(cat "$WORK/out")"
cd ..

# A transform: its source schema refuses one document and its lambda fails on another
# (json() of text that is not JSON); both go to dead letters, the others are derived.
printf '%s\n' '{"id":1,"v":"[1]"}' '{"id":2,"v":"much too long for it"}' '{"id":3,"v":"{bad"}' '{"id":4,"v":"[4]"}' > ev.jsonl
expect_status 0 "$FLOWCTL" ingest acme/events ev.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_status 0 "$FLOWCTL" read acme/copies --data-dir data
expect_eq "derived" "$(grep -o '"id":[0-9]*' "$WORK/out" | tr '\n' ' ')" '"id":1 "id":4 '
expect_status 0 "$FLOWCTL" read acme/dead --reduced --data-dir data
expect_eq "four dead letters" "$(grep -c . "$WORK/out")" 4
grep -q '"taskKind":"derivation","binding":"fromEvents".*the publish lambda failed.*"document":{"id":3' "$WORK/out" ||
  fail "no dead letter for the document the lambda failed on: $(cat "$WORK/out")"
grep -q 'does not validate against the transform.s source schema.*"document":{"id":2' "$WORK/out" ||
  fail "no dead letter for the document the source schema refused: $(cat "$WORK/out")"
finish
