#!/usr/bin/env bash
# Hostile input at every door (issue 16 items 1, 4 and 9; SPEC 1.4 and 9): a document that
# repeats a member name is invalid JSON, refused with its place and the name wherever it
# enters (ingest, combine, HTTP, WebSocket, a file drop, test fixtures, a lambda's JSON
# text); a document over 16 MiB is refused everywhere the CLI refuses it (HTTP /ingest
# bodies, file drops, lambda outputs); and an input without line ends (/dev/zero) is
# refused at the document limit, not read until memory runs out. Nothing is written.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
export NODE_PATH="$REPO/.deps/npm/node_modules${NODE_PATH:+:$NODE_PATH}"
if ! node -e 'require("ws")' 2>/dev/null && [[ -x "$REPO/scripts/npm-deps.sh" ]]; then
  "$REPO/scripts/npm-deps.sh" test >/dev/null 2>&1 || true
fi

cat > flow.yaml <<'YAML'
collections:
  - name: acme/payments
    key: [/id]
    schema:
      type: object
      required: [id, amount]
      properties:
        id: {type: integer}
        amount: {type: integer, maximum: 100}
        note: {type: string}
        meta: {type: object}
captures:
  acme/drop:
    endpoint:
      fileDrop: {path: incoming, format: json}
    bindings:
      - target: acme/payments
YAML
dup='{"id":1,"amount":5,"amount":1000000}'

# read_count: the number of committed acme/payments documents in data/.
read_count() {
  "$FLOWCTL" read acme/payments --source flow.yaml --data-dir data 2>/dev/null | wc -l
}

# --- 1. Repeated member names ------------------------------------------------------------
# The issue's case: validation saw amount 5, readers would see 1000000.
printf '%s\n' "$dup" > dup.jsonl
expect_status 1 "$FLOWCTL" ingest acme/payments dup.jsonl --source flow.yaml --data-dir data
expect_err 'dup.jsonl:1:20: error: invalid JSON: member name "amount" is repeated at /amount'
expect_err "nothing was written"
expect_eq "ingest of a repeated name stores nothing" "$(read_count)" "0"
# At depth, on a later line, from stdin.
printf '{"id":2,"amount":1}\n{"id":3,"amount":1,"meta":{"a":[{"k":1,"k":2}]}}\n' > deep.jsonl
expect_status 1 "$FLOWCTL" ingest acme/payments --source flow.yaml --data-dir data < deep.jsonl
expect_err '<stdin>:2:40: error: invalid JSON: member name "k" is repeated at /meta/a/0/k'
expect_eq "a later line's repeat stores nothing" "$(read_count)" "0"
# combine.
expect_status 1 "$FLOWCTL" combine --collection acme/payments --source flow.yaml dup.jsonl
expect_err 'dup.jsonl:1:20: error: invalid JSON: member name "amount" is repeated at /amount'
[[ ! -s out ]] || fail "combine printed output for an input it refused"
# CSV: a header that repeats a column; a whole-document JSON cell is parsed as a document.
printf 'id,amount,amount\n1,5,1000000\n' > dup.csv
expect_status 1 "$FLOWCTL" ingest acme/payments dup.csv --source flow.yaml --data-dir data
expect_err "field \`amount\` appears twice in the header"
printf 'flow_document\n"{""id"":1,""amount"":5,""x"":1,""x"":2}"\n' > dupcell.csv
expect_status 1 "$FLOWCTL" ingest acme/payments dupcell.csv --source flow.yaml --data-dir data
expect_err 'member name "x" is repeated at /x'
expect_eq "CSV repeats store nothing" "$(read_count)" "0"

# Catalog test fixtures: YAML block and flow mappings, and JSON sources.
fixture() {  # NAME DOCUMENTS: a catalog whose test ingests DOCUMENTS (YAML text)
  cat > "$1.yaml" <<YAML
import: [flow.yaml]
tests:
  "repeats":
    - ingest:
        collection: acme/payments
        documents: $2
YAML
}
fixture flowmap '[{id: 1, amount: 5, amount: 1000000}]'
expect_status 1 "$FLOWCTL" test --source flowmap.yaml
expect_err 'flowmap.yaml:6:'
expect_err 'duplicate key `amount`'
fixture jsonmap '[{"id": 1, "meta": {"k": 1, "k": 2}, "amount": 1}]'
expect_status 1 "$FLOWCTL" test --source jsonmap.yaml
expect_err 'duplicate key `k`'
printf '{"import": ["flow.yaml"], "tests": {"t": [{"ingest": {"collection": "acme/payments", "documents": [%s]}}]}}\n' \
  "$dup" > fixture.json
