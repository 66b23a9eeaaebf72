#!/usr/bin/env bash
# Writes a generated catalog into DIR: N captured collections (bench/orders-i) and N
# derivations (bench/customers-i, each reading bench/orders-i) spread over up to 50
# imported files, plus a shared schema file; DIR/flow.yaml is the root. With --docs, each
# file also has a fileDrop capture of its orders, a SQLite materialization of its
# customers and a test, and every schema a title and description (what the docs site shows).
# Usage: bench/gen_catalog.sh DIR N [--docs]   (used by build_bench.sh and docs_bench.sh)
set -euo pipefail
dir=$1 n=$2 docs=${3:-}
files=$((n < 50 ? n : 50))
per_file=$((n / files))
mkdir -p "$dir"
cat > "$dir/common.schema.yaml" <<'YAML'
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
} > "$dir/flow.yaml"
for ((f = 0; f < files; f++)); do
  {
    echo "collections:"
    for ((i = 0; i < per_file; i++)); do
      k=$((f * per_file + i))
      orders_doc= customers_doc=
      if [[ -n $docs ]]; then
        printf -v orders_doc 'title: Orders %d\n      description: Orders of shop %d as they arrive from its CSV drop; one document per order.\n      ' "$k" "$k"
        printf -v customers_doc 'title: Customers %d\n      description: Spending per customer of shop %d, rolled up from its orders.\n      ' "$k" "$k"
      fi
      cat <<YAML
  - name: bench/orders-$k
    key: [/id]
    projections:
      region: {location: /region, partition: true}
    schema:
      ${orders_doc}type: object
      reduce: {strategy: merge}
      properties:
        id: {type: integer}
        region: {type: string, enum: [EU, US, APAC]}
        customer: {type: object, properties: {id: {type: string}, address: {\$ref: "common.schema.yaml#Address"}}, required: [id]}
        total: {type: number, reduce: {strategy: sum}}
        price: {\$ref: "common.schema.yaml#/\$defs/money"}
        tags: {type: array, items: {type: string}, reduce: {strategy: append}}
      required: [id, region, customer]
  - name: bench/customers-$k
    key: [/customer]
    schema:
      ${customers_doc}type: object
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
        fromOrders$k:
          source: {name: bench/orders-$k, partitions: {include: {region: [EU, US]}}}
          shuffle: [/customer/id]
          update: {nodeJS: "return [{n: 1}];"}
          publish: {sqlite: "SELECT json_extract(\$source, '\$.customer.id') AS customer, \$total AS spent, 1 AS orders, \$id AS last"}
YAML
    done
    if [[ -n $docs ]]; then
      first=$((f * per_file))
      cat <<YAML
materializationTargets:
  db-$f: {sqlite: {path: out/db-$f.db}}
captures:
  bench/drop-$f:
    endpoint: {fileDrop: {path: incoming/$f, format: csv}}
    bindings:
YAML
      for ((i = 0; i < per_file; i++)); do echo "      - target: bench/orders-$((first + i))"; done
      echo "materializations:"
      echo "  bench/to-db-$f:"
      echo "    target: db-$f"
      echo "    bindings:"
      for ((i = 0; i < per_file; i++)); do
        echo "      - {source: bench/customers-$((first + i)), table: customers_$((first + i))}"
      done
      cat <<YAML
tests:
  "orders of shop $first roll up per customer":
    - ingest: {collection: bench/orders-$first, documents: [{id: 1, region: EU, customer: {id: c1}, total: 5}]}
    - verify: {collection: bench/customers-$first, documents: [{customer: c1, spent: 5}]}
YAML
    fi
  } > "$dir/part-$f.flow.yaml"
done
