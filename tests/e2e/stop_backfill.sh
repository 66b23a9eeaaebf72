#!/usr/bin/env bash
# A back-filling streamed derivation (a publish-only TypeScript lambda) stopped with SIGINT
# mid-way, several times: each stop exits 0 and its summary counts exactly what was
# committed (one transaction commits while the next is computed, so a summary taken from
# when the computing began was one transaction short); a derivation that fails halts with
# every transaction before the failing one committed; afterwards every document is derived
# exactly once.
source "$(dirname "$0")/lib.sh"
cd "$WORK"
cat > flow.yaml <<'YAML'
collections:
  - name: t/in
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}, pad: {type: string}}}
  - name: t/out
    key: [/id]
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
    derivation:
      transform:
        copy:
          source: {name: t/in}
          publish:
            nodeJS: |
              if (source.id === 150000 && process.env.FAIL_AT === "1") throw new Error("boom at " + source.id);
              return [{id: source.id}];
YAML
seq 1 200000 | awk '{printf "{\"id\":%d,\"pad\":\"%056d\"}\n", $1, $1}' > in.jsonl
expect_status 0 "$FLOWCTL" ingest t/in in.jsonl --data-dir d
count() { "$FLOWCTL" read t/out --data-dir d | wc -l; }
# A failure at document 150000: what came before it in earlier transactions is committed.
expect_status 1 env FAIL_AT=1 "$FLOWCTL" run --until-idle --data-dir d
grep -q 'threw: boom at 150000' "$WORK/err" || fail "no error for the failing document: $(cat "$WORK/err")"
halted=$(sed -n 's/.*derivation `t\/out`: \([0-9]*\) documents read, \([0-9]*\) published (halted by an error).*/\2/p' "$WORK/err")
[[ -n $halted ]] || fail "no halted summary: $(cat "$WORK/err")"
((halted > 0 && halted < 150000)) || fail "$halted documents published before the failure"
expect_eq "documents committed before the failure" "$(count)" "$halted"
rm -rf d && expect_status 0 "$FLOWCTL" ingest t/in in.jsonl --data-dir d
# Stops at moments where a transaction is committing while the next is computed: after the
# second commit, then the third (--log-level debug logs each commit).
commits_at_least() { (($(grep -c 'checkpoint committed' run.err) >= $1)); }
total=0
for commits in 2 3; do
  "$FLOWCTL" run --data-dir d --log-level debug > run.out 2> run.err &
  pid=$!
  wait_until 60 commits_at_least "$commits" || fail "no commit: $(tail -3 run.err)"
  kill -INT "$pid"
  status=0
  wait "$pid" || status=$?
  [[ $status -eq 0 ]] || fail "run stopped with SIGINT exited $status: $(tail -3 run.err)"
  stopped=$(sed -n 's/.*derivation `t\/out`: [0-9]* documents read, \([0-9]*\) published.*/\1/p' run.err)
  [[ -n $stopped ]] || fail "no summary: $(tail -3 run.err)"
  total=$((total + stopped))
  expect_eq "documents committed after stop $commits" "$(count)" "$total"
done
expect_status 0 "$FLOWCTL" run --until-idle --data-dir d
expect_eq "documents derived" "$(count)" 200000
expect_eq "distinct documents derived" "$("$FLOWCTL" read t/out --data-dir d | sort -u | wc -l)" 200000
finish