expect_status 1 "$FLOWCTL" test --source fixture.json
expect_err 'fixture.json:1:'
expect_err 'duplicate key `amount`'

# A SQLite lambda whose output column is JSON text with a repeated name.
mkdir -p lambda
cat > lambda/flow.yaml <<'YAML'
collections:
  - name: acme/in
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
  - name: acme/out
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, v: {type: integer, maximum: 100}, s: {type: string}}}
    derivation:
      transform:
        copy:
          source: {name: acme/in}
          publish: {sqlite: "SELECT '{\"id\":' || $id || ',\"v\":5,\"v\":1000000}' AS doc"}
tests:
  "copies":
    - ingest: {collection: acme/in, documents: [{id: 1}]}
    - verify: {collection: acme/out, documents: [{id: 1, v: 5}]}
YAML
expect_status 1 "$FLOWCTL" test --source lambda/flow.yaml
expect_out 'member name "v" is repeated at /v'
expect_out "transform \`copy\`"

# --- 4 and 9. Document limits ------------------------------------------------------------
# A 17 MiB document: one JSON line (the CLI's limit, as before).
big_note=$(head -c $((17 << 20)) /dev/zero | tr '\0' 'x')
printf '{"id":7,"amount":1,"note":"%s"}\n' "$big_note" > big.jsonl
expect_status 1 "$FLOWCTL" ingest acme/payments big.jsonl --source flow.yaml --data-dir data
expect_err "big.jsonl:1: error: line 1 is longer than the document limit of 16 MiB"
# Lines without an end: /dev/zero, as a file and on stdin, for combine and ingest (JSON
# lines and CSV/TSV rows). Each is refused at the limit, quickly and within bounded memory.
# (Under AddressSanitizer, FLOWCTL_SANITIZED, the time limit only: its shadow memory takes
# terabytes of address space.)
limited() {  # WANT CMD...: like expect_status, under a 2 GiB address-space limit and 60 s
  local want=$1
  shift
  expect_status "$want" bash -c '[[ -n ${FLOWCTL_SANITIZED:-} ]] || ulimit -v 2097152; exec timeout 60 "$@"' \
    limited "$@"
}
limited 1 "$FLOWCTL" combine --collection acme/payments --source flow.yaml /dev/zero
expect_err "/dev/zero:1: error: line 1 is longer than the document limit of 16 MiB"
head -c $((40 << 20)) /dev/zero > zeros.bin
limited 1 bash -c "\"$FLOWCTL\" combine --collection acme/payments --source flow.yaml < zeros.bin"
expect_err "<stdin>:1: error: line 1 is longer than the document limit of 16 MiB"
printf '{"id":1,"amount":1}\n' > zline.jsonl
cat zeros.bin >> zline.jsonl
limited 1 "$FLOWCTL" combine --collection acme/payments --source flow.yaml zline.jsonl
expect_err "zline.jsonl:2: error: line 2 is longer than the document limit of 16 MiB"
limited 1 "$FLOWCTL" ingest acme/payments /dev/zero --source flow.yaml --data-dir data
expect_err "/dev/zero:1: error: line 1 is longer than the document limit of 16 MiB"
limited 1 "$FLOWCTL" ingest acme/payments /dev/zero --format csv --source flow.yaml --data-dir data
expect_err "is longer than the document limit of 16 MiB"
{ printf 'id,amount,note\n1,1,"'; cat zeros.bin; } > zcell.csv
limited 1 "$FLOWCTL" ingest acme/payments zcell.csv --source flow.yaml --data-dir data
expect_err "row 1 (line 2) is longer than the document limit of 16 MiB"
limited 1 "$FLOWCTL" ingest acme/payments /dev/zero --format tsv --source flow.yaml --data-dir data
expect_err "is longer than the document limit of 16 MiB"
expect_eq "over-long input stores nothing" "$(read_count)" "0"

