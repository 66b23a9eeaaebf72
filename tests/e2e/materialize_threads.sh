#!/usr/bin/env bash
# Issue 19: a materialization's transaction reads, parses and combines on --threads threads.
# The same source materialized with 1 and with 4 threads gives the same rows and the same
# dead letters, in read order: 60,000 documents over 1,000 keys (several chunks), where
# 11 keys overflow their sum while the transaction's documents are combined, each at its
# third document, which is left out (and the transaction read again without it).
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
        pad: {type: string}
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
YAML
# Keys divisible by 97 get -4e18 three times (the third overflows), then 1s.
awk 'BEGIN { for (i = 0; i < 60000; i++) { id = i % 1000; v = (id % 97 == 0 && i < 3000) ? "-4000000000000000000" : "1";
  printf "{\"id\":%d,\"sum\":%s,\"pad\":\"%s\"}\n", id, v, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" } }' > in.jsonl
# One transaction per round of 1,000 (each key once), so that the lake holds every document.
split -l 1000 -d -a 3 in.jsonl round.
for f in round.*; do expect_status 0 "$FLOWCTL" ingest acme/totals "$f" --data-dir data; done
for t in 1 4; do
  mkdir "t$t" && cp flow.yaml "t$t/" && cp -r data "t$t/data"
  (cd "t$t" && expect_status 0 "$FLOWCTL" run --until-idle --threads "$t" --data-dir data)
  expect_err "1000 rows stored, 11 sent to dead letters"
  sqlite3 -batch -noheader "t$t/views/db.sqlite" 'SELECT id, sum, flow_document FROM totals ORDER BY id' > "rows.$t"
  # The dead letters as committed (in read order), without their UUIDs.
  (cd "t$t" && "$FLOWCTL" read acme/dead --data-dir data) | sed 's/,"_meta":{"uuid":"[^"]*"}}$/}/' > "dead.$t"
done
expect_eq "rows" "$(wc -l < rows.1)" 1000
expect_eq "key 0 keeps its first two documents and the 57 ones after" "$(grep '^0|' rows.1 | cut -d'|' -f2)" \
  -7999999999999999943
cmp -s rows.1 rows.4 || fail "the rows differ with 4 threads: $(diff rows.1 rows.4 | head -n 4)"
expect_eq "dead letters" "$(wc -l < dead.1)" 11
grep -o '"offset":[0-9]*' dead.1 | cut -d: -f2 | sort -n -c 2> /dev/null || fail "dead letters not in read order: $(cat dead.1)"
cmp -s dead.1 dead.4 || fail "the dead letters differ with 4 threads: $(diff dead.1 dead.4 | head -n 4)"
finish
