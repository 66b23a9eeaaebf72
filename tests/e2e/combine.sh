#!/usr/bin/env bash
# `flowctl combine`: reduction by key in key order, fully reduced or combined, from a file,
# stdin or a built catalog; spilling and threads give the same bytes; bad input fails with
# file:line.
source "$(dirname "$0")/lib.sh"
SRC="$REPO/testdata/combine/flow.yaml"
cat >"$WORK/in.jsonl" <<'DOCS'
{"user":"bo","visits":1,"last":"2026-01-02T00:00:00Z","items":{"add":{"apple":1,"pear":2}}}

{"user":"al","visits":1,"items":{"add":{"fig":1}}}
{"user":"bo","visits":1,"last":"2026-01-01T00:00:00Z","items":{"remove":{"pear":0},"add":{"apple":2}}}
{"user":"al","visits":2,"last":"2026-01-03T00:00:00Z","_meta":{"uuid":"x"}}
DOCS
want_full='{"_meta":{"uuid":"x"},"items":{"add":{"fig":1}},"last":"2026-01-03T00:00:00Z","user":"al","visits":3}
{"items":{"add":{"apple":3}},"last":"2026-01-02T00:00:00Z","user":"bo","visits":2}'
expect_status 0 "$FLOWCTL" combine --collection shop/carts --source "$SRC" "$WORK/in.jsonl"
expect_eq "fully reduced output" "$(cat "$WORK/out")" "$want_full"

expect_status 0 "$FLOWCTL" combine --collection shop/carts --source "$SRC" --combined "$WORK/in.jsonl"
expect_eq "combined keeps remove" "$(sed -n 2p "$WORK/out")" \
  '{"items":{"add":{"apple":3},"remove":{"pear":0}},"last":"2026-01-02T00:00:00Z","user":"bo","visits":2}'

# stdin, a built catalog, and a budget so small that every document spills.
"$FLOWCTL" build --source "$SRC" --catalog "$WORK/cat.db" 2>/dev/null
expect_status 0 "$FLOWCTL" combine --collection shop/carts --catalog "$WORK/cat.db" --memory-budget 1 \
  --spill-dir "$WORK" <"$WORK/in.jsonl"
expect_eq "stdin + built catalog + spilling" "$(cat "$WORK/out")" "$want_full"
expect_eq "spill files are unlinked" "$(find "$WORK" -name 'flowctl-spill*' | wc -l)" "0"

