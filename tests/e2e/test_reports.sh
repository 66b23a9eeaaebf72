#!/usr/bin/env bash
# `flowctl test`'s reports: results on stdout (summary last) and catalog errors on stderr;
# `--junit` XML that validates (tests/e2e/junit.xsd, with xmllint when installed) and parses
# with a real XML parser, listing every test and the failing one with its message and
# differences; `--json` with the same; `--watch` running the tests again when an imported
# file changes, and exiting 0 on SIGTERM and SIGINT.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

cat > flow.yaml <<'YAML'
import: [tests.flow.yaml]
collections:
  - name: shop/orders
    schema:
      type: object
      properties:
        id: {type: integer}
        customer: {type: string}
        total: {type: number}
      required: [id, customer, total]
    key: [/id]
  - name: shop/totals
    schema:
      type: object
      reduce: {strategy: merge}
      properties:
        customer: {type: string}
        spent: {type: number, reduce: {strategy: sum}}
      required: [customer]
    key: [/customer]
    derivation:
      transform:
        fromOrders:
          source: {name: shop/orders}
          shuffle: [/customer]
          publish: {sqlite: "SELECT $customer AS customer, $total AS spent"}
YAML
cat > tests.flow.yaml <<'YAML'
import: [flow.yaml]
tests:
  "totals add up":
    - ingest: {collection: shop/orders, documents: [{id: 1, customer: ann, total: 5}, {id: 2, customer: ann, total: 2}]}
    - verify: {collection: shop/totals, documents: [{customer: ann, spent: 7}]}
  "a name with <markup> & \"quotes\" and a \x01 control character":
    - ingest: {collection: shop/orders, documents: [{id: 1, customer: bob, total: 1}]}
    - verify: {collection: shop/totals, documents: [{customer: bob, spent: 1}]}
YAML
cp tests.flow.yaml passing.yaml
cat >> tests.flow.yaml <<'YAML'
  "wrong total":
    - ingest: {collection: shop/orders, documents: [{id: 1, customer: cy, total: 5}]}
    - verify: {collection: shop/totals, documents: [{customer: cy, spent: 6}]}
YAML

# Results on stdout, summary last; nothing of them on stderr.
expect_status 1 "$FLOWCTL" test --junit report.xml --json report.json
expect_out "PASS totals add up"
expect_out "FAIL wrong total"
expect_out "tests.flow.yaml:9:3"
expect_out "step 2 (verify shop/totals): 1 difference"
expect_out 'key ["cy"]: /spent: expected 6, actual 5'
expect_eq "the summary is stdout's last line" "$(tail -1 "$WORK/out")" "2 passed, 1 failed"
[[ ! -s $WORK/err ]] || fail "stderr is not empty: $(cat "$WORK/err")"
"$FLOWCTL" test > redirected.txt 2>/dev/null || true
expect_eq "flowctl test > FILE keeps the results" "$(tail -1 redirected.txt)" "2 passed, 1 failed"

# The JUnit report validates and lists every test, the failing one with its message.
if command -v xmllint >/dev/null; then
  xmllint --noout --schema "$REPO/tests/e2e/junit.xsd" report.xml 2>xmllint.err ||
    fail "report.xml does not validate against junit.xsd: $(cat xmllint.err)"
fi
python3 - report.xml <<'PY' || fail "report.xml: see above"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "0"), root.attrib
cases = {c.get("name"): c for c in root.iter("testcase")}
want = {"totals add up", "wrong total",
        "a name with <markup> & \"quotes\" and a \ufffd control character"}
assert set(cases) == want, sorted(cases)
for name, c in cases.items():
    assert c.get("classname") == "tests.flow.yaml", c.attrib
    assert float(c.get("time")) >= 0, c.attrib
failures = [c for c in cases.values() if c.find("failure") is not None]
assert [c.get("name") for c in failures] == ["wrong total"], failures
f = cases["wrong total"].find("failure")
assert f.get("message") == "step 2 (verify shop/totals): 1 difference", f.attrib
for text in ["tests.flow.yaml:9:3", "step 2 (verify shop/totals) at tests.flow.yaml:11:7",
             'key ["cy"]: /spent: expected 6, actual 5', 'expected documents: [{"customer":"cy","spent":6}]',
             '"spent":5']:
    assert text in f.text, (text, f.text)
