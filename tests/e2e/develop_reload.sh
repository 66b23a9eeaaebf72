#!/usr/bin/env bash
# Live reload (SPEC 8) under a real `flowctl develop --on-change continue`, by editing the
# catalog it watches: a catalog with errors is reported (file:line:col) and the previous one
# keeps running; a changed lambda restarts its derivation from its checkpoint with a warning
# naming the back-fill (nothing re-derived, register kept) while the unchanged
# materialization keeps its position (develop_backfill.sh tests the default, a back-fill); a new derivation and
# binding back-fill; a removed derivation stops; a changed schema applies to ingestion; a
# changed projection that a lambda binds restarts the derivation.
# Then SIGINT: exit 0, spools persisted, every document stored once.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# The catalog, with placeholders that the steps below change.
read -r -d '' TEMPLATE <<'YAML' || true
collections:
  - name: acme/orders
    key: [/id]
    schema:
      type: object
      required: [id, customer, total@REQUIRED@]
      properties:
        id: {type: integer}
        customer: {type: string}
        total: {type: integer}
        channel: {type: string}
        net: {type: integer}
    projections:
      amount: @AMOUNT@
  - name: acme/totals
    key: [/customer]
    schema:
      type: object
      required: [customer]
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: integer, reduce: {strategy: sum}}
        orders: {type: integer, reduce: {strategy: sum}}
        seen: {type: integer, reduce: {strategy: maximize}}
    derivation:
      register:
        schema:
          type: object
          reduce: {strategy: merge}
          properties: {count: {type: integer, reduce: {strategy: sum}}}
        initial: {count: 0}
      transform:
        fromOrders:
          source: {name: @SOURCE@}
          shuffle: [/customer]
          update: {sqlite: "SELECT 1 AS count"}
          publish: {sqlite: "SELECT $customer AS customer, @SPENT@ AS spent, 1 AS orders, json_extract($register, '$.count') AS seen"}
@BIG@
materializationTargets:
  local: {sqlite: {path: views.db}}
materializations:
  acme/views:
    target: local
    bindings:
      - {source: acme/totals, table: totals}
@BIG_BINDING@
YAML
BIG_COLLECTION='  - name: acme/big
    key: [/id]
    schema:
      type: object
      required: [id, customer, total]
      properties:
        id: {type: integer}
        customer: {type: string}
        total: {type: integer}
    derivation:
      transform:
        bigOnes:
          source: {name: acme/orders}
          publish: {sqlite: "SELECT $id AS id, $customer AS customer, $total AS total WHERE $total >= 5"}'