# A 1-byte budget spills every document: thousands of runs, merged 64 at a time in several
# passes, must still give the bytes of the in-memory path.
node "$REPO/bench/combine/gen.js" 3000 300 7 >"$WORK/gen.jsonl" 2>/dev/null
BENCH="$REPO/bench/combine/flow.yaml"
"$FLOWCTL" combine --collection bench/events --source "$BENCH" "$WORK/gen.jsonl" >"$WORK/mem.jsonl"
expect_status 0 "$FLOWCTL" combine --collection bench/events --source "$BENCH" --memory-budget 1 "$WORK/gen.jsonl"
expect_eq "multi-pass merge equals in-memory" "$(sha256sum <"$WORK/out")" "$(sha256sum <"$WORK/mem.jsonl")"
expect_eq "one line per key" "$(wc -l <"$WORK/out")" "$(grep -o '"id":"[^"]*"' "$WORK/gen.jsonl" | sort -u | wc -l)"

# Any number of threads prints the same bytes, spilling or not; --threads 1 runs on one.
for budget in 256MiB 64KiB 1; do
  "$FLOWCTL" combine --collection bench/events --source "$BENCH" --memory-budget "$budget" --threads 1 \
    "$WORK/gen.jsonl" >"$WORK/t1.jsonl"
  for threads in 2 4 7; do
    expect_status 0 "$FLOWCTL" combine --collection bench/events --source "$BENCH" --memory-budget "$budget" \
      --threads "$threads" "$WORK/gen.jsonl"
    expect_eq "--threads $threads, budget $budget" "$(sha256sum <"$WORK/out")" "$(sha256sum <"$WORK/t1.jsonl")"
  done
done
expect_eq "--threads 1 equals the default" "$(sha256sum <"$WORK/t1.jsonl")" "$(sha256sum <"$WORK/mem.jsonl")"
# The first bad line in input order is reported, though a later one may be met first.
{ head -n 1500 "$WORK/gen.jsonl"; echo '{"id":7}'; sed -n '1501,2800p' "$WORK/gen.jsonl"; echo '{"id":'; cat "$WORK/gen.jsonl"; } \
  >"$WORK/two-bad.jsonl"
for threads in 1 2 4; do
  expect_status 1 "$FLOWCTL" combine --collection bench/events --source "$BENCH" --threads "$threads" \
    --memory-budget 64KiB "$WORK/two-bad.jsonl"
  expect_err "two-bad.jsonl:1501: error: document does not validate"
done
expect_status 2 "$FLOWCTL" combine --collection bench/events --source "$BENCH" --threads 0 "$WORK/gen.jsonl"
expect_err "--threads"

# Bad input: each names the input, line (and column for syntax) and the cause; exit 1.
check_bad() {  # NAME CONTENT TEXT...
  local name=$1 content=$2
  shift 2
  printf '%b' "$content" >"$WORK/bad.jsonl"
  expect_status 1 "$FLOWCTL" combine --collection shop/carts --source "$SRC" "$WORK/bad.jsonl"
  for t in "$@"; do expect_err "$t"; done
  [[ -s "$WORK/out" ]] && fail "$name: printed output despite the error"
  true
}
check_bad "malformed" '{"user":"a"}\n{"user":"b",}\n' "bad.jsonl:2:13: error: invalid JSON"
check_bad "invalid utf-8" '{"user":"\xff"}\n' "bad.jsonl:1:10: error: invalid JSON: invalid UTF-8"
check_bad "huge integer" '{"user":"a","visits":123456789012345678901}\n' "outside the 64-bit range"
check_bad "deep nesting" "{\"user\":\"a\",\"x\":$(printf '[%.0s' {1..300})$(printf ']%.0s' {1..300})}\n" \
  "nested deeper than 256 levels"
check_bad "NaN" '{"user":"a","visits":NaN}\n' "bad.jsonl:1:22: error: invalid JSON"
check_bad "wrong type" '{"user":"a","visits":"2"}\n' \
  "bad.jsonl:1: error: document does not validate against the schema of collection \`shop/carts\`" \
  'at /visits (value "2")' 'combine/flow.yaml#/collections/0/schema/properties/visits/type]'
check_bad "missing key" '{"visits":1}\n' "at / (value {\"visits\":1}): missing required property 'user'" "\`required\` at"
check_bad "closed set" '{"user":"a","items":{"add":{},"drop":{}}}\n' "at /items" "additionalProperties"
check_bad "overflow" '{"user":"a","visits":9223372036854775807}\n{"user":"a","visits":18446744073709551615}\n' \
  "bad.jsonl:2: error: cannot reduce into collection \`shop/carts\`: key [\"a\"]: sum at /visits: integer overflow"

expect_status 1 "$FLOWCTL" combine --collection shop/cart --source "$SRC" "$WORK/in.jsonl"
expect_err "no collection \`shop/cart\` in the catalog; did you mean \`shop/carts\`?"
expect_status 2 "$FLOWCTL" combine --collection shop/carts --source "$SRC" --memory-budget lots "$WORK/in.jsonl"
expect_err "--memory-budget \`lots\` is not a size"
expect_status 3 "$FLOWCTL" combine --collection shop/carts --source "$SRC" --memory-budget 1 \
  --spill-dir "$WORK/no-such-dir" "$WORK/in.jsonl"
expect_err "error: cannot create a spill file in $WORK/no-such-dir"
expect_status 1 "$FLOWCTL" combine --collection shop/carts --source "$SRC" "$WORK/missing.jsonl"
expect_err "cannot open $WORK/missing.jsonl"
finish