PY

# The JSON report says the same.
python3 - report.json <<'PY' || fail "report.json: see above"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["summary"]["tests"] == 3 and r["summary"]["passed"] == 2 and r["summary"]["failed"] == 1, r["summary"]
tests = {t["name"]: t for t in r["tests"]}
assert len(tests) == 3, list(tests)
t = tests["wrong total"]
assert t["status"] == "failed" and t["location"] == "tests.flow.yaml:9:3", t
assert t["message"] == "step 2 (verify shop/totals): 1 difference", t
assert t["step"] == {"index": 2, "kind": "verify", "collection": "shop/totals", "location": "tests.flow.yaml:11:7"}, t
assert t["differences"] == ['key ["cy"]: /spent: expected 6, actual 5'], t
assert t["expected"] == [{"customer": "cy", "spent": 6}] and t["actual"][0]["spent"] == 5, t
assert tests["totals add up"]["status"] == "passed" and tests["totals add up"]["seconds"] >= 0
PY
ls -a | grep '^report\..*\.tmp\|^\.report' >/dev/null && fail "a temporary report file was left behind: $(ls -a)"

# Catalog errors go to stderr, and no test runs.
printf 'collections: [\n' > broken.yaml
expect_status 1 "$FLOWCTL" test --source broken.yaml
expect_err "broken.yaml:"
[[ ! -s $WORK/out ]] || fail "a broken catalog printed results: $(cat "$WORK/out")"

# A report that cannot be written is an environment error.
expect_status 3 "$FLOWCTL" test --source flow.yaml --filter "totals add" --junit no/such/dir/r.xml
expect_err "cannot write the report no/such/dir/r.xml"
expect_out "1 passed, 0 failed"

# --watch: the tests run again when an imported file changes, until SIGTERM (exit 0).
cp passing.yaml tests.flow.yaml
watch() {  # watch OUT: writes stdout to OUT (a fresh file: no earlier run's output)
  "$FLOWCTL" test --watch --junit watch.xml > "$1" 2> watch.err &
  watch_pid=$!
  trap 'kill -KILL "$watch_pid" 2>/dev/null || true; rm -rf "$WORK"' EXIT
}
stop_watch() {
  kill "-$1" "$watch_pid"
  set +e
  wait "$watch_pid"
  watch_rc=$?
  set -e
}
watch watch.out
wait_until 30 grep -q "^2 passed, 0 failed" watch.out || fail "--watch: no first run: $(cat watch.out watch.err)"
wait_until 10 grep -q "watching 2 files" watch.err || fail "--watch does not say what it watches: $(cat watch.err)"
sleep 1.1  # a later modification time, whatever the file system's resolution
cat >> tests.flow.yaml <<'YAML'
  "wrong total":
    - ingest: {collection: shop/orders, documents: [{id: 1, customer: cy, total: 5}]}
    - verify: {collection: shop/totals, documents: [{customer: cy, spent: 6}]}
YAML
wait_until 30 grep -q "^2 passed, 1 failed" watch.out || fail "--watch did not rerun after an edit: $(cat watch.out watch.err)"
grep -q "FAIL wrong total" watch.out || fail "--watch: the new failure is not shown"
wait_until 10 grep -q 'failures="1"' watch.xml || fail "--watch did not rewrite the JUnit report"
# A broken edit prints the errors and keeps watching; fixing it runs the tests again.
sleep 1.1
printf 'tests: [\n' > tests.flow.yaml
wait_until 30 grep -q "tests.flow.yaml:" watch.err || fail "--watch: a broken edit shows no error: $(cat watch.err)"
sleep 1.1
cp passing.yaml tests.flow.yaml
wait_until 30 bash -c '[[ $(grep -c "^2 passed, 0 failed" watch.out) -ge 2 ]]' ||
  fail "--watch did not rerun after fixing the catalog: $(cat watch.out watch.err)"
stop_watch TERM
expect_eq "--watch exits 0 on SIGTERM" "$watch_rc" 0
watch watch2.out
wait_until 30 grep -q "passed, 0 failed" watch2.out || fail "--watch: no run before SIGINT"
stop_watch INT
expect_eq "--watch exits 0 on SIGINT" "$watch_rc" 0

finish
