#!/usr/bin/env bash
# Numbers are read exactly wherever documents enter (SPEC 9): RapidJSON 1.1's
# full-precision conversion turned `0e-23` into -1.75e-192, `-0e300` into 2.2e-75 and
# `0.184467440737095516159` into -6.5e-201, and read `1.7976931348623159e308` as infinity
# (found by fuzz/doc_parse and fuzz/csv_feed; see src/doc/parse.cc). Through JSON lines and
# CSV, such values are stored as the numbers they are, and one beyond the largest double
# is refused with its place, writing nothing.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

cat > flow.yaml <<'YAML'
collections:
  - name: acme/readings
    key: [/id]
    schema:
      type: object
      required: [id]
      properties:
        id: {type: integer}
        a: {type: number}
        b: {type: number}
        c: {type: number}
        d: {type: number, minimum: 0}
YAML
ingest() { "$FLOWCTL" ingest --source flow.yaml --data-dir data "$@"; }

printf '%s\n' '{"id":1,"a":0e-23,"b":-0e300,"c":0.184467440737095516159,"d":0.000000000000000000000000}' \
  > readings.json
expect_status 0 ingest acme/readings readings.json
printf 'id,a,b,c,d\n2,0E-30,-0.0e400,1844674407370955161.59e-19,0.0e-50\n' > readings.csv
expect_status 0 ingest acme/readings readings.csv
expect_status 0 "$FLOWCTL" read --source flow.yaml --data-dir data acme/readings
got=$(sed -E 's/,"_meta":\{[^}]*\}//' "$WORK/out")
want='{"id":1,"a":0.0,"b":-0.0,"c":0.1844674407370955,"d":0.0}
{"a":0.0,"b":-0.0,"c":0.1844674407370955,"d":0.0,"id":2}'
expect_eq "documents read back" "$got" "$want"

printf '%s\n' '{"id":3,"a":1}' '{"id":4,"a":1.7976931348623159e308}' > big.json
expect_status 1 ingest acme/readings big.json
expect_err "big.json:2"
expect_err "Number too big to be stored in double"
printf 'id,a\n5,1.7976931348623159e308\n' > big.csv
expect_status 1 ingest acme/readings big.csv
expect_err "\`1.7976931348623159e308\` is outside the range of a double"
expect_status 0 "$FLOWCTL" read --source flow.yaml --data-dir data acme/readings
expect_eq "documents after the refused ingests" "$(wc -l < "$WORK/out")" 2

finish
