#!/usr/bin/env bash
# Back-fills under a real `flowctl develop` (SPEC 8, 11), with the default
# `--on-change backfill` (develop_reload.sh covers `--on-change continue`):
# (a) a lambda edited while orders keep arriving over HTTP back-fills the derivation and what
#     is downstream (a derivation reading it, both tables), and the tables converge to the new
#     logic over every order, old and new, each once;
# (b) `develop --backfill MATERIALIZATION` rebuilds its tables at the start (rows deleted or
#     changed by hand come back);
# (c) another data directory under the same target: the materialization halts once, naming
#     the back-fill, while develop keeps serving; `--backfill` then rebuilds the tables from
#     that directory.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# acme/scaled derives each order's amount (the lambda the test edits); acme/spent sums
# acme/scaled per customer; acme/views materializes both.
read -r -d '' TEMPLATE <<'YAML' || true
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
  - name: acme/scaled
    key: [/id]
    schema:
      type: object
      required: [id, customer, total, amount]
      properties:
        id: {type: integer}
        customer: {type: string}
        total: {type: integer}
        amount: {type: integer}
    derivation:
      transform:
        fromOrders:
          source: {name: acme/orders}
          publish: {sqlite: "SELECT $id AS id, $customer AS customer, $total AS total, @AMOUNT@ AS amount"}
  - name: acme/spent
    key: [/customer]
    schema:
      type: object
      required: [customer]
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: integer, reduce: {strategy: sum}}
        orders: {type: integer, reduce: {strategy: sum}}
    derivation:
      transform:
        fromScaled:
          source: {name: acme/scaled}
          publish: {sqlite: "SELECT $customer AS customer, $amount AS spent, 1 AS orders"}
materializationTargets:
  local: {sqlite: {path: views.db}}
materializations:
  acme/views:
    target: local
    bindings:
      - {source: acme/scaled, table: scaled}
      - {source: acme/spent, table: spent}
YAML
render() { printf '%s\n' "${TEMPLATE//@AMOUNT@/$1}"; }
render '$total' > flow.yaml

# An order's fields follow from its id, so that the expected tables can be computed from
# the ids alone.
order() { printf '{"id": %d, "customer": "c%d", "total": %d}' "$1" $(($1 % 3)) $(($1 % 13 + 1)); }
# ingest WANT BODY: PUT /ingest, expecting HTTP status WANT.
ingest() {
  local code
  code=$(curl -s -o resp.json -w '%{http_code}' -X PUT -H 'Content-Type: application/json' --data "$2" "$url/ingest")
  [[ $code == "$1" ]] || fail "ingest $2: got HTTP $code, want $1: $(cat resp.json)"
}
# ingest_ids FILE ID...: ingests the orders ID... in one request, adding the ids to FILE.
ingest_ids() {
  local file=$1 body='' id
  shift
  for id in "$@"; do body+="${body:+, }$(order "$id")"; done
  ingest 200 "{\"acme/orders\": [$body]}"
  printf '%s\n' "$@" >>"$file"
}
sql() { sqlite3 -batch -noheader -cmd '.timeout 2000' views.db "$1" 2>/dev/null | tr '\n' ' '; }
scaled() { sql "SELECT id || ':' || amount FROM scaled ORDER BY id"; }
spent() { sql "SELECT customer || ':' || spent || ':' || orders FROM spent ORDER BY customer"; }
# The tables that FACTOR * total over the orders whose ids FILE lists give, computed here.
want_scaled() { sort -n "$1" | awk -v f="$2" '{ printf "%d:%d ", $1, f * ($1 % 13 + 1) }'; }
want_spent() {
  awk -v f="$2" '{ c = "c" ($1 % 3); s[c] += f * ($1 % 13 + 1); n[c]++ }
    END { for (c in s) print c ":" s[c] ":" n[c] }' "$1" | sort | tr '\n' ' '
}
# tables_are FILE FACTOR: both tables are what FACTOR gives over FILE's orders.
tables_are() { [[ "$(scaled)" == "$(want_scaled "$1" "$2")" && "$(spent)" == "$(want_spent "$1" "$2")" ]]; }
# expect_scaled WHAT GOT WANT: the table scaled (thousands of rows) is WANT, else the
# failure shows the first rows that differ.
expect_scaled() {
  [[ $2 == "$3" ]] && return
  fail "$1: the table scaled has $(wc -w <<<"$2") rows, want $(wc -w <<<"$3"); got < want >: $(
    diff <(tr ' ' '\n' <<<"$2") <(tr ' ' '\n' <<<"$3") | grep '^[<>]' | head -4 | tr '\n' ' ')"
}
# expect_tables FILE FACTOR SECONDS WHAT: waits for tables_are FILE FACTOR.
expect_tables() {
  wait_until "$3" tables_are "$1" "$2" || {
    expect_scaled "$4" "$(scaled)" "$(want_scaled "$1" "$2")"
    expect_eq "$4: the table spent" "$(spent)" "$(want_spent "$1" "$2")"
  }
}
count_of() { grep -cF -- "$1" dev.err || true; }
# ids DATA-DIR COLLECTION: the ids of a collection's documents as stored, one each, sorted.
ids() { "$FLOWCTL" read "$2" --data-dir "$1" 2>/dev/null | grep -o '"id":[0-9]*' | cut -d: -f2 | sort -n | tr '\n' ' '; }

