#!/usr/bin/env bash
# Crash safety of back-fills (SPEC 11, issue 18), into SQLite and a real PostgreSQL server: a
# derivation's lambda is edited, then `flowctl run --until-idle --backfill` is killed with
# SIGKILL at random instants (at least BF_KILLS times; some right after its reset committed,
# before the tables were rebuilt), sometimes re-run without --backfill (which must continue a
# back-fill whose reset committed, or go on from the old state when it did not), sometimes
# left to finish. After every kill the data directory passes `flowctl fsck`, and the derived
# collection holds one logic only (the old one before the first reset committed, the new one
# after). Once a last `run --until-idle` (without --backfill) completes, the derived
# collection is what the new logic gives over every source document (computed independently,
# with awk), its register counted every document once, and both tables equal `flowctl read
# --reduced` of it, row for row.
#
# BF_KILLS (default 24), BF_SEED (default: random, printed) and BF_DOCS (default 40000) tune
# the loop; BF_VERBOSE=1 prints every iteration.
source "$(dirname "$0")/lib.sh"
KILLS=${BF_KILLS:-24}
# About half the iterations land a kill (the others finish first: 1 in 10 by design, and runs
# without --backfill that have no back-fill to continue); twice as many iterations as that
# needs made a run under the sanitizers fail by bad luck (23 of 24 in 58), hence 3x.
MAX_ITER=$((KILLS * 3 + 10))
SEED=${BF_SEED:-$((($$ ^ ${EPOCHREALTIME/./}) % 100000))}
RANDOM=$SEED
echo "backfill_crash.sh: seed $SEED (rerun with BF_SEED=$SEED)"
cd "$WORK"
chmod 755 "$WORK"  # the server runs as another user when we are root
pg=$WORK/pg
uri=$("$REPO/scripts/pg.sh" start "$pg" | tail -n 1)
pid=''
trap 'if [[ -n $pid ]]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  "$REPO/scripts/pg.sh" stop "$pg" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
psql() { "$REPO/scripts/pg.sh" psql "$pg" -At "$@"; }
lite() { sqlite3 -batch -noheader "$WORK/lite.db" "$@"; }

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }
T0=$(now_ms)

# render FACTOR: the catalog, its lambda multiplying by FACTOR. bf/sums counts, per group,
# the events (n, and seq from a register counting them too), the sum of v * FACTOR, and
# FACTOR itself (lo, hi): a document of the old logic left in the collection shows in lo.
render() {
  cat >flow.yaml <<YAML
collections:
  - name: bf/events
    key: [/id]
    schema:
      type: object
      required: [id, p, g, v]
      properties:
        id: {type: integer}
        p: {type: string, enum: [a, b]}
        g: {type: integer}
        v: {type: integer}
    projections:
      p: {location: /p, partition: true}
  - name: bf/sums
    key: [/g]
    schema:
      type: object
      required: [g]
      reduce: {strategy: merge}
      properties:
        g: {type: integer}
        total: {type: integer, reduce: {strategy: sum}}
        n: {type: integer, reduce: {strategy: sum}}
        seq: {type: integer, reduce: {strategy: maximize}}
        lo: {type: integer, reduce: {strategy: minimize}}
        hi: {type: integer, reduce: {strategy: maximize}}
    derivation:
      register:
        schema:
          type: object
          reduce: {strategy: merge}
          properties:
            n: {type: integer, reduce: {strategy: sum}}
        initial: {n: 0}
      transform:
        fromEvents:
          source: {name: bf/events}
          shuffle: [/g]
          update: {sqlite: "SELECT 1 AS n"}
          publish:
            sqlite: >-
              SELECT \$g AS g, \$v * $1 AS total, 1 AS n, json_extract(\$register, '\$.n') AS seq,
              $1 AS lo, $1 AS hi
materializationTargets:
  lite: {sqlite: {path: $WORK/lite.db}}
  pg: {postgres: {uri: "$uri"}}
materializations:
  bf/to-lite:
    target: lite
    bindings: [{source: bf/sums, table: sums}]
  bf/to-pg:
    target: pg
    bindings: [{source: bf/sums, table: sums}]
YAML
}

