#!/usr/bin/env bash
# Lambdas that never return (issue 16 item 6, SPEC 9): a nodeJS update, publish or bootstrap
# stuck in `while (true) {}`, a SQLite query that never ends (an unbounded recursive CTE, in
# a lambda and in a bootstrap) and a remote lambda whose server never answers.
# - `flowctl test` fails within the catalog's `lambdaTimeout` (2s here), naming the
#   derivation, the transform and the source document's journal offset;
# - `develop` halts that derivation only, keeps ingesting and deriving other tasks, and
#   exits within 2 s of SIGTERM even while a lambda is stuck (default 30 s timeout);
# - SIGKILL of `flowctl run` or `develop` leaves no Node.js worker behind.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
# Node.js workers of this test are found by their module's path, under this cache.
export XDG_CACHE_HOME="$WORK/cache"
workers() { pgrep -f -- "$XDG_CACHE_HOME/flowctl/node" || true; }
some_workers() { [[ -n $(workers) ]]; }
no_workers() { [[ -z $(workers) ]]; }
# within MS CMD...: CMD succeeds within MS milliseconds (polled every 50 ms).
within() {
  local end=$(($(date +%s%N) / 1000000 + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s%N) / 1000000 < end)) || return 1
    sleep 0.05
  done
}
gone() { ! kill -0 "$1" 2>/dev/null || [[ $(ps -o stat= -p "$1") == Z* ]]; }  # exited (maybe not reaped)

# A server for the remote lambdas: /hang never answers.
mkfifo server.in
node "$REPO/tests/unit/testdata_lambda/remote_server.js" < server.in > server.out 2>&1 &
server=$!
exec 3> server.in
trap 'exec 3>&-; kill $server 2>/dev/null; wait $server 2>/dev/null || true
      if [[ -n $dev_pid ]]; then kill -KILL "$dev_pid" 2>/dev/null || true; fi
      for p in $(workers); do kill -KILL "$p" 2>/dev/null || true; done
      rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [[ -s server.out ]] && break; sleep 0.05; done
port=$(head -n 1 server.out)
[[ $port =~ ^[0-9]+$ ]] || { echo "the test server did not start: $(cat server.out)"; exit 1; }

# catalog NAME DERIVATION-EXTRA TRANSFORM-LAMBDAS: acme/out derived from acme/in by transform
# `copy`, with a 2s lambdaTimeout; the two YAML fragments are inserted under `derivation:`
# and under the transform (each line indented by the caller).
catalog() {
  mkdir -p "$1"
  cat > "$1/flow.yaml" <<YAML
collections:
  - name: acme/in
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
  - name: acme/out
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
    derivation:
      lambdaTimeout: 2s
$2
      transform:
        copy:
          source: {name: acme/in}
$3
tests:
  "copies documents":
    - ingest:
        collection: acme/in
        documents: [{id: 1}, {id: 2}]
    - verify:
        collection: acme/out
        documents: [{id: 1}, {id: 2}]
YAML
}

# check NAME CAUSE...: `flowctl test` exits 1 within 2 s of lambda time (plus start-up),
# naming each CAUSE; no worker is left.
check() {
  local name=$1
  shift
  local start=$SECONDS
  expect_status 1 timeout 60 "$FLOWCTL" test --source "$name/flow.yaml"
  local took=$((SECONDS - start))
  ((took <= 15)) || fail "$name: flowctl test took ${took}s with a 2s lambdaTimeout"
  for cause in "$@"; do expect_out "$cause"; done
  [[ -z $(workers) ]] || fail "$name: a Node.js worker survived flowctl test: $(workers)"
}

# --- flowctl test
catalog node-update "" "          update: {nodeJS: \"while (true) {} return [source];\"}"
check node-update "derivation \`acme/out\`, transform \`copy\`: the document at offset 0 of journal acme/in/pivot=00" \
  "lambda of transform \`copy\` (update) did not return within 2 s (the lambda timeout; set \`lambdaTimeout\` to allow longer)" \
  "0 passed, 1 failed"

catalog node-publish "" "          publish: {nodeJS: \"if (source.id === 2) { while (true) {} } return [source];\"}"
check node-publish "transform \`copy\`: the document at offset 0 of journal acme/in/pivot=00" \
  "lambda of transform \`copy\` (publish) did not return within 2 s" "running a group of 2 documents starting with this one"

