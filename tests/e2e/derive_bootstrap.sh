#!/usr/bin/env bash
# Derivation `bootstrap` lambdas (SPEC 4): they run once each time the derivation's task
# starts, before any transform, in `test`, `run` and `develop`; what a nodeJS bootstrap sets
# on globalThis is seen by the derivation's lambdas. A bootstrap that fails (throws, answers
# HTTP 500) halts its derivation with an error naming the derivation and the bootstrap,
# before anything is read; other derivations keep running.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# A real HTTP server for the remote bootstraps (prints its port; exits when stdin closes).
mkfifo server.in
node "$REPO/tests/unit/testdata_lambda/remote_server.js" < server.in > server.out 2>&1 &
server=$!
exec 3> server.in
trap 'exec 3>&-; kill $server 2>/dev/null || true; wait $server 2>/dev/null || true
      if [[ -n $dev_pid ]]; then kill -KILL "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
      rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [[ -s server.out ]] && break; sleep 0.05; done
port=$(head -n 1 server.out)
[[ $port =~ ^[0-9]+$ ]] || { echo "the test server did not start: $(cat server.out)"; exit 1; }

# catalog NAME BOOTSTRAP: acme/scaled over acme/in, whose publish multiplies by a global the
# bootstrap lambdas (a YAML list) are to set, and counts in `starts` how many times they
# ran; and acme/copy, a derivation without bootstraps over the same source.
catalog() {
  local name=$1 bootstrap=$2
  mkdir -p "$name"
  cat > "$name/flow.yaml" <<YAML
collections:
  - name: acme/in
    key: [/id]
    schema:
      type: object
      required: [id, v]
      properties: {id: {type: integer}, v: {type: integer}}
  - name: acme/scaled
    key: [/id]
    schema:
      type: object
      required: [id, v]
      properties: {id: {type: integer}, v: {type: integer}, starts: {type: integer}}
    derivation:
      bootstrap: $bootstrap
      transform:
        scale:
          source: {name: acme/in}
          publish:
            nodeJS: |
              const g = globalThis as any;
              return [{id: source.id, v: source.v * g.factor, starts: g.starts}];
  - name: acme/copy
    key: [/id]
    schema:
      type: object
      required: [id, v]
      properties: {id: {type: integer}, v: {type: integer}}
    derivation:
      transform:
        copy:
          source: {name: acme/in}
          publish: {sqlite: "SELECT \$id AS id, \$v AS v"}
tests:
  "scales documents":
    - ingest:
        collection: acme/in
        documents: [{id: 1, v: 2}]
    - ingest:
        collection: acme/in
        documents: [{id: 2, v: 5}]
    - verify:
        collection: acme/scaled
        documents: [{id: 1, v: 20, starts: 1}, {id: 2, v: 50, starts: 1}]
YAML
}
counting='{nodeJS: "const g = globalThis as any; g.starts = (g.starts ?? 0) + 1; g.factor = 10;"}'

# The happy path: the bootstrap ran once (not once per transaction), before the first
# transform. The built catalog lists it.
catalog ok "[$counting]"
expect_status 0 "$FLOWCTL" test --source ok/flow.yaml
expect_out "1 passed, 0 failed"
expect_status 0 "$FLOWCTL" build --source ok/flow.yaml --catalog ok/catalog.db
expect_eq "the built catalog's bootstraps" \
  "$(sqlite3 -batch -noheader ok/catalog.db "SELECT b.derivation, b.idx, l.kind FROM bootstraps b JOIN lambdas l ON l.id = b.lambda")" \
  "acme/scaled|0|nodeJS"
expect_status 0 "$FLOWCTL" test --catalog ok/catalog.db
expect_out "1 passed, 0 failed"

# Without the bootstrap, the same catalog fails: the test relies on it.
catalog none "[]"
expect_status 1 "$FLOWCTL" test --source none/flow.yaml
expect_out "0 passed, 1 failed"

