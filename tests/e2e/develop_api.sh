#!/usr/bin/env bash
# The ingestion API of `flowctl develop` (SPEC 7, 8, 9), driven by real clients against one
# develop on a free port: curl for HTTP, the `ws` npm package for WebSocket (develop_ws.js),
# raw node sockets for the load, slow-client and cut-off cases (develop_net.js), and
# `flowctl ingest` / `flowctl materialize`, which find the develop through develop.json.
# What is written is checked in the materialized SQLite tables while develop runs (a later
# good write acts as a barrier: once it is in the table, anything committed before it
# would be too), through /metrics, and after SIGTERM with `flowctl read` and the lake.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
export NODE_PATH="$REPO/.deps/npm/node_modules${NODE_PATH:+:$NODE_PATH}"
if [[ ! -d "$NODE_PATH/ws" && -x "$REPO/scripts/npm-deps.sh" ]]; then
  "$REPO/scripts/npm-deps.sh" test >/dev/null 2>&1 || true
fi
[[ -d "$REPO/.deps/npm/node_modules/ws" ]] || { echo "the ws npm package is missing: run scripts/npm-deps.sh test" >&2; exit 1; }
WSJS="$REPO/tests/e2e/develop_ws.js"
NETJS="$REPO/tests/e2e/develop_net.js"
started=$SECONDS

# The binary may be rebuilt while this runs: wait for it, and retry an exec that failed.
fc() {
  local rc
  for _ in $(seq 50); do
    [[ -x "$FLOWCTL" ]] && break
    sleep 0.2
  done
  for _ in 1 2 3; do
    rc=0
    "$FLOWCTL" "$@" || rc=$?
    [[ $rc -ne 126 && $rc -ne 127 ]] && return $rc
    sleep 0.5
  done
  return $rc
}

cat >flow.yaml <<'YAML'
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
        paid: {type: boolean}
        note: {type: [string, "null"]}
  - name: acme/events
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: string}, n: {type: integer}}}
  - name: acme/customers
    key: [/customer]
    schema:
      type: object
      required: [customer]
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: integer, reduce: {strategy: sum}}
    derivation:
      transform:
        fromOrders:
          source: {name: acme/orders}
          publish: {sqlite: "SELECT $customer AS customer, $total AS spent"}
materializationTargets:
  local:
    sqlite: {path: db.sqlite}
materializations:
  acme/views:
    target: local
    bindings:
      - {source: acme/orders, table: orders}
      - {source: acme/events, table: events}
      - {source: acme/customers, table: customers}
YAML

# --- Start develop on a free port with a small body limit; it announces itself in
# develop.json. Stopped in the EXIT trap if the script ends early.
D=data
for _ in $(seq 50); do [[ -x "$FLOWCTL" ]] && break; sleep 0.2; done
"$FLOWCTL" develop --data-dir "$D" --port 0 --max-body 64KiB --request-timeout 5 --no-watch --status-interval 1 >dev.out 2>dev.err &
dev_pid=$!
slow_pid=
trap 'kill "$dev_pid" $slow_pid 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 200); do
  [[ -s "$D/develop.json" ]] && break
  kill -0 "$dev_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ ! -s "$D/develop.json" ]]; then
  echo "FAIL: develop did not write $D/develop.json within 20 s" >&2
  sed 's/^/    /' dev.err >&2
  exit 1
