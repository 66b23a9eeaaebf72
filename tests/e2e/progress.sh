#!/usr/bin/env bash
# Progress of long work: on a terminal one line redrawn in place, with the percentage of a
# file of known size and the phase after the commit; with --log-format json, periodic
# "progress" records; into a pipe, nothing.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cat > flow.yaml <<'YAML'
collections:
  - name: t/orders
    key: [/id]
    schema:
      type: object
      required: [id]
      properties:
        id: {type: integer}
        amount: {type: integer}
YAML
seq 1 200000 | awk '{printf "{\"id\":%d,\"amount\":%d}\n", $1, $1 % 100}' > orders.jsonl
head -n 1000 orders.jsonl > head.jsonl
# waitfor.sh FILE TEXT: waits (up to 60 s) until FILE holds TEXT. The inputs below pause
# until flowctl has shown what is tested, so a slow start on a loaded machine cannot skip it.
# It is a script, not a function: script(1) runs its command with $SHELL, which may be a
# shell that drops exported bash functions (dash does).
cat > waitfor.sh <<'SH'
for _ in $(seq 600); do grep -qF -- "$2" "$1" 2>/dev/null && exit 0; sleep 0.1; done
SH
# A terminal (script(1) gives one). The input pauses mid-way until the line is drawn, so it
# is drawn while the input is read.
: > tty.txt
env -u NO_COLOR SHELL=/bin/sh script -qc "{ cat head.jsonl; bash waitfor.sh '$WORK/tty.txt' 'ingesting:'; tail -n +1001 orders.jsonl; } | \"$FLOWCTL\" ingest t/orders --data-dir data" /dev/null > tty.txt
tr '\r' '\n' < tty.txt > lines.txt
grep -Eq '^.\[Kingesting: [0-9,]+ documents, [0-9.]+ MB' lines.txt || fail "no progress line while reading: $(cat -v lines.txt | head)"
grep -q 'ingested 200000 documents' lines.txt || fail "no summary: $(cat -v lines.txt | tail -3)"
# A file of known size: the percentage; the line is erased before the summary.
env -u NO_COLOR script -qc "\"$FLOWCTL\" ingest t/orders orders.jsonl --data-dir data2 --threads 1" /dev/null > tty.txt
tr '\r' '\n' < tty.txt > lines.txt
if grep -q 'ingesting:' lines.txt; then
  grep -Eq '^.\[Kingesting: [0-9,]+ documents, [0-9.]+ of 5\.[0-9] MB \([0-9]+%\)' lines.txt ||
    fail "no percentage for a file: $(cat -v lines.txt | head -3)"
  grep -Eq '^(.\[K)?ingested 200000 documents' lines.txt ||
    fail "the progress line is not erased before the summary: $(cat -v lines.txt | tail -3)"
else
  echo "note: the ingest ended before the first redraw"
fi
# Into a pipe: no progress, no escape codes (the input pauses for a second).
expect_status 0 bash -c "{ cat head.jsonl; sleep 1; tail -n +1001 orders.jsonl; } | \"$FLOWCTL\" ingest t/orders --data-dir data3"
if grep -q $'\033\|\r' "$WORK/err"; then fail "progress written to a pipe: $(cat -v "$WORK/err")"; fi
# --log-format json: a progress record every 5 s (the input pauses until the first one).
expect_status 0 bash -c "{ cat head.jsonl; bash waitfor.sh \"$WORK/err\" '\"progress\"'; } | \"$FLOWCTL\" combine --collection t/orders --log-format json > /dev/null"
node -e '
  const recs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const p = recs.filter((r) => r.message === "progress");
  if (p.length < 1 || p[0].verb !== "combining" || typeof p[0].documents !== "number" || !(p[0].elapsed >= 4)) {
    console.error(JSON.stringify(recs)); process.exit(1);
  }' "$WORK/err" || fail "no JSON progress record"
# flowctl test: on a terminal, the test being run, with results printed above the line; the
# lambda waits until the line is drawn (or 20 s), so the test lasts until it is seen.
mkdir slowtest && cd slowtest
cat > flow.yaml <<'YAML'
collections:
  - name: t/in
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
  - name: t/out
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
    derivation:
      transform:
        copy:
          source: {name: t/in}
          publish:
            nodeJS: |
              const fs = require("fs");
              const until = Date.now() + 20000;
              while (source.id === 2 && Date.now() < until && !fs.readFileSync(process.env.TTY_FILE, "utf8").includes("testing: test 2 of 2")) {}
              return [source];
tests:
  "a quick one":
    - ingest: {collection: t/in, documents: [{id: 1}]}
    - verify: {collection: t/in, documents: [{id: 1}]}
  "a slow one":
    - ingest: {collection: t/in, documents: [{id: 2}]}
    - verify: {collection: t/out, documents: [{id: 2}]}
YAML
export TTY_FILE="$WORK/slowtest/tty.txt"
: > tty.txt
env -u NO_COLOR script -qc "\"$FLOWCTL\" test" /dev/null > tty.txt
tr '\r' '\n' < tty.txt > lines.txt
grep -Eq '^.\[Ktesting: test 2 of 2, a slow one$' lines.txt || fail "no line for the running test: $(cat -v lines.txt)"
grep -Eq '^(.\[K)?.*PASS.* a slow one \(' lines.txt || fail "the result is not printed over the line: $(cat -v lines.txt)"
tail -n 1 lines.txt | grep -qx '2 passed, 0 failed' || tail -n 2 lines.txt | grep -qx '2 passed, 0 failed' ||
  fail "the summary is not last: $(cat -v lines.txt | tail -3)"
# Results into a pipe (stdout) while stderr is the terminal: stdout has no escape codes.
: > tty.txt
script -qc "\"$FLOWCTL\" test > piped.txt" /dev/null > tty.txt
if grep -q $'\033\|\r' piped.txt; then fail "escape codes in piped results: $(cat -v piped.txt)"; fi
grep -qx '2 passed, 0 failed' piped.txt || fail "piped results: $(cat piped.txt)"
grep -q 'testing: test 2 of 2' tty.txt || fail "no progress on the terminal stderr: $(cat -v tty.txt)"
cd "$WORK"
finish
