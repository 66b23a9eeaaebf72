#!/usr/bin/env bash
# testdata/patterns/: each derivation-pattern catalog builds cleanly and all of its catalog
# tests pass; a changed expectation makes `flowctl test` fail, naming the JSON pointer with
# the expected and the actual value.
source "$(dirname "$0")/lib.sh"
cd "$REPO"

# Every pattern directory and the number of tests its flow.yaml defines.
declare -A want_tests=(
  [01-inner-join]=4
  [02-one-sided-join]=4
  [03-outer-join]=3
  [04-sum-reduced-and-register]=4
  [05-sign-change]=4
  [06-rekey-anonymous-ids]=4
  [07-idle-48h]=4
  [08-shopping-cart]=5
  [09-page-country-rollup]=4
  [10-npm-dependency]=3
  [11-cart-then-purchase]=4
  [12-bootstrap]=3
)

dirs=(testdata/patterns/*/)
dirs=("${dirs[@]%/}")
expect_eq "pattern directories" "${#dirs[@]}" "${#want_tests[@]}"

for dir in "${dirs[@]}"; do
  name=$(basename "$dir")
  src="$dir/flow.yaml"
  want=${want_tests[$name]:-}
  if [[ -z $want ]]; then
    fail "$name: not listed in tests/e2e/patterns.sh"
    continue
  fi
  # The test names in the file, counted independently of flowctl: the quoted keys of the
  # top-level `tests:` map.
  counted=$(awk '/^tests:/ {t = 1; next} /^[^ #]/ {t = 0} t && /^  "[^"]+":[ ]*$/ {n++} END {print n + 0}' "$src")
  expect_eq "$name: tests in flow.yaml" "$counted" "$want"

  expect_status 0 "$FLOWCTL" build --source "$src" --catalog "$WORK/x.db"
  expect_err "tests:             $want "

  expect_status 0 "$FLOWCTL" test --source "$src"
  [[ $(tail -1 "$WORK/out") == "$want passed, 0 failed" ]] || {
    fail "$name: flowctl test did not print '$want passed, 0 failed' last on stdout"
    sed 's/^/    /' "$WORK/out" "$WORK/err" | tail -30 >&2
  }
done

# neg NAME PATTERN SED_EXPR: copies the pattern to $WORK/NAME, edits one expected value of
# its tests with SED_EXPR (which must change the file), and runs `flowctl test` on it.
neg() {
  local name=$1 pattern=$2 expr=$3
  rm -rf "${WORK:?}/$name"
  cp -r "testdata/patterns/$pattern" "$WORK/$name"
  sed -i -e "$expr" "$WORK/$name/flow.yaml"
  if cmp -s "testdata/patterns/$pattern/flow.yaml" "$WORK/$name/flow.yaml"; then
    fail "$name: the edit '$expr' changed nothing"
  fi
  expect_status 1 "$FLOWCTL" test --source "$WORK/$name/flow.yaml"
}

# A SQLite join: the customer name of order 11.
neg one-sided 02-one-sided-join \
  's/{order_id: 11, customer_id: 2, amount: 3, customer_name: Grace,/{order_id: 11, customer_id: 2, amount: 3, customer_name: Hopper,/'
expect_out 'FAIL customer known before the order'
expect_out 'step 4 (verify patterns/one-sided-join/enriched-orders)'
expect_out 'key [11]: /customer_name: expected "Hopper", actual "Grace"'
expect_out '3 passed, 1 failed'

# A SQLite publish comparing previous and register: the balance after the first crossing.
neg sign-change 05-sign-change \
  's/{account: acme, seq: 2, direction: down, from_balance: 10, to_balance: -5}/{account: acme, seq: 2, direction: down, from_balance: 10, to_balance: -6}/'
expect_out 'FAIL crossings in both directions, one transaction at a time'
expect_out '["acme",2]: /to_balance: expected -6, actual -5'
expect_out '3 passed, 1 failed'

# A crossing that did not happen: an expected document that is missing from the output.
neg no-crossing 05-sign-change \
  's/          - {account: alpha, seq: 3, direction: down, from_balance: 20, to_balance: -10}/          - {account: alpha, seq: 2, direction: down, from_balance: 50, to_balance: 20}\n&/'
expect_out 'FAIL accounts have separate balances'
expect_out 'key ["alpha",2]: missing document'
expect_out '3 passed, 1 failed'

# Nested merge and sum: one country's edit count inside the roll-up.
neg rollup 09-page-country-rollup \
  's/US: {edits: 2, added: 125, deleted: 5, by_day: {"2020-11-02": 2}}/US: {edits: 2, added: 125, deleted: 5, by_day: {"2020-11-02": 3}}/'
expect_out 'key ["Zebra"]: /by_country/US/by_day/2020-11-02: expected 3, actual 2'
expect_out '3 passed, 1 failed'

# A TypeScript set reduction: a quantity in the cart, and a line that is not there.
neg cart 08-shopping-cart \
  's/items: {add: \[{sku: book, quantity: 0}, {sku: mug, quantity: 3}\]}/items: {add: [{sku: book, quantity: 0}, {sku: mug, quantity: 4}]}/'
expect_out 'key ["c1"]: /items/add/1/quantity: expected 4, actual 3'
expect_out '4 passed, 1 failed'
neg cart-removed 08-shopping-cart \
  's/- {cart_id: c2, items: {add: \[{sku: ink, quantity: 1}\]}}/- {cart_id: c2, items: {add: [{sku: ink, quantity: 1}, {sku: pen, quantity: 10}]}}/'
expect_out 'key ["c2"]: /items/add: expected 2 items'
expect_out '4 passed, 1 failed'

# A join against a derived collection: the cart a purchase sees is the one built by the
# steps before it, not by later ones.
neg purchase 11-cart-then-purchase \
  's/- {purchase_id: p2, user: bob, items: {tea: 1}}/- {purchase_id: p2, user: bob, items: {cup: 1, tea: 3}}/'
expect_out 'key ["p2"]: /items/cup: expected 1, actual missing'
expect_out 'key ["p2"]: /items/tea: expected 3, actual 1'
expect_out '3 passed, 1 failed'

# Without its nodeJS bootstraps, the publish lambda has no tax rate: its outputs are
# invalid, which fails every test (each ingests into the derivation's source).
neg no-bootstrap 12-bootstrap '/^      bootstrap:$/{N;/nodeJS/!b;N;N;N;N;d}'
expect_out 'FAIL globals set by nodeJS bootstraps are seen by publish'
expect_out 'at /cents (value null)'
expect_out '0 passed, 3 failed'

finish