: >ingested
start_develop --status-interval 0.3
ingest_ids ingested 1 2 3 4 5 6
ingest_ids ingested 7 8 9
# A history of more than 1 MiB (12000 orders), so that the back-fill is not instant.
seq 1000 12999 >bulk
awk 'BEGIN { printf "{\"acme/orders\": [" }
  { printf "%s{\"id\": %d, \"customer\": \"c%d\", \"total\": %d}", (NR > 1 ? ", " : ""), $1, $1 % 3, $1 % 13 + 1 }
  END { print "]}" }' bulk >bulk.json
ingest 200 @bulk.json
cat bulk >>ingested
expect_tables ingested 1 20 "the first catalog"

# (a) The lambda is edited while a loop ingests an order every ~30 ms.
ingest_loop() {
  local id=$1 code
  while [[ ! -e stop-ingest ]]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
      --data "{\"acme/orders\": [$(order "$id")]}" "$url/ingest" || true)
    if [[ $code == 200 ]]; then echo "$id" >>ingested; else echo "$id: HTTP $code" >>refused; fi
    id=$((id + 1))
    sleep 0.03
  done
}
: >refused
ingest_loop 100000 &
loop_pid=$!
# Some orders under the old logic first.
looped() { awk '$1 >= 100000' ingested | wc -l; }
at_least() { [[ $(looped) -ge $1 ]]; }
wait_until 10 at_least 20 || fail "the ingest loop does not ingest: $(cat refused)"
render '$total * 10' > flow.yaml
applied() { [[ $(count_of "applied the new catalog") -ge 1 ]]; }
wait_until 15 applied || fail "develop did not apply the edited catalog: $(tail -5 dev.err)"
grep -qF 'derivation `acme/scaled` changed since its checkpoint: back-filling it and what is downstream' dev.err ||
  fail "the log does not say acme/scaled is back-filled: $(grep -F 'acme/scaled' dev.err | tail -3)"
grep -qF 'acme/spent` changed since its checkpoint' dev.err &&
  fail "acme/spent, whose logic did not change, is said to have changed"
# The summary counts the three tasks as back-filled, not as restarted or unchanged.
expect_eq "the reload's summary" "$(grep -F 'applied the new catalog' dev.err)" \
  "applied the new catalog: 0 tasks unchanged, 0 restarted from their checkpoints, 3 back-filled, 0 new, 0 removed"
edited_at=$(looped)
# While orders keep arriving: no row keeps the old logic, and orders ingested after the
# edit are in the table.
converging() {
  [[ $(sql "SELECT count(*) FROM scaled WHERE amount != 10 * total") == "0 " &&
    $(sql "SELECT count(*) FROM scaled WHERE id >= 100000 + $edited_at + 30") != "0 " ]]
}
wait_until 10 converging ||
  fail "while ingesting, the table scaled did not follow the new logic: $(sql "SELECT count(*) FROM scaled WHERE amount != 10 * total") rows of the old logic, $(wc -l <ingested) orders"
kill -0 "$loop_pid" 2>/dev/null || fail "the ingest loop ended early"
touch stop-ingest
wait "$loop_pid" || true
[[ -s refused ]] && fail "orders refused during the back-fill: $(head -3 refused)"
echo "ingested $(wc -l <ingested) orders, $(($(looped) - edited_at)) after the edit" >&2
expect_tables ingested 10 10 "after the lambda edit, every order under the new logic"
[[ "$(ids data acme/orders)" == "$(sort -n ingested | tr '\n' ' ')" ]] ||
  fail "acme/orders does not hold every order once: $(diff <(ids data acme/orders | tr ' ' '\n') <(sort -n ingested) | grep '^[<>]' | head -4 | tr '\n' ' ')"