# The source: N events over G groups, in 4 ingests (so the journals hold several transactions).
N=${BF_DOCS:-40000} G=4000
awk -v n="$N" -v g="$G" 'BEGIN {
  for (i = 1; i <= n; i++)
    printf "{\"id\":%d,\"p\":\"%s\",\"g\":%d,\"v\":%d}\n", i, (i % 3 ? "a" : "b"), (i * 7) % g, (i * 7919) % 1000
}' >events.jsonl
split -n l/4 -d events.jsonl part-
render 1
for f in part-*; do
  expect_status 0 "$FLOWCTL" ingest bf/events "$f" --data-dir data
done
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_err "derivation \`bf/sums\`: $N documents read"

# want FACTOR: `g|total|n|seq|lo|hi` per group, as FACTOR's logic gives over events.jsonl.
want() {
  awk -F'[:,}]' -v f="$1" '{ g = $6; n[g]++; t[g] += $8 * f }
    END { for (g in n) printf "%d|%d|%d|%d|%d|%d\n", g, t[g], n[g], n[g], f, f }' events.jsonl | sort -t'|' -k1,1n
}
# reduced: the same lines from `flowctl read bf/sums --reduced` (and the documents, without
# _meta, in reduced.docs).
reduced() {
  "$FLOWCTL" read bf/sums --reduced --data-dir data >reduced.jsonl 2>read.err ||
    fail "flowctl read bf/sums --reduced failed: $(head -c 300 read.err)"
  node -e '
    const fs = require("fs");
    const out = [], docs = [];
    for (const l of fs.readFileSync("reduced.jsonl", "utf8").split("\n").filter(Boolean)) {
      const d = JSON.parse(l);
      delete d._meta;
      out.push([d.g, d.total, d.n, d.seq, d.lo, d.hi].join("|"));
      docs.push(JSON.stringify(d));
    }
    fs.writeFileSync("reduced.docs", docs.join("\n") + "\n");
    console.log(out.join("\n"));' | sort -t'|' -k1,1n
}
# table sqlite|pg: the table's rows, the same way (and flow_document without _meta in
# table.docs, in the order of reduced.docs).
table() {
  if [[ $1 == sqlite ]]; then
    lite "SELECT g, total, n, seq, lo, hi, flow_document FROM sums ORDER BY g"
  else
    psql -F '|' -c "SELECT g, total, n, seq, lo, hi, flow_document FROM sums ORDER BY g"
  fi | node -e '
    const fs = require("fs");
    const out = [], docs = [];
    for (const l of fs.readFileSync(0, "utf8").split("\n").filter(Boolean)) {
      const f = l.split("|");
      const d = JSON.parse(f.slice(6).join("|"));
      delete d._meta;
      out.push(f.slice(0, 6).join("|"));
      docs.push(JSON.stringify(d));
    }
    fs.writeFileSync("table.docs", docs.join("\n") + "\n");
    console.log(out.join("\n"));'
}
# equal_tables LABEL: both tables equal `flowctl read --reduced`, row for row and document
# for document.
equal_tables() {
  local r t
  r=$(reduced)
  for tgt in sqlite pg; do
    t=$(table $tgt)
    if [[ $t != "$r" ]]; then
      fail "$1: the $tgt table differs from flowctl read --reduced (< table, > reduced):"
      diff <(echo "$t") <(echo "$r") | head -10 >&2
    elif ! cmp -s table.docs reduced.docs; then
      fail "$1: the $tgt table's flow_document differs from flowctl read --reduced:"
      diff table.docs reduced.docs | head -6 >&2
    fi
  done
}
expect_eq "the first run: the derived collection" "$(reduced)" "$(want 1)"
equal_tables "the first run"
echo "setup: $N events over $G groups derived and materialized ($(since "$T0"))"

# logics: the derived collection's documents by logic (`lo=1:COUNT lo=10:COUNT`).
logics() {
  "$FLOWCTL" read bf/sums --data-dir data 2>read.err | { grep -o '"lo":[0-9]*' || true; } | sed 's/"lo"://' | sort -n | uniq -c |
    awk '{ printf "%slo=%s:%s", (NR > 1 ? " " : ""), $2, $1 }'
}

