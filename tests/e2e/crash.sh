#!/usr/bin/env bash
# Crash safety of the journal store (SPEC 3.4, issue 4 item 5): 1. `flowctl ingest` killed with
# SIGKILL at random instants (with readers running concurrently); 2. garbage, torn lines and
# torn or corrupt ledger records after committed spools, and uncommitted bytes in a spool;
# 3. every write and fsync failing in turn (FLOWCTL_FAULT) in fresh, used and dirty data
# directories; 4. a second process on a locked data directory. Each time: every acknowledged
# transaction is present, a failed one absent, none partial or duplicated, nothing else (no
# garbage) visible; ledger heads and acknowledged offsets are the journal sizes; every lake
# fragment holds exactly the committed bytes its name says, and after a clean shutdown the
# fragments alone hold every document once. Generation and checks: crash_check.js.
#
# CRASH_ITERATIONS (default 64) and CRASH_SEED (default: random, printed) tune the kill loop.
source "$(dirname "$0")/lib.sh"
CHECK=(node "$REPO/tests/e2e/crash_check.js")
SRC="$WORK/flow.yaml"
TX="$WORK/txns"
COLL=crash/events
ITER=${CRASH_ITERATIONS:-64}
SEED=${CRASH_SEED:-$((($$ ^ ${EPOCHREALTIME/./}) % 100000))}
RANDOM=$SEED
echo "crash.sh: seed $SEED (rerun with CRASH_SEED=$SEED)"

cat >"$SRC" <<'YAML'
collections:
  - name: crash/events
    schema:
      type: object
      properties:
        id: {type: integer}
        region: {type: string, enum: [eu, us, asia pacific, latam]}
        txn: {type: integer}
        i: {type: integer}
        pad: {type: string}
      required: [id, region, txn, i]
    key: [/id]
    projections:
      region: {location: /region, partition: true}
    # Small fragments: persisting a spool writes several, so kills land between them.
    journals: {fragments: {length: 256KiB}}
YAML

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
ack_of() { head -n 1 "$1" | grep '^{"Offsets":' || true; }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }

# never_created STATE ERR: true when `read` refused its data directory because no ingest had
# got as far as creating it, which is right only while no transaction of STATE was acknowledged.
never_created() {
  ! grep -q ' acked ' "$1" && grep -q 'does not exist; ingest into it first' "$2"
}

# read_check LABEL DATA_DIR STATE [crash_check options]: `flowctl read` must succeed, and its
# output must match STATE and the ledger (see crash_check.js; `--data-dir D` checks the lake).
read_check() {
  local label=$1 dir=$2 state=$3
  shift 3
  if ! "$FLOWCTL" read "$COLL" --source "$SRC" --data-dir "$dir" >"$WORK/read.out" 2>"$WORK/read.err"; then
    never_created "$state" "$WORK/read.err" ||
      fail "$label: flowctl read failed: $(head -c 400 "$WORK/read.err")"
    return 0
  fi
  "${CHECK[@]}" check --txns "$TX" --state "$state" --read "$WORK/read.out" --ledger "$dir/ledger" \
    --label "$label" --update-state "$@" >"$WORK/check.out" || fail "$label: see the problems above"
}

# ---------------------------------------------------------------------------------------------
T1=$(now_ms)
# 1. SIGKILL loop: transaction t (3000..16000 documents) is ingested, killed after a random
# delay spread over the whole run (startup, parsing, commit, persisting fragments) or left to
# finish; the data directory is checked after every other iteration, and every fourth one has
# a `read` running concurrently with the ingest. Iterations run in epochs of 8, each on a
# fresh data directory (so checks stay cheap) and closed by an uninterrupted ingest, after
# which the lake alone must hold every committed document exactly once.
EPOCH=8
EPOCHS=$(((ITER + EPOCH - 1) / EPOCH))
"${CHECK[@]}" gen "$TX" 1 "$ITER" 7 3000 16000 >"$WORK/sizes1"
"${CHECK[@]}" gen "$TX" 901 $((900 + EPOCHS)) 8 3000 6000 >/dev/null
declare -A SIZE
while read -r t n; do SIZE[$t]=$n; done <"$WORK/sizes1"

