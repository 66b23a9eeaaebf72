#!/usr/bin/env bash
# `flowctl preview`: one derivation over sample files, as a user runs it. Derived documents
# reduced per key on stdout, a nodeJS lambda's console.log on stderr; a SQLite derivation;
# two sources interleaved by file order; --register-state; an invalid input at FILE:LINE; an
# unknown source named with "did you mean"; a throwing lambda (exit 1, the input's place);
# the data directory left alone; --watch previewing again after a catalog edit.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

cat > flow.yaml <<'YAML'
collections:
  - name: shop/orders
    schema:
      type: object
      properties:
        id: {type: integer}
        customer: {type: string}
        total: {type: number}
      required: [id, customer, total]
    key: [/id]
  - name: shop/customers
    schema:
      type: object
      properties:
        customer: {type: string}
        city: {type: string}
      required: [customer, city]
    key: [/customer]

  # nodeJS: totals per customer, with a log line per order.
  - name: shop/totals
    schema:
      type: object
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: number, reduce: {strategy: sum}}
        orders: {type: integer, reduce: {strategy: sum}}
      required: [customer]
    key: [/customer]
    derivation:
      transform:
        fromOrders:
          source: {name: shop/orders}
          readDelay: 1h
          publish:
            nodeJS: |
              console.log(`order ${source.id} of ${source.customer}`);
              if (source.total < 0) throw new Error(`negative total in order ${source.id}`);
              if (source.total === 999) for (;;) {}  // never returns (see the end)
              return [{customer: source.customer, spent: source.total, orders: 1}];

  # SQLite: big orders only.
  - name: shop/big
    schema:
      type: object
      properties:
        id: {type: integer}
        total: {type: number}
      required: [id]
    key: [/id]
    derivation:
      transform:
        fromOrders:
          source: {name: shop/orders}
          publish: {sqlite: "SELECT $id AS id, $total AS total WHERE $total >= 10"}

  # Two sources, a register per customer: each order is published with the customer's city
  # as known when the order is read.
  - name: shop/located
    schema:
      type: object
      properties:
        id: {type: integer}
        customer: {type: string}
        city: {type: [string, "null"]}
      required: [id]
    key: [/id]
    derivation:
      register:
        schema:
          type: object
          properties:
            city: {type: [string, "null"]}
        initial: {city: null}
      transform:
        fromCustomers:
          source: {name: shop/customers}
          shuffle: [/customer]
          update:
            nodeJS: "return [{city: source.city}];"
        fromOrders:
          source: {name: shop/orders}
          shuffle: [/customer]
          publish:
            nodeJS: "return [{id: source.id, customer: source.customer, city: register.city}];"
YAML

cat > orders.jsonl <<'JSON'
{"id": 1, "customer": "ann", "total": 5}
{"id": 2, "customer": "bob", "total": 12.5}

{"id": 3, "customer": "ann", "total": 20}
JSON
cat > customers.jsonl <<'JSON'
{"customer": "ann", "city": "Oslo"}
{"customer": "bob", "city": "Rome"}
{"customer": "ann", "city": "Lima"}
JSON

# A data directory the user has: preview must leave it as it is.
mkdir -p flowctl-data
echo keep > flowctl-data/marker
before=$(cd flowctl-data && find . -printf '%p %s %T@\n' | sort)

# nodeJS: reduced per key, in key order, on stdout; the lambda's log on stderr; the read
# delay does not make preview wait.
start=$(date +%s%N)
expect_status 0 "$FLOWCTL" preview --derivation shop/totals --input orders.jsonl
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_eq "nodeJS stdout" "$(cat "$WORK/out")" '{"customer":"ann","orders":2,"spent":25}
{"customer":"bob","spent":12.5,"orders":1}'
expect_err "order 1 of ann"
expect_err "order 3 of ann"
expect_err "previewed \`shop/totals\`: 3 source documents in, 2 derived documents out"
((elapsed_ms < 30000)) || fail "preview took ${elapsed_ms} ms despite a read delay of an hour"

# SQLite, from a CSV file (the collection's projections name its columns).
printf 'id,customer,total\n1,ann,5\n2,bob,12.5\n3,ann,20\n' > orders.csv
expect_status 0 "$FLOWCTL" preview --derivation shop/big --input orders.csv
expect_eq "sqlite stdout" "$(cat "$WORK/out")" '{"id":2,"total":12.5}
{"id":3,"total":20}'

# Two sources, interleaved by file order: customer ann, order 1, customer bob, order 2,
# customer ann (Lima), order 3.
expect_status 0 "$FLOWCTL" preview --derivation shop/located \
  --input shop/customers=customers.jsonl --input shop/orders=orders.jsonl
expect_eq "interleaved" "$(cat "$WORK/out")" '{"id":1,"customer":"ann","city":"Oslo"}
{"id":2,"customer":"bob","city":"Rome"}
{"id":3,"customer":"ann","city":"Lima"}'
# The other order of the inputs: each order comes before its customer's update.
expect_status 0 "$FLOWCTL" preview --derivation shop/located \
  --input shop/orders=orders.jsonl --input shop/customers=customers.jsonl
expect_eq "interleaved, orders first" "$(cat "$WORK/out")" '{"id":1,"customer":"ann","city":null}
{"id":2,"customer":"bob","city":null}
{"id":3,"customer":"ann","city":"Oslo"}'

# Several sources and an input without its source: a usage error naming them.
expect_status 2 "$FLOWCTL" preview --derivation shop/located --input orders.jsonl
expect_err "derivation \`shop/located\` reads \`shop/customers\` and \`shop/orders\`"
expect_err "--input SOURCE=FILE"

