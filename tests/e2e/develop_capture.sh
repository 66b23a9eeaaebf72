#!/usr/bin/env bash
# File-drop captures (SPEC 1.8, docs/captures.md) through a real `flowctl develop`: files
# dropped into capture directories (JSON lines, CSV, TSV, gzipped) are ingested exactly
# once each, in byte-wise name order, then moved to .done/; a file with an invalid row goes
# to .failed/ with an .error naming its place and writes nothing; .tmp/.part/dotfiles are
# left alone; after a SIGKILL and a restart no file is ingested twice; the captures show in
# the status lines.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

# The order of each capture's files, as seen by a derivation: every file holds one
# document with the capture's marker id (10 json, 20 csv, 30 tsv) naming the file, and
# acme/sequence appends those names per marker.
cat > flow.yaml <<'YAML'
collections:
  - name: acme/events
    key: [/id]
    schema:
      type: object
      required: [id, file]
      properties:
        id: {type: integer}
        file: {type: string}
        n: {type: integer}
  - name: acme/sequence
    key: [/k]
    schema:
      type: object
      required: [k]
      reduce: {strategy: merge}
      properties:
        k: {type: integer}
        files: {type: array, items: {type: string}, reduce: {strategy: append}}
    derivation:
      transform:
        fromEvents:
          source: {name: acme/events}
          publish: {sqlite: "SELECT json_object('k', $id, 'files', json_array($file)) WHERE $id IN (10, 20, 30)"}
captures:
  acme/json-drop:
    endpoint: {fileDrop: {path: drop/json}}
    bindings: [{target: acme/events}]
  acme/csv-drop:
    endpoint: {fileDrop: {path: drop/csv, format: csv}}
    bindings: [{target: acme/events}]
  acme/tsv-drop:
    endpoint: {fileDrop: {path: drop/tsv, format: tsv}}
    bindings: [{target: acme/events}]
YAML

# count DIR: the files directly in DIR.
count() { find "$1" -maxdepth 1 -type f | wc -l; }
count_is() { [[ $(count "$1") -eq $2 ]]; }
names() { (cd "$1" && LC_ALL=C ls -A | tr '\n' ' '); }
# jsonl N0 N1 FILE: documents N0..N1 of FILE, then FILE's marker.
jsonl() {
  local marker=$1 a=$2 b=$3 f=$4
  for ((i = a; i <= b; i++)); do printf '{"id":%d,"file":"%s","n":%d}\n' "$i" "$f" "$((i * 2))"; done
  printf '{"id":%d,"file":"%s"}\n' "$marker" "$f"
}
# sep SEP MARKER N0 N1 FILE: the same as CSV (SEP ,) or TSV (SEP \t), with a header.
sep() {
  local s=$1 marker=$2 a=$3 b=$4 f=$5
  printf 'id%sfile%sn\n' "$s" "$s"
  for ((i = a; i <= b; i++)); do printf '%d%s%s%s%d\n' "$i" "$s" "$f" "$s" "$((i * 2))"; done
  printf '%d%s%s\n' "$marker" "$s" "$f"  # a short row: /n is absent
}
sequence() {
  "$FLOWCTL" read acme/sequence --reduced --data-dir data 2>/dev/null |
    node -e 'const l = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean).map(JSON.parse);
      for (const d of l) console.log(d.k + ": " + d.files.join(" "));'
}
sequence_is() { [[ "$(sequence)" == "$1" ]]; }
# ids: the ids of acme/events' documents, one a line, in commit order.
ids() { "$FLOWCTL" read acme/events --data-dir data 2>/dev/null | node -e '
  for (const l of require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean)) console.log(JSON.parse(l).id);'; }
status_line() { grep -qE -- "$1" dev.err; }

mkdir -p stage
start_develop --status-interval 0.3
for d in json csv tsv; do [[ -d drop/$d ]] || fail "develop did not create the capture directory drop/$d"; done

# 1. Files dropped while develop is paused, in reverse name order with decreasing mtimes,
#    are ingested in byte-wise name order (a-10 before a-9) once develop resumes.
kill -STOP "$dev_pid"
jsonl 10 100 102 a-9.json > stage/a-9.json
jsonl 10 110 112 a-10.json > stage/a-10.json
jsonl 10 120 122 a-02.json.gz | gzip -c > stage/a-02.json.gz
jsonl 10 130 132 a-01.json > stage/a-01.json
sep , 20 200 203 b-2.csv.gz | gzip -c > stage/b-2.csv.gz
sep , 20 210 211 b-1.csv > stage/b-1.csv
sep $'\t' 30 300 302 c-2.tsv > stage/c-2.tsv
sep $'\t' 30 310 310 c-1.tsv.gz | gzip -c > stage/c-1.tsv.gz
# Left alone: files being written and dotfiles.
jsonl 10 700 700 a-12.json > drop/json/x.tmp
jsonl 10 701 701 y.part > drop/json/y.part
jsonl 10 702 702 .hidden.json > drop/json/.hidden.json
sep , 20 703 703 .z.csv > drop/csv/.z.csv
for f in a-9.json a-10.json a-02.json.gz a-01.json; do mv stage/$f drop/json/; done
for f in b-2.csv.gz b-1.csv; do mv stage/$f drop/csv/; done
for f in c-2.tsv c-1.tsv.gz; do mv stage/$f drop/tsv/; done
kill -CONT "$dev_pid"

