#!/usr/bin/env bash
# Inline schemas are resources of their own (SPEC 1.4): testdata/inline-schemas builds,
# each inline schema's `#/$defs/...`, `#/definitions/...` and `#anchor` resolve within it
# (two collections define `$defs/amount` and the anchor `unit` differently), the built
# catalog records each inline schema's URL `flow.yaml?ptr=<pointer>`, validation and
# catalog tests use the right definitions, and the docs site renders the schemas.
source "$(dirname "$0")/lib.sh"
cd "$REPO/testdata/inline-schemas"
src_url="file://$PWD/flow.yaml"
db=$WORK/catalog.db
expect_status 0 "$FLOWCTL" build --source flow.yaml --catalog "$db"
q() { sqlite3 -batch -noheader "$db" "$1"; }

# Each inline schema is recorded by its canonical URL.
expect_eq "collection schema URL" "$(q "SELECT schema_url FROM collections WHERE name = 'acme/points'")" \
  "$src_url?ptr=/collections/0/schema"
expect_eq "register schema URL" "$(q "SELECT register_schema_url FROM derivations")" \
  "$src_url?ptr=/collections/2/derivation/register/schema"
expect_eq "source schema URL" "$(q "SELECT source_schema_url FROM transforms")" \
  "$src_url?ptr=/collections/2/derivation/transform/fromPoints/source/schema"

# Shapes through each schema's own definitions: projections carry their types.
types() { q "SELECT types_json FROM projections WHERE collection = '$1' AND field = '$2'"; }
expect_eq "acme/points n" "$(types acme/points n)" '["integer"]'
expect_eq "acme/points unit" "$(types acme/points unit)" '["string"]'
expect_eq "acme/points price (other file)" "$(types acme/points price)" '["integer"]'
expect_eq "acme/labels n" "$(types acme/labels n)" '["string"]'
expect_eq "acme/labels unit" "$(types acme/labels unit)" '["integer"]'
expect_eq "acme/labels price (through a nested \$id)" "$(types acme/labels price)" '["integer"]'
expect_eq "acme/points n reduces by sum" \
  "$(q "SELECT reduce_strategy FROM inferred_shapes WHERE collection = 'acme/points' AND location = '/n'")" sum

# Validation picks each collection's own definitions.
printf '%s\n' '{"id":"a","n":"two","unit":7,"price":1}' >"$WORK/labels.jsonl"
expect_status 0 "$FLOWCTL" combine --collection acme/labels --catalog "$db" "$WORK/labels.jsonl"
printf '%s\n' '{"id":"a","n":2,"unit":"kg"}' '{"id":"a","n":3}' >"$WORK/points.jsonl"
expect_status 0 "$FLOWCTL" combine --collection acme/points --catalog "$db" "$WORK/points.jsonl"
expect_eq "points reduce" "$(cat "$WORK/out")" '{"id":"a","n":5,"unit":"kg"}'
expect_status 1 "$FLOWCTL" combine --collection acme/points --catalog "$db" "$WORK/labels.jsonl"
# The schema location is the keyword's place in flow.yaml, never the ?ptr= URL.
expect_err 'at /n (value "two")'
expect_err '[`type` at flow.yaml#/collections/0/schema/$defs/amount/type]'
grep -qF '?ptr=' "$WORK/err" && fail "a message shows an inline schema's URL: $(cat "$WORK/err")"
expect_status 1 "$FLOWCTL" combine --collection acme/labels --catalog "$db" "$WORK/points.jsonl"
expect_err 'at /n (value 2)'
expect_err '[`type` at flow.yaml#/collections/1/schema/$defs/amount/type]'

# The catalog test ingests into both collections and derives through the inline register
# and source schemas.
expect_status 0 "$FLOWCTL" test --source flow.yaml
expect_out "1 passed"

# The docs site shows each schema by its URL and its locations with their types.
expect_status 0 "$FLOWCTL" docs --source flow.yaml --output "$WORK/site"
page=$WORK/site/collections/acme~labels.html
[[ -s $page ]] || fail "no page for acme/labels"
grep -qF 'flow.yaml?ptr=/collections/1/schema' "$page" || fail "the page does not name the inline schema"
grep -qF 'file://' "$page" && fail "the page shows a file:// URL"
tree=$(awk '/<section id="schema">/,/<\/section>/' "$page")
for want in 'n</span> <span class="types">string' 'unit</span> <span class="types">integer' \
  'price</span> <span class="types">integer</span> <span class="optional">optional</span><div class="doc"><strong>An amount in cents'; do
  grep -qF "$want" <<<"$tree" || fail "the page's schema tree lacks: $want"
done
finish