BIG_BINDING='      - {source: acme/big, table: big}'
required='' source=acme/orders spent='$amount' amount=/total big='' big_binding=''
render() {
  local t=$TEMPLATE
  t=${t//@REQUIRED@/$required}
  t=${t//@SOURCE@/$source}
  t=${t//@SPENT@/$spent}
  t=${t//@AMOUNT@/$amount}
  t=${t//@BIG@/$big}
  t=${t//@BIG_BINDING@/$big_binding}
  printf '%s\n' "$t"
}
render > flow.yaml

count_of() { grep -cF -- "$1" dev.err || true; }
# edit: rewrites flow.yaml from stdin, then waits for develop to rebuild and report the
# outcome (applied, or still running the previous catalog). The outcome line is in $outcome.
reloads=0
edit() {
  cat > flow.yaml
  reloads=$((reloads + 1))
  outcomes() { [[ $(($(count_of "applied the new catalog") + $(count_of "still running the previous catalog"))) -ge $reloads ]]; }
  wait_until 15 outcomes || { fail "develop did not react to edit #$reloads: $(tail -5 dev.err)"; finish; }
  outcome=$(grep -E "applied the new catalog|still running the previous catalog" dev.err | tail -1)
}
# ingest WANT BODY: PUT /ingest, expecting HTTP status WANT; the response is in resp.json.
ingest() {
  local code
  code=$(curl -s -o resp.json -w '%{http_code}' -X PUT -H 'Content-Type: application/json' --data "$2" "$url/ingest")
  [[ $code == "$1" ]] || fail "ingest $2: got HTTP $code, want $1: $(cat resp.json)"
}
sql() { sqlite3 -batch -noheader -cmd '.timeout 2000' views.db "$1" 2>/dev/null | tr '\n' ' '; }
totals() { sql "SELECT customer || ':' || spent || ':' || orders || ':' || seen FROM totals ORDER BY customer"; }
totals_are() { [[ "$(totals)" == "$1" ]]; }
big() { sql "SELECT id FROM big ORDER BY id"; }
big_is() { [[ "$(big)" == "$1" ]]; }
# expect_totals WANT: waits for the totals table to become WANT.
expect_totals() { wait_until 10 totals_are "$1" || expect_eq "$2: the totals table" "$(totals)" "$1"; }
# metric NAME KIND TASK: a per-task value from /metrics ("" when the task is not listed).
metric() {
  curl -s "$url/metrics" | grep -F "$1{kind=\"$2\",task=\"$3\"} " | awk '{print $2}'
}
metric_is() { [[ "$(metric "$1" "$2" "$3")" == "$4" ]]; }
# after_last TEXT: dev.err's lines after the last one containing TEXT.
after_last() { awk -v t="$1" 'index($0, t) { buf = ""; next } { buf = buf $0 "\n" } END { printf "%s", buf }' dev.err; }
status_after() { after_last "$1" | grep '^status: ingest requests=' >/dev/null; }

start_develop --status-interval 0.3 --on-change continue

ingest 200 '{"acme/orders": [{"id": 1, "customer": "bo", "total": 5}, {"id": 2, "customer": "al", "total": 3}]}'
ingest 200 '{"acme/orders": [{"id": 3, "customer": "bo", "total": 7}]}'
expect_totals "al:3:1:1 bo:12:2:2 " "the first catalog"

# (a) Changes with errors: reported with file:line:col; the previous catalog keeps running.
render | sed 's|^    key: \[/customer\]$|    key: [/customer|' > broken.yaml
where=$(awk '/key: \[\/customer$/ { print NR ":" index($0, "[") }' broken.yaml)
edit < broken.yaml
expect_eq "bad YAML: the outcome" "$outcome" "1 error in the catalog; still running the previous catalog"
grep -qE "(^|/)flow\.yaml:$where: error: invalid YAML" dev.err ||
  fail "bad YAML: no error at flow.yaml:$where: $(grep -A2 'catalog sources changed' dev.err | tail -3)"
ingest 200 '{"acme/orders": [{"id": 4, "customer": "al", "total": 4}]}'
expect_totals "al:7:2:2 bo:12:2:2 " "under the previous catalog after bad YAML"

source=acme/ordrs
render > broken.yaml
source=acme/orders
where=$(awk '/source: \{name: acme\/ordrs\}/ { print NR ":" index($0, "acme/ordrs") }' broken.yaml)
edit < broken.yaml
expect_eq "an unknown collection: the outcome" "$outcome" "1 error in the catalog; still running the previous catalog"
grep -qE "(^|/)flow\.yaml:$where: error: source collection \`acme/ordrs\` does not exist" dev.err ||
  fail "an unknown collection: no error at flow.yaml:$where: $(grep -B1 -A3 'ordrs' dev.err | head -5)"
grep -qF 'did you mean `acme/orders`?' dev.err || fail "an unknown collection: no hint"
ingest 200 '{"acme/orders": [{"id": 5, "customer": "bo", "total": 1}]}'
expect_totals "al:7:2:2 bo:13:3:3 " "under the previous catalog after an unknown collection"
# A TypeScript lambda that does not compile says so, at its place, and that the previous
# catalog keeps running.
render | sed 's|publish: {sqlite: "SELECT $customer AS customer, .*|publish: {nodeJS: "return [{customer: source.customer"}|' > broken.yaml
grep -q 'nodeJS: "return \[{customer: source.customer"' broken.yaml || fail "the TypeScript edit did not apply"
edit < broken.yaml
case $outcome in
  *"does not compile: "*"; still running the previous catalog") ;;
  *) fail "a TypeScript error: the outcome: $outcome" ;;
esac
grep -qE '(^|/)flow\.yaml:[0-9]+:[0-9]+: error: lambda of transform' dev.err ||
  fail "a TypeScript error: no error at its place: $(grep -A1 'catalog sources changed' dev.err | tail -2)"

# The materialization's position, once it has stored everything (metrics render every 0.5 s).
sleep 0.7
views_in=$(metric flowctl_task_documents_in_total materialization acme/views)
[[ $views_in =~ ^[0-9]+$ ]] || { fail "no documents-in metric for acme/views: $(curl -s "$url/metrics" | grep task_)"; views_in=0; }

# (b) A changed lambda: the derivation restarts from its checkpoint (its register kept,
#     nothing derived again); the unchanged materialization reads on from where it was.
spent='$amount * 10'
render > next.yaml && edit < next.yaml
expect_eq "a changed lambda: the outcome" "$outcome" \
  "applied the new catalog: 1 task unchanged, 1 restarted from its checkpoint, 0 new, 0 removed"
grep -qF 'warning: derivation `acme/totals` changed since its checkpoint; it goes on from there' dev.err ||
  fail "a changed lambda: no warning naming the back-fill: $(tail -3 dev.err)"
grep -qF 'run `flowctl run --backfill acme/totals`' dev.err || fail "a changed lambda: the warning does not name the back-fill"
ingest 200 '{"acme/orders": [{"id": 6, "customer": "bo", "total": 2}, {"id": 7, "customer": "cy", "total": 6}]}'
expect_totals "al:7:2:2 bo:33:4:4 cy:60:1:1 " "after the lambda changed"
wait_until 5 metric_is flowctl_task_documents_in_total materialization acme/views $((views_in + 2)) ||
  expect_eq "documents the unchanged materialization read (it had read $views_in)" \
    "$(metric flowctl_task_documents_in_total materialization acme/views)" "$((views_in + 2))"
wait_until 5 status_after "applied the new catalog" || fail "no status lines after the reload"
# Status lines come every 0.3 s: one printed before the two documents were stored shows 5.
views_status() { after_last "applied the new catalog" | grep "^status: materialization \`acme/views\` running in=$1 " >/dev/null; }
wait_until 10 views_status $((views_in + 2)) ||
  fail "the status lines show acme/views having read $((views_in + 2)): $(after_last 'applied the new catalog' | grep acme/views | tail -1)"

# (c) A new derivation and a new binding back-fill from everything committed; the
#     restarted materialization does not store its other table's documents again.
big=$BIG_COLLECTION big_binding=$BIG_BINDING
render > next.yaml && edit < next.yaml
expect_eq "a new derivation: the outcome" "$outcome" \
  "applied the new catalog: 1 task unchanged, 1 restarted from its checkpoint, 1 new, 0 removed"
wait_until 10 big_is "1 3 7 " || expect_eq "the back-filled table big" "$(big)" "1 3 7 "
ingest 200 '{"acme/orders": [{"id": 8, "customer": "al", "total": 9}]}'
wait_until 10 big_is "1 3 7 8 " || expect_eq "the table big after an order" "$(big)" "1 3 7 8 "
expect_totals "al:97:3:3 bo:33:4:4 cy:60:1:1 " "after a derivation was added"
wait_until 5 metric_is flowctl_task_up derivation acme/big 1 || fail "acme/big is not listed as up in /metrics"

# (d) A removed derivation stops.
big='' big_binding=''
render > next.yaml && edit < next.yaml
expect_eq "a removed derivation: the outcome" "$outcome" \
  "applied the new catalog: 1 task unchanged, 1 restarted from its checkpoint, 0 new, 1 removed"
ingest 200 '{"acme/orders": [{"id": 9, "customer": "bo", "total": 50}]}'
expect_totals "al:97:3:3 bo:533:5:5 cy:60:1:1 " "after a derivation was removed"
expect_eq "the table big after its derivation was removed" "$(big)" "1 3 7 8 "
sleep 0.6
expect_eq "acme/big in /metrics after its removal" "$(metric flowctl_task_up derivation acme/big)" ""
wait_until 5 status_after "0 new, 1 removed" || fail "no status lines after the removal"
after_last "0 new, 1 removed" | grep 'acme/big' >/dev/null && fail "the status lines still show acme/big: $(after_last '0 new, 1 removed' | grep acme/big | head -1)"

# (e) A changed collection schema: ingestion validates against the new one.
required=', channel'
render > next.yaml && edit < next.yaml
# (The derivation may or may not restart: a new required field changes nothing it does.)
[[ $outcome == "applied the new catalog: "*", 0 new, 0 removed" ]] || fail "a changed schema: the outcome: $outcome"
ingest 400 '{"acme/orders": [{"id": 10, "customer": "al", "total": 1}]}'
grep -q 'channel' resp.json || fail "the 400 does not name the missing field: $(cat resp.json)"
grep -q 'acme/orders' resp.json || fail "the 400 does not name the collection: $(cat resp.json)"
ingest 200 '{"acme/orders": [{"id": 10, "customer": "al", "total": 1, "channel": "web"}]}'
expect_totals "al:107:4:4 bo:533:5:5 cy:60:1:1 " "after the schema changed"

# (f) A changed projection of the source collection, which the lambda's `$amount` binds
#     to: the derivation restarts, and new documents bind the new location.
amount=/net
render > next.yaml && edit < next.yaml
expect_eq "a changed source projection: the outcome" "$outcome" \
  "applied the new catalog: 1 task unchanged, 1 restarted from its checkpoint, 0 new, 0 removed"
ingest 200 '{"acme/orders": [{"id": 11, "customer": "cy", "total": 4, "net": 3, "channel": "web"}]}'
expect_totals "al:107:4:4 bo:533:5:5 cy:90:2:2 " "after \`amount\` was projected from /net (\$amount * 10 = 30)"

# SIGINT: exit 0 with spools persisted; every document stored exactly once.
stop_develop INT
expect_eq "develop's exit status after SIGINT" "$dev_rc" "0"
grep -q '^stopped; spools persisted$' dev.err || fail "develop did not say it persisted its spools: $(tail -2 dev.err)"
[[ ! -e data/develop.json ]] || fail "develop.json is left behind"
expect_eq "every order once" \
  "$("$FLOWCTL" read acme/orders --data-dir data 2>/dev/null | grep -o '"id":[0-9]*' | sort -t: -k2 -n | tr '\n' ' ')" \
  "$(seq -f '"id":%g' 1 11 | tr '\n' ' ')"
expect_eq "the reduced totals" \
  "$("$FLOWCTL" read acme/totals --reduced --data-dir data 2>/dev/null | node -e '
    for (const l of require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean)) {
      const d = JSON.parse(l);
      process.stdout.write(`${d.customer}:${d.spent}:${d.orders}:${d.seen} `);
    }')" "$(totals)"
finish
