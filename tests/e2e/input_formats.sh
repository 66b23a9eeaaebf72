#!/usr/bin/env bash
# Inputs of `ingest` and `combine` as users have them: gzip (several members, as pigz or
# `cat a.gz b.gz` make) and zstd files or pipes, decompressed whatever their name; the
# format from the extension under .gz/.zst; damaged compressed input refused with nothing
# written; and CSV or TSV given as JSON lines answered with the --format to pass.
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
        amount: {type: number}
YAML
count() { "$FLOWCTL" read t/orders --data-dir data | wc -l; }
ingest() { expect_status "$1" "$FLOWCTL" ingest t/orders "${@:2}" --data-dir data; }

printf 'id,amount\n1,2.5\n2,3\n' > a.csv
gzip -k a.csv
printf 'id\tamount\n3\t1\n' > b.tsv
zstd -q b.tsv
ingest 0 a.csv.gz
ingest 0 b.tsv.zst
expect_eq "csv.gz and tsv.zst, by their extensions" "$(count)" "3"

# gzip of two members, from a file and from a pipe; zstd of two frames from a pipe.
printf '{"id":4,"amount":1}\n' | gzip > c.jsonl.gz
printf '{"id":5,"amount":1}\n' | gzip >> c.jsonl.gz
ingest 0 c.jsonl.gz
expect_eq "both gzip members" "$(count)" "5"
{ printf '{"id":6}\n' | zstd -q; printf '{"id":7}\n' | zstd -q; } > d.zst
expect_status 0 bash -c "cat d.zst | \"$FLOWCTL\" ingest t/orders --data-dir data"
expect_status 0 bash -c "gzip -c < a.csv | \"$FLOWCTL\" ingest t/orders --format csv --data-dir data"
expect_eq "zstd and gzip on stdin" "$(count)" "9"
expect_status 0 "$FLOWCTL" combine --collection t/orders c.jsonl.gz
expect_eq "combine reads gzip" "$(cat "$WORK/out")" "$(printf '{"id":4,"amount":1}\n{"id":5,"amount":1}')"

# Damaged input: refused, nothing written.
head -c 20 c.jsonl.gz > cut.jsonl.gz
ingest 1 cut.jsonl.gz
expect_err "error: cannot read cut.jsonl.gz: the gzip data is truncated; nothing was written"
head -c 12 d.zst > cut.zst
ingest 1 cut.zst
expect_err "the zstd data is truncated"
{ head -c 12 c.jsonl.gz; head -c 200 /dev/urandom | tr '\037' x; } > bad.gz
ingest 1 bad.gz
expect_err "corrupt gzip data"
printf '{"id":8}\n' > plain.gz
ingest 1 plain.gz
expect_err "plain.gz is not gzip data, though its name ends in .gz"
expect_status 1 "$FLOWCTL" combine --collection t/orders cut.jsonl.gz
expect_err "the gzip data is truncated"
expect_eq "nothing of damaged input" "$(count)" "9"

# CSV or TSV read as JSON lines: the error says which --format to pass.
expect_status 1 bash -c "\"$FLOWCTL\" ingest t/orders --data-dir data < a.csv"
expect_err "<stdin>:1:1: error: invalid JSON: Invalid value. It looks like CSV: pass --format csv. Nothing was written."
ingest 1 b.tsv --format json
expect_err "It looks like TSV: pass --format tsv"
printf '{"id":9,}\n' > broken.jsonl
ingest 1 broken.jsonl
if grep -q "looks like" "$WORK/err"; then fail "a JSON line got a CSV hint: $(cat "$WORK/err")"; fi
finish
