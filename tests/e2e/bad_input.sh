#!/usr/bin/env bash
# Bad input gets a clear error with a location, never a crash: malformed YAML, non-UTF-8,
# missing imports, YAML nested 10,000 levels deep, a 50 MB source, and usage errors.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
schema='{type: object, properties: {id: {type: integer}}, required: [id]}'

# Malformed YAML: line and column.
printf 'collections:\n  - name: a/b\n    key: [/id\n    schema: %s\n' "$schema" > malformed.yaml
expect_status 1 "$FLOWCTL" build --source malformed.yaml --catalog out.db
grep -qE '^malformed\.yaml:[0-9]+:[0-9]+: error: invalid YAML' err || fail "no located YAML error"
[[ ! -e out.db ]] || fail "catalog written despite errors"

# Non-UTF-8 bytes.
printf 'collections:\n  - name: "caf\xe9"\n' > latin1.yaml
expect_status 1 "$FLOWCTL" build --source latin1.yaml --catalog out.db
expect_err "latin1.yaml:2:15: error: invalid UTF-8"

# A missing import names the file and the importing line.
printf 'import:\n  - nowhere.yaml\n' > imports.yaml
expect_status 1 "$FLOWCTL" build --source imports.yaml --catalog out.db
expect_err "imports.yaml:2:5: error: cannot read import \`nowhere.yaml\`"

# A missing root source.
expect_status 1 "$FLOWCTL" build --source absent.yaml --catalog out.db
expect_err "cannot read catalog source"

# YAML nested 10,000 levels deep: an error, no crash.
{ printf 'collections: '; head -c 10000 /dev/zero | tr '\0' '['; } > deep.yaml
expect_status 1 "$FLOWCTL" build --source deep.yaml --catalog out.db
expect_err "nested"
# (1,000 levels of block indentation: 1 MB; 10,000 would be 100 MB, over the size limit.)
{ printf 'a:\n'; for ((i = 1; i < 1000; i++)); do printf '%*s- \n' $((i * 2)) ''; done; } > deep-block.yaml
expect_status 1 "$FLOWCTL" build --source deep-block.yaml --catalog out.db
grep -qE 'error: .*(nested|invalid YAML)' err || fail "deep block YAML: $(head -1 err)"

# A 50 MB source file (a generated catalog with large test fixtures) builds.
awk 'BEGIN {
  printf "{\"collections\": [{\"name\": \"big/docs\", \"key\": [\"/id\"], \"schema\": {\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}, \"name\": {\"type\": \"string\"}}, \"required\": [\"id\"]}}],\n"
  printf "\"tests\": {\"big\": [{\"ingest\": {\"collection\": \"big/docs\", \"documents\": [\n"
  for (i = 0; i < 720000; i++) printf "%s{\"id\": %d, \"name\": \"document number %d\", \"tags\": [\"a\", \"b\"]}\n", (i ? "," : ""), i, i
  printf "]}}]}}\n"
}' > big.json
size=$(stat -c %s big.json)
((size > 50 * 1000 * 1000)) || fail "generated source is only $size bytes"
expect_status 0 "$FLOWCTL" build --source big.json --catalog big.db
expect_err "built big.db"

# Usage errors exit 2; an unwritable catalog exits 3.
printf 'collections: []\n' > empty.yaml
expect_status 2 "$FLOWCTL" build --source empty.yaml --no-such-flag
expect_status 2 "$FLOWCTL"
expect_status 2 "$FLOWCTL" build --source empty.yaml --resource-map nonsense
expect_err "is not PREFIX=DIR"
expect_status 3 "$FLOWCTL" build --source empty.yaml --catalog /nonexistent-dir/c.db
expect_err "cannot write built catalog"
finish
