#!/usr/bin/env bash
# Exactly-once materializations (SPEC 3.4 and 5, issue 6 item 5). A captured collection
# (eo/events, partitioned by region) feeds a derivation with a register and sum/merge/maximize
# reductions (eo/customers); both are materialized into a SQLite target and a PostgreSQL
# target (one materialization each): a standard table per collection, and a delta-updates
# table of eo/events, where a document applied twice would show as an extra row.
#
# 1. Fencing, per target: instance A works through a backlog (materialization fence/to-T
#    into the same target, on its own table); once A has committed, instance B (another
#    data directory, the same catalog and materialization name) runs to completion. A must
#    stop with "was fenced off" (exit 3) and write nothing after B took over.
# 2. Kill loop: each iteration ingests a batch (2000..9000 documents; every seventh ingest is
#    itself killed at a random instant: acknowledged batches must be present, others present
#    entirely or not at all), then starts `flowctl run --until-idle` (with 1 to 3 --threads,
#    so derivations catching up compute on threads of their own) and kills it with SIGKILL
#    after a random 0..300 ms, until EO_KILLS (default 32) such kills have landed on a running
#    process. Every sixth run is left to finish; every fifth is stopped (SIGSTOP) at random
#    instants until a probe sees it holding a write transaction open in the SQLite or
#    (alternately) the PostgreSQL target, and killed there.
# 3. A final `run --until-idle` exits 0 and a second one finds nothing to do. Then every table
#    equals `flowctl read --reduced` of its collection, row for row (flow_document without
#    _meta, and each scalar column); each delta table holds every committed document exactly
#    once; and eo/events and eo/customers equal what was acknowledged, computed independently
#    (so a derivation that applied a document twice, or lost one, is caught too).
#
# EO_KILLS and EO_SEED (default: random, printed) tune the loop. Checks: exactly_once_check.js.
source "$(dirname "$0")/lib.sh"
CHECK=(node --max-semi-space-size=64 "$REPO/tests/e2e/exactly_once_check.js")
KILLS=${EO_KILLS:-32}
MAX_ITER=$((KILLS * 3 + 20))
SEED=${EO_SEED:-$((($$ ^ ${EPOCHREALTIME/./}) % 100000))}
RANDOM=$SEED
echo "exactly_once.sh: seed $SEED (rerun with EO_SEED=$SEED)"
cd "$WORK"
chmod 755 "$WORK"  # the server runs as another user when we are root
pg=$WORK/pg
uri=$("$REPO/scripts/pg.sh" start "$pg" | tail -n 1)
# running PID: PID is a live (not zombie) flowctl process.
comm=$(basename "$FLOWCTL" | cut -c1-15)
running() {
  local s
  s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [[ $s != Z && $(cat "/proc/$1/comm" 2>/dev/null) == "$comm" ]]
}
pid='' a=''
# On exit: no flowctl of ours left behind (a stopped one least of all), the server stopped.
trap 'for p in $pid $a; do running "$p" && kill -9 "$p"; done; "$REPO/scripts/pg.sh" stop "$pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"' EXIT
psql() { "$REPO/scripts/pg.sh" psql "$pg" -At "$@"; }
lite() { sqlite3 -batch -noheader "$WORK/targets/lite.db" "$@"; }

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }
T0=$(now_ms)