# A publish lambda returning a document over 16 MiB (17 MiB of hex digits in `s`).
sed -i 's/publish: {sqlite: .*/publish: {sqlite: "SELECT $id AS id, hex(zeroblob(8912896)) AS s"}/; s/documents: \[{id: 1, v: 5}\]/documents: [{id: 1}]/' \
  lambda/flow.yaml
expect_status 1 "$FLOWCTL" test --source lambda/flow.yaml
expect_out "the publish lambda returned a document of 17825"
expect_out "over the limit of 16 MiB"

# A file drop: a repeated name, and a 17 MiB line, each moved to .failed with its error.
mkdir -p incoming
printf '%s\n' "$dup" > incoming/a.jsonl
cp big.jsonl incoming/b.jsonl
expect_status 1 "$FLOWCTL" run --until-idle --source flow.yaml --data-dir data
[[ -f incoming/.failed/a.jsonl.error ]] || fail "a.jsonl is not in .failed"
grep -q 'a.jsonl:1:20.*member name "amount" is repeated at /amount' incoming/.failed/a.jsonl.error 2>/dev/null ||
  fail "a.jsonl's error: $(cat incoming/.failed/a.jsonl.error 2>&1)"
grep -q 'b.jsonl:1: .*16 MiB' incoming/.failed/b.jsonl.error 2>/dev/null ||
  fail "b.jsonl's error: $(cat incoming/.failed/b.jsonl.error 2>&1)"
expect_eq "file drops store nothing" "$(read_count)" "0"

# --- develop: HTTP /ingest and WebSocket json/v1 ----------------------------------------
rm -rf incoming
start_develop --source flow.yaml
http() {  # FILE: PUT /ingest with FILE as the body; $status, the answer in body
  status=$(curl -sS -o body -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data-binary "@$1" "$url/ingest" 2>curl.err) || status="curl failed: $(cat curl.err)"
}
printf '{"acme/payments":[{"id":1,"amount":1},%s]}' "$dup" > dup.json
http dup.json
expect_eq "HTTP: a repeated name" "$status" "400"
grep -q 'member name \\"amount\\" is repeated at /acme~1payments/1/amount' body || fail "HTTP repeat: $(cat body)"
printf '{"acme/payments":[{"id":1,"amount":1},{"id":7,"amount":1,"note":"%s"}]}' "$big_note" > big.json
http big.json
expect_eq "HTTP: a 17 MiB document" "$status" "400"
grep -q '"error":"collection `acme/payments`, document 1: the document is 17825[0-9]* bytes as JSON, over the limit of 16 MiB; nothing was written","collection":"acme/payments","index":1' body ||
  fail "HTTP 17 MiB: $(cut -c1-300 body)"
# flowctl ingest through the develop refuses the same before sending.
expect_status 1 "$FLOWCTL" ingest acme/payments dup.jsonl --data-dir data
expect_err 'dup.jsonl:1:20: error: invalid JSON: member name "amount" is repeated at /amount'
limited 1 "$FLOWCTL" ingest acme/payments /dev/zero --data-dir data
expect_err "/dev/zero:1: error: line 1 is longer than the document limit of 16 MiB"
# WebSocket json/v1.
if node -e 'require("ws")' 2>/dev/null; then
  printf '{"id":1,"amount":1}\n%s\n' "$dup" > ws.jsonl
  set +e
  timeout 20 node "$REPO/tests/e2e/develop_ws.js" "ws${url#http}/ingest/acme/payments" json/v1 --per 2 ws.jsonl > ws.out 2>&1
  set -e
  grep -q '^closed 1007 line 2, column 20: invalid JSON: member name "amount" is repeated at /amount' ws.out ||
    fail "WebSocket repeat: $(cat ws.out)"
else
  fail "the ws npm package is missing: run scripts/npm-deps.sh test"
fi
# The develop still serves, and stored nothing.
printf '{"acme/payments":[{"id":9,"amount":100}]}' > good.json
http good.json
expect_eq "develop still serves" "$status" "200"
stop_develop TERM
expect_eq "only the good document is stored" "$(read_count)" "1"
finish
