#!/usr/bin/env bash
# Web pages cannot drive `flowctl develop` (issue 16 item 3, SPEC 7, docs/security.md).
# Against one develop started with --allow-origin for one page origin: curl and the `ws`
# package send what a browser would (a foreign Origin, a rebound Host, text/plain bodies) and
# are refused with 403/415, nothing written and no table created; the allowed origin and
# clients without an Origin (curl, ws, flowctl ingest/materialize) are served. Then real
# headless Chromium (develop_browser.js, chromium.js) loads a page of a foreign origin, a
# page of the allowed one and a DNS-rebound page, and runs what their scripts can do.
# What was written is checked in the materialized SQLite table (after a barrier: a later
# good write) and, after SIGTERM, with `flowctl read`.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

if ! command -v "${CHROMIUM:-chromium}" >/dev/null 2>&1; then
  echo "FAIL: chromium is not installed; scripts/test.sh installs it (apt-get install --no-install-recommends chromium)" >&2
  exit 1
fi
if ! "$REPO/scripts/npm-deps.sh" >"$WORK/npm.log" 2>&1; then
  cat "$WORK/npm.log" >&2
  echo "FAIL: cannot install the test npm packages into $REPO/.deps/npm (scripts/npm-deps.sh failed)" >&2
  exit 1
fi
export NODE_PATH="$REPO/.deps/npm/node_modules"
JS="$REPO/tests/e2e/develop_browser.js"

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
materializationTargets:
  local:
    sqlite: {path: db.sqlite}
materializations:
  acme/views:
    target: local
    bindings:
      - {source: acme/orders, table: orders}
YAML

# A bad --allow-origin is a usage error, before anything starts.
expect_status 2 "$FLOWCTL" develop --data-dir bad --port 0 --no-watch --allow-origin localhost:3000
expect_err "--allow-origin \`localhost:3000\` is not a web origin such as http://localhost:3000"
expect_status 2 "$FLOWCTL" develop --data-dir bad --port 0 --no-watch --allow-origin http://localhost:3000/app
[[ ! -e bad/develop.json ]] || fail "a bad --allow-origin started develop"