mkdir -p targets
targets="materializationTargets:
  lite: {sqlite: {path: $WORK/targets/lite.db}}
  pg: {postgres: {uri: \"$uri\"}}"

cat >main.yaml <<YAML
collections:
  - name: eo/events
    key: [/id]
    schema:
      type: object
      required: [id, customer, region, amount]
      properties:
        id: {type: integer}
        customer: {type: string}
        region: {type: string, enum: [eu, us, apac, latam]}
        amount: {type: integer}
        note: {type: string}
    projections:
      region: {location: /region, partition: true}
  - name: eo/customers
    key: [/customer]
    schema:
      type: object
      required: [customer]
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        total: {type: integer, reduce: {strategy: sum}}
        orders: {type: integer, reduce: {strategy: sum}}
        seq: {type: integer, reduce: {strategy: maximize}}
        byRegion:
          type: object
          reduce: {strategy: merge}
          additionalProperties: {type: integer, reduce: {strategy: sum}}
    derivation:
      # The register counts the customer's events; seq (maximize) must end equal to orders (sum).
      register:
        schema:
          type: object
          reduce: {strategy: merge}
          properties:
            n: {type: integer, reduce: {strategy: sum}}
        initial: {n: 0}
      transform:
        fromEvents:
          source: {name: eo/events}
          shuffle: [/customer]
          update: {sqlite: "SELECT 1 AS n"}
          publish:
            sqlite: >-
              SELECT json_object('customer', \$customer, 'total', \$amount, 'orders', 1,
              'seq', json_extract(\$register, '\$.n'), 'byRegion', json_object(\$region, \$amount))
$targets
materializations:
  eo/to-sqlite:
    target: lite
    bindings:
      - {source: eo/events, table: events}
      - {source: eo/events, table: event log, deltaUpdates: true}
      - {source: eo/customers, table: customers}
  eo/to-postgres:
    target: pg
    bindings:
      - {source: eo/events, table: events}
      - {source: eo/events, table: event_log, deltaUpdates: true, fields: {include: [customer, amount]}}
      - {source: eo/customers, table: customers}
YAML

cat >fence.yaml <<YAML
collections:
  - name: fence/events
    key: [/id]
    schema:
      type: object
      required: [id, src, n]
      reduce: {strategy: merge}
      properties:
        id: {type: integer}
        src: {type: string}
        n: {type: integer, reduce: {strategy: sum}}
    projections:
      src: {location: /src, partition: true}
$targets
materializations:
  fence/to-sqlite:
    target: lite
    bindings: [{source: fence/events, table: fence_events}]
  fence/to-postgres:
    target: pg
    bindings: [{source: fence/events, table: fence_events}]
YAML

# ---------------------------------------------------------------------------------------------
T1=$(now_ms)
# 1. Fencing. A's journal is src=a, in data directory fence-a; B's src=b, in fence-b. B refuses
# A's checkpoint (it is of another data directory) and names the back-fill; with --backfill it
# rebuilds the table from its own journal, and A is fenced off.
node -e 'for (let i = 0; i < 1200000; i++) console.log(JSON.stringify({id: i, src: "a", n: 1}))' >fa.jsonl
node -e 'for (let i = 0; i < 500; i++) console.log(JSON.stringify({id: 10000000 + i, src: "b", n: 2}))' >fb.jsonl
expect_status 0 "$FLOWCTL" ingest fence/events fa.jsonl --source fence.yaml --data-dir fence-a
expect_status 0 "$FLOWCTL" ingest fence/events fb.jsonl --source fence.yaml --data-dir fence-b
fence_state() {  # TARGET: fence|checkpoint|rows|rows of A|sum(n) of the fence_events table
  local q="SELECT fence || '|' || checkpoint FROM flow_checkpoints WHERE materialization = 'fence/to-$1'"
  local t="SELECT count(*) || '|' || count(*) FILTER (WHERE src = 'a') || '|' || coalesce(sum(n), 0) FROM fence_events"
  if [[ $1 == sqlite ]]; then echo "$(lite "$q")|$(lite "$t")"; else echo "$(psql -c "$q")|$(psql -c "$t")"; fi
}
# One target at a time, so that each A is mid-way through its own backlog when B comes
# (a target that caught up would commit nothing more, and could not be fenced off).
for m in sqlite:lite postgres:pg; do
  tgt=${m%%:*} name=${m#*:}
  "$FLOWCTL" run --until-idle --source fence.yaml --data-dir fence-a --materialization "fence/to-$tgt" \
    >"fence-a-$tgt.out" 2>"fence-a-$tgt.err" &
  a=$!
  # Until A has committed a transaction (its checkpoint is there).
  a_fence=''
  for _ in $(seq 1000); do
    q="SELECT fence FROM flow_checkpoints WHERE materialization = 'fence/to-$tgt' AND checkpoint <> ''"
    if [[ $tgt == sqlite ]]; then a_fence=$(lite "$q" 2>/dev/null || true); else a_fence=$(psql -c "$q" 2>/dev/null || true); fi
    [[ -n $a_fence ]] && break
    kill -0 $a 2>/dev/null || break
    sleep 0.02
  done
  a_exit=''
  if [[ -z $a_fence ]]; then
    fail "$tgt: instance A never committed: $(tail -3 "fence-a-$tgt.err")"
  elif ! kill -0 $a 2>/dev/null; then
    fail "$tgt: instance A finished before B could take over (its backlog is too small): $(tail -3 "fence-a-$tgt.err")"
  else
    expect_status 1 "$FLOWCTL" run --until-idle --source fence.yaml --data-dir fence-b --materialization "fence/to-$tgt"
    expect_err "materialization \`fence/to-$tgt\`: its checkpoint was taken over another data directory"
    expect_err "flowctl run --backfill fence/to-$tgt"
    expect_status 0 "$FLOWCTL" run --until-idle --source fence.yaml --data-dir fence-b --materialization "fence/to-$tgt" \
      --backfill "fence/to-$tgt"
    expect_err "materialization \`fence/to-$tgt\`: 500 documents read, 500 rows stored"
    b_state=$(fence_state "$tgt")
    a_exit=0
    wait $a || a_exit=$?
    expect_eq "$tgt: instance A's exit status once fenced off" "$a_exit" "3"
    grep -qF "materialization \`fence/to-$tgt\` was fenced off: another flowctl instance took over target \`$name\`" \
      "fence-a-$tgt.err" || fail "instance A was not fenced off target $name: $(tail -3 "fence-a-$tgt.err")"
    expect_eq "$tgt: nothing written by A after B took over" "$(fence_state "$tgt")" "$b_state"
    IFS='|' read -r fence checkpoint rows rows_a sum <<<"$b_state"
    ((fence > a_fence)) || fail "$tgt: B's fence $fence is not above A's $a_fence"
    [[ $checkpoint == *'fence/events/src=b/pivot=00":'* && $checkpoint != *src=a* ]] ||
      fail "$tgt: flow_checkpoints does not hold B's checkpoint: $checkpoint"
    expect_eq "$tgt: the rebuilt table holds B's rows only" "$rows|$rows_a|$sum" "500|0|1000"
    fence_summary+="$tgt: B took over with a back-fill; "
  fi
  if [[ -z $a_exit ]]; then
    kill -9 $a 2>/dev/null || true
    wait $a 2>/dev/null || true
  fi
  a=''
done
echo "fencing: ${fence_summary:-}checked ($(since "$T1"))"

# ---------------------------------------------------------------------------------------------
T2=$(now_ms)
# 2. The kill loop.
D=$WORK/data
B=$WORK/batches
: >state
kills=0 finished=0 ingest_kills=0 max_run_ms=0
declare -A targeted=([sqlite]=0 [pg]=0 [missed]=0)
# in_write_transaction sqlite|pg: whether some process holds a write transaction open in
# the target (SQLite: its write lock is taken; PostgreSQL: a session has a transaction id).
in_write_transaction() {
  if [[ $1 == sqlite ]]; then
    ! sqlite3 -batch "$WORK/targets/lite.db" '.timeout 0' 'BEGIN IMMEDIATE' 'ROLLBACK' >/dev/null 2>&1
  else
    [[ $(psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()" \
      2>/dev/null) != 0 ]]
  fi
}
gen_upto=0
for ((t = 1; kills < KILLS; t++)); do
  if ((t > MAX_ITER)); then
    fail "only $kills of $KILLS kills landed on a running process in $MAX_ITER iterations"
    break
  fi
  if ((t > gen_upto)); then
    "${CHECK[@]}" gen "$B" "$t" $((t + 15)) "$SEED" 2000 9000
    gen_upto=$((t + 15))
  fi
  if ((t % 7 == 3)); then
    # An ingest killed at a random instant: it counts as committed only if it said so.
    "$FLOWCTL" ingest eo/events "$B/$t.jsonl" --source main.yaml --data-dir "$D" >ingest.out 2>ingest.err &
    pid=$!
    sleep_ms $((RANDOM % 40))
    kill -9 $pid 2>/dev/null || true
    rc=0
    { wait $pid; } 2>/dev/null || rc=$?
    if grep -q '^{"Offsets":' ingest.out; then
      echo "$t acked" >>state
    else
      ((rc == 137)) || fail "batch $t: ingest exited $rc without an acknowledgement: $(head -c 300 ingest.err)"
      echo "$t maybe" >>state
      ingest_kills=$((ingest_kills + 1))
    fi
  else
    expect_status 0 "$FLOWCTL" ingest eo/events "$B/$t.jsonl" --source main.yaml --data-dir "$D"
    grep -q '^{"Offsets":' "$WORK/out" || fail "batch $t: no acknowledgement"
    echo "$t acked" >>state
  fi
  t0=$(now_ms)
  # 1 to 3 threads: a derivation catching up computes on a thread of its own, and the kill
  # lands as often between its computing and its commit as anywhere else.
  "$FLOWCTL" run --until-idle --threads $((1 + t % 3)) --source main.yaml --data-dir "$D" >run.out 2>run.err &
  pid=$!
  mode=random
  if ((t % 6 == 0)); then
    mode=finish
    rc=0
    wait $pid || rc=$?
    ms=$(($(now_ms) - t0))
    ((ms > max_run_ms)) && max_run_ms=$ms
  elif ((t % 5 == 2)); then
    # Targeted: stopped (SIGSTOP) at random instants until a probe sees it holding a write
    # transaction open in one target, then killed there.
    mode=targeted
    target=sqlite
    (((t / 5) % 2)) && target=pg
    hit=
    while (($(now_ms) - t0 < 5000)) && running $pid; do
      kill -STOP $pid 2>/dev/null || break  # (it may have exited meanwhile)
      if in_write_transaction $target; then
        kill -9 $pid  # stopped: it cannot have exited
        hit=$target
        break
      fi
      kill -CONT $pid 2>/dev/null || true
      sleep_ms $((RANDOM % 30))
    done
    kill -9 $pid 2>/dev/null || true
    rc=0
    { wait $pid; } 2>/dev/null || rc=$?
    if [[ -n $hit ]]; then
      targeted[$hit]=$((targeted[$hit] + 1))
    else
      targeted[missed]=$((targeted[missed] + 1))
    fi
  else
    sleep_ms $((RANDOM % 301))
    kill -9 $pid 2>/dev/null || true
    rc=0
    { wait $pid; } 2>/dev/null || rc=$?
  fi
  if ((rc == 137)); then
    [[ $mode == random ]] && kills=$((kills + 1))
  elif ((rc == 0)); then
    finished=$((finished + 1))
    grep -q '^idle in' run.err || fail "iteration $t: run exited 0 but did not say it was idle: $(tail -3 run.err)"
  else
    fail "iteration $t: run exited $rc: $(tail -5 run.err)"
  fi
done
iterations=$((t - 1))
echo "kill loop: $iterations batches; runs killed with SIGKILL: $kills at random instants, ${targeted[sqlite]} inside a" \
  "SQLite and ${targeted[pg]} inside a PostgreSQL write transaction (${targeted[missed]} targeted runs ended before);" \
  "$finished runs finished (the longest took $max_run_ms ms); $ingest_kills ingests killed before their" \
  "acknowledgement ($(since "$T2"))"

# ---------------------------------------------------------------------------------------------
T3=$(now_ms)
# 3. Catch up, then compare.
expect_status 0 "$FLOWCTL" run --until-idle --source main.yaml --data-dir "$D"
final_err=$(cat "$WORK/err")
expect_status 0 "$FLOWCTL" run --until-idle --source main.yaml --data-dir "$D"
expect_err "materialization \`eo/to-sqlite\`: 0 documents read"
expect_err "materialization \`eo/to-postgres\`: 0 documents read"
expect_err "derivation \`eo/customers\`: 0 documents read"
for c in events customers; do
  "$FLOWCTL" read "eo/$c" --reduced --source main.yaml --data-dir "$D" >"$c.reduced" 2>read.err ||
    fail "flowctl read eo/$c --reduced failed: $(head -c 300 read.err)"
done
"$FLOWCTL" read eo/events --source main.yaml --data-dir "$D" >events.read 2>read.err ||
  fail "flowctl read eo/events failed: $(head -c 300 read.err)"
tables=()
for tgt in sqlite pg; do
  for tbl in events "event log" customers; do
    name=$tbl kind=$tbl
    [[ $tgt == pg ]] && name=${tbl// /_}
    [[ $tbl == "event log" ]] && kind='delta'
    file="rows-$tgt-${name// /_}.json"
    if [[ $tgt == sqlite ]]; then
      sqlite3 -batch -json "$WORK/targets/lite.db" "SELECT * FROM \"$name\"" >"$file"
    else
      psql -c "SELECT row_to_json(t) FROM \"$name\" t" >"$file"
    fi
    tables+=("$tgt \"$name\"=$tgt:$kind:$file")
  done
done
if out=$("${CHECK[@]}" final --dir "$B" --state state --read events.read --events events.reduced \
  --customers customers.reduced -- "${tables[@]}"); then
  { read -r committed docs ingest_lost; read -r tables_summary; } <<<"$out"
else
  fail "the tables or collections differ (see above)"
fi
# Evidence that kills landed inside PostgreSQL transactions: the server logs the sessions
# that vanished with a transaction open (or in the middle of a COPY).
pg_open=$({ grep -E "unexpected EOF on client connection with an open transaction|incomplete message from client" \
  "$pg/server.log" || true; } | { grep -oE '\[[0-9]+\]' || true; } | sort -u | wc -l)
echo "final: $(grep -E '^materialization|^derivation' <<<"$final_err" | paste -sd ';' -) ($(since "$T3"))"
echo "tables: ${tables_summary:-}"
echo "summary: $iterations batches (${committed:-?} committed, ${docs:-?} documents; $ingest_kills ingests killed before" \
  "the ack, ${ingest_lost:-?} of them lost), $((kills + targeted[sqlite] + targeted[pg])) runs killed" \
  "with SIGKILL ($pg_open of them inside a PostgreSQL transaction, as the server logged), $finished runs finished; total $(since "$T0")"
finish
