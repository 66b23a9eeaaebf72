#!/usr/bin/env bash
# Each shorthand materialization is one target plus one binding, and the SQLite one writes
# its table when the pipeline runs. Run by tests/run_compat.sh in a scratch copy of this
# directory as `check.sh FLOWCTL CATALOG_DB`.
set -euo pipefail
flowctl=$1
q() { sqlite3 -batch -noheader -separator ' ' "$2" "$1"; }
expect() { [[ "$2" == "$3" ]] || { echo "$1: got '$2', want '$3'" >&2; exit 1; }; }

expect "bindings" "$(q "SELECT m.name, t.kind, b.source_collection, b.table_name
  FROM materializations m JOIN materialization_targets t ON t.name = m.target
  JOIN materialization_bindings b ON b.materialization = m.name ORDER BY m.name, b.idx" "$2")" \
  "depotsLocal sqlite compat/shorthand/depots depots
depotsWarehouse postgres compat/shorthand/depots depot_totals"
expect "the SQLite path is relative to the declaring file" \
  "$(q "SELECT t.address FROM materializations m JOIN materialization_targets t ON t.name = m.target
  WHERE m.name = 'depotsLocal'" "$2")" "$PWD/out/depots.db"

printf '%s\n' '{"id": 1, "depot": "north", "parcels": 3}' '{"id": 2, "depot": "south", "parcels": 1}' \
  '{"id": 3, "depot": "north", "parcels": 2}' >deliveries.jsonl
"$flowctl" ingest compat/shorthand/deliveries deliveries.jsonl --source flow.yaml --data-dir data >/dev/null
"$flowctl" run --until-idle --source flow.yaml --data-dir data --materialization depotsLocal
expect "the depots table" "$(q 'SELECT depot, deliveries, parcels FROM depots ORDER BY depot' out/depots.db)" \
  "north 2 5
south 1 1"