wait_until 15 count_is drop/json/.done 4 || fail "json files not all done: $(names drop/json)"
wait_until 10 count_is drop/csv/.done 2 || fail "csv files not all done: $(names drop/csv)"
wait_until 10 count_is drop/tsv/.done 2 || fail "tsv files not all done: $(names drop/tsv)"
expect_eq "json .done" "$(names drop/json/.done)" "a-01.json a-02.json.gz a-10.json a-9.json "
expect_eq "csv .done" "$(names drop/csv/.done)" "b-1.csv b-2.csv.gz "
expect_eq "tsv .done" "$(names drop/tsv/.done)" "c-1.tsv.gz c-2.tsv "
expect_eq "left in the json directory" "$(names drop/json)" ".done .hidden.json x.tmp y.part "
expect_eq "left in the csv directory" "$(names drop/csv)" ".done .z.csv "
want_sequence="10: a-01.json a-02.json.gz a-10.json a-9.json
20: b-1.csv b-2.csv.gz
30: c-1.tsv.gz c-2.tsv"
wait_until 10 sequence_is "$want_sequence" || expect_eq "the order the files were ingested in" "$(sequence)" "$want_sequence"
# lastWriteWins on the marker: the last file by name wins.
expect_eq "the marker's last write" \
  "$("$FLOWCTL" read acme/events --reduced --data-dir data 2>/dev/null | grep '"id":10,' | sed 's/,"_meta".*//')" \
  '{"id":10,"file":"a-9.json"'