# resets: how many back-fill resets the ledger has committed (its records that set
# generations; the format is described in src/store/ledger.h). For the summary, and to kill
# a run right after its reset committed.
resets() { grep -c '^[0-9a-f]* {"generations":' data/ledger || true; }

# The lambda changes. Calibrate: how long an uninterrupted back-fill takes here, and when its
# reset commits (the loop's first --backfill that commits its reset does it all again).
render 10
cp -a data data.before
cp lite.db lite.before
r0=$(resets)
t0=$(now_ms)
"$FLOWCTL" run --until-idle --data-dir data --backfill bf/sums >run.out 2>run.err &
pid=$!
reset_ms=
while kill -0 "$pid" 2>/dev/null; do
  if [[ -z $reset_ms && $(resets) != "$r0" ]]; then reset_ms=$(($(now_ms) - t0)); fi
  sleep 0.005
done
rc=0
wait "$pid" || rc=$?
pid=''
cal_ms=$(($(now_ms) - t0))
((rc == 0)) || fail "the calibration back-fill exited $rc: $(tail -3 run.err)"
grep -q "derivation \`bf/sums\`: $N documents read" run.err ||
  fail "the calibration back-fill did not read every event: $(grep -E '^(derivation|materialization)' run.err)"
reset_ms=${reset_ms:-50}
echo "calibration: a back-fill of $N events takes $cal_ms ms; its reset commits after $reset_ms ms"
# Back to the state before the back-fill, in the store and in both targets (PostgreSQL by
# back-filling it from the old state: the old logic's rows again).
rm -rf data && mv data.before data
mv lite.before lite.db
render 1
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data --backfill bf/to-pg
render 10
[[ $(logics) =~ ^lo=1:[0-9]+$ ]] || fail "the restored state: the derived collection holds $(logics)"
equal_tables "the restored state"

