#!/usr/bin/env bash
# Warnings as a diagnostic level (they print, count and do not fail a build, unless
# --deny-warnings), transform names scoped to their derivation, and the logging flags
# (-v, --log-level, --log-format json) on every command, before or after its name.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cat > flow.yaml <<'YAML'
collections:
  - name: acme/ints
    schema:
      type: object
      properties: {id: {type: integer}, n: {type: integer}}
      required: [id, n]
    key: [/id]

  # A child `sum` under a placeholder `lastWriteWins`: legal (as in Flow), but it never
  # takes effect, so a warning.
  - name: acme/stats
    schema:
      type: object
      reduce: {strategy: merge}
      properties:
        id: {type: integer}
        total: {type: integer, reduce: {strategy: sum}}
        latest:
          type: object
          reduce: {strategy: lastWriteWins}
          properties:
            n: {type: integer, reduce: {strategy: sum}}
      required: [id]
    key: [/id]
    derivation:
      transform:
        fromInts:
          source: {name: acme/ints}
          publish:
            sqlite: SELECT $id AS id, $n AS total, json_object('n', $n) AS latest

  # Another derivation with a transform of the same name.
  - name: acme/doubled
    schema:
      type: object
      properties: {id: {type: integer}, n: {type: integer}}
      required: [id, n]
    key: [/id]
    derivation:
      transform:
        fromInts:
          source: {name: acme/ints}
          publish:
            sqlite: SELECT $id AS id, $n * 2 AS n

tests:
  "both derivations run":
    - ingest:
        collection: acme/ints
        documents: [{id: 1, n: 5}, {id: 2, n: 7}]
    - ingest:
        collection: acme/ints
        documents: [{id: 1, n: 6}]
    - verify:
        collection: acme/stats
        documents: [{id: 1, total: 11, latest: {n: 6}}, {id: 2, total: 7, latest: {n: 7}}]
    - verify:
        collection: acme/doubled
        documents: [{id: 1, n: 12}, {id: 2, n: 14}]
YAML

# A warning: printed with its location and hint, counted, and the catalog is written.
expect_status 0 "$FLOWCTL" build --catalog c.db
expect_err 'flow.yaml:22:32: warning: `reduce: {strategy: sum}` can never take effect: its parent location /latest reduces by `lastWriteWins`'
expect_err "hint: use \`reduce: {strategy: merge}\` at /latest"
expect_err "1 warning in the catalog"
[[ -f c.db ]] || fail "a catalog with only warnings was not written"
grep -q "error:" err && fail "a warning printed as an error"
# Both transforms are in the built catalog, keyed by derivation.
got=$(sqlite3 c.db "SELECT derivation || ':' || name FROM transforms ORDER BY 1" | tr '\n' ' ')
expect_eq "transforms" "$got" "acme/doubled:fromInts acme/stats:fromInts "

# --deny-warnings fails the build and writes nothing; also after the command's name.
rm -f c.db
expect_status 1 "$FLOWCTL" build --catalog c.db --deny-warnings
expect_err "1 warning in the catalog (denied by --deny-warnings); c.db was not written"
[[ ! -e c.db ]] || fail "a catalog was written despite --deny-warnings"
expect_status 1 "$FLOWCTL" test --deny-warnings
expect_err "denied by --deny-warnings"

# Tests run both derivations; warnings don't stop them.
expect_status 0 "$FLOWCTL" test
expect_out "1 passed, 0 failed"
expect_err "warning:"

# -v logs more, before or after the command's name; the default output is unchanged.
expect_status 0 "$FLOWCTL" build --catalog c.db
grep -q "flowctl: debug:" err && fail "debug records without -v"
expect_status 0 "$FLOWCTL" build -vv --catalog c.db
expect_err "flowctl: debug: reading (url=file://"
expect_status 0 "$FLOWCTL" -v build --catalog c.db
grep -q "flowctl: debug:" err && fail "-v showed debug records"
expect_status 0 "$FLOWCTL" build --log-level debug --catalog c.db
expect_err "flowctl: debug: reading"
expect_status 2 "$FLOWCTL" build --log-level loud --catalog c.db
expect_status 2 "$FLOWCTL" build --log-format xml --catalog c.db

