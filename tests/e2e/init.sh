#!/usr/bin/env bash
# `flowctl init` and `flowctl infer-schema` as a new user runs them (docs/init.md): from a
# directory holding only a CSV file, `init --from orders.csv` writes a project whose build
# and test pass, whose capture ingests the CSV and whose materialization fills SQLite
# tables, and which `flowctl develop` serves; the same from JSON lines and with no sample
# at all; a non-empty directory is refused; infer-schema prints a schema, and with
# --collection the widening needed (exit 1) or none (exit 0).
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# 40 orders: ids, e-mails, a status enum, decimal amounts, a nullable coupon, timestamps.
mkdir shop
{
  echo "order_id,customer_email,status,amount,quantity,coupon,created_at"
  statuses=(placed paid shipped delivered)
  for i in $(seq 1 40); do
    coupon=""
    ((i % 4 == 0)) && coupon="SPRING10"
    printf '%d,customer%d@example.com,%s,%d.%02d,%d,%s,2024-05-%02dT%02d:%02d:00Z\n' \
      $((1000 + i)) $((i % 7)) "${statuses[$((i % 4))]}" $((10 + i * 3)) $((i * 17 % 100)) $((1 + i % 3)) \
      "$coupon" $((1 + i / 10)) $((8 + i % 12)) $((i * 7 % 60))
  done
} > shop/orders.csv
cd shop

# --- infer-schema: the schema on stdout, the key on stderr.
expect_status 0 "$FLOWCTL" infer-schema orders.csv
jq -e '.properties.order_id.type == "integer" and .properties.amount.type == "number"
       and .properties.status.enum == ["delivered","paid","placed","shipped"]
       and .properties.coupon.type == ["string","null"]
       and .properties.created_at.format == "date-time"
       and .properties.customer_email.format == "email"
       and (.required | index("coupon")) != null' "$WORK/out" >/dev/null ||
  fail "infer-schema orders.csv: unexpected schema: $(cat "$WORK/out")"
expect_err '`/order_id`: present in every document, unique over the 40 documents, an integer'

# --- init from the CSV, in the directory holding it.
expect_status 0 "$FLOWCTL" init --from orders.csv
expect_err "shop/orders: 40 documents of orders.csv; key [/order_id]"
for f in flow.yaml orders.schema.yaml README.md .gitignore flow.schema.json .vscode/settings.json; do
  [[ -f $f ]] || fail "init did not write $f"
done
"$FLOWCTL" json-schema | cmp -s - flow.schema.json || fail "flow.schema.json is not the output of flowctl json-schema"
head -1 flow.yaml | grep -F '# yaml-language-server: $schema=flow.schema.json' >/dev/null || fail "flow.yaml lacks the modeline"
grep -qF 'fileDrop: {path: incoming/orders, format: csv}' flow.yaml || fail "no CSV file drop in flow.yaml"
grep -qF 'flowctl-data/' .gitignore || fail ".gitignore lacks the data directory"
expect_status 0 "$FLOWCTL" build
expect_status 0 "$FLOWCTL" test
cat "$WORK/out" "$WORK/err" | grep -F "passed" >/dev/null || fail "flowctl test does not say it passed"
cp orders.csv incoming/orders/
expect_status 0 "$FLOWCTL" run --until-idle
expect_eq "orders rows" "$(sqlite3 out/shop.db 'SELECT count(*) FROM orders')" 40
expect_eq "orders by status" "$(sqlite3 out/shop.db 'SELECT sum(count) FROM orders_by_status')" 40
expect_eq "statuses" "$(sqlite3 out/shop.db 'SELECT count(*) FROM orders_by_status')" 4

# A second init here is refused, naming what is in the way.
expect_status 1 "$FLOWCTL" init --from orders.csv
expect_err "is not empty: it holds"
expect_err "flow.yaml"

# --- infer-schema against the collection: the sample fits; an amount of `n/a` does not.
expect_status 0 "$FLOWCTL" infer-schema orders.csv --collection shop/orders
expect_err "no widening needed"
printf 'order_id,customer_email,status,amount,quantity,coupon,created_at\n2001,a@example.com,paid,n/a,1,,2024-06-01T10:00:00Z\n' > more.csv
expect_status 1 "$FLOWCTL" infer-schema more.csv --collection shop/orders
grep -qF '/properties/amount/type: number → [number, string]' "$WORK/out" || fail "widening not shown: $(cat "$WORK/out")"
expect_err "needs 1 widening"
rm more.csv

# --- develop serves the project: started on a free port, healthy, stopped by SIGTERM.
dev_data=flowctl-data
start_develop
expect_eq "healthz" "$(curl -sS "$url/healthz")" "ok"
stop_develop TERM
expect_eq "develop exit status" "$dev_rc" 0
cd ..

# --- JSON lines, with nested objects, into a new directory; --key overrides the suggestion.
for i in $(seq 1 25); do
  printf '{"event_id":"e%d","user":{"id":%d,"name":"u%d"},"kind":"%s","score":%d,"at":"2024-05-01T10:%02d:00Z"}\n' \
    "$i" $((i % 5)) $((i % 5)) "$([[ $((i % 2)) == 0 ]] && echo click || echo view)" "$i" "$i"
done > events.jsonl
expect_status 2 "$FLOWCTL" init --from events.jsonl --key /nope clicks
expect_err "has no property \`nope\`"
expect_status 0 "$FLOWCTL" init --from events.jsonl --key /event_id --prefix web clicks
expect_err "web/events: 25 documents of"
cd clicks
  grep -qF 'fileDrop: {path: incoming/events, format: json}' flow.yaml || fail "no JSON file drop in flow.yaml"
  expect_status 0 "$FLOWCTL" build
  expect_status 0 "$FLOWCTL" test
  cp ../events.jsonl incoming/events/
  expect_status 0 "$FLOWCTL" run --until-idle
  expect_eq "events rows" "$(sqlite3 out/web.db 'SELECT count(*) FROM events')" 25
  expect_eq "events by kind" "$(sqlite3 out/web.db "SELECT count FROM events_by_kind WHERE kind = 'click'")" 12
cd ..

# --- no --from: the built-in example builds, passes its test and runs.
expect_status 0 "$FLOWCTL" init demo
cd demo
  [[ -f orders.jsonl ]] || fail "the example's orders.jsonl is missing"
  expect_status 0 "$FLOWCTL" build
  expect_status 0 "$FLOWCTL" test
  cp orders.jsonl incoming/orders/
  expect_status 0 "$FLOWCTL" run --until-idle
  expect_eq "demo orders rows" "$(sqlite3 out/demo.db 'SELECT count(*) FROM orders')" 24
cd ..

finish