# --register-state: initial registers by shuffle key.
cat > registers.jsonl <<'JSON'
{"key": ["bob"], "value": {"city": "Paris"}}
{"key": "ann", "value": {"city": "Kyiv"}}
JSON
expect_status 0 "$FLOWCTL" preview --derivation shop/located --input shop/orders=orders.jsonl \
  --register-state registers.jsonl
expect_eq "register state" "$(cat "$WORK/out")" '{"id":1,"customer":"ann","city":"Kyiv"}
{"id":2,"customer":"bob","city":"Paris"}
{"id":3,"customer":"ann","city":"Kyiv"}'
# A register value the register schema refuses, at its line.
printf '{"key": ["ann"], "value": {"city": 7}}\n' > bad_registers.jsonl
expect_status 1 "$FLOWCTL" preview --derivation shop/located --input shop/orders=orders.jsonl \
  --register-state bad_registers.jsonl
expect_err "bad_registers.jsonl:1: error: the value does not validate against the register schema"

# An input document its collection's schema refuses: FILE:LINE and the schema's message.
printf '{"id": 1, "customer": "ann", "total": 5}\n{"id": 2, "customer": "bob"}\n' > invalid.jsonl
expect_status 1 "$FLOWCTL" preview --derivation shop/totals --input invalid.jsonl
expect_err "invalid.jsonl:2: error: a document of \`shop/orders\`"
expect_err "total"
[[ ! -s "$WORK/out" ]] || fail "an invalid input printed documents"

# A source that is not one of the derivation's: named, with its sources and a hint.
expect_status 2 "$FLOWCTL" preview --derivation shop/located --input shop/order=orders.jsonl
expect_err "\`shop/order\` is not a source of derivation \`shop/located\`"
expect_err "did you mean \`shop/orders\`"
# A derivation that does not exist.
expect_status 1 "$FLOWCTL" preview --derivation shop/total --input orders.jsonl
expect_err "no derivation \`shop/total\` in the catalog (did you mean \`shop/totals\`?)"
expect_status 1 "$FLOWCTL" preview --derivation shop/orders --input orders.jsonl
expect_err "collection \`shop/orders\` is not a derivation"

# A lambda that throws: exit 1, the runtime's message with the input's place.
printf '{"id": 1, "customer": "ann", "total": 5}\n{"id": 9, "customer": "cy", "total": -1}\n' > negative.jsonl
expect_status 1 "$FLOWCTL" preview --derivation shop/totals --input negative.jsonl
expect_err "negative total in order 9"
expect_err "(negative.jsonl:2)"

# The user's data directory was neither read nor written.
after=$(cd flowctl-data && find . -printf '%p %s %T@\n' | sort)
expect_eq "data directory untouched" "$after" "$before"

# --watch: previews, then again after the catalog changes.
"$FLOWCTL" preview --derivation shop/big --input orders.jsonl --watch > watch.out 2> watch.err &
watch_pid=$!
trap 'kill -KILL "$watch_pid" 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_until 30 grep -q "save a change to preview again" watch.err ||
  fail "preview --watch did not finish its first run: $(tail -3 watch.err)"
grep -qF '{"id":2,"total":12.5}' watch.out || fail "the first watched run printed $(cat watch.out)"
sed -i 's/WHERE $total >= 10/WHERE $total >= 15/' flow.yaml
wait_until 30 grep -q "previewing again" watch.err || fail "preview --watch did not notice the edit"
# The second run prints only order 3.
second_run() { [[ $(sed -n '/^$/,$p' watch.out | grep -c '"id"') == 1 ]] && sed -n '/^$/,$p' watch.out | grep -qF '{"id":3,"total":20}'; }
wait_until 30 second_run || fail "the rerun printed: $(cat watch.out)"
kill -TERM "$watch_pid"
set +e
wait "$watch_pid"
rc=$?
set -e
expect_eq "watch exit on SIGTERM" "$rc" 0

# Interrupted while a lambda never returns: Ctrl-C (SIGINT) cuts it short, and the preview
# removes its temporary data directory; one killed outright leaves it, and the next preview
# removes it.
mkdir scratch
printf '{"id": 1, "customer": "ann", "total": 999}\n' > spin.jsonl
# Its temporary data directory made, and its Node.js worker started.
spinning() { [[ -n $(ls scratch) ]] && pgrep -P "$1" node > /dev/null; }
TMPDIR=$WORK/scratch "$FLOWCTL" preview --derivation shop/totals --input spin.jsonl > spin.out 2> spin.err &
pid=$!
wait_until 30 spinning "$pid" || fail "the preview did not start its lambda: $(cat spin.err)"
sleep 0.5  # inside the endless loop by now, or about to enter it: either way cut short
kill -INT "$pid"
status=0
wait_until 30 bash -c "! kill -0 $pid" || fail "the preview did not end on SIGINT"
wait "$pid" || status=$?
[[ $status -ne 0 ]] || fail "an interrupted preview exited 0"
[[ -z $(ls scratch) ]] || fail "the interrupted preview left $(ls scratch)"
TMPDIR=$WORK/scratch "$FLOWCTL" preview --derivation shop/totals --input spin.jsonl > spin.out 2> spin.err &
pid=$!
wait_until 30 spinning "$pid" || fail "the preview did not start its lambda: $(cat spin.err)"
kill -KILL "$pid"
wait "$pid" || true
[[ -n $(ls scratch) ]] || fail "a preview killed outright removed its directory (this test needs one left)"
left=$(ls scratch)
expect_status 0 env TMPDIR="$WORK/scratch" "$FLOWCTL" preview --derivation shop/totals --input orders.jsonl
[[ -z $(ls scratch) ]] || fail "the next preview left $(ls scratch) (was $left)"

finish
