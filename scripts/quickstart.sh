#!/usr/bin/env bash
# The main job: set up, build, and run the example pipeline in catalog-examples/ end to end
# on the embedded default, SQLite: build the catalog, ingest the sample stations (JSON lines)
# and rides (CSV), run the derivations and the SQLite materialization until caught up,
# show rows of the resulting tables, and write the catalog's documentation site
# (`flowctl docs`) into catalog-examples/out/docs/. (The catalog's PostgreSQL
# materialization needs a server; see catalog-examples/README.md.) Starts from scratch
# every time.
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWCTL_TARGETS=flowctl scripts/build.sh   # the executable only, not the tests
flowctl=./build/flowctl
ex=catalog-examples
data=build/quickstart-data
rm -rf "$data" "$ex/out"
$flowctl build --source $ex/flow.yaml --catalog build/catalog-examples.db
$flowctl ingest bikeshare/stations $ex/data/stations.jsonl --catalog build/catalog-examples.db --data-dir "$data" >/dev/null
$flowctl ingest bikeshare/rides $ex/data/rides.csv --catalog build/catalog-examples.db --data-dir "$data" >/dev/null
$flowctl run --until-idle --catalog build/catalog-examples.db --data-dir "$data" --materialization bikeshare/dashboard
db=$ex/out/bikes.db
echo
echo "== $db: bikes (sqlite3 $db 'SELECT * FROM bikes')"
sqlite3 -header -column "$db" 'SELECT bike_id, rides, ride_seconds, first_seen, "last_ride/station_name" AS last_station FROM bikes ORDER BY bike_id LIMIT 5'
echo
echo "== $db: station_activity"
sqlite3 -header -column "$db" 'SELECT station_id, name, departures, arrivals FROM station_activity ORDER BY station_id LIMIT 5'
echo
echo "== the lake (query it with DuckDB): $data/lake"
find "$data/lake/bikeshare" -name '*.gz' | head -3
echo
# The documentation site; its lake paths and DuckDB queries name the data directory above.
$flowctl docs --catalog build/catalog-examples.db --data-dir "$data" --output "$ex/out/docs"
echo "== the documentation site: $ex/out/docs/index.html (open it in a browser; no server needed)"