# A transform's own lambdaTimeout wins over the derivation's.
catalog own-timeout "" "          lambdaTimeout: 1s
          publish: {nodeJS: \"while (true) {} return [source];\"}"
check own-timeout "lambda of transform \`copy\` (publish) did not return within 1 s"

catalog node-bootstrap "      bootstrap: [{nodeJS: \"while (true) {}\"}]" \
  "          publish: {nodeJS: \"return [source];\"}"
check node-bootstrap "derivation \`acme/out\`: bootstrap lambda 1 did not finish within 2 s"

forever="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) AS id FROM n"
catalog sqlite-update "" "          publish: {sqlite: \"$forever\"}"
check sqlite-update "transform \`copy\`: the document at offset 0 of journal acme/in/pivot=00" \
  "the SQLite query did not finish within 2 s and was interrupted"

# SQLite bootstraps also run when the catalog is checked (by every command): bounded there too.
catalog sqlite-bootstrap "      bootstrap: [{sqlite: \"CREATE TABLE t(x); $forever\"}]" \
  "          publish: {sqlite: \"SELECT \$id AS id\"}"
start=$SECONDS
expect_status 1 timeout 60 "$FLOWCTL" test --source sqlite-bootstrap/flow.yaml
expect_err "sqlite-bootstrap/flow.yaml:10:"
expect_err "sqlite bootstrap fails: it did not finish within 2 s (the lambda timeout; set \`lambdaTimeout\` to allow longer)"
((SECONDS - start <= 10)) || fail "sqlite-bootstrap: flowctl test took $((SECONDS - start))s"

catalog remote "" "          publish: {remote: \"http://127.0.0.1:$port/hang\"}"
check remote "transform \`copy\`: the batch of 2 documents starting at offset 0 of journal acme/in/pivot=00" \
  "remote lambda http://127.0.0.1:$port/hang did not answer within 2 s"
catalog remote-bootstrap "      bootstrap: [{remote: \"http://127.0.0.1:$port/hang\"}]" \
  "          publish: {sqlite: \"SELECT \$id AS id\"}"
check remote-bootstrap "bootstrap lambda 1 (remote) failed: remote lambda http://127.0.0.1:$port/hang did not answer within 2 s"

# An out-of-range or malformed lambdaTimeout is a catalog error at its place.
catalog bad-timeout "" "          lambdaTimeout: 0s
          publish: {sqlite: \"SELECT \$id AS id\"}"
expect_status 1 "$FLOWCTL" build --source bad-timeout/flow.yaml --catalog bad.db
expect_err "bad-timeout/flow.yaml:14:26:"
expect_err "\`lambdaTimeout\` \`0s\` is out of range: it must be at least 1s and at most 1d"

# --- flowctl run: the derivation halts with the same error; SIGKILL leaves no worker.
catalog run "" "          publish: {nodeJS: \"if (source.id === 2) { while (true) {} } return [source];\"}"
printf '{"id":1}\n{"id":2}\n' > in.jsonl
expect_status 0 "$FLOWCTL" ingest acme/in in.jsonl --source run/flow.yaml --data-dir run/data
expect_status 1 timeout 60 "$FLOWCTL" run --until-idle --source run/flow.yaml --data-dir run/data
expect_err "derivation \`acme/out\`, transform \`copy\`: the document at offset 0 of journal acme/in/pivot=00"
expect_err "did not return within 2 s"
expect_err "(halted by an error)"
[[ -z $(workers) ]] || fail "a Node.js worker survived flowctl run: $(workers)"

# A lambda stuck under the default 30 s timeout while `run` is SIGKILLed.
catalog run-kill "" "          publish: {nodeJS: \"while (true) {} return [source];\"}"
sed -i '/lambdaTimeout/d' run-kill/flow.yaml
expect_status 0 "$FLOWCTL" ingest acme/in in.jsonl --source run-kill/flow.yaml --data-dir run-kill/data
"$FLOWCTL" run --source run-kill/flow.yaml --data-dir run-kill/data >run.out 2>run.err &
run_pid=$!
wait_until 20 some_workers || fail "flowctl run started no worker: $(cat run.err)"
sleep 0.5
kill -KILL "$run_pid"
wait "$run_pid" 2>/dev/null || true
within 2000 no_workers || fail "a Node.js worker outlived a SIGKILLed flowctl run: $(workers)"

# SIGTERM ends `run` within 2 s while its lambda is stuck.
"$FLOWCTL" run --source run-kill/flow.yaml --data-dir run-kill/data >run.out 2>run.err &
run_pid=$!
wait_until 20 some_workers || fail "flowctl run started no worker: $(cat run.err)"
sleep 0.5
kill -TERM "$run_pid"
within 2000 gone "$run_pid" || fail "flowctl run did not exit within 2 s of SIGTERM"
wait "$run_pid" 2>/dev/null || true
grep -q "did not return" run.err && fail "run reported the interrupted lambda as a failure: $(cat run.err)"
within 2000 no_workers || fail "a Node.js worker outlived flowctl run: $(workers)"

# --- develop: a stuck derivation halts alone; the others keep running; SIGTERM ends it.
mkdir -p dev
cat > dev/flow.yaml <<YAML
collections:
  - name: acme/in
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
  - name: acme/stuck
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
    derivation:
      transform:
        spin:
          source: {name: acme/in}
          lambdaTimeout: 2s
          publish: {nodeJS: "if (source.id === 2) { while (true) {} } return [source];"}
  - name: acme/copy
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
    derivation:
      transform:
        copy:
          source: {name: acme/in}
          publish: {nodeJS: "return [source];"}
YAML
cd dev
start_develop --source flow.yaml
ingest() {
  curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data-binary "$1" "$url/ingest" 2>/dev/null || echo "curl failed"
}
out_of() {  # TASK: documents it published, from /metrics
  curl -sS "$url/metrics" 2>/dev/null |
    awk -v t="task=\"$1\"" 'index($0, "flowctl_task_documents_out_total") == 1 && index($0, t) {print $NF}'
}
expect_eq "first ingest" "$(ingest '{"acme/in":[{"id":1},{"id":2}]}')" 200
wait_until 20 grep -q "did not return within 2 s" dev.err || fail "develop reported no timeout: $(tail -5 dev.err)"
grep -qF "derivation \`acme/stuck\`, transform \`spin\`: the document at offset" dev.err ||
  fail "the timeout does not name the derivation, transform and offset: $(grep 'did not return' dev.err)"
# The other derivation and the ingestion API keep working.
expect_eq "ingest after the timeout" "$(ingest '{"acme/in":[{"id":3}]}')" 200
copied() { [[ $(out_of acme/copy) == 3 ]]; }
wait_until 10 copied || fail "acme/copy published $(out_of acme/copy) documents, want 3"
expect_eq "acme/stuck stays halted" "$(out_of acme/stuck)" 0
stop_develop TERM
expect_eq "develop exit status after SIGTERM" "$dev_rc" 0
[[ -z $(workers) ]] || fail "a Node.js worker outlived develop: $(workers)"

# A lambda stuck under the default 30 s timeout: SIGTERM still ends develop within 2 s.
sed -i '/lambdaTimeout/d' flow.yaml
rm -rf data
: >dev.err
start_develop --source flow.yaml
expect_eq "ingest" "$(ingest '{"acme/in":[{"id":2}]}')" 200
wait_until 20 some_workers || fail "no worker"
sleep 1  # the lambda is now stuck
kill -TERM "$dev_pid"
within 2000 gone "$dev_pid" || fail "develop did not exit within 2 s of SIGTERM"
stop_develop KILL 2>/dev/null || true
grep -q "did not return" dev.err && fail "develop reported the interrupted lambda as a failure"
within 2000 no_workers || fail "a Node.js worker outlived develop: $(workers)"

# SIGKILL of develop while its lambda is stuck leaves no worker.
rm -rf data
start_develop --source flow.yaml
expect_eq "ingest" "$(ingest '{"acme/in":[{"id":2}]}')" 200
wait_until 20 some_workers || fail "no worker"
sleep 1
stop_develop KILL
within 2000 no_workers || fail "a Node.js worker outlived a SIGKILLed develop: $(workers)"
cd ..

finish
