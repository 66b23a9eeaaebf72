#!/usr/bin/env bash
# Issue 16 item 5: a schema-valid document whose partition value is too long for a journal
# name (over 128 bytes once percent-encoded) is a data error, refused before anything is
# appended: `ingest` exits 1 naming the collection, the field and the line; develop answers
# 400 and keeps serving; a derivation publishing such a document halts with that error
# while the other tasks keep running. The store is never latched as failed.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cat > flow.yaml <<'YAML'
collections:
  - name: acme/events
    key: [/id]
    schema:
      type: object
      required: [id, region]
      properties: {id: {type: integer}, region: {type: string}, n: {type: integer}}
    projections:
      region: {location: /region, partition: true}
  - name: acme/long
    key: [/id]
    schema:
      type: object
      required: [id, region]
      properties: {id: {type: integer}, region: {type: string}}
    projections:
      region: {location: /region, partition: true}
    derivation:
      transform:
        fromEvents:
          source: {name: acme/events}
          publish: {sqlite: "SELECT $id AS id, substr(replace(hex(zeroblob($n)), '0', 'x'), 1, $n) AS region"}
materializationTargets:
  local:
    sqlite: {path: views/db.sqlite}
materializations:
  acme/views:
    target: local
    bindings:
      - {source: acme/events, table: events}
YAML
x() { printf "$1%.0s" $(seq "$2"); }

# ingest: refused with exit 1 (a data error, not 3), naming collection, field and line.
printf '{"id":1,"region":"eu","n":1}\n{"id":2,"region":"%s","n":1}\n' "$(x x 300)" > long.jsonl
expect_status 1 "$FLOWCTL" ingest acme/events long.jsonl --data-dir data
expect_err "long.jsonl:2"
expect_err "collection \`acme/events\`: partition field \`region\` (/region) has a value of 300 bytes once percent-encoded"
expect_err "at most 128 are allowed"
expect_err "nothing was written"
# Percent-encoding counts: 50 `é` are 100 bytes of UTF-8 and 300 once encoded.
printf '{"id":3,"region":"%s","n":1}\n' "$(x é 50)" > encoded.jsonl
expect_status 1 "$FLOWCTL" ingest acme/events encoded.jsonl --data-dir data
expect_err "has a value of 300 bytes once percent-encoded"
# 128 bytes pass, and the store takes further writes.
printf '{"id":4,"region":"%s","n":1}\n' "$(x y 128)" > edge.jsonl
expect_status 0 "$FLOWCTL" ingest acme/events edge.jsonl --data-dir data
expect_status 0 "$FLOWCTL" read acme/events --data-dir data
expect_eq "documents stored" "$(grep -c '"id"' "$WORK/out")" 1

# A partition field whose name is long leaves less room for its value (the directory
# `<field>=<value>` stays under 240 bytes).
field=$(x f 200)
cat > wide.yaml <<YAML
collections:
  - name: acme/wide
    key: [/id]
    schema: {type: object, required: [id, v], properties: {id: {type: integer}, v: {type: string}}}
    projections:
      $field: {location: /v, partition: true}
YAML
printf '{"id":1,"v":"%s"}\n' "$(x v 50)" > wide.jsonl
expect_status 1 "$FLOWCTL" ingest acme/wide wide.jsonl --source wide.yaml --data-dir wide
expect_err "has a value of 50 bytes once percent-encoded for its journal name; at most 39 are allowed"

# develop: 400, nothing written, and it keeps serving.
rm -rf data views
start_develop
put() {
  status=$(curl -sS -o body -w '%{http_code}' -X PUT -H 'Content-Type: application/json' --data-binary "$1" \
    "$url/ingest" 2>curl.err) || status="curl failed: $(cat curl.err)"
}
put "{\"acme/events\":[{\"id\":10,\"region\":\"eu\",\"n\":1},{\"id\":11,\"region\":\"$(x x 300)\",\"n\":1}]}"
expect_eq "status of a long partition value" "$status" 400
grep -qF 'document 1: collection `acme/events`: partition field `region` (/region) has a value of 300 bytes' body ||
  fail "the 400 body does not name the document and the field: $(cat body)"
put '{"acme/events":[{"id":12,"region":"eu","n":2}]}'
expect_eq "status of a good write afterwards" "$status" 200
kill -0 "$dev_pid" 2>/dev/null || fail "develop exited"

# A derivation publishing a long partition value halts with a data error; develop and the
# materialization keep running.
put '{"acme/events":[{"id":13,"region":"us","n":300}]}'
expect_eq "status of a document the derivation cannot publish" "$status" 200
halted() { grep -q 'flowctl_task_up{kind="derivation",task="acme/long"} 0' <(curl -sS "$url/metrics"); }
wait_until 20 halted || fail "the derivation acme/long did not halt"
grep -qF "derivation \`acme/long\`, transform \`fromEvents\`: the document at offset" dev.err ||
  fail "the derivation's error does not name the transform and the offset: $(tail -3 dev.err)"
grep -qF "partition field \`region\` (/region) has a value of 300 bytes" dev.err ||
  fail "the derivation's error does not name the field: $(tail -3 dev.err)"
put '{"acme/events":[{"id":14,"region":"eu","n":1}]}'
expect_eq "status of a write after the derivation halted" "$status" 200
in_table() { [[ $(sqlite3 -batch -noheader views/db.sqlite 'SELECT count(*) FROM events WHERE id = 14' 2>/dev/null) == 1 ]]; }
wait_until 20 in_table || fail "the materialization stopped with the derivation"
kill -0 "$dev_pid" 2>/dev/null || fail "develop exited"
grep -q 'status.*200\|ok' <(curl -sS "$url/healthz") || fail "develop is not healthy"
stop_develop TERM
expect_eq "develop's exit status" "$dev_rc" 0
expect_status 0 "$FLOWCTL" read acme/long --data-dir data
expect_eq "acme/long holds the publish before the halt (the refused request wrote nothing)" "$(grep -o '"id":1[0-9]' "$WORK/out" | sort | tr '\n' ' ')" '"id":12 '

# `run` exits 1 (a data error) with the same error.
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "partition field \`region\` (/region) has a value of 300 bytes"
finish
