#!/usr/bin/env bash
# Benchmark of `flowctl build`: a generated catalog of 500 captured collections and 500
# derivations spread over 50 imported files (plus a shared schema file), built N times.
# Prints wall time and peak RSS per run and the best run against the 2 s target.
# Usage: bench/build_bench.sh [FLOWCTL] [RUNS]   (--check: exit 1 if the target is missed)
set -euo pipefail
check=0
args=()
for a in "$@"; do [[ "$a" == "--check" ]] && check=1 || args+=("$a"); done
flowctl=${args[0]:-$(dirname "$0")/../build/flowctl}
runs=${args[1]:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

files=50 per_file=10
cat > "$work/common.schema.yaml" <<'YAML'
$defs:
  money: {type: number, minimum: 0}
  address:
    $anchor: Address
    type: object
    properties: {city: {type: string}, zip: {type: string, maxLength: 10}}
    required: [city]
YAML
{
  echo "import:"
  for ((f = 0; f < files; f++)); do echo "  - part-$f.flow.yaml"; done
} > "$work/flow.yaml"
for ((f = 0; f < files; f++)); do
  {
    echo "collections:"
    for ((i = 0; i < per_file; i++)); do
      n=$((f * per_file + i))
      cat <<YAML
  - name: bench/orders-$n
    key: [/id]
    projections:
      region: {location: /region, partition: true}
    schema:
      type: object
      reduce: {strategy: merge}
      properties:
        id: {type: integer}
        region: {type: string, enum: [EU, US, APAC]}
        customer: {type: object, properties: {id: {type: string}, address: {\$ref: "common.schema.yaml#Address"}}, required: [id]}
        total: {type: number, reduce: {strategy: sum}}
        price: {\$ref: "common.schema.yaml#/\$defs/money"}
        tags: {type: array, items: {type: string}, reduce: {strategy: append}}
      required: [id, region, customer]
  - name: bench/customers-$n
    key: [/customer]
    schema:
      type: object
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: number, reduce: {strategy: sum}}
        orders: {type: integer, reduce: {strategy: sum}}
        last: {type: integer, reduce: {strategy: maximize}}
      required: [customer]
    derivation:
      register:
        schema: {type: object, reduce: {strategy: merge}, properties: {n: {type: integer, reduce: {strategy: sum}}}}
        initial: {n: 0}
      transform:
        fromOrders$n:
          source: {name: bench/orders-$n, partitions: {include: {region: [EU, US]}}}
          shuffle: [/customer/id]
          update: {nodeJS: "return [{n: 1}];"}
          publish: {sqlite: "SELECT json_extract(\$source, '\$.customer.id') AS customer, \$total AS spent, 1 AS orders, \$id AS last"}
YAML
    done
  } > "$work/part-$f.flow.yaml"
done

best=
for ((r = 1; r <= runs; r++)); do
  /usr/bin/time -f "%e %M" -o "$work/time" "$flowctl" build --source "$work/flow.yaml" \
    --catalog "$work/catalog.db" 2> "$work/err" || { cat "$work/err"; exit 1; }
  read -r secs kb < "$work/time"
  printf 'run %d: wall %.2f s, peak RSS %.1f MiB\n' "$r" "$secs" "$(echo "$kb / 1024" | bc -l)"
  if [[ -z "$best" ]] || (($(echo "$secs < $best" | bc -l))); then best=$secs; fi
done
grep -E "collections:|transforms:" "$work/err" | sed 's/^ */  /'
verdict=met
(($(echo "$best < 2.0" | bc -l))) || verdict=MISSED
echo "build benchmark: best wall time $best s for 1000 collections (500 derived), $((files + 2)) files; target < 2 s: $verdict"
[[ $check -eq 0 || $verdict == met ]]
