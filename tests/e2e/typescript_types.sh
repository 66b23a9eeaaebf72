#!/usr/bin/env bash
# Typed TypeScript lambdas: `flowctl build` type-checks nodeJS lambdas against types from the
# schemas (the broken/114 and broken/115 scenarios pin the diagnostics), reuses the result of
# an unchanged catalog without running tsc, skips the check with --no-type-check (build,
# test, run), and `flowctl generate-types` writes declarations that a TypeScript file
# compiles against.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
# A cache of its own: the first check of this test is a cold one.
export XDG_CACHE_HOME=$WORK/cache

cat >flow.yaml <<'EOF'
collections:
  - name: shop/orders
    key: [/id]
    schema:
      type: object
      properties:
        id: {type: integer}
        amount: {type: number}
        status: {enum: [open, paid]}
        extra: {type: object, additionalProperties: true}
      required: [id, amount, status]
  - name: shop/totals
    key: [/status]
    schema:
      type: object
      reduce: {strategy: merge}
      properties:
        status: {type: string}
        total: {type: number, reduce: {strategy: sum}}
      required: [status, total]
    derivation:
      register:
        schema: {type: object, properties: {seen: {type: integer}}, required: [seen]}
        initial: {seen: 0}
      transform:
        fromOrders:
          source: {name: shop/orders}
          update: {nodeJS: "return [{seen: 1}];"}
          publish:
            nodeJS: |
              // `extra` allows any property: reading one type-checks.
              if (source.extra?.anything === "skip" || register.seen < 0) return [];
              return [{status: source.status, total: source.amount}];
tests:
  totals:
    - ingest:
        collection: shop/orders
        documents: [{id: 1, amount: 2.5, status: open}, {id: 2, amount: 1, status: open}]
    - verify:
        collection: shop/totals
        documents: [{status: open, total: 3.5}]
EOF

# A correct catalog builds; the first check runs tsc, the second reuses its result.
expect_status 0 "$FLOWCTL" build -v
expect_err "type-checked 2 nodeJS lambdas in"
grep -q "result was reused" "$WORK/err" && fail "the first check reused a result"
expect_status 0 "$FLOWCTL" build -v
expect_err "type-checked 2 nodeJS lambdas in"
expect_err "(unchanged since the last check: its result was reused)"
ls cache/flowctl/node/typecheck/*/tsc.tsbuildinfo >/dev/null || fail "no incremental build information"

# The acceptance typo: a build error at the typo's file:line:col, then fixed again.
sed -i 's/total: source.amount}/total: source.amont.toFixed(2)}/' flow.yaml
line=$(grep -n 'source.amont' flow.yaml | cut -d: -f1)
col=$(($(grep 'source.amont' flow.yaml | awk '{print index($0, "amont")}')))
expect_status 1 "$FLOWCTL" build -v
expect_err "flow.yaml:$line:$col: error: lambda of transform \`fromOrders\` of derivation \`shop/totals\` (publish) does not type-check: Property 'amont' does not exist on type 'ShopOrders'. Did you mean 'amount'?"
expect_err "hint: \`source\` is a ShopOrders, \`register\` and \`previous\` are ShopTotalsRegister, and it returns ShopTotalsOutput[]"
expect_err "1 error in the nodeJS lambdas"
expect_err "catalog.db was not written"
grep -q "result was reused" "$WORK/err" && fail "a changed lambda reused an old result"
# `test` and `run` check too, and --no-type-check skips the check on each command.
expect_status 1 "$FLOWCTL" test
expect_err "does not type-check: Property 'amont'"
expect_err "no test was run"
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "does not type-check: Property 'amont'"
expect_status 0 "$FLOWCTL" build --no-type-check -v
grep -q "type-checked" "$WORK/err" && fail "--no-type-check still type-checked"
expect_status 0 "$FLOWCTL" run --no-type-check --until-idle --data-dir data
# At run time the typo is the TypeError the check is there to prevent.
expect_status 1 "$FLOWCTL" test --no-type-check
cat "$WORK/out" "$WORK/err" | grep -qF "Cannot read properties of undefined (reading 'toFixed')" ||
  fail "test --no-type-check: no TypeError: $(cat "$WORK/out" "$WORK/err")"
sed -i 's/source.amont.toFixed(2)/source.amount/' flow.yaml
expect_status 0 "$FLOWCTL" test
expect_out "1 passed, 0 failed"

# generate-types: the declarations a TypeScript file imports, checked by the same tsc
# strictly.
expect_status 0 "$FLOWCTL" generate-types
expect_err "wrote flow_generated/flow.d.ts"
grep -q '^export type ShopOrders = {$' flow_generated/flow.d.ts || fail "no ShopOrders type"
grep -q '  status: "open" | "paid";' flow_generated/flow.d.ts || fail "status is not a union of its enum"
grep -q '^export type ShopTotalsFromOrdersPublish = (source: ShopOrders, register: ShopTotalsRegister, previous: ShopTotalsRegister) => ShopTotalsOutput\[\];$' \
  flow_generated/flow.d.ts || fail "no publish lambda type: $(grep Publish flow_generated/flow.d.ts)"
expect_status 0 "$FLOWCTL" generate-types --output -
cmp -s "$WORK/out" flow_generated/flow.d.ts || fail "--output - differs from the file"
cat >lambda.ts <<'EOF'
import type { ShopOrders, ShopTotals, ShopTotalsFromOrdersPublish } from "./flow_generated/flow";
export const publish: ShopTotalsFromOrdersPublish = (source, register, previous) => [
  { status: source.status, total: source.amount + register.seen },
];
export const wrong = (o: ShopOrders): ShopTotals => ({ status: o.status, total: o.amont });
EOF
tsc=$REPO/.deps/npm-runtime/node_modules/.bin/tsc
set +e
node "$tsc" --noEmit --strict --target es2022 --module es2022 --moduleResolution bundler --types "" lambda.ts >tsc.out 2>&1
rc=$?
set -e
[[ $rc -ne 0 ]] || fail "tsc accepted a typo against the generated types"
grep -q "lambda.ts(5,83): error TS2551: Property 'amont' does not exist on type 'ShopOrders'" tsc.out ||
  fail "tsc: $(cat tsc.out)"
[[ $(grep -c 'error TS' tsc.out) -eq 1 ]] || fail "tsc found more than the typo: $(cat tsc.out)"

# The declarations of the examples compile strictly.
expect_status 0 "$FLOWCTL" generate-types --source "$REPO/catalog-examples/flow.yaml" --output examples
node "$tsc" --noEmit --strict --target es2022 --types "" examples/flow.d.ts >tsc.out 2>&1 ||
  fail "catalog-examples' declarations do not compile: $(head -5 tsc.out)"

# Without the compiler: an environment error saying how to install it, or how to skip.
FLOWCTL_TSC=/nonexistent/tsc expect_status 3 "$FLOWCTL" build
expect_err "FLOWCTL_TSC names /nonexistent/tsc, which is not an executable"
FLOWCTL_TSC=/nonexistent/tsc expect_status 0 "$FLOWCTL" build --no-type-check

exit $((failures > 0))
