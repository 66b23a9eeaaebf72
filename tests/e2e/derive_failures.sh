#!/usr/bin/env bash
# Derivation failure paths (issue 5 item 6): a lambda that throws or returns a non-array, a
# publish that violates the collection schema, a remote lambda answering 500 or malformed
# JSON, a register update that violates the register schema. Each fails `flowctl test`
# and halts `flowctl run` with an error naming the transform, the source document's
# journal offset and the cause, and commits nothing of that transaction.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# A real HTTP server for the remote lambdas (prints its port; exits when stdin closes).
mkfifo server.in
node "$REPO/tests/unit/testdata_lambda/remote_server.js" < server.in > server.out 2>&1 &
server=$!
exec 3> server.in
trap 'exec 3>&-; kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [[ -s server.out ]] && break; sleep 0.05; done
port=$(head -n 1 server.out)
[[ $port =~ ^[0-9]+$ ]] || { echo "the test server did not start: $(cat server.out)"; exit 1; }

# catalog NAME UPDATE PUBLISH: a derivation acme/out over acme/in with these lambdas
# (YAML flow mappings, or `~` for none), a register whose `n` must be an integer, and a test.
catalog() {
  local name=$1 update=$2 publish=$3
  mkdir -p "$name"
  cat > "$name/flow.yaml" <<YAML
collections:
  - name: acme/in
    key: [/id]
    schema:
      type: object
      required: [id, v]
      properties: {id: {type: integer}, v: {type: string}}
  - name: acme/out
    key: [/id]
    schema:
      type: object
      required: [id, v]
      properties: {id: {type: integer}, v: {type: string}}
    derivation:
      register:
        schema: {type: object, properties: {n: {type: integer}}}
        initial: {}
      transform:
        copy:
          source: {name: acme/in}
$( [[ $update != "~" ]] && echo "          update: $update" )
$( [[ $publish != "~" ]] && echo "          publish: $publish" )
tests:
  "copies documents":
    - ingest:
        collection: acme/in
        documents: [{id: 1, v: "a"}, {id: 2, v: "b"}]
    - verify:
        collection: acme/out
        documents: [{id: 1, v: "a"}, {id: 2, v: "b"}]
YAML
}

# check NAME CAUSE...: `flowctl test` fails naming the transform, the offset and each CAUSE;
# `flowctl run --until-idle` exits 1 with the same, and acme/out stays empty.
check() {
  local name=$1
  shift
  expect_status 1 "$FLOWCTL" test --source "$name/flow.yaml"
  expect_out "FAIL copies documents"
  expect_out "transform \`copy\`"
  expect_out "offset 0 of journal acme/in/pivot=00"
  for cause in "$@"; do expect_out "$cause"; done
  expect_out "0 passed, 1 failed"
  printf '{"id":1,"v":"a"}\n{"id":2,"v":"b"}\n' > "$name/in.jsonl"
  expect_status 0 "$FLOWCTL" ingest acme/in "$name/in.jsonl" --source "$name/flow.yaml" --data-dir "$name/data"
  expect_status 1 "$FLOWCTL" run --until-idle --source "$name/flow.yaml" --data-dir "$name/data"
  expect_err "transform \`copy\`"
  for cause in "$@"; do expect_err "$cause"; done
  expect_err "(halted by an error)"
  expect_status 0 "$FLOWCTL" read acme/out --source "$name/flow.yaml" --data-dir "$name/data"
  expect_eq "$name: nothing of the failed transaction is committed" "$(wc -l < "$WORK/out")" "0"
  [[ -z $(find "$name/data" -path '*registers*' -type f) ]] || fail "$name: a register record was written"
}

# The happy path first, so that a failure below is the failure under test.
catalog ok '~' '{sqlite: "SELECT $id AS id, $v AS v"}'
expect_status 0 "$FLOWCTL" test --source ok/flow.yaml
expect_out "1 passed, 0 failed"

catalog schema '~' '{sqlite: "SELECT $id AS id, 5 AS v"}'
check schema "a published document does not validate against the schema of collection \`acme/out\`" "/v"

catalog register '{sqlite: "SELECT '"'"'many'"'"' AS n"}' '{sqlite: "SELECT $id AS id, $v AS v"}'
check register "an update output does not validate against the register schema" "/n"

catalog remote500 '~' "{remote: \"http://127.0.0.1:$port/status500\"}"
check remote500 "the publish lambda failed" "HTTP 500" "boom: the lambda failed"

catalog malformed '~' "{remote: \"http://127.0.0.1:$port/malformed\"}"
check malformed "the publish lambda failed" "malformed"

catalog throws '~' '{nodeJS: "if (source.id === 1) { throw new Error(\"no ones allowed\"); } return [source];"}'
check throws "threw: no ones allowed"

catalog notarray '~' '{nodeJS: "return {id: source.id} as any;"}'
check notarray "not an array"

# Node.js missing: an environment error (exit 3) naming what to install, from test and run.
catalog nonode '~' '{nodeJS: "return [source];"}'
expect_status 3 env PATH=/nonexistent "$FLOWCTL" test --source nonode/flow.yaml
expect_err "Node.js (\`node\`) is not installed"
expect_status 3 env PATH=/nonexistent "$FLOWCTL" run --until-idle --source nonode/flow.yaml --data-dir nonode/data
expect_err "Node.js (\`node\`) is not installed"

catalog sqlerror '~' "{sqlite: \"SELECT json_extract('not json', '\$') AS id\"}"
check sqlerror "the publish lambda failed" "malformed JSON"

finish
