#!/usr/bin/env bash
# The golden catalog (testdata/golden) builds cleanly, offline, and the built catalog holds
# what later commands need.
source "$(dirname "$0")/lib.sh"
cd "$REPO"
db=$WORK/golden.db
expect_status 0 "$FLOWCTL" build --source testdata/golden/flow.yaml --catalog "$db" \
  --resource-map https://example.com/=testdata/golden/remote/ \
  --resource-map file:///flowctl-golden/=testdata/golden/
expect_err "built $db"
q() { sqlite3 -batch -noheader "$db" "$1"; }

# Every source and schema is stored as read, each file once.
expect_eq "resources" "$(q 'SELECT count(*) FROM resources')" 14
expect_eq "remote resources" "$(q "SELECT count(*) FROM resources WHERE url LIKE 'https://example.com/%'")" 4
q "SELECT writefile('$WORK/stored.yaml', content) FROM resources WHERE url LIKE '%/golden/flow.yaml'" >/dev/null
cmp -s "$WORK/stored.yaml" testdata/golden/flow.yaml || fail "stored source differs from the file as read"
expect_eq "import cycle recorded" \
  "$(q "SELECT count(*) FROM resource_imports a JOIN resource_imports b ON a.from_url = b.to_url AND a.to_url = b.from_url")" 2

# Collections, derivations, transforms and lambdas.
expect_eq "collections" "$(q 'SELECT count(*) FROM collections')" 8
expect_eq "derived" "$(q 'SELECT count(*) FROM collections WHERE is_derived')" 3
expect_eq "transforms" "$(q 'SELECT count(*) FROM transforms')" 4
expect_eq "lambda kinds" "$(q 'SELECT group_concat(kind) FROM (SELECT DISTINCT kind FROM lambdas ORDER BY kind)')" "nodeJS,remote,sqlite"
expect_eq "read delay 1h30m" "$(q "SELECT count(*) FROM transforms WHERE read_delay_seconds = 5400")" 1
expect_eq "npm dependency" "$(q 'SELECT package FROM node_dependencies')" moment

# Every bundle is self-contained: no $ref leaves the bundle.
expect_eq "external refs in bundles" \
  "$(q "SELECT count(*) FROM collections WHERE schema_bundle LIKE '%\"\$ref\":\"http%' OR schema_bundle LIKE '%\"\$ref\":\"file%'")" 0

# Projections: flow_document everywhere, partitions marked, keys marked.
expect_eq "flow_document per collection" "$(q "SELECT count(*) FROM projections WHERE field = 'flow_document'")" 8
[[ $(q "SELECT count(*) FROM projections WHERE is_partition") -ge 1 ]] || fail "no partition projections"
expect_eq "key fields" "$(q "SELECT count(*) FROM collections c WHERE NOT EXISTS (SELECT 1 FROM projections p WHERE p.collection = c.name AND p.is_key)")" 0

# Materialization bindings end with flow_document.
expect_eq "bindings end with flow_document" \
  "$(q "SELECT count(*) FROM materialization_bindings WHERE fields_json NOT LIKE '%\"flow_document\"]'")" 0
expect_eq "tests" "$(q 'SELECT count(*) FROM tests')" 5
finish