# CSV/TSV cells become integers; gzipped files are read whole.
"$FLOWCTL" read acme/events --reduced --data-dir data > reduced.jsonl 2>/dev/null
# doc ID: the reduced document ID, its properties sorted, without _meta.
doc() { node -e '
  for (const l of require("fs").readFileSync("reduced.jsonl", "utf8").split("\n").filter(Boolean)) {
    const {_meta, ...d} = JSON.parse(l);
    if (d.id === +process.argv[1]) console.log(JSON.stringify(d, Object.keys(d).sort()));
  }' "$1"; }
expect_eq "a row of a .csv.gz" "$(doc 201)" '{"file":"b-2.csv.gz","id":201,"n":402}'
expect_eq "a short row of a .csv" "$(doc 20)" '{"file":"b-2.csv.gz","id":20}'
expect_eq "a row of a .tsv.gz" "$(doc 310)" '{"file":"c-1.tsv.gz","id":310,"n":620}'
expect_eq "a row of a .json.gz" "$(doc 122)" '{"file":"a-02.json.gz","id":122,"n":244}'
# Exactly once: 8 files, each with its rows and one marker.
ids > ids.txt
expect_eq "documents written" "$(wc -l < ids.txt)" "$((4 * 4 + 5 + 3 + 4 + 2))"
expect_eq "documents of ignored files" "$(grep -cE '^70[0-3]$' ids.txt || true)" "0"
expect_eq "duplicated ids (markers aside)" "$(grep -vE '^(10|20|30)$' ids.txt | sort | uniq -d | tr '\n' ' ')" ""
wait_until 5 status_line 'status: capture `acme/json-drop` running in=4 out=16 lag=-' ||
  fail "no status line for acme/json-drop with 4 files: $(grep 'status: capture' dev.err | tail -3)"
wait_until 5 status_line 'status: capture `acme/csv-drop` running in=2 out=8 ' ||
  fail "no status line for acme/csv-drop: $(grep 'status: capture `acme/csv-drop`' dev.err | tail -1)"
wait_until 5 status_line 'status: capture `acme/tsv-drop` running in=2 out=6 ' ||
  fail "no status line for acme/tsv-drop: $(grep 'status: capture `acme/tsv-drop`' dev.err | tail -1)"

# 2. A file with an invalid row goes to .failed/ with its error; nothing of it is written.
#    Renaming a .tmp file into a captured name ingests it.
{ jsonl 10 400 401 a-11.json; printf '{"id":402,"file":7}\n'; } > stage/a-11.json
{ sep , 20 500 501 b-3.csv; printf 'oops,b-3.csv,1\n'; } > stage/b-3.csv
mv stage/a-11.json drop/json/
mv stage/b-3.csv drop/csv/
wait_until 10 test -f drop/json/.failed/a-11.json.error || fail "a-11.json was not failed: $(names drop/json)"
wait_until 10 test -f drop/csv/.failed/b-3.csv.error || fail "b-3.csv was not failed: $(names drop/csv)"
expect_eq "json .failed" "$(names drop/json/.failed)" "a-11.json a-11.json.error "
expect_eq "csv .failed" "$(names drop/csv/.failed)" "b-3.csv b-3.csv.error "
grep -q '^a-11.json:4: ' drop/json/.failed/a-11.json.error ||
  fail "the .error of a-11.json names line 4: $(cat drop/json/.failed/a-11.json.error)"
grep -q '/file' drop/json/.failed/a-11.json.error ||
  fail "the .error of a-11.json names the location /file: $(cat drop/json/.failed/a-11.json.error)"
grep -q '^b-3.csv: row 4 (line 5)' drop/csv/.failed/b-3.csv.error ||
  fail "the .error of b-3.csv names row 4 (line 5): $(cat drop/csv/.failed/b-3.csv.error)"
wait_until 5 status_line 'error: capture `acme/json-drop`: a-11.json:4: .*moved to .*drop/json/.failed/a-11.json' ||
  fail "develop logs the failed file: $(grep a-11 dev.err)"
mv drop/json/x.tmp drop/json/a-12.json
wait_until 10 test -f drop/json/.done/a-12.json || fail "a-12.json (renamed from x.tmp) was not ingested: $(names drop/json)"
wait_until 5 status_line 'status: capture `acme/json-drop` 1 failed in=5 out=18 ' ||
  fail "no status line for acme/json-drop with a failed file: $(grep 'status: capture `acme/json-drop`' dev.err | tail -1)"
wait_until 5 status_line 'status: capture `acme/csv-drop` 1 failed in=2 out=8 ' ||
  fail "no status line for acme/csv-drop with a failed file: $(grep 'status: capture `acme/csv-drop`' dev.err | tail -1)"
ids > ids.txt
expect_eq "documents of failed files" "$(grep -cE '^(40[0-2]|50[01])$' ids.txt || true)" "0"
expect_eq "documents of a-12.json" "$(grep -cE '^700$' ids.txt || true)" "1"

# 3. SIGKILL while a batch of files is being ingested, then a restart: each file once.
for i in $(seq -w 1 40); do jsonl 10 $((1000 + 10 * 10#$i)) $((1004 + 10 * 10#$i)) d-$i.json > stage/d-$i.json; done
for i in $(seq -w 1 40); do mv stage/d-$i.json drop/json/; done
wait_until 10 test -f drop/json/.done/d-01.json || fail "d-01.json was not ingested"
stop_develop KILL
killed_done=$(count drop/json/.done)
start_develop --status-interval 0.3
wait_until 20 count_is drop/json/.done $((5 + 40)) || fail "not every d-*.json is done after the restart: $(names drop/json)"
expect_eq "files done twice (suffixed names)" "$(ls drop/json/.done | grep -cE '\.[0-9]+$' || true)" "0"
want_sequence="10: a-01.json a-02.json.gz a-10.json a-9.json a-12.json $(seq -f 'd-%02g.json' 1 40 | tr '\n' ' ' | sed 's/ $//')
20: b-1.csv b-2.csv.gz
30: c-1.tsv.gz c-2.tsv"
wait_until 10 sequence_is "$want_sequence" || expect_eq "the files ingested, in order, across the SIGKILL (killed with $killed_done done)" "$(sequence)" "$want_sequence"
ids > ids.txt
expect_eq "documents after the restart" "$(wc -l < ids.txt)" "$((4 * 4 + 5 + 3 + 4 + 2 + 2 + 6 * 40))"
expect_eq "duplicated ids after the restart (markers aside)" "$(grep -vE '^(10|20|30)$' ids.txt | sort | uniq -d | tr '\n' ' ')" ""

# 4. The last file committed, back in the directory unchanged (`mv` keeps its inode and
#    mtime) as after a crash between its commit and its move: moved, not ingested again.
stop_develop TERM
expect_eq "develop stopped by SIGTERM exits" "$dev_rc" "0"
mv drop/json/.done/d-40.json drop/json/
# And a copy of an ingested file under a new name is a new file.
cp drop/json/.done/d-01.json stage/e-01.json && mv stage/e-01.json drop/json/
start_develop --status-interval 0.3
wait_until 10 test -f drop/json/.done/d-40.json || fail "d-40.json was not moved back to .done: $(names drop/json)"
wait_until 10 test -f drop/json/.done/e-01.json || fail "e-01.json was not ingested: $(names drop/json)"
wait_until 10 sequence_is "${want_sequence/d-40.json/d-40.json d-01.json}" ||
  expect_eq "the files ingested after the restart" "$(sequence)" "${want_sequence/d-40.json/d-40.json d-01.json}"
ids > ids.txt
expect_eq "d-40.json's documents" "$(grep -cE '^140[0-4]$' ids.txt || true)" "5"
expect_eq "d-01.json's documents (again through e-01.json)" "$(grep -cE '^101[0-4]$' ids.txt || true)" "10"
expect_eq "left in the json directory at the end" "$(names drop/json)" ".done .failed .hidden.json y.part "
stop_develop INT
expect_eq "develop stopped by SIGINT exits" "$dev_rc" "0"
grep -q 'stopped; spools persisted' dev.err || fail "develop did not say it persisted its spools"
[[ ! -e data/develop.json ]] || fail "develop.json is left behind after a clean stop"
finish