[[ "$(ids data acme/scaled)" == "$(sort -n ingested | tr '\n' ' ')" ]] ||
  fail "acme/scaled (its new generation) does not hold every order once: $(diff <(ids data acme/scaled | tr ' ' '\n') <(sort -n ingested) | grep '^[<>]' | head -4 | tr '\n' ' ')"
grep -q '^error: ' dev.err && fail "errors during the back-fill: $(grep '^error: ' dev.err | head -2)"
stop_develop INT
expect_eq "develop's exit status after SIGINT" "$dev_rc" "0"
# The derived collection has the new logic only.
expect_eq "documents of acme/scaled not of the new logic" \
  "$("$FLOWCTL" read acme/scaled --data-dir data 2>/dev/null | jq -c 'select(.amount != 10 * .total)' | wc -l)" "0"

# (b) `develop --backfill acme/views` rebuilds the tables at the start: a row deleted and a
#     row changed by hand come back.
mv dev.err dev1.err
sqlite3 views.db "DELETE FROM scaled WHERE id = 1; UPDATE spent SET spent = -1 WHERE customer = 'c1'"
tables_are ingested 10 && fail "the hand edits did not change the tables"
start_develop --status-interval 0.3 --backfill acme/views
expect_tables ingested 10 10 "after develop --backfill acme/views"
grep -qF 'changed since its checkpoint' dev.err && fail "develop --backfill: a derivation is said to have changed: $(grep -F 'changed since' dev.err)"
ingest_ids ingested 10 11
expect_tables ingested 10 10 "after develop --backfill acme/views and two more orders"
stop_develop INT
mv dev.err dev2.err

# (c) Another data directory under the same target: the materialization halts, once, with
#     an error naming the back-fill; develop keeps serving.
dev_data=other
: >other-ingested
start_develop --status-interval 0.3
halted() { grep -q '^error: materialization `acme/views`: ' dev.err; }
wait_until 10 halted || fail "over another data directory, acme/views did not halt: $(tail -5 dev.err)"
line=$(grep -m1 '^error: materialization `acme/views`: ' dev.err)
[[ $line == *"another data directory"* ]] || fail "the error does not say the checkpoint is of another data directory: $line"
[[ $line == *'flowctl run --backfill acme/views'* ]] || fail "the error does not name the back-fill: $line"
expect_eq "/healthz over another data directory" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" "200"
ingest_ids other-ingested 1 2 3
ingest_ids other-ingested 4 50 51
# The derivations run; the table keeps the first directory's rows.
derived() { [[ "$(ids other acme/scaled)" == "1 2 3 4 50 51 " ]]; }
wait_until 10 derived || expect_eq "acme/scaled in the other directory" "$(ids other acme/scaled)" "1 2 3 4 50 51 "
status_halted() { grep -q '^status: materialization `acme/views` halted' dev.err; }
wait_until 5 status_halted || fail "the status lines do not show acme/views halted: $(grep 'acme/views' dev.err | tail -1)"
sleep 2  # not retried: the error stays one
expect_eq "errors of acme/views over 2 s" "$(grep -c '^error: materialization `acme/views`' dev.err)" "1"
grep -q 'retrying' dev.err && fail "develop retries: $(grep retrying dev.err | head -1)"
expect_scaled "untouched by the halted materialization" "$(scaled)" "$(want_scaled ingested 10)"
kill -0 "$dev_pid" 2>/dev/null || fail "develop exited over another data directory"
stop_develop INT
expect_eq "develop's exit status after SIGINT, with a halted materialization" "$dev_rc" "0"
mv dev.err dev3.err

# `--backfill acme/views` rebuilds the tables from the other directory's collections.
start_develop --status-interval 0.3 --backfill acme/views
expect_tables other-ingested 10 10 "over the other directory after --backfill acme/views"
grep -q '^error: ' dev.err && fail "errors after --backfill: $(grep '^error: ' dev.err | head -2)"
ingest_ids other-ingested 52
expect_tables other-ingested 10 10 "over the other directory after one more order"
stop_develop INT
expect_eq "develop's exit status after SIGINT" "$dev_rc" "0"
finish