# `flowctl run`: the bootstrap runs each time the task starts (once per process).
printf '{"id":1,"v":2}\n' > in1.jsonl
printf '{"id":2,"v":3}\n' > in2.jsonl
expect_status 0 "$FLOWCTL" ingest acme/in in1.jsonl --source ok/flow.yaml --data-dir ok/data
expect_status 0 "$FLOWCTL" run --until-idle --source ok/flow.yaml --data-dir ok/data
expect_status 0 "$FLOWCTL" ingest acme/in in2.jsonl --source ok/flow.yaml --data-dir ok/data
expect_status 0 "$FLOWCTL" run --until-idle --source ok/flow.yaml --data-dir ok/data
expect_status 0 "$FLOWCTL" read acme/scaled --reduced --source ok/flow.yaml --data-dir ok/data
expect_eq "acme/scaled after two runs" "$(grep -o '"id":[0-9]*,"v":[0-9]*,"starts":[0-9]*' "$WORK/out" | tr '\n' ' ')" \
  '"id":1,"v":20,"starts":1 "id":2,"v":30,"starts":1 '

# `flowctl develop` runs it too.
mkdir -p dev && cp ok/flow.yaml dev/ && cd dev
start_develop --source flow.yaml
code=$(curl -s -o resp.json -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
  --data '{"acme/in": [{"id": 7, "v": 4}]}' "$url/ingest")
expect_eq "develop ingest" "$code" 200
scaled() { "$FLOWCTL" read acme/scaled --source flow.yaml --data-dir data 2>/dev/null | grep '"id":7,"v":40,"starts":1' >/dev/null; }
wait_until 15 scaled || fail "develop did not derive with the bootstrap: $(tail -5 dev.err)"
stop_develop TERM
cd "$WORK"

# fails NAME CAUSE...: `flowctl test` fails naming the derivation and each CAUSE;
# `flowctl run --until-idle` exits 1 with the same, commits nothing of acme/scaled, and
# still runs acme/copy.
fails() {
  local name=$1
  shift
  expect_status 1 "$FLOWCTL" test --source "$name/flow.yaml"
  expect_out "FAIL scales documents"
  expect_out "derivation \`acme/scaled\`: bootstrap lambda"
  for cause in "$@"; do expect_out "$cause"; done
  expect_out "0 passed, 1 failed"
  expect_status 0 "$FLOWCTL" ingest acme/in in1.jsonl --source "$name/flow.yaml" --data-dir "$name/data"
  expect_status 1 "$FLOWCTL" run --until-idle --source "$name/flow.yaml" --data-dir "$name/data"
  expect_err "derivation \`acme/scaled\`: bootstrap lambda"
  for cause in "$@"; do expect_err "$cause"; done
  expect_err "(halted by an error)"
  expect_status 0 "$FLOWCTL" read acme/scaled --source "$name/flow.yaml" --data-dir "$name/data"
  expect_eq "$name: nothing is derived into acme/scaled" "$(wc -l < "$WORK/out")" "0"
  expect_status 0 "$FLOWCTL" read acme/copy --source "$name/flow.yaml" --data-dir "$name/data"
  expect_eq "$name: acme/copy keeps running" "$(wc -l < "$WORK/out")" "1"
}

# A nodeJS bootstrap that throws: its error, and where in its body.
catalog throws "[$counting, {nodeJS: \"const ready = false;\\nif (!ready) throw new Error('no factor today');\"}]"
fails throws "bootstrap lambda 2 threw: no factor today (at line 2"

# A remote bootstrap answering HTTP 500; one answering 200 is fine (its body is ignored).
catalog remote500 "[$counting, {remote: \"http://127.0.0.1:$port/status500\"}]"
fails remote500 "bootstrap lambda 2 (remote) failed" "HTTP 500: boom: the lambda failed"
catalog remote200 "[{remote: \"http://127.0.0.1:$port/notarray\"}, $counting]"
expect_status 0 "$FLOWCTL" test --source remote200/flow.yaml
expect_out "1 passed, 0 failed"

finish