# ---------------------------------------------------------------------------------------------
T1=$(now_ms)
# The kill loop. Each iteration runs `run --until-idle`, with --backfill bf/sums (3 in 4) or
# without, and kills it with SIGKILL:
# - random: after a delay spread over the whole back-fill (7 in 10), or around its reset's
#   commit (1 in 10);
# - targeted (the second iteration, then 1 in 10; with --backfill): as soon as the ledger
#   holds its reset, before the tables are rebuilt; the next run goes without --backfill and
#   must finish the back-fill (exit 0);
# - or lets it finish (1 in 10; the loop's middle iteration finishes a --backfill, so that a
#   back-fill has committed before the end).
kills=0 targeted=0 finished=0 bf_kills=0 go_kills=0 before_reset=0 after_reset=0 mixed=0
reset=''  # set once a back-fill's reset committed: the old logic must never come back
continue_next=''
for ((t = 1; kills < KILLS; t++)); do
  if ((t > MAX_ITER)); then
    fail "only $kills of $KILLS kills landed on a running process in $MAX_ITER iterations"
    break
  fi
  args=(--backfill bf/sums)
  ((RANDOM % 4 == 0)) && args=()
  r=$((RANDOM % 100)) mode=random delay=
  if [[ -n $continue_next ]]; then
    args=() mode="continuing the back-fill killed right after its reset"
  elif ((t == KILLS / 2)); then
    args=(--backfill bf/sums) mode=finish
  elif ((t == 2 || r < 10)); then
    args=(--backfill bf/sums) mode=targeted
  elif ((r < 20)); then
    mode=finish
  elif ((r < 30)); then
    delay=$((reset_ms * (50 + RANDOM % 101) / 100))  # around the reset's commit
  else
    delay=$((cal_ms * (RANDOM % 111) / 100))         # anywhere in the back-fill
  fi
  continue_next=''
  r0=$(resets)
  t0=$(now_ms)
  "$FLOWCTL" run --until-idle --data-dir data "${args[@]}" >run.out 2>run.err &
  pid=$!
  case $mode in
    random)
      sleep_ms "$delay"
      kill -9 "$pid" 2>/dev/null || true
      ;;
    targeted)
      while kill -0 "$pid" 2>/dev/null && (($(now_ms) - t0 < cal_ms * 3)); do
        if [[ $(resets) != "$r0" ]]; then
          kill -9 "$pid" 2>/dev/null || true
          break
        fi
        sleep 0.002
      done
      delay=$(($(now_ms) - t0))
      ;;
  esac
  rc=0
  { wait "$pid"; } 2>/dev/null || rc=$?
  pid=''
  what="iteration $t (run --until-idle ${args[*]}, $mode, seed $SEED)"
  [[ -z ${BF_VERBOSE:-} ]] || echo "$what: exit $rc after $(($(now_ms) - t0)) ms (delay ${delay:-}), resets $r0 -> $(resets)" \
    "$(grep -E '^(derivation|materialization) ' run.err | paste -sd ';' -)"
  if ((rc == 137)); then
    kills=$((kills + 1))
    if ((${#args[@]})); then bf_kills=$((bf_kills + 1)); else go_kills=$((go_kills + 1)); fi
    if [[ $(resets) != "$r0" ]]; then after_reset=$((after_reset + 1)); else before_reset=$((before_reset + 1)); fi
    if [[ $mode == targeted ]]; then
      targeted=$((targeted + 1)) continue_next=1
    fi
    expect_status 0 "$FLOWCTL" fsck --data-dir data
    grep -q '^result: clean' "$WORK/out" || fail "$what: fsck after the kill: $(grep -v '^note:' "$WORK/out" | head -5)"
    # One logic or the other, never both: before the first reset committed, the old
    # documents; after it, the new ones only.
    l=$(logics)
    case $l in
      lo=1:*)
        [[ -z $reset ]] || fail "$what: killed after $delay ms, the old logic is back (after $reset): $l"
        ;;
      lo=10:* | '') reset=${reset:-"iteration $t"} ;;
      *) mixed=$((mixed + 1)); fail "$what: killed after $delay ms, the derived collection mixes logics: $l" ;;
    esac
  elif ((rc == 0)); then
    finished=$((finished + 1))
    grep -q '^idle in' run.err || fail "$what: exited 0 but did not say it was idle: $(tail -3 run.err)"
    ((${#args[@]})) && reset=${reset:-"iteration $t"}
  else
    fail "$what: exited $rc: $(grep -v '^\(note\|info\)' run.err | tail -5)"
  fi
done
echo "kill loop: $((t - 1)) runs, $kills killed with SIGKILL ($bf_kills with --backfill, $go_kills without;" \
  "$before_reset before a reset committed, $after_reset after; $targeted right after the reset), $finished" \
  "finished ($(since "$T1"))"

# ---------------------------------------------------------------------------------------------
T2=$(now_ms)
# Complete: the back-fill (committed at the latest by the loop's middle iteration) goes on to
# the end without --backfill, and warns no more of the changed lambda.
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
final=$(grep -E '^(derivation|materialization) ' "$WORK/err" | paste -sd ';' -)
grep -q 'changed since its checkpoint' "$WORK/err" &&
  fail "the last run still warns of a changed lambda: $(grep 'changed since' "$WORK/err")"
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
expect_err "derivation \`bf/sums\`: 0 documents read"
expect_err "materialization \`bf/to-lite\`: 0 documents read"
expect_err "materialization \`bf/to-pg\`: 0 documents read"
expect_eq "the derived collection holds the new logic only" "$(logics | sed 's/:[0-9]*//')" "lo=10"
got=$(reduced)
if [[ $got != "$(want 10)" ]]; then
  fail "the derived collection differs from the new logic over every event (< got, > want):"
  diff <(echo "$got") <(want 10) | head -10 >&2
fi
equal_tables "after the last run"
expect_status 0 "$FLOWCTL" fsck --data-dir data
echo "final: $final ($(since "$T2"))"
echo "summary: $kills runs killed with SIGKILL ($targeted right after their reset committed), $mixed left mixed" \
  "logics, $finished finished; $(resets) resets committed; $G rows in each table; total $(since "$T0")"
finish
