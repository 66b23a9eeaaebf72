#!/usr/bin/env bash
# Materializations into a real PostgreSQL server (started here by scripts/pg.sh, stopped at
# the end): the table equals the reduced collection across runs, with PostgreSQL's types;
# a server that is down is an environment error naming the target, retried, then exit 3.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
chmod 755 "$WORK"  # the server runs as another user when we are root
pg=$WORK/pg
uri=$("$REPO/scripts/pg.sh" start "$pg" | tail -n 1)
trap '"$REPO/scripts/pg.sh" stop "$pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
psql() { "$REPO/scripts/pg.sh" psql "$pg" -At "$@"; }

cat > flow.yaml <<YAML
collections:
  - name: acme/orders
    key: [/id]
    schema:
      type: object
      required: [id, customer, total]
      properties:
        id: {type: integer}
        customer: {type: string, maxLength: 32}
        total: {type: number}
        paid: {type: boolean}
        tags: {type: array, items: {type: string}}
    projections: {tags: /tags}
  - name: acme/customers
    key: [/customer]
    schema:
      type: object
      required: [customer]
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: number, reduce: {strategy: sum}}
    derivation:
      transform:
        fromOrders:
          source: {name: acme/orders}
          publish: {sqlite: "SELECT \$customer AS customer, \$total AS spent"}
materializationTargets:
  warehouse:
    postgres: {uri: "$uri"}
materializations:
  acme/warehouse:
    target: warehouse
    bindings:
      - {source: acme/customers, table: customers}
      - {source: acme/orders, table: "order lines", deltaUpdates: true, fields: {include: [customer, total, paid, tags]}}
YAML
printf '%s\n' '{"id":1,"customer":"bo","total":5.5,"paid":true,"tags":["a"]}' \
  '{"id":2,"customer":"al","total":3,"tags":[]}' > t1.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders t1.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "customers" "$(psql -c 'SELECT customer, spent FROM customers ORDER BY customer')" "al|3
bo|5.5"
printf '%s\n' '{"id":3,"customer":"bo","total":1}' > t2.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders t2.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "customers reduced across runs" "$(psql -c 'SELECT customer, spent FROM customers ORDER BY customer')" "al|3
bo|6.5"
expect_eq "delta updates append" "$(psql -c 'SELECT count(*) FROM "order lines"')" "3"
expect_eq "types" "$(psql -c "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns WHERE table_name = 'order lines' ORDER BY ordinal_position")" \
"id bigint NO
customer character varying NO
total double precision NO
paid boolean YES
tags json YES
flow_document json NO"
expect_eq "a boolean and an array" "$(psql -c 'SELECT paid, tags FROM "order lines" WHERE id = 1')" 't|["a"]'

# The server down: retried with backoff, then exit 3 naming the target.
"$REPO/scripts/pg.sh" stop "$pg" >/dev/null
expect_status 0 "$FLOWCTL" ingest acme/orders t2.jsonl --data-dir data
expect_status 3 "$FLOWCTL" run --until-idle --data-dir data
expect_err "retrying in"
expect_err "cannot connect to PostgreSQL target \`warehouse\`"
uri=$("$REPO/scripts/pg.sh" start "$pg" | tail -n 1)
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "nothing lost while the server was down" "$(psql -c 'SELECT count(*) FROM "order lines"')" "4"

# A wrong password: an environment error naming the target and the server's reason, the
# password itself never printed; retried, then exit 3; nothing stored, and the right
# password later stores everything.
cp flow.yaml good.yaml
sed -i 's#postgresql://flow:flow@#postgresql://flow:Sesame-9x@#' flow.yaml
grep -q Sesame-9x flow.yaml || fail "the test did not change the password"
printf '%s\n' '{"id":4,"customer":"cy","total":2}' > t3.jsonl
expect_status 0 "$FLOWCTL" ingest acme/orders t3.jsonl --data-dir data
expect_status 3 "$FLOWCTL" run --until-idle --data-dir data
expect_err "PostgreSQL target \`warehouse\`"
expect_err "password authentication failed"
expect_err "retrying in"
if grep -q Sesame-9x "$WORK/err"; then fail "the password appears in the error output"; fi
expect_eq "nothing stored with a wrong password" "$(psql -c 'SELECT count(*) FROM "order lines"')" "4"
cp good.yaml flow.yaml
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "stored once the password is right" "$(psql -c 'SELECT customer, spent FROM customers ORDER BY customer')" "al|3
bo|7.5
cy|2"
expect_eq "delta rows once each" "$(psql -c 'SELECT count(*) FROM "order lines"')" "5"
finish