# Calibrate: how long an uninterrupted ingest of the largest transaction takes here (the
# faster of two runs). Delays are scaled from it, so kills spread over every phase.
CAL_T=1
for t in "${!SIZE[@]}"; do ((SIZE[$t] > SIZE[$CAL_T])) && CAL_T=$t; done
cal_ms=
for k in 1 2; do
  t0=$(now_ms)
  "$FLOWCTL" ingest "$COLL" "$TX/$CAL_T.jsonl" --source "$SRC" --data-dir "$WORK/calibrate-$k" >/dev/null 2>&1 ||
    fail "calibration ingest failed"
  ms=$(($(now_ms) - t0))
  [[ -z $cal_ms ]] || ((ms < cal_ms)) && cal_ms=$ms
done
rm -rf "$WORK"/calibrate-*
echo "calibration: ${SIZE[$CAL_T]} documents in ${cal_ms} ms"

before_ack=0 after_ack=0 finished=0 concurrent=0 epoch_summaries=()
for ((t = 1; t <= ITER; t++)); do
  e=$(((t - 1) / EPOCH + 1))
  D1="$WORK/d1-$e" S1="$WORK/state1-$e" SEEN1="$WORK/seen1-$e"
  [[ -f $S1 ]] || : >"$S1"
  n=${SIZE[$t]}
  codec=()
  ((t % 10 == 3)) && codec=(--codec zstd)
  ((t % 10 == 7)) && codec=(--codec none)
  est=$((cal_ms * n / ${SIZE[$CAL_T]} + 5))
  r=$((RANDOM % 100))
  if ((r < 6)); then
    delay=$((RANDOM % 8))                         # during startup
  elif ((r < 94)); then
    delay=$((est * (RANDOM % 121) / 100))          # anywhere in the run
  else
    delay=$((est * 3 + 100))                       # let it finish
  fi
  "$FLOWCTL" ingest "$COLL" "$TX/$t.jsonl" --source "$SRC" --data-dir "$D1" "${codec[@]}" \
    >"$WORK/ingest.out" 2>"$WORK/ingest.err" &
  pid=$!
  rpid=
  if ((t % 4 == 2)); then  # a reader while the writer runs (and dies)
    cp "$S1" "$WORK/state1.concurrent"
    echo "$t maybe" >>"$WORK/state1.concurrent"
    sleep_ms $((delay / 2))
    "$FLOWCTL" read "$COLL" --source "$SRC" --data-dir "$D1" >"$WORK/cread.out" 2>"$WORK/cread.err" &
    rpid=$!
    sleep_ms $((delay - delay / 2))
  else
    sleep_ms "$delay"
  fi
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  { wait "$pid"; } 2>/dev/null || rc=$?  # (no "Killed" job notice)
  ack=$(ack_of "$WORK/ingest.out")
  if ((rc == 137)); then
    if [[ -n $ack ]]; then
      after_ack=$((after_ack + 1))
      echo "$t acked $ack" >>"$S1"
    else
      before_ack=$((before_ack + 1))
      echo "$t maybe" >>"$S1"
    fi
  else
    finished=$((finished + 1))
    if ((rc != 0)) || [[ -z $ack ]] || ! grep -q "^ingested $n documents" "$WORK/ingest.err"; then
      fail "transaction $t: ingest exited $rc on its own (ack: '${ack:-none}'): $(head -c 400 "$WORK/ingest.err")"
    fi
    if [[ -n $ack ]]; then echo "$t acked $ack" >>"$S1"; else echo "$t maybe" >>"$S1"; fi
  fi
  if [[ -n $rpid ]]; then
    concurrent=$((concurrent + 1))
    if wait "$rpid"; then
      "${CHECK[@]}" check --txns "$TX" --state "$WORK/state1.concurrent" --read "$WORK/cread.out" \
        --seen "$SEEN1" --label "read concurrent with transaction $t" >/dev/null ||
        fail "read concurrent with transaction $t: see the problems above"
    elif ! never_created "$WORK/state1.concurrent" "$WORK/cread.err"; then
      fail "read concurrent with transaction $t failed: $(head -c 400 "$WORK/cread.err")"
    fi
  fi
  if ((t % 2 == 0 || t == ITER)); then
    read_check "after transaction $t" "$D1" "$S1" --seen "$SEEN1"
  fi
  if ((t % EPOCH == 0 || t == ITER)); then
    # An uninterrupted ingest recovers everything and persists all spools: the lake alone
    # then holds every committed document exactly once.
    tc=$((900 + e))
    expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/$tc.jsonl" --source "$SRC" --data-dir "$D1"
    echo "$tc acked $(ack_of "$WORK/out")" >>"$S1"
    expect_status 0 "$FLOWCTL" read "$COLL" --source "$SRC" --data-dir "$D1" --reduced
    mv "$WORK/out" "$WORK/reduced.out"
    read_check "epoch $e, after a clean ingest" "$D1" "$S1" --seen "$SEEN1" --data-dir "$D1" --complete \
      --ledger-clean --reduced "$WORK/reduced.out"
    epoch_summaries+=("$(cat "$WORK/check.out")")
  fi
