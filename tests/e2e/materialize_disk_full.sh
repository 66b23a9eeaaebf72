#!/usr/bin/env bash
# A SQLite target on a full disk: a real, small tmpfs (mounted in a private user and mount
# namespace, so no privileges are needed) holds the database. With the disk full, `run`
# reports the target and SQLite's reason, retries with backoff, exits 3 with --until-idle,
# and commits nothing; once space is freed, the next run stores everything, exactly once.
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
  - name: acme/events
    key: [/id]
    schema:
      type: object
      required: [id, body]
      properties:
        id: {type: integer}
        body: {type: string}
materializationTargets:
  small:
    sqlite: {path: disk/events.db}
materializations:
  acme/small:
    target: small
    bindings:
      - {source: acme/events, table: events}
YAML
events() {  # events FROM TO: documents with ~300-byte bodies
  node -e 'for (let i = +process.argv[1]; i < +process.argv[2]; i++)
    console.log(JSON.stringify({id: i, body: `event ${i} `.padEnd(300, "x")}))' "$1" "$2"
}
rows() { sqlite3 -batch -noheader disk/events.db 'SELECT count(*), coalesce(sum(id), 0) FROM events'; }

events 0 100 > first.jsonl
expect_status 0 "$FLOWCTL" ingest acme/events first.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "rows before the disk fills" "$(rows)" "100|4950"

# Leave 96 KiB free: the run opens the database but its transaction of 3,000 more events
# (about 1 MB of rows) fails part way; it is rolled back whole.
avail=$(df --output=avail -B1 disk | tail -n 1)
fallocate -l $((avail - 96 * 1024)) disk/filler 2>/dev/null ||
  dd if=/dev/zero of=disk/filler bs=1k count=$(((avail - 96 * 1024) / 1024)) 2>/dev/null
events 100 3100 > second.jsonl
expect_status 0 "$FLOWCTL" ingest acme/events second.jsonl --data-dir data
full_run() {  # a run on the full disk fails as an environment error
  expect_status 3 "$FLOWCTL" run --until-idle --data-dir data
  expect_err "materialization \`acme/small\`"
  expect_err "target \`small\`"
  grep -qE "database or disk is full|No space left on device" "$WORK/err" ||
    fail "the error does not say the disk is full: $(head -n 1 "$WORK/err")"
  expect_err "retrying in"
  expect_err "0 rows stored"
}
full_run
expect_eq "nothing committed when the disk fills during a transaction" "$(rows)" "100|4950"

# No space at all: even opening the database (its write-ahead log) fails.
dd if=/dev/zero of=disk/filler2 bs=4k 2>/dev/null || true
full_run
rm disk/filler disk/filler2
expect_eq "nothing committed when the disk is full before the run" "$(rows)" "100|4950"

# Space again (the 640 KiB disk still cannot hold all of it: grow it to 8 MiB).
mount -o remount,size=8m disk
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_eq "every event stored once after space is freed" "$(rows)" "3100|4803450"
sqlite3 -batch -noheader disk/events.db 'SELECT flow_document FROM events WHERE id = 2500' > one.json
expect_eq "a row's document" "$(node -e 'const d = JSON.parse(require("fs").readFileSync("one.json")); console.log(d.id, d.body.length)')" "2500 300"
finish
