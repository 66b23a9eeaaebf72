#!/usr/bin/env bash
# `flowctl run` runs file-drop captures (SPEC 8): dropped files are ingested once each, in
# name order, moved to .done/; a file with an invalid row goes to .failed/ with its error,
# nothing of it is written, and --until-idle exits 1. A capture whose directory cannot be
# made is an environment error (exit 3), named once.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cat > flow.yaml <<'YAML'
collections:
  - name: acme/orders
    key: [/id]
    schema:
      type: object
      required: [id, total]
      reduce: {strategy: merge}
      properties:
        id: {type: integer}
        total: {type: integer, reduce: {strategy: lastWriteWins}}
captures:
  acme/drop:
    endpoint:
      fileDrop: {path: incoming, format: csv}
    bindings:
      - target: acme/orders
YAML
mkdir -p incoming
printf 'id,total\n1,10\n2,20\n' > incoming/a.csv
printf 'id,total\n1,11\n' > incoming/b.csv
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_err "capture \`acme/drop\`: 2 files, 3 documents ingested"
expect_eq "files moved to .done" "$(ls incoming/.done | tr '\n' ' ')" "a.csv b.csv "
expect_status 0 "$FLOWCTL" read acme/orders --reduced --data-dir data
expect_eq "name order decides the last write" "$(grep -o '"id":1,"total":[0-9]*' "$WORK/out")" '"id":1,"total":11'
printf 'id,total\n3,30\n4,oops\n' > incoming/c.csv
expect_status 1 "$FLOWCTL" run --until-idle --data-dir data
expect_err "row 2 (line 3)"
[[ -f incoming/.failed/c.csv && -f incoming/.failed/c.csv.error ]] || fail "c.csv is not in .failed with its error"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_status 0 "$FLOWCTL" read acme/orders --data-dir data
expect_eq "nothing of the failed file, nothing twice" "$(wc -l < "$WORK/out")" "3"
mkdir other && cp flow.yaml other/ && touch other/incoming
cd other
expect_status 3 "$FLOWCTL" run --until-idle --data-dir data
cd ..
expect_err "error: capture \`acme/drop\`: cannot create directory"
if grep -q 'drop`: capture' "$WORK/err"; then fail "the capture is named twice: $(cat "$WORK/err")"; fi
finish