done
echo "crash loop: $ITER iterations: $before_ack killed before the ack, $after_ack killed after the ack" \
  "(while persisting), $finished finished on their own; $concurrent concurrent reads ($(since "$T1"))"
for s in "${epoch_summaries[@]}"; do echo "  $s"; done
((before_ack + after_ack > 0)) || fail "no kill landed while an ingest ran: the loop tested nothing"

# ---------------------------------------------------------------------------------------------
T2=$(now_ms)
# 2. Corrupted tails. A write fault in fragment persisting (after the ack) leaves committed
# spools; then garbage, a torn JSON line, a torn ledger record or a ledger record with a wrong
# CRC are appended. Readers must see exactly the committed documents; the next ingest must
# truncate spools and ledger to what was committed, and append after it.
"${CHECK[@]}" gen "$TX" 1001 1010 11 200 400 >/dev/null
D2="$WORK/d2"
S2="$WORK/state2"
expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/1001.jsonl" --source "$SRC" --data-dir "$D2"
echo "1001 acked $(ack_of "$WORK/out")" >"$S2"
base2=
for ((N = 1; N <= 40; N++)); do
  rm -rf "$WORK/try"
  cp -a "$D2" "$WORK/try"
  set +e
  FLOWCTL_FAULT=write:$N "$FLOWCTL" ingest "$COLL" "$TX/1002.jsonl" --source "$SRC" --data-dir "$WORK/try" \
    >"$WORK/out" 2>"$WORK/err"
  rc=$?
  set -e
  ack=$(ack_of "$WORK/out")
  if ((rc == 3)) && [[ -n $ack ]]; then
    base2="$WORK/base2"
    mv "$WORK/try" "$base2"
    echo "1002 acked $ack" >>"$S2"
    break
  fi
  ((rc == 0)) && break
done
if [[ -z $base2 ]]; then
  fail "no FLOWCTL_FAULT=write:N leaves a committed spool (ack, then exit 3)"