fi
sleep 0.1  # the file is written in one go, but be sure it is complete
URL=$(jq -r .url "$D/develop.json")
WS=${URL/#http/ws}
[[ "$URL" =~ ^http://127\.0\.0\.1:[0-9]+$ && "${URL##*:}" != 0 ]] || fail "develop.json url: $URL"
expect_eq "develop.json pid" "$(jq -r .pid "$D/develop.json")" "$dev_pid"
grep -qF "ingestion API on $URL" dev.err || fail "develop does not announce $URL: $(head -3 dev.err)"

# --- Slow clients, started now and checked at the end (develop runs with a 5 s
# --request-timeout): one connection sends nothing, another an ingest request of id 8888
# one byte a second. Everything below runs while they are connected.
node "$NETJS" slow "$URL" slow.json 8888 >slow.out 2>&1 &
slow_pid=$!
for _ in $(seq 50); do grep -q connected slow.out 2>/dev/null && break; sleep 0.1; done

# Helpers. http METHOD PATH [curl args]: $status, the body in $WORK/body, headers in
# $WORK/headers.
http() {
  local method=$1 path=$2
  shift 2
  status=$(curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -X "$method" "$@" "$URL$path" 2>"$WORK/curl.err") ||
    status="curl failed: $(cat "$WORK/curl.err")"
}
ingest_http() {  # BODY [METHOD]
  http "${2:-PUT}" /ingest -H 'Content-Type: application/json' --data-binary "$1"
}
expect_http() {  # WHAT WANT_STATUS [TEXT...]: the body has each TEXT
  local what=$1 want=$2
  shift 2
  [[ "$status" == "$want" ]] || fail "$what: HTTP $status, want $want: $(head -c 400 "$WORK/body")"
  for t in "$@"; do
    grep -qF -- "$t" "$WORK/body" || fail "$what: the body lacks '$t': $(head -c 400 "$WORK/body")"
  done
}
body_json() { jq -c "$1" "$WORK/body" 2>/dev/null || echo "(not JSON: $(head -c 200 "$WORK/body"))"; }
sql() { sqlite3 -batch -noheader db.sqlite "$1" 2>/dev/null || true; }
# wait_sql WHAT SQL WANT [SECONDS]: polls the materialized tables until SQL gives WANT.
wait_sql() {
  local got="" deadline=$((SECONDS + ${4:-8}))
  while ((SECONDS <= deadline)); do
    got=$(sql "$2")
    [[ "$got" == "$3" ]] && return 0
    sleep 0.1
  done
  fail "$1: got '$got', want '$3' (after ${4:-8} s)"
  return 0
}
# The orders that must be in the table, and ids already reported as wrongly written.
: >expected_ids
: >leaked_ids
expect_ids() { printf '%s\n' "$@" >>expected_ids; }
# barrier: one more good order through the API; once it is in the table, everything
# committed before it is too (the materialization reads the journal in order).
barrier_n=0
barrier() {
  barrier_n=$((barrier_n + 1))
  local id=$((5000 + barrier_n))
  ingest_http "{\"acme/orders\":[{\"id\":$id,\"customer\":\"barrier\",\"total\":0}]}"
  expect_http "barrier $id" 200
  last_orders_head=$(body_json '.Offsets["acme/orders/pivot=00"]')
  expect_ids "$id"
  wait_sql "barrier $id in the table" "SELECT count(*) FROM orders WHERE id = $id" 1
}
# absent WHAT IDS...: none of these orders (integer ids) is in the table, after a barrier.
absent() {
  local what=$1
  shift
  barrier
  local ids
  ids=$(IFS=,; echo "$*")
  local found
  found=$(sql "SELECT group_concat(id) FROM orders WHERE id IN ($ids)")
  if [[ -n "$found" ]]; then
    fail "$what: written anyway: orders $found"
    tr ',' '\n' <<<"$found" >>leaked_ids
  fi
}
absent_events() {  # WHAT IDS...: none of these events (string ids) is in the table
  local what=$1
  shift
  local list
  list=$(printf "'%s'," "$@")
  local found
  found=$(sql "SELECT group_concat(id) FROM events WHERE id IN (${list%,})")
  [[ -z "$found" ]] || fail "$what: written anyway: events $found"
}
metric() {  # NAME{LABELS}: its value in the last /metrics scrape
  grep -F "$1 " metrics.txt | head -1 | awk '{print $NF}'
}
scrape() { curl -sS "$URL/metrics" >metrics.txt 2>/dev/null || : >metrics.txt; }

# --- GET /healthz while the slow clients are connected.
http GET /healthz
expect_http "GET /healthz" 200
expect_eq "healthz body" "$(cat body)" "ok"

# --- PUT and POST /ingest: one transaction across two collections; 200 with the journal
# heads; the rows appear in the tables.
ingest_http '{"acme/orders":[{"id":1,"customer":"al","total":5},{"id":2,"customer":"bo","total":7,"paid":true}],"acme/events":[{"id":"e1","n":1}]}'
expect_http "PUT /ingest" 200
expect_eq "PUT /ingest: journals of both collections" "$(body_json '.Offsets | keys')" '["acme/events/pivot=00","acme/orders/pivot=00"]'
orders_head1=$(body_json '.Offsets["acme/orders/pivot=00"]')
events_head1=$(body_json '.Offsets["acme/events/pivot=00"]')
[[ "$orders_head1" =~ ^[0-9]+$ && $orders_head1 -gt 0 && "$events_head1" =~ ^[0-9]+$ && $events_head1 -gt 0 ]] ||
  fail "PUT /ingest: heads are not positive integers: $(cat body)"
expect_ids 1 2
ingest_http '{"acme/events":[{"id":"e2","n":2}],"acme/orders":[{"id":3,"customer":"al","total":1,"note":"x"}]}' POST
expect_http "POST /ingest" 200
orders_head2=$(body_json '.Offsets["acme/orders/pivot=00"]')
events_head2=$(body_json '.Offsets["acme/events/pivot=00"]')
[[ "$orders_head2" =~ ^[0-9]+$ && $orders_head2 -gt $orders_head1 && "$events_head2" =~ ^[0-9]+$ && $events_head2 -gt $events_head1 ]] ||
  fail "POST /ingest: heads did not grow past $orders_head1/$events_head1: $(cat body)"
expect_ids 3
wait_sql "orders 1-3 in the table" "SELECT group_concat(id || ':' || customer || ':' || total, ' ') FROM (SELECT * FROM orders ORDER BY id)" "1:al:5 2:bo:7 3:al:1"
wait_sql "events in the table" "SELECT group_concat(id || ':' || n, ' ') FROM (SELECT * FROM events ORDER BY id)" "e1:1 e2:2"
wait_sql "the derived collection in its table" "SELECT group_concat(customer || ':' || spent, ' ') FROM (SELECT * FROM customers ORDER BY customer)" "al:6 bo:7"
# Content-Type parameters are allowed; an empty object is an empty transaction.
http PUT /ingest -H 'Content-Type: application/json; charset=utf-8' --data-binary '{"acme/orders":[{"id":4,"customer":"cy","total":1}]}'
expect_http "Content-Type with a charset" 200 '"Offsets":{"acme/orders/pivot=00":'
expect_ids 4
ingest_http '{}'
expect_http "an empty object" 200 '{"Offsets":{}}'

# --- 400s: nothing of the request is written.
ingest_http '{"acme/orders":[{"id":900,"customer":"x","total":1}'
expect_http "malformed JSON" 400 "not valid JSON" "nothing was written"
ingest_http '[{"acme/orders":[]}]'
expect_http "an array body" 400 "must be a JSON object" "nothing was written"
ingest_http '"acme/orders"'
expect_http "a string body" 400 "must be a JSON object"
ingest_http '{"acme/orders":{"id":901,"customer":"x","total":1}}'
expect_http "documents not in an array" 400 "expected an array of documents"
# An invalid document: the collection, the index, the validation error; the valid
# documents before it, in this and in another collection, are not written.
ingest_http '{"acme/events":[{"id":"bad-e1"}],"acme/orders":[{"id":902,"customer":"x","total":1},{"id":903,"customer":"x","total":"many"}]}'
expect_http "an invalid document" 400 'at /total (value \"many\")' "expected \\\"integer\\\"" "nothing was written"
expect_eq "an invalid document: collection and index" "$(body_json '[.collection, .index]')" '["acme/orders",1]'
expect_eq "an invalid document: the error names them" "$(body_json '.error | test("collection `acme/orders`, document 1: ")')" "true"
ingest_http '{"acme/orders":[{"id":904,"customer":"x"}]}'
expect_http "a document missing a required property" 400 "missing required property 'total'"
expect_eq "missing property: collection and index" "$(body_json '[.collection, .index]')" '["acme/orders",0]'
ingest_http '{"acme/orders":[{"id":905,"customer":"x","total":1}],"acme/ordrs":[{"id":906}]}'
expect_http "an unknown collection" 400 'no collection `acme/ordrs` in the catalog' 'did you mean `acme/orders`?' "nothing was written"
expect_eq "an unknown collection: named" "$(body_json .collection)" '"acme/ordrs"'
ingest_http '{"acme/orders":[{"id":907,"customer":"x","total":1}],"acme/customers":[{"customer":"x","spent":1}]}'
expect_http "a derived collection" 400 'collection `acme/customers` is derived' "nothing was written"
expect_eq "a derived collection: named" "$(body_json .collection)" '"acme/customers"'
# SPEC 9's bad input, over HTTP.
ingest_http '{"acme/orders":[{"id":908,"customer":"x","total":NaN}]}'
expect_http "NaN" 400 "not valid JSON"
ingest_http '{"acme/orders":[{"id":909,"customer":"x","total":123456789012345678901}]}'
expect_http "a huge integer" 400 "outside the 64-bit range"
printf '{"acme/orders":[{"id":910,"customer":"b\xffd","total":1}]}' >utf8.json
http PUT /ingest -H 'Content-Type: application/json' --data-binary @utf8.json
expect_http "invalid UTF-8" 400 "invalid UTF-8"
{ printf '{"acme/orders":[{"id":911,"customer":"x","total":1,"deep":'; printf '[%.0s' {1..300}; printf ']%.0s' {1..300}; printf '}]}'; } >deep.json
http PUT /ingest -H 'Content-Type: application/json' --data-binary @deep.json
expect_http "a document nested over 256 levels" 400 "nested deeper than"
ingest_http '{"acme/orders":[{"id":912,"customer":"x","total":1}]} {"acme/orders":[]}'
expect_http "trailing data after the body" 400 "not valid JSON"
absent "rejected requests" 900 901 902 903 904 905 906 907 908 909 910 911 912
absent_events "the valid event of a rejected request" bad-e1

# --- 405 (with Allow), 415, 413 (over --max-body 64KiB = 65536 bytes), 404.
for m in GET DELETE PATCH; do
  http "$m" /ingest -H 'Content-Type: application/json'
  expect_http "$m /ingest" 405 "use PUT or POST"
  grep -qi '^Allow: PUT, POST' headers || fail "$m /ingest: no Allow: PUT, POST header: $(tr -d '\r' <headers)"
done
http PUT /ingest -H 'Content-Type: text/plain' --data-binary '{"acme/orders":[{"id":913,"customer":"x","total":1}]}'
expect_http "text/plain" 415 "must be application/json"
http POST /ingest -H 'Content-Type: application/x-www-form-urlencoded' --data '{"acme/orders":[{"id":914,"customer":"x","total":1}]}'
expect_http "a form" 415
http PUT /ingest --data-binary '{"acme/orders":[{"id":915,"customer":"x","total":1}]}' -H 'Content-Type:'
expect_http "no Content-Type" 415
# A body of exactly the limit is accepted; one byte more is 413.
node -e 'const b = JSON.stringify({"acme/orders": [{id: 916, customer: "limit", total: 1}]});
  process.stdout.write(b.padEnd(65536, " "))' >limit.json
http PUT /ingest -H 'Content-Type: application/json' --data-binary @limit.json
expect_http "a body of exactly --max-body" 200
expect_ids 916
node -e 'const b = JSON.stringify({"acme/orders": [{id: 917, customer: "over", total: 1}]});
  process.stdout.write(b.padEnd(65537, " "))' >over.json
http PUT /ingest -H 'Content-Type: application/json' --data-binary @over.json
expect_http "a body over --max-body" 413 "over 65536 bytes"
head -c 1000000 /dev/zero | tr '\0' ' ' >huge.json
http POST /ingest -H 'Content-Type: application/json' --data-binary @huge.json
expect_http "a 1 MB body" 413
http GET /nope
expect_http "an unknown path" 404 "/nope"
http GET /ingest/acme/orders
expect_http "GET /ingest/<collection> without an upgrade" 400 "WebSocket upgrade"
absent "413/415 requests" 913 914 915 917

# --- WebSocket /ingest/<collection>: json/v1, csv/v1, tsv/v1. Every message is
# acknowledged ({"Offsets":..., "Processed": n}, n growing to the number sent).
ws_check() {  # WHAT MESSAGES: the client exited 0, the server chose the protocol, and acks grew to MESSAGES
  local what=$1 messages=$2
  [[ $ws_rc == 0 ]] || fail "$what: the client exited $ws_rc: $(head -5 ws.out)"
  local processed
  processed=$(grep -o '"Processed":[0-9]*' ws.out | cut -d: -f2 | paste -sd' ')
  [[ "${processed##* }" == "$messages" ]] || fail "$what: Processed went $processed, want up to $messages"
  sort -n -C <<<"$(tr ' ' '\n' <<<"$processed")" || fail "$what: Processed decreased: $processed"
  grep -q '"Offsets":{"acme/orders/pivot=00":[0-9]*}' ws.out || fail "$what: no acknowledgment with the journal head: $(head -3 ws.out)"
}
ws_run() {  # ARGS...: runs develop_ws.js; $ws_rc, output in ws.out
  set +e
  timeout 20 node "$WSJS" "$@" >ws.out 2>&1
  ws_rc=$?
  set -e
}
: >w1.jsonl
for i in $(seq 10 29); do echo "{\"id\":$i,\"customer\":\"ws\",\"total\":2}" >>w1.jsonl; done
ws_run "$WS/ingest/acme%2Forders" json/v1 w1.jsonl
ws_check "json/v1, 20 messages" 20
grep -qx 'protocol json/v1' ws.out || fail "json/v1: the server did not echo the protocol: $(head -1 ws.out)"
expect_ids $(seq 10 29)
printf '{"id":30,"customer":"ws","total":1}\n{"id":31,"customer":"ws","total":1}\n{"id":32,"customer":"ws","total":1}\n' >w2a.jsonl
printf '{"id":33,"customer":"ws","total":1}\n' >w2b.jsonl
ws_run "$WS/ingest/acme/orders" json/v1 --per 2 w2a.jsonl w2b.jsonl
ws_check "json/v1, two lines a message, in two transactions" 3
expect_ids 30 31 32 33
# CSV: projections as headers; an empty cell is null where null is allowed; a short row
# leaves the rest absent.
printf 'id,customer,total,paid,note\n40,csv,3,true,\n41,csv,4,false,"a, ""quoted"" note"\n42,csv,5\n' >w3.csv
ws_run "$WS/ingest/acme/orders" csv/v1 w3.csv
ws_check "csv/v1" 4
grep -qx 'protocol csv/v1' ws.out || fail "csv/v1: the server did not echo the protocol: $(head -1 ws.out)"
expect_ids 40 41 42
printf 'id\ttotal\tcustomer\n50\t6\ttsv\n51\t7\ttsv\n' >w4.tsv
ws_run "$WS/ingest/acme/orders" tsv/v1 --per 2 w4.tsv
ws_check "tsv/v1" 2
grep -qx 'protocol tsv/v1' ws.out || fail "tsv/v1: the server did not echo the protocol: $(head -1 ws.out)"
expect_ids 50 51
# No protocol offered: JSON lines; the first supported protocol of a list is chosen.
printf '{"id":52,"customer":"ws","total":1}\n' >w5.jsonl
ws_run "$WS/ingest/acme/orders" - w5.jsonl
ws_check "no protocol offered" 1
expect_ids 52
printf 'id,customer,total\n53,ws,1\n' >w6.csv
ws_run "$WS/ingest/acme/orders" "x-unknown, csv/v1, json/v1" w6.csv
ws_check "a list of protocols" 2
grep -qx 'protocol csv/v1' ws.out || fail "a list of protocols: chose $(head -1 ws.out)"
expect_ids 53
wait_sql "the WebSocket rows" "SELECT group_concat(id || ':' || customer || ':' || total || ':' || ifnull(paid, '-') || ':' || ifnull(note, '-'), ' ') FROM (SELECT * FROM orders WHERE id BETWEEN 40 AND 53 ORDER BY id)" \
  '40:csv:3:1:- 41:csv:4:0:a, "quoted" note 42:csv:5:-:- 50:tsv:6:-:- 51:tsv:7:-:- 52:ws:1:-:- 53:ws:1:-:-'
expect_eq "an empty CSV cell of a nullable field is null" \
  "$(sql "SELECT ifnull(json_type(flow_document, '\$.note'), 'absent') || ',' || ifnull(json_type(flow_document, '\$.paid'), 'absent') FROM orders WHERE id IN (40, 42) ORDER BY id")" \
  "null,true
absent,absent"
wait_sql "all WebSocket rows" "SELECT count(*) FROM orders WHERE id BETWEEN 10 AND 53" 31

# Invalid rows close the stream with an error naming the row; the failed transaction's
# rows are not written; earlier acknowledged transactions stay.
printf '{"id":60,"customer":"ws","total":1}\n' >b1a.jsonl
printf '{"id":961,"customer":"ws","total":1}\n{"id":962,"customer":\n' >b1b.jsonl
ws_run "$WS/ingest/acme/orders" json/v1 --per 2 b1a.jsonl b1b.jsonl
[[ $ws_rc == 1 ]] || fail "a bad JSON line: the client exited $ws_rc"
grep -q '"Processed":1' ws.out || fail "a bad JSON line: the first transaction was not acknowledged: $(cat ws.out)"
grep -q '^{"error":"line 3, column [0-9]*: invalid JSON' ws.out || fail "a bad JSON line: no error naming line 3: $(cat ws.out)"
grep -q '^closed 1007 line 3' ws.out || fail "a bad JSON line: not closed with 1007 and the line: $(cat ws.out)"
grep -q 'nothing of this transaction was written' ws.out || fail "a bad JSON line: the error does not say nothing was written"
expect_ids 60
printf 'id,customer,total\n61,csv,1\n' >b2a.csv
printf '963,csv,1\n964,csv,lots\n' >b2b.csv
ws_run "$WS/ingest/acme/orders" csv/v1 --per 2 b2a.csv b2b.csv
[[ $ws_rc == 1 ]] || fail "a CSV cell of the wrong type: the client exited $ws_rc"
grep -q '"Processed":2' ws.out || fail "a CSV cell of the wrong type: the first transaction was not acknowledged: $(cat ws.out)"
grep -qF '{"error":"row 3 (line 4), field `total` (/total): `lots` is not an integer; nothing of this transaction was written"}' ws.out ||
  fail "a CSV cell of the wrong type: no error naming the row: $(cat ws.out)"
grep -q '^closed 1007 row 3 (line 4)' ws.out || fail "a CSV cell of the wrong type: not closed with 1007: $(cat ws.out)"
expect_ids 61
printf 'id,customer,totl\n965,csv,1\n' >b3.csv
ws_run "$WS/ingest/acme/orders" csv/v1 --per 2 b3.csv
[[ $ws_rc == 1 ]] || fail "an unknown CSV header: the client exited $ws_rc"
grep -qF 'unknown field `totl` in the header of collection `acme/orders`; did you mean `total`?' ws.out ||
  fail "an unknown CSV header: $(cat ws.out)"
grep -q '^closed 1007 ' ws.out || fail "an unknown CSV header: not closed with 1007: $(cat ws.out)"
printf 'id\tcustomer\ttotal\n966\ttsv\t1\n967\ttsv\n' >b4.tsv
ws_run "$WS/ingest/acme/orders" tsv/v1 --per 3 b4.tsv
[[ $ws_rc == 1 ]] || fail "a TSV row missing a required field: the client exited $ws_rc"
grep -q "row 2 (line 3).*missing required property 'total'" ws.out || fail "a TSV row missing a required field: $(cat ws.out)"
# A document over 16 MiB in a message under the frame limit; a message over the limit.
node -e 'process.stdout.write(JSON.stringify({id: 968, customer: "x".repeat(16 << 20), total: 1}) + "\n")' >big16.jsonl
ws_run "$WS/ingest/acme/orders" json/v1 big16.jsonl
grep -q '^closed 1007 line 1, column 1: the document is [0-9]* bytes, over the limit of 16 MiB' ws.out ||
  fail "a document over 16 MiB: $(cut -c1-200 ws.out)"
node -e 'process.stdout.write(JSON.stringify({id: 969, customer: "x".repeat(17 << 20), total: 1}) + "\n")' >big17.jsonl
ws_run "$WS/ingest/acme/orders" json/v1 big17.jsonl
[[ $ws_rc == 1 ]] && grep -q '^closed ' ws.out || fail "a message over the frame limit was not refused: $(cut -c1-200 ws.out)"
rm -f big16.jsonl big17.jsonl
absent "rows of failed WebSocket transactions" 961 962 963 964 965 966 967 968 969
wait_sql "acknowledged rows before the failures stay" "SELECT group_concat(id) FROM orders WHERE id IN (60, 61)" "60,61"
# Refused upgrades: an unknown collection (404, did you mean), a derived one (400), only
# unknown protocols (400).
ws_run "$WS/ingest/acme/ordrs" json/v1 w5.jsonl
grep -qF 'refused 404 {"error":"no collection `acme/ordrs` in the catalog; did you mean `acme/orders`?"}' ws.out ||
  fail "an unknown collection over WebSocket: $(cat ws.out)"
ws_run "$WS/ingest/acme%2Fcustomers" json/v1 w5.jsonl
grep -q '^refused 400 .*collection `acme/customers` is derived' ws.out || fail "a derived collection over WebSocket: $(cat ws.out)"
ws_run "$WS/ingest/acme/orders" xml/v1 w5.jsonl
grep -q '^refused 400 .*no supported WebSocket protocol' ws.out || fail "an unknown protocol: $(cat ws.out)"

# --- 500 concurrent connections, each one request (every other an ingest of one order,
# ids 100000..100498 even): all answered 200.
load_start=$SECONDS
set +e
node "$NETJS" load "$URL" 500 100000 >load.out 2>&1
rc=$?
set -e
[[ $rc == 0 ]] || fail "500 concurrent connections: $(tail -12 load.out)"
expect_ids $(seq 100000 2 100498)
wait_sql "the 250 orders of the concurrent connections" "SELECT count(*) FROM orders WHERE id >= 100000" 250 10
echo "note: 500 concurrent connections took $((SECONDS - load_start)) s" >&2
http GET /healthz
expect_http "healthz after the load" 200

# --- A client that disconnects mid-request (Content-Length 1000, 500 bytes sent).
set +e
cut_out=$(node "$NETJS" cut "$URL" 7777 2>&1)
set -e
expect_eq "the cut-off client got no answer" "$cut_out" "cut"
ingest_http '{"acme/orders":[{"id":70,"customer":"after-cut","total":1}]}'
expect_http "an ingest after the cut-off client" 200
expect_ids 70
absent "the request cut off mid-body" 7777

# --- flowctl ingest goes through the API of the develop that owns the data directory.
printf '{"id":80,"customer":"cli","total":1}\n\n{"id":81,"customer":"cli","total":2}\n' >cli.jsonl
expect_status 0 fc ingest acme/orders cli.jsonl --data-dir "$D"
expect_err "ingested 2 documents into \`acme/orders\` through the develop at $URL"
grep -q '^{"Offsets":{"acme/orders/pivot=00":[0-9]*}}$' out || fail "flowctl ingest: offsets: $(cat out)"
expect_ids 80 81
printf 'id,customer,total,note\n82,cli,3,\n83,cli,4,"x, y"\n' >cli.csv
expect_status 0 fc ingest acme/orders cli.csv --data-dir "$D"
expect_err "through the develop at $URL"
expect_ids 82 83
wait_sql "flowctl ingest rows" "SELECT group_concat(id || ':' || total || ':' || ifnull(note, '-')) FROM (SELECT * FROM orders WHERE id BETWEEN 80 AND 83 ORDER BY id)" \
  "80:1:-,81:2:-,82:3:-,83:4:x, y"
# Bad input names file:line (file: row/line for CSV) and writes nothing.
printf '{"id":970,"customer":"cli","total":1}\n\n{"id":971,"customer":"cli","total":"x"}\n' >bad-schema.jsonl
expect_status 1 fc ingest acme/orders bad-schema.jsonl --data-dir "$D"
expect_err "bad-schema.jsonl:3: error: collection \`acme/orders\`, document 1: document does not validate"
expect_err "nothing was written"
printf '{"id":972,"customer":"cli","total":1}\n{"id":973,"customer":"cli",\n' >bad-json.jsonl
expect_status 1 fc ingest acme/orders bad-json.jsonl --data-dir "$D"
expect_err "bad-json.jsonl:2"  # BUG: the develop path reports "bad-json.jsonl: error: ... (at byte N)" of its request body
expect_err "nothing was written"
printf 'id,customer,total\n974,cli,1\n975,cli,y\n' >bad-cell.csv
expect_status 1 fc ingest acme/orders bad-cell.csv --data-dir "$D"
expect_err 'bad-cell.csv: error: row 2 (line 3), field `total` (/total): `y` is not an integer'
printf 'id,customer,total\n976,cli,1\n977,cli\n' >bad-row.csv
expect_status 1 fc ingest acme/orders bad-row.csv --data-dir "$D"
expect_err "missing required property 'total'"
expect_err "bad-row.csv: error: row 2 (line 3)"  # as without develop (ingest.sh); develop's path says "bad-row.csv: row 2: error:"
# A JSON line is one document: a line that is not one (two documents; one that closes the
# array and names another collection) is rejected as without develop, not spliced into
# the request body.
printf '%s\n' '{"id":978,"customer":"cli","total":1},{"id":979,"customer":"cli","total":1}' >two-docs.jsonl
expect_status 1 fc ingest acme/orders two-docs.jsonl --data-dir "$D"
expect_err "two-docs.jsonl:1"
printf '%s\n' '{"id":980,"customer":"cli","total":1}],"acme/events":[{"id":"injected"}' >inject.jsonl
expect_status 1 fc ingest acme/orders inject.jsonl --data-dir "$D"
expect_err "inject.jsonl:1"
# Over the develop's --max-body: 413 with a hint.
node -e 'for (let i = 0; i < 2000; i++) console.log(JSON.stringify({id: 200000 + i, customer: "big", total: 1}))' >big.jsonl
expect_status 1 fc ingest acme/orders big.jsonl --data-dir "$D"
expect_err "HTTP 413"
expect_err "hint: split the input, or stream it over the WebSocket API"
absent "bad flowctl ingest input" 970 971 972 973 974 975 976 977 978 979 980 200000 201999
absent_events "an event spliced into a request by a JSON line" injected

# --- flowctl materialize registers a one-off materialization in the running develop: the
# new table back-fills, then keeps up with new ingests.
expect_status 0 fc materialize --target local --collection acme/orders --table-name "orders copy" --field total --yes --data-dir "$D"
expect_err "materialization \`materialize/local/orders copy\` runs in the develop at $URL"
grep -qF 'CREATE TABLE IF NOT EXISTS "orders copy"' out || fail "flowctl materialize did not print the DDL: $(cat out)"
grep -qF 'materialization `materialize/local/orders copy`' dev.err || fail "develop did not log the new materialization"
n_orders=$(sql "SELECT count(*) FROM orders")
wait_sql "the new table back-fills" 'SELECT count(*) FROM "orders copy"' "$n_orders"
ingest_http '{"acme/orders":[{"id":90,"customer":"late","total":11}]}'
expect_http "an ingest after flowctl materialize" 200
expect_ids 90
wait_sql "the new table keeps updating" 'SELECT total FROM "orders copy" WHERE id = 90' 11
printf '{"id":91,"customer":"late","total":12}\n' >late.jsonl
ws_run "$WS/ingest/acme/orders" json/v1 late.jsonl
ws_check "json/v1 after flowctl materialize" 1
expect_ids 91
wait_sql "the new table keeps updating (WebSocket)" 'SELECT total FROM "orders copy" WHERE id = 91' 12
expect_status 1 fc materialize --target local --collection acme/orders --table-name "orders copy" --yes --data-dir "$D"
expect_err "is already running"
expect_status 1 fc materialize --target local --collection acme/ordrs --table-name x --yes --data-dir "$D"
expect_err 'did you mean `acme/orders`?'
http POST /materializations -H 'Content-Type: application/json' --data-binary '[1]'
expect_http "POST /materializations with a bad body" 400
http GET /materializations
expect_http "GET /materializations" 405

# --- The tables equal what was acknowledged; the derived table sums it.
expected_n=$(sort -un expected_ids | wc -l)
wait_sql "the orders table holds the acknowledged orders" "SELECT count(*) FROM orders" "$((expected_n + $(sort -u leaked_ids | wc -l)))"
sql "SELECT id FROM orders ORDER BY id" >table_ids
comm -3 <(sort -u expected_ids leaked_ids) <(sort -u table_ids) >diff_ids || true
[[ -s diff_ids ]] && fail "orders table vs acknowledged ids (left: missing, right: unexpected): $(head -10 diff_ids | tr '\n' ' ')"
wait_sql "the derived table sums the orders" "SELECT (SELECT sum(spent) FROM customers) = (SELECT sum(total) FROM orders)" 1

# --- /metrics: Prometheus text with documents ingested per collection and task counters
# (rendered twice a second: polled; a materialization's rows count once its transaction
# committed, which is a moment after it has read everything).
orders_total=$(sql "SELECT count(*) FROM orders")
events_total=$(sql "SELECT count(*) FROM events")
for _ in $(seq 40); do
  scrape
  [[ "$(metric 'flowctl_ingested_documents_total{collection="acme/orders"}')" == "$orders_total" &&
    "$(metric 'flowctl_task_documents_in_total{kind="derivation",task="acme/customers"}')" == "$orders_total" &&
    "$(metric 'flowctl_task_lag_bytes{kind="materialization",task="materialize/local/orders copy"}')" == 0 &&
    "$(metric 'flowctl_task_documents_out_total{kind="materialization",task="materialize/local/orders copy"}')" == "$orders_total" &&
    "$(metric 'flowctl_task_lag_bytes{kind="materialization",task="acme/views"}')" == 0 ]] && break
  sleep 0.1
done
http GET /metrics
expect_http "GET /metrics" 200
grep -qi '^Content-Type: text/plain; version=0.0.4' headers || fail "/metrics content type: $(grep -i content-type headers)"
expect_eq "documents ingested into acme/orders" "$(metric 'flowctl_ingested_documents_total{collection="acme/orders"}')" "$orders_total"
expect_eq "documents ingested into acme/events" "$(metric 'flowctl_ingested_documents_total{collection="acme/events"}')" "$events_total"
grep -q 'flowctl_ingested_documents_total{collection="acme/customers"}' metrics.txt &&
  fail "/metrics counts documents ingested into a derived collection"
expect_eq "the derivation read every order" "$(metric 'flowctl_task_documents_in_total{kind="derivation",task="acme/customers"}')" "$orders_total"
expect_eq "the derivation is up" "$(metric 'flowctl_task_up{kind="derivation",task="acme/customers"}')" 1
expect_eq "acme/views is up" "$(metric 'flowctl_task_up{kind="materialization",task="acme/views"}')" 1
expect_eq "acme/views has no lag" "$(metric 'flowctl_task_lag_bytes{kind="materialization",task="acme/views"}')" 0
expect_eq "the one-off materialization stored every order" \
  "$(metric 'flowctl_task_documents_out_total{kind="materialization",task="materialize/local/orders copy"}')" "$orders_total"
[[ "$(metric 'flowctl_collection_bytes{collection="acme/orders"}')" -gt 0 ]] || fail "no flowctl_collection_bytes for acme/orders"
[[ "$(metric 'flowctl_ingest_commit_seconds_count')" -ge 260 ]] || fail "commit latencies: $(grep commit_seconds_count metrics.txt)"
grep -q '^# TYPE flowctl_ingest_commit_seconds histogram$' metrics.txt || fail "no commit latency histogram"
# SPEC 7: "documents and bytes in/out per collection and task".
grep -E '^flowctl_task_[a-z_]*bytes' metrics.txt | grep -v '^flowctl_task_lag_bytes' >/dev/null || fail "/metrics has no bytes in/out per task (SPEC 7)"
awk '!/^#/ && NF && $NF !~ /^[-+0-9.e]+$|^[+-]?Inf$|^NaN$/ {print; bad = 1} END {exit bad}' metrics.txt >/dev/null ||
  fail "/metrics has lines that are not Prometheus samples"

# --- The slow clients: both cut off by the server after the 5 s request timeout (they
# ran alongside everything above), and the slow request is not written.
for _ in $(seq 450); do [[ -s slow.json ]] && break; sleep 0.1; done
wait "$slow_pid" 2>/dev/null || true
slow_pid=
if [[ ! -s slow.json ]]; then
  fail "the slow clients did not finish: $(cat slow.out)"
else
  for who in idle slow; do
    ms=$(jq -r ".$who.closedAfterMs" slow.json)
    if [[ "$ms" == null ]]; then
      fail "the $who client was never cut off (45 s)"
    elif ((ms < 4500 || ms > 9000)); then
      fail "the $who client was cut off after $ms ms, not ~5 s"
    fi
    expect_eq "what the $who client received" "$(jq -r ".$who.received" slow.json)" ""
  done
  [[ "$(jq -r .slow.bytesSent slow.json)" -ge 4 ]] || fail "the slow client sent only $(jq -r .slow.bytesSent slow.json) bytes"
fi
absent "the slow request" 8888

# --- SIGTERM: exit 0, spools persisted, develop.json removed; flowctl read then has every
# acknowledged document exactly once.
kill -TERM "$dev_pid"
set +e
for _ in $(seq 100); do kill -0 "$dev_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$dev_pid" 2>/dev/null && { fail "develop did not exit within 10 s of SIGTERM"; kill -KILL "$dev_pid"; }
wait "$dev_pid"
rc=$?
set -e
expect_eq "develop's exit status after SIGTERM" "$rc" 0
grep -q 'stopped; spools persisted' dev.err || fail "develop did not report persisting its spools: $(tail -3 dev.err)"
[[ -e "$D/develop.json" ]] && fail "develop.json is left behind"
expect_status 0 fc read acme/orders --data-dir "$D"
jq -r .id out >read_ids.raw 2>/dev/null || fail "flowctl read printed something that is not JSON lines: $(head -c 200 out)"
sort -n read_ids.raw >read_ids
expect_eq "flowctl read: no document twice" "$(sort -n read_ids | uniq -d | head -5 | paste -sd' ')" ""
comm -3 <(sort -u expected_ids leaked_ids) <(sort -u read_ids) >diff_ids || true
[[ -s diff_ids ]] && fail "flowctl read vs acknowledged ids (left: missing, right: unexpected): $(head -10 diff_ids | tr '\n' ' ')"
expect_eq "every read document has a UUID" "$(jq -r '._meta.uuid // "none"' out | grep -c none || true)" 0
expect_status 0 fc read acme/events --data-dir "$D"
expect_eq "flowctl read acme/events" "$(jq -r .id out 2>/dev/null | sort | paste -sd' ')" \
  "$(sqlite3 -batch -noheader db.sqlite 'SELECT id FROM events ORDER BY id' | paste -sd' ')"
# The head the last ingest of an order reported is the journal's committed length, all
# persisted as fragments on exit.
persisted=0
while read -r f; do persisted=$((persisted + $(gzip -dc "$f" | wc -c))); done < <(find "$D/lake/acme/orders" -type f -name '*.gz')
expect_eq "bytes of acme/orders in the lake vs the last head acknowledged" "$persisted" "$last_orders_head"
# Anything develop logged besides its status lines and the materialization it started.
grep -vE '^(status: |flowctl develop: ingestion API|started materialization|stopped; spools persisted)' dev.err >dev.other || true
[[ -s dev.other ]] && echo "note: develop also logged: $(head -5 dev.other)" >&2

echo "note: develop_api.sh took $((SECONDS - started)) s" >&2
finish