# --log-format json: stderr holds only JSON records (time, level, message, fields).
check_json() {  # check_json FILE NODE-EXPR: every line is a record; EXPR over `recs` holds
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(l => l);
    const recs = lines.map((l, i) => {
      try { return JSON.parse(l); } catch (e) { console.error(`line ${i + 1} is not JSON: ${l}`); process.exit(1); }
    });
    for (const r of recs) {
      if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(r.time) || !r.level || typeof r.message !== "string") {
        console.error("not a record: " + JSON.stringify(r)); process.exit(1);
      }
    }
    if (!('"$2"')) { console.error("condition failed: " + process.argv[2]); console.error(lines.join("\n")); process.exit(1); }
  ' "$1" "$2" || fail "json log check: $2"
}
expect_status 0 "$FLOWCTL" build --catalog c.db --log-format json
check_json err 'recs.some(r => r.level === "warn" && r.file === "flow.yaml" && r.line === 22 && r.col === 32 && /never take effect/.test(r.message) && r.hint)'
check_json err 'recs.some(r => r.level === "info" && r.catalog === "c.db" && r.collections === 3 && r.transforms === 2)'
expect_status 0 "$FLOWCTL" --log-format json build -vv --catalog c.db
check_json err 'recs.some(r => r.level === "debug" && r.message === "reading" && /flow.yaml$/.test(r.url))'

printf 'collections: 3\n' > bad.yaml
expect_status 1 "$FLOWCTL" build --source bad.yaml --catalog bad.db --log-format json
check_json err 'recs.some(r => r.level === "error" && r.file === "bad.yaml" && r.line === 1) && recs.some(r => r.level === "error" && r.errors === 1 && /bad.db was not written/.test(r.message))'

expect_status 0 "$FLOWCTL" test --log-format json
check_json err 'recs.some(r => r.test === "both derivations run" && r.result === "pass") && recs.some(r => r.passed === 1 && r.failed === 0)'

printf '{"id": 1, "n": 2}\n{"id": 2, "n": "x"}\n' > ints.jsonl
expect_status 1 "$FLOWCTL" ingest acme/ints ints.jsonl --data-dir data --log-format json
check_json err 'recs.some(r => r.level === "error" && r.where === "ints.jsonl:2" && /nothing was written/.test(r.message))'
printf '{"id": 1, "n": 2}\n' > ints.jsonl
expect_status 0 "$FLOWCTL" ingest acme/ints ints.jsonl --data-dir data --log-format json --log-level debug
check_json err 'recs.some(r => r.level === "debug" && r.message === "journal committed" && r.journal === "acme/ints/pivot=00" && r.offset > 0) && recs.some(r => r.collection === "acme/ints" && r.documents === 1)'
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data --log-format json
check_json err 'recs.some(r => r.kind === "derivation" && r.task === "acme/doubled" && r.in === 1 && r.out === 1) && recs.some(r => r.message === "task started" && r.task === "acme/stats")'
# Usage errors are records too, whichever side of the bad argument the flag is on.
expect_status 2 "$FLOWCTL" build --bogus --log-format json
check_json err 'recs.length === 1 && recs[0].level === "error" && /--bogus/.test(recs[0].message)'
expect_status 2 "$FLOWCTL" --log-format=json docs
check_json err 'recs.length === 1 && /--output is required/.test(recs[0].message)'
expect_status 2 "$FLOWCTL" --log-format json
check_json err 'recs.length === 1 && /a command is required/.test(recs[0].message)'
# Renaming a transform only in case keeps its place in the source: nothing is read twice.
sed -i 's/^        fromInts:$/        FROMINTS:/' flow.yaml
grep -q '^        FROMINTS:$' flow.yaml || fail "the rename did not apply"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_err "derivation \`acme/stats\`: 0 documents read"
expect_status 0 "$FLOWCTL" read acme/stats --reduced --data-dir data
expect_eq "total after a case-only rename" "$(node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(0, "utf8").trim()).total))' < out)" 2
finish