foreign_port=$(node "$JS" freeport)
allowed_port=$(node "$JS" freeport)
while [[ $allowed_port == "$foreign_port" ]]; do allowed_port=$(node "$JS" freeport); done
allowed="http://127.0.0.1:$allowed_port"
foreign="http://127.0.0.1:$foreign_port"
start_develop --no-watch --status-interval 1 --allow-origin "$allowed" --allow-origin https://tools.example.com
port=${url##*:}
WS=${url/#http/ws}

# http METHOD PATH [curl args]: $status, the body in body, headers in headers.
http() {
  local method=$1 path=$2
  shift 2
  status=$(curl -sS --noproxy '*' -o body -D headers -w '%{http_code}' -X "$method" "$@" "$url$path" 2>curl.err) ||
    status="curl failed: $(cat curl.err)"
}
expect_http() {  # WHAT WANT_STATUS [TEXT...]: the body has each TEXT
  local what=$1 want=$2
  shift 2
  [[ "$status" == "$want" ]] || fail "$what: HTTP $status, want $want: $(head -c 400 body)"
  for t in "$@"; do
    grep -qF -- "$t" body || fail "$what: the body lacks '$t': $(head -c 400 body)"
  done
}
order() { echo "{\"acme/orders\":[{\"id\":$1,\"customer\":\"c\",\"total\":1}]}"; }
json=(-H 'Content-Type: application/json')
sql() { sqlite3 -batch -noheader db.sqlite "$1" 2>/dev/null || true; }
tables() { sql "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'flow_%' ORDER BY name)"; }
in_table() { [[ $(sql "SELECT count(*) FROM $1 WHERE id = $2") == 1 ]]; }  # TABLE ID
# barrier: a good order without an Origin; once it is in the table, everything committed
# before it is too. Then none of IDS may be there.
barrier_n=0
absent() {
  local what=$1
  shift
  barrier_n=$((barrier_n + 1))
  local id=$((5000 + barrier_n))
  http PUT /ingest "${json[@]}" --data-binary "$(order $id)"
  expect_http "barrier $id" 200
  wait_until 10 in_table orders "$id" || fail "barrier $id never reached the table"
  local ids found
  ids=$(IFS=,; echo "$*")
  found=$(sql "SELECT group_concat(id) FROM orders WHERE id IN ($ids)")
  [[ -z "$found" ]] || fail "$what: written anyway: orders $found"
}

# --- A web page of another origin: 403 with the reason and the flag, for every kind of
# request, before anything is read or written.
http POST /ingest "${json[@]}" -H "Origin: $foreign" --data-binary "$(order 6001)"
expect_http "POST /ingest from a foreign Origin" 403 "refused a request from the web page at \`$foreign\`" \
  "restart develop with \`--allow-origin $foreign\`" "docs/security.md"
http POST /ingest -H 'Content-Type: text/plain' -H 'Origin: https://evil.example' --data-binary "$(order 6002)"
expect_http "no-cors text/plain POST /ingest" 403 "https://evil.example"
http POST /materializations -H 'Content-Type: text/plain' -H 'Origin: https://evil.example' \
  --data-binary '{"target":"local","collection":"acme/orders","table":"evil_origin"}'
expect_http "no-cors text/plain POST /materializations" 403
http OPTIONS /ingest -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST'
expect_http "CORS preflight from a foreign Origin" 403
grep -qi '^Access-Control-Allow-Origin' headers && fail "a foreign origin got Access-Control-Allow-Origin"
http POST /ingest "${json[@]}" -H 'Origin: null' --data-binary "$(order 6003)"
expect_http "POST /ingest from Origin null" 403
# Another port of loopback is another origin.
http POST /ingest "${json[@]}" -H "Origin: http://localhost:$foreign_port" --data-binary "$(order 6004)"
expect_http "POST /ingest from another local port" 403
out=$(node "$JS" ws "$WS/ingest/acme/orders" https://evil.example - '{"id":6005,"customer":"c","total":1}')
[[ $out == "refused 403 "*"--allow-origin https://evil.example"* ]] || fail "WebSocket from a foreign Origin: $out"

# --- DNS rebinding: a request addressed to a name that is not loopback.
http POST /ingest "${json[@]}" -H "Host: rebind.evil.example:$port" --data-binary "$(order 6006)"
expect_http "POST /ingest with a foreign Host" 403 "DNS rebinding" "rebind.evil.example:$port"
http GET /healthz -H "Host: rebind.evil.example:$port"
expect_http "GET /healthz with a foreign Host" 403
http GET /metrics -H "Host: 127.0.0.1.nip.io:$port"
expect_http "GET /metrics with a foreign Host" 403
http GET /healthz -H "Host: 127.0.0.1:$((port == 65535 ? 1 : port + 1))"
expect_http "GET /healthz for another port" 403
out=$(node "$JS" ws "$WS/ingest/acme/orders" - "rebind.evil.example:$port" '{"id":6007,"customer":"c","total":1}')
[[ $out == "refused 403 "*"DNS rebinding"* ]] || fail "WebSocket with a foreign Host: $out"
# Loopback names and addresses are fine.
for h in "localhost:$port" "127.0.0.1:$port" "127.1.2.3:$port"; do
  http GET /healthz -H "Host: $h"
  expect_http "GET /healthz with Host $h" 200
done

# --- JSON endpoints require application/json, even without an Origin.
http POST /ingest -H 'Content-Type: text/plain' --data-binary "$(order 6008)"
expect_http "text/plain POST /ingest" 415 "application/json"
http POST /materializations -H 'Content-Type: text/plain' \
  --data-binary '{"target":"local","collection":"acme/orders","table":"plain_table"}'
expect_http "text/plain POST /materializations" 415 "the Content-Type of a request to /materializations must be application/json"
http POST /materializations --data '{"target":"local","collection":"acme/orders","table":"form_table"}'
expect_http "form POST /materializations" 415
absent "refused requests" 6001 6002 6003 6004 6005 6006 6007 6008
expect_eq "tables after the refused requests" "$(tables)" "orders"

# --- The allowed origin: served, and told so (CORS); still JSON only.
http POST /ingest "${json[@]}" -H "Origin: $allowed" --data-binary "$(order 6101)"
expect_http "POST /ingest from the allowed origin" 200 '"Offsets"'
grep -qi "^Access-Control-Allow-Origin: $allowed" headers || fail "no Access-Control-Allow-Origin for $allowed: $(cat headers)"
http OPTIONS /ingest -H 'Origin: https://tools.example.com' -H 'Access-Control-Request-Method: PUT'
expect_http "CORS preflight from an allowed origin" 204
grep -qi '^Access-Control-Allow-Methods: GET, PUT, POST' headers || fail "preflight without methods: $(cat headers)"
http POST /ingest -H 'Content-Type: text/plain' -H "Origin: $allowed" --data-binary "$(order 6102)"
expect_http "text/plain POST /ingest from the allowed origin" 415
out=$(node "$JS" ws "$WS/ingest/acme/orders" "$allowed" - '{"id":6103,"customer":"c","total":1}')
[[ $out == "acked "*'"Processed":1'* ]] || fail "WebSocket from the allowed origin: $out"
# develop's own origin.
http POST /ingest "${json[@]}" -H "Origin: http://localhost:$port" --data-binary "$(order 6104)"
expect_http "POST /ingest from develop's own origin" 200

# --- No Origin (curl, ws, flowctl): as before.
out=$(node "$JS" ws "$WS/ingest/acme/orders" - - '{"id":6105,"customer":"c","total":1}')
[[ $out == "acked "*'"Processed":1'* ]] || fail "WebSocket without an Origin: $out"
echo '{"id":6106,"customer":"c","total":1}' >one.json
expect_status 0 "$FLOWCTL" ingest acme/orders one.json --data-dir data
expect_status 0 "$FLOWCTL" materialize --data-dir data --target local --collection acme/orders --table-name copied --yes
wait_until 10 in_table copied 6106 || fail "flowctl materialize through develop: no table copied"
absent "after the allowed requests" 6102
expect_eq "allowed orders in the table" "$(sql 'SELECT group_concat(id) FROM (SELECT id FROM orders WHERE id BETWEEN 6100 AND 6199 ORDER BY id)')" \
  "6101,6103,6104,6105,6106"

# --- Real pages in headless Chromium.
if node "$JS" chromium "$url" "$foreign_port" "$allowed_port" >browser.json 2>browser.err; then
  cat browser.json
  got() { jq -r "$1" browser.json; }
  # The foreign page: no stream opens, its simple requests are refused unseen, its JSON
  # fetch dies at the preflight.
  [[ $(got .foreign.ws) == "closed 1006" ]] || fail "foreign page WebSocket: $(got .foreign.ws)"
  expect_eq "foreign page no-cors POST /ingest" "$(got .foreign.noCorsIngest)" "opaque"
  expect_eq "foreign page no-cors POST /materializations" "$(got .foreign.noCorsMaterialize)" "opaque"
  [[ $(got .foreign.textPlain) == error* ]] || fail "foreign page read a text/plain answer: $(got .foreign.textPlain)"
  expect_eq "foreign page form" "$(got .foreign.form)" "submitted"
  [[ $(got .foreign.corsJson) == error* ]] || fail "foreign page JSON fetch: $(got .foreign.corsJson)"
  # The allowed page: a stream and a JSON fetch work; text/plain is 415.
  [[ $(got .allowed.ws) == "acked "*'"Processed":1'* ]] || fail "allowed page WebSocket: $(got .allowed.ws)"
  [[ $(got .allowed.corsJson) == "status 200 "*'"Offsets"'* ]] || fail "allowed page JSON fetch: $(got .allowed.corsJson)"
  [[ $(got .allowed.textPlain) == "status 415" ]] || fail "allowed page text/plain: $(got .allowed.textPlain)"
  # The rebound page: neither its load nor its own-origin POST is served.
  [[ $(got .rebindPage) == *"DNS rebinding"* ]] || fail "rebound page loaded: $(got .rebindPage)"
  [[ $(got .rebindIngest) == "status 403 "*"DNS rebinding"* ]] || fail "rebound page POST: $(got .rebindIngest)"
else
  fail "the Chromium pages failed: $(tail -20 browser.err)"
fi
absent "what the foreign and rebound pages sent" 7001 7002 7003 7201
expect_eq "the allowed page's orders" "$(sql 'SELECT group_concat(id) FROM (SELECT id FROM orders WHERE id BETWEEN 7100 AND 7199 ORDER BY id)')" \
  "7101,7103"
expect_eq "tables after the pages" "$(tables)" "copied orders"

# The server kept serving; after SIGTERM the journal holds exactly what was accepted.
stop_develop TERM
expect_eq "develop exit" "$dev_rc" "0"
expect_status 0 "$FLOWCTL" read acme/orders --data-dir data
expect_eq "orders in the journal" "$(jq -r .id "$WORK/out" | sort -n | paste -sd' ')" \
  "$(printf '%s\n' 6101 6103 6104 6105 6106 7101 7103 $(seq 5001 $((5000 + barrier_n))) | sort -n | paste -sd' ')"
finish
