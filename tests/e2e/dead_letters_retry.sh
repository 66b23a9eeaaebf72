#!/usr/bin/env bash
# Dead letters of a materialization whose target transaction then fails (here a full disk,
# an environment error that is retried): the dead letters were committed first, so the
# retry must be the same transaction, even when more documents of the key arrived in
# between, or a document would be dead-lettered twice, or be both in its row and in dead
# letters. The SQLite target lives on a real, small tmpfs (a private user and mount
# namespace; no privileges needed), as in materialize_disk_full.sh.
if [[ -z ${FLOWCTL_IN_NAMESPACE:-} ]]; then
  if ! unshare -rm true 2>/dev/null; then
    echo "FAIL: this test needs \`unshare -rm\` (unprivileged user namespaces) to mount a small tmpfs" >&2
    exit 1
  fi
  FLOWCTL_IN_NAMESPACE=1 exec unshare -rm "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
cd "$WORK"
mkdir disk
mount -t tmpfs -o size=640k tmpfs disk
trap 'umount disk 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat > flow.yaml <<'YAML'
collections:
  - name: acme/totals
    key: [/id]
    schema:
      type: object
      required: [id]
      reduce: {strategy: merge}
      properties:
        id: {type: integer}
        sum: {type: integer, reduce: {strategy: sum}}
        body: {type: string}
  - name: acme/dead
    key: [/task, /binding, /journal, /offset]
    schema:
      type: object
      required: [task, binding, journal, offset]
      properties: {task: {type: string}, binding: {type: string}, journal: {type: string}, offset: {type: integer}}
materializationTargets:
  small:
    sqlite: {path: disk/totals.db}
materializations:
  acme/small:
    target: small
    bindings:
      - {source: acme/totals, table: totals, deadLetters: acme/dead}
YAML
ingest() { printf '%s\n' "$2" > in.jsonl; expect_status 0 "$FLOWCTL" ingest "$1" in.jsonl --data-dir data; }
sql() { sqlite3 -batch -noheader disk/totals.db "$1"; }
ingest acme/totals '{"id":1,"sum":-9000000000000000000}'
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data

# A document of key 1 that does not reduce into its row, with 3,000 others (about 1 MB of
# rows) that do not fit on the disk: the dead letter is committed, the target's
# transaction fails and is retried, and run gives up.
ingest acme/totals '{"id":1,"sum":-1000000000000000000}'
node -e 'for (let i = 2; i < 3002; i++) console.log(JSON.stringify({id: i, sum: 1, body: "x".repeat(300)}))' > many.jsonl
expect_status 0 "$FLOWCTL" ingest acme/totals many.jsonl --data-dir data
avail=$(df --output=avail -B1 disk | tail -n 1)
fallocate -l $((avail - 96 * 1024)) disk/filler 2>/dev/null ||
  dd if=/dev/zero of=disk/filler bs=1k count=$(((avail - 96 * 1024) / 1024)) 2>/dev/null
expect_status 3 "$FLOWCTL" run --until-idle --data-dir data
grep -qE "database or disk is full|No space left on device" "$WORK/err" ||
  fail "the target did not fail for the full disk: $(head -n 3 "$WORK/err")"
expect_err "sent to dead letters \`acme/dead\`"
expect_eq "the row as it was" "$(sql 'SELECT sum FROM totals WHERE id = 1')" -9000000000000000000

# Another document of key 1 arrives before the retry, and space is freed.
ingest acme/totals '{"id":1,"sum":-5}'
rm disk/filler
mount -o remount,size=8m disk
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "key 1 without the dead-lettered document" "$(sql 'SELECT sum FROM totals WHERE id = 1')" -9000000000000000005
expect_eq "the others" "$(sql 'SELECT count(*), sum(sum) FROM totals WHERE id > 1')" "3000|3000"
expect_status 0 "$FLOWCTL" read acme/dead --reduced --data-dir data
expect_eq "one dead letter" "$(grep -c . "$WORK/out")" 1
grep -qF '"document":{"id":1,"sum":-1000000000000000000,' "$WORK/out" ||
  fail "the dead letter is not the document alone: $(cat "$WORK/out")"
finish