else
  grep -qF "the transaction is committed" "$WORK/err" ||
    fail "write:$N in persisting: the error does not say the transaction is committed: $(cat "$WORK/err")"
  mapfile -t spools < <(find "$base2/spool" -name '*.spool' -size +0 | sort)
  ((${#spools[@]} == 4)) || fail "write:$N: expected 4 committed spools, found ${#spools[@]}"
  garbage_doc='{"id":99999999,"region":"eu","txn":-1,"i":0,"pad":"garbage"}'
  ledger_record() {  # a syntactically valid record claiming each spool's full size
    local heads="" f j b s
    for f in "$1"/spool/crash/events/*/pivot=00/*.spool; do
      j=${f#"$1"/spool/}
      j=${j%/*}
      b=$(basename "$f")
      b=$((16#${b%%-*}))
      s=$(stat -c %s "$f")
      heads+="${heads:+,}\"$j\":$((b + s))"
    done
    printf '{"heads":{%s}}' "$heads"
  }
  for scenario in garbage torn; do
    D="$WORK/d2-$scenario"
    rm -rf "$D"
    cp -a "$base2" "$D"
    cp "$S2" "$WORK/state2-$scenario"
    S="$WORK/state2-$scenario"
    mapfile -t spools < <(find "$D/spool" -name '*.spool' -size +0 | sort)
    if [[ $scenario == garbage ]]; then
      # Random bytes, a whole valid-looking document line, more random bytes; a torn ledger record.
      for f in "${spools[@]}"; do
        { head -c 300 /dev/urandom; printf '\n%s\n' "$garbage_doc"; head -c 200 /dev/urandom; } >>"$f"
      done
      printf '0badc0de {"heads":{"%s":12345' "$COLL/region=eu/pivot=00" >>"$D/ledger"
      cp -a "$D" "$WORK/dirty-base"  # for the fault seam: recovery under I/O errors
    else
      # A partial JSON line without a newline; a whole ledger record with a wrong CRC that
      # claims everything in the spools.
      for f in "${spools[@]}"; do printf '%s' "${garbage_doc:0:40}" >>"$f"; done
      printf '00000000 %s\n' "$(ledger_record "$D")" >>"$D/ledger"
    fi
    read_check "$scenario tails, before recovery" "$D" "$S" --data-dir "$D"
    # A process that opens the directory recovers it (the write fault then stops it before
    # it appends anything): each spool holds exactly its committed bytes, the ledger is intact.
    set +e
    FLOWCTL_FAULT=write:1 "$FLOWCTL" ingest "$COLL" "$TX/1003.jsonl" --source "$SRC" --data-dir "$D" \
      >"$WORK/out" 2>"$WORK/err"
    rc=$?
    set -e
    if ((rc != 3)) || [[ -n $(ack_of "$WORK/out") ]]; then
      fail "$scenario tails: ingest with FLOWCTL_FAULT=write:1 exited $rc: $(head -c 400 "$WORK/err")"
    fi
    echo "1003 absent" >>"$S"
    "${CHECK[@]}" spools "$D" >/dev/null || fail "$scenario tails: recovery left the spools or the ledger untrimmed"
    read_check "$scenario tails, after recovery" "$D" "$S" --data-dir "$D"
    expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/1004.jsonl" --source "$SRC" --data-dir "$D"
    echo "1004 acked $(ack_of "$WORK/out")" >>"$S"
    expect_status 0 "$FLOWCTL" read "$COLL" --source "$SRC" --data-dir "$D" --reduced
    mv "$WORK/out" "$WORK/reduced.out"
    read_check "$scenario tails, after the next ingest" "$D" "$S" --data-dir "$D" --complete --ledger-clean \
      --reduced "$WORK/reduced.out"
    if [[ -f $WORK/check.out ]]; then echo "  $(cat "$WORK/check.out")"; fi
  done
  # Recovery straight from the torn tails, without the intermediate faulty process.
  D="$WORK/d2-direct"
  cp -a "$base2" "$D"
  S="$WORK/state2-direct"
  cp "$S2" "$S"
  for f in $(find "$D/spool" -name '*.spool' -size +0); do printf '%s' "${garbage_doc:0:40}" >>"$f"; done
  printf '00000000 %s\n' "$(ledger_record "$D")" >>"$D/ledger"
  printf '1234' >>"$D/ledger"
  expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/1005.jsonl" --source "$SRC" --data-dir "$D"
  echo "1005 acked $(ack_of "$WORK/out")" >>"$S"
  read_check "torn tails, recovered by a successful ingest" "$D" "$S" --data-dir "$D" --complete --ledger-clean
fi

# Uncommitted bytes in a spool: committing a transaction of megabytes writes them to the spool
# before the ledger record. An ingest is killed the moment its spool has bytes and it printed
# no ack (tried up to 5 times); then a reader sees only committed documents, and recovery
# truncates the spool to the committed head.
"${CHECK[@]}" gen "$TX" 4001 4008 19 25000 25000 >/dev/null  # one partition each
D5="$WORK/d5"
S5="$WORK/state5"
expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/4001.jsonl" --source "$SRC" --data-dir "$D5"
echo "4001 acked $(ack_of "$WORK/out")" >"$S5"
caught=
for ((t = 4002; t <= 4006; t++)); do
  declare -A old=()  # spools left by an earlier attempt (killed after its commit)
  for f in "$D5"/spool/crash/events/*/pivot=00/*.spool; do old[$f]=1; done
  "$FLOWCTL" ingest "$COLL" "$TX/$t.jsonl" --source "$SRC" --data-dir "$D5" >"$WORK/ingest.out" 2>"$WORK/ingest.err" &
  pid=$!
  t0=$(now_ms)
  while [[ -z $caught ]] && (($(now_ms) - t0 < 5000)) && kill -0 "$pid" 2>/dev/null; do
    for f in "$D5"/spool/crash/events/*/pivot=00/*.spool; do
      [[ -s $f && -z ${old[$f]:-} && ! -s $WORK/ingest.out ]] && caught=$f && kill -9 "$pid" 2>/dev/null
    done
  done
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  { wait "$pid"; } 2>/dev/null || rc=$?
  ack=$(ack_of "$WORK/ingest.out")
  if [[ -n $ack ]]; then echo "$t acked $ack" >>"$S5"; else echo "$t maybe" >>"$S5"; fi
  ((rc == 0 || rc == 137)) || fail "ingest of transaction $t exited $rc: $(head -c 400 "$WORK/ingest.err")"
  [[ -n $ack ]] && caught=  # it committed meanwhile: try again
  [[ -n $caught ]] && break
done
if [[ -z $caught ]]; then
  echo "note: no ingest was caught with uncommitted spool bytes; that case was not tested"
else
  if "${CHECK[@]}" spools "$D5" >"$WORK/spools.out" 2>&1; then
    echo "note: the killed ingest left no uncommitted spool bytes (it was killed after its commit)"
  fi
  read_check "uncommitted spool bytes, before recovery" "$D5" "$S5" --data-dir "$D5"
  set +e
  FLOWCTL_FAULT=write:1 "$FLOWCTL" ingest "$COLL" "$TX/4007.jsonl" --source "$SRC" --data-dir "$D5" \
    >"$WORK/out" 2>"$WORK/err"
  rc=$?
  set -e
  ((rc == 3)) || fail "uncommitted spool bytes: ingest with FLOWCTL_FAULT=write:1 exited $rc: $(head -c 400 "$WORK/err")"
  echo "4007 absent" >>"$S5"
  "${CHECK[@]}" spools "$D5" >/dev/null || fail "uncommitted spool bytes: recovery did not truncate the spool"
  expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/4008.jsonl" --source "$SRC" --data-dir "$D5"
  echo "4008 acked $(ack_of "$WORK/out")" >>"$S5"
  read_check "uncommitted spool bytes, after recovery" "$D5" "$S5" --data-dir "$D5" --complete --ledger-clean
  echo "uncommitted spool bytes: the killed ingest left $(head -n 1 "$WORK/spools.out"); $(cat "$WORK/check.out")"
fi
echo "corrupted tails: checked ($(since "$T2"))"

# ---------------------------------------------------------------------------------------------
T3=$(now_ms)
# 3. Fault seam: the Nth write (fsync) and every later one fail with EIO, for every N until the
# ingest succeeds, in three data directories: a fresh one, one with committed history, and a
# dirty one (committed spools with garbage tails, a torn ledger record) so faults also hit
# recovery. Each run exits 3 naming the path, or 0; with an ack the transaction is there,
# without one it is not (never partial); a normal ingest afterwards recovers and succeeds.
# Reads are taken right after each run and after the follow-up ingest, and checked in one
# batch per directory kind (FR holds the crash_check.js arguments).
"${CHECK[@]}" gen "$TX" 2001 2300 13 20 60 >/dev/null
F="$WORK/faults"
mkdir -p "$F"
fault_runs=0 fault_before=0 fault_after=0
# snapshot NAME DIR STATE: `flowctl read` of DIR now, with copies of STATE and the ledger.
snapshot() {
  "$FLOWCTL" read "$COLL" --source "$SRC" --data-dir "$2" >"$F/$1.read" 2>"$F/$1.err" ||
    fail "$1: flowctl read failed: $(head -c 400 "$F/$1.err")"
  cp "$3" "$F/$1.state"
  cp "$2/ledger" "$F/$1.ledger" 2>/dev/null || : >"$F/$1.ledger"
}
# fault_run LABEL DIR STATE T FAULT [ingest options]: ingests T under FAULT; sets rc.
fault_run() {
  local label=$1 dir=$2 state=$3 t=$4 fault=$5 ack
  shift 5
  set +e
  FLOWCTL_FAULT=$fault "$FLOWCTL" ingest "$COLL" "$TX/$t.jsonl" --source "$SRC" --data-dir "$dir" "$@" \
    >"$WORK/out" 2>"$WORK/err"
  rc=$?
  set -e
  fault_runs=$((fault_runs + 1))
  ack=$(ack_of "$WORK/out")
  if [[ -n $ack ]]; then echo "$t acked $ack" >>"$state"; else echo "$t absent" >>"$state"; fi
  if ((rc == 0)); then
    [[ -n $ack ]] || fail "$label: exit 0 without an ack"
    return 0
  fi
  if ((rc != 3)); then
    fail "$label: exit $rc (want 3 or 0): $(head -c 400 "$WORK/err")"
  elif ! grep -qF "$dir" "$WORK/err" || ! grep -qF "Input/output error" "$WORK/err"; then
    fail "$label: the error does not name the path and the I/O error: $(head -c 400 "$WORK/err")"
  fi
  if [[ -n $ack ]]; then
    fault_after=$((fault_after + 1))
    grep -qF "the transaction is committed" "$WORK/err" ||
      fail "$label: exit 3 after the ack, but the error does not say the transaction is committed: $(cat "$WORK/err")"
  else
    fault_before=$((fault_before + 1))
  fi
  FAULT_LABEL="$label (transaction $t: exit $rc${ack:+ after the ack}: $(head -n 1 "$WORK/err"))"
}
follow_up() {  # LABEL DIR STATE T: a normal ingest must recover and succeed.
  if "$FLOWCTL" ingest "$COLL" "$TX/$4.jsonl" --source "$SRC" --data-dir "$2" >"$WORK/out" 2>"$WORK/err"; then
    echo "$4 acked $(ack_of "$WORK/out")" >>"$3"
  else
    fail "$1: the next ingest (no fault) failed: $(head -c 400 "$WORK/err")"
    echo "$4 maybe" >>"$3"
  fi
}
fault_counts=()
for where in fresh history dirty; do
  [[ $where == dirty && ! -d $WORK/dirty-base ]] && continue
  FR=()
  if [[ $where == history ]]; then
    D3="$WORK/d3" S3="$WORK/state3" t=2001
    : >"$S3"
    expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/$t.jsonl" --source "$SRC" --data-dir "$D3"
    echo "$t acked $(ack_of "$WORK/out")" >>"$S3"
  fi
  for kind in write fsync; do
    for ((N = 1; ; N++)); do
      if ((N > 150)); then
        fail "$where $kind:$N: the ingest still fails; is the fault seam counting something else?"
        break
      fi
      name="$where-$kind-$N"
      codec=()
      ((N % 3 == 1)) && codec=(--codec zstd)
      case $where in
        fresh) D3="$F/$name.d" S3="$F/$name.s" tf=2291 tn=2292; : >"$S3" ;;
        dirty) D3="$F/$name.d" S3="$F/$name.s" tf=1006 tn=1007; cp -a "$WORK/dirty-base" "$D3"; cp "$S2" "$S3" ;;
        history) tf=$((t + 1)) tn=$((t + 2)) t=$((t + 2)) ;;
      esac
      FAULT_LABEL=
      fault_run "$where $kind:$N" "$D3" "$S3" "$tf" "$kind:$N" "${codec[@]}"
      [[ -z $FAULT_LABEL ]] && FAULT_LABEL="$where $kind:$N (transaction $tf: exit $rc)"
      snapshot "$name.pre" "$D3" "$S3"
      follow_up "$where $kind:$N" "$D3" "$S3" "$tn"
      snapshot "$name.post" "$D3" "$S3"
      pre=(--then --txns "$TX" --key "$D3" --label "$FAULT_LABEL, read before recovery"
        --state "$F/$name.pre.state" --read "$F/$name.pre.read" --ledger "$F/$name.pre.ledger")
      post=(--then --txns "$TX" --key "$D3" --label "$FAULT_LABEL, read after the next ingest"
        --state "$F/$name.post.state" --read "$F/$name.post.read" --ledger "$F/$name.post.ledger" --ledger-clean)
      if [[ $where == history ]]; then
        FR+=("${pre[@]}" --seen "$F/history.seen" "${post[@]}" --seen "$F/history.seen")
      else
        FR+=("${pre[@]}" "${post[@]}" --data-dir "$D3" --complete)
      fi
      ((rc == 0)) && break
    done
    fault_counts+=("$where $kind:1..$N")
  done
  if [[ $where == history ]]; then
    FR+=(--then --txns "$TX" --key "$D3" --label "history, final" --state "$S3" --read "$F/$name.post.read"
      --ledger "$D3/ledger" --ledger-clean --data-dir "$D3" --complete)
  fi
  "${CHECK[@]}" check "${FR[@]}" >"$F/$where.check" || fail "fault seam ($where directory): see the problems above"
done
echo "fault seam: ${fault_counts[*]}: $fault_runs runs, $fault_before failed before the ack," \
  "$fault_after after it ($(since "$T3"))"

# ---------------------------------------------------------------------------------------------
T4=$(now_ms)
# 4. One process owns a data directory: while an ingest reads a FIFO held open, a second
# ingest fails with exit 3 naming the owner; a reader still works and sees only what was
# committed before.
D4="$WORK/d4"
S4="$WORK/state4"
"${CHECK[@]}" gen "$TX" 3001 3003 17 300 300 >/dev/null
expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/3001.jsonl" --source "$SRC" --data-dir "$D4"
echo "3001 acked $(ack_of "$WORK/out")" >"$S4"
mkfifo "$WORK/fifo"
"$FLOWCTL" ingest "$COLL" --source "$SRC" --data-dir "$D4" <"$WORK/fifo" >"$WORK/owner.out" 2>"$WORK/owner.err" &
owner=$!
exec 7>"$WORK/fifo"
head -n 150 "$TX/3003.jsonl" >&7
for ((k = 0; k < 250; k++)); do  # until the owner holds the lock (LOCK records its pid)
  [[ $(cat "$D4/LOCK" 2>/dev/null) == "$owner" ]] && break
  sleep 0.02
done
[[ $(cat "$D4/LOCK" 2>/dev/null) == "$owner" ]] ||
  fail "the ingest reading a FIFO (pid $owner) did not take the data directory's lock"
expect_status 3 "$FLOWCTL" ingest "$COLL" "$TX/3002.jsonl" --source "$SRC" --data-dir "$D4"
expect_err "is in use by another flowctl process (pid $owner)"
[[ -s $WORK/out ]] && fail "second ingest printed an ack while the directory was locked"
cp "$S4" "$WORK/state4.locked"
printf '3002 absent\n3003 absent\n' >>"$WORK/state4.locked"
read_check "read while locked" "$D4" "$WORK/state4.locked" --data-dir "$D4"
tail -n +151 "$TX/3003.jsonl" >&7
exec 7>&-
rc=0
wait "$owner" || rc=$?
expect_eq "owner's exit status" "$rc" "0"
expect_eq "owner acknowledged" "$(ack_of "$WORK/owner.out" | cut -c1-11)" '{"Offsets":'
echo "3003 acked $(ack_of "$WORK/owner.out")" >>"$S4"
expect_status 0 "$FLOWCTL" ingest "$COLL" "$TX/3002.jsonl" --source "$SRC" --data-dir "$D4"
echo "3002 acked $(ack_of "$WORK/out")" >>"$S4"
read_check "after the lock was released" "$D4" "$S4" --data-dir "$D4" --complete --ledger-clean
echo "lock: checked ($(since "$T4"))"

echo "summary: $ITER kill iterations ($before_ack killed before the ack, $after_ack after it, $finished finished" \
  "on their own); $fault_runs fault-seam runs ($fault_before failed before the ack, $fault_after after it)"
finish
