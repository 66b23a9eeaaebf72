#!/usr/bin/env bash
# The type-mapping matrix of materializations (SPEC 5, 1.5-1.7; docs/materializations.md),
# into SQLite and into a real PostgreSQL server (started here by scripts/pg.sh), with the
# same bindings in both:
#   - "types": the default field selection of a collection with a 3-part key (string,
#     integer, boolean) and every JSON type: the catalog's column types and nullability
#     (required or not, nullable types, maxLength → VARCHAR(n)), the primary key in key
#     order, flow_document last, and the stored values read back (booleans, integers at the
#     int64 edges, 1e300, strings with quotes, backslashes, CR/LF/tab, emoji/CJK, empty and
#     100 000 characters; absent and null → NULL). A field of several types is left out.
#   - "types json": objects, arrays and a nullable object selected through projections,
#     stored as JSON text that round-trips (nested, unicode, quotes, backslashes).
#   - "types delta": deltaUpdates, no primary key, one row per document as ingested.
#   - `Odd "Names" it's.v2` and "names default": identifiers with spaces, quotes, case, SQL
#     keywords, non-ASCII, dots and slashes, as keys and as columns.
# Two `flowctl run --until-idle` runs: the second loads and reduces what the first stored;
# after each, every flow_document equals `flowctl read --reduced` and every column equals
# its location in flow_document. Then `flowctl materialize --dry-run` must print the DDL of
# the tables `run` created; fields of several types, and objects/arrays without a
# projection, are refused with a clear error. Last, names and values at the databases'
# limits, each in its own catalog: a 70-byte column name (PostgreSQL keeps 63), an integer
# beyond int64, and fields that differ only in case (one column in SQLite).
source "$(dirname "$0")/lib.sh"
cd "$WORK"
chmod 755 "$WORK"  # the server runs as another user when we are root
pgdir=$WORK/pg
uri=$("$REPO/scripts/pg.sh" start "$pgdir" | tail -n 1)
trap '"$REPO/scripts/pg.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
pg() { PGOPTIONS='-c client_min_messages=warning' "$REPO/scripts/pg.sh" psql "$pgdir" -At -q "$@"; }
lite() { sqlite3 -batch -noheader "$WORK/views/lite.db" "$@"; }

cat > flow.yaml <<YAML
collections:
  - name: matrix/types
    key: [/ks, /kn, /kb]
    schema:
      type: object
      reduce: {strategy: merge}
      required: [ks, kn, kb, str, int, num, bool, obj, arr, nstr]
      properties:
        ks: {type: string}
        kn: {type: integer}
        kb: {type: boolean}
        str: {type: string}
        optstr: {type: string}
        nstr: {type: [string, "null"]}
        short: {type: [string, "null"], maxLength: 16}
        int: {type: integer}
        optint: {type: integer}
        num: {type: number}
        bool: {type: boolean}
        optbool: {type: boolean}
        obj: {type: object}
        arr: {type: array}
        nobj: {type: [object, "null"]}
        multi: {type: [string, integer]}
        cnt: {type: integer, reduce: {strategy: sum}}
        meta: {type: object}
        list: {type: array}
    projections:
      obj: /obj
      arr: /arr
      nobj: /nobj
      multi: /multi
  - name: matrix/names
    key: [/id, /sel]
    schema:
      type: object
      required: [id, sel, a]
      properties:
        id: {type: integer}
        sel: {type: string}
        a: {type: string}
        b: {type: [string, "null"]}
        c: {type: integer}
        d: {type: boolean}
        e: {type: string}
        f: {type: number}
        g: {type: object}
        café: {type: string}
        nested: {type: object, properties: {leaf: {type: string}}}
    projections:
      end station id: /id
      select: /sel
      'say "hi"': /a
      it's: /b
      MixedCase: /c
      UPPER: /d
      order: /e
      a.b: /f
      x/y: /g
materializationTargets:
  lite: {sqlite: {path: views/lite.db}}
  pg: {postgres: {uri: "$uri"}}
materializations:
  matrix/lite: &bindings
    target: lite
    bindings:
      - {source: matrix/types, table: types}
      - {source: matrix/types, table: types json, fields: {include: [str, obj, arr, nobj, num]}}
      - {source: matrix/types, table: types delta, deltaUpdates: true, fields: {include: [cnt, bool, obj]}}
      - source: matrix/names
        table: 'Odd "Names" it''s.v2'
        fields: {include: ['say "hi"', "it's", MixedCase, UPPER, order, a.b, x/y, café, nested/leaf]}
      - {source: matrix/names, table: names default}
  matrix/pg:
    <<: *bindings
    target: pg
YAML

# Documents: t1/n1 for the first run, t2/n2 for the second. Big integers are written as
# literals (JavaScript numbers cannot hold them).
node - <<'JS'
const fs = require("fs");
const big = (v) => (typeof v === "bigint" ? `#${v}#` : v);
const write = (file, docs) => fs.writeFileSync(file, docs.map((d) =>
  JSON.stringify(d, (k, v) => big(v)).replace(/"#(-?\d+)#"/g, "$1") + "\n").join(""));
const S1 = "it's \"quoted\" back\\slash\r\nline2\ttab 😀 漢字 café";
const SHORT = "😀漢字café\"'\\ \tñ€ab";  // 16 code points, 27 bytes
if ([...SHORT].length !== 16) throw new Error("SHORT is not 16 code points");
const KS5 = "{tab}\t\"q\" back\\slash, {x} NULL\n";
write("t1.jsonl", [
  {ks: "a", kn: 1, kb: true, str: S1, int: 0, num: -0.5, bool: true,
   obj: {x: {"y\"": ["é 😀", 1, null, "it's"]}, "back\\slash": "\n\t"}, arr: [1, "two", {three: [3]}, null, true],
   nstr: null, short: "abc", multi: "s", cnt: 1},
  {ks: "a", kn: 1, kb: false, str: "", int: 9223372036854775807n, num: 1e300, bool: false, obj: {}, arr: [],
   nstr: "x", short: SHORT, multi: 7, cnt: 2, optbool: true},
  {ks: "a", kn: 2, kb: true, str: "é".repeat(100000), int: -9223372036854775808n, num: 3, bool: true,
   obj: {k: "v"}, arr: [[]], nstr: "y", optstr: "o", optint: 5, optbool: false, nobj: {a: 1}},
  {ks: "b", kn: 1, kb: true, str: "s", int: 9007199254740993n, num: 0.1, bool: false, obj: {}, arr: [],
   nstr: null, nobj: null, cnt: 0},
  {ks: KS5, kn: 9223372036854775807n, kb: false, str: "k", int: -1, num: -2.5e-300, bool: true,
   obj: {q: "'\"\\"}, arr: ["'", "\"", "\\"], nstr: "", cnt: 1},
  {ks: "", kn: -1, kb: true, str: "NULL", int: 1, num: 0, bool: false, obj: {}, arr: [], nstr: "null"},
]);
write("t2.jsonl", [
  {ks: "a", kn: 1, kb: true, str: "updated", int: 1, num: -0.5, bool: false, obj: {replaced: true}, arr: [],
   nstr: "now", short: null, cnt: 4, optstr: "added", nobj: {z: [1]}},
  {ks: KS5, kn: 9223372036854775807n, kb: false, str: "k2", int: -1, num: 1, bool: true, obj: {}, arr: [],
   nstr: "", cnt: 10},
  {ks: "", kn: -1, kb: true, str: "", int: 2, num: 0, bool: true, obj: {}, arr: [], nstr: null, cnt: 1},
  {ks: "b", kn: 1, kb: false, str: "new", int: 7, num: 7.5, bool: true, obj: {}, arr: [], nstr: null},
  {ks: "A", kn: 1, kb: true, str: "case", int: 8, num: 8, bool: true, obj: {}, arr: [], nstr: null},
]);
write("n1.jsonl", [
  {id: 1, sel: "select", a: "say \"hi\"", b: "it's", c: -3, d: true, e: "order", f: 1.5, g: {"x/y": "a.b"},
   "café": "crème brûlée", nested: {leaf: "🍃"}},
  {id: 1, sel: "SELECT", a: "", b: null, d: false, e: ""},
]);
write("n2.jsonl", [{id: 1, sel: "select", a: "changed", d: false}]);
JS

# same DB TABLE COLLECTION: the table's flow_documents equal `flowctl read --reduced`,
# compared as JSON values (integers exactly, whatever the order of properties).
cat > same.js <<'JS'
const fs = require("fs");
const [table, reduced, mode] = process.argv.slice(2);
// Numbers become exact tokens: integers through BigInt, others as doubles.
const parse = (text) => JSON.parse(text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (m) =>
  m[0] === '"' ? m : JSON.stringify({"#": /[.eE]/.test(m) ? String(Number(m)) : BigInt(m).toString()})));
const canon = (v) => Array.isArray(v) ? v.map(canon) : v && typeof v === "object"
  ? Object.fromEntries(Object.keys(v).filter((k) => mode !== "strip-meta" || k !== "_meta").sort()
      .map((k) => [k, canon(v[k])]))
  : v;
const load = (f) => fs.readFileSync(f, "utf8").split("\n").filter(Boolean)
  .map((l) => JSON.stringify(canon(parse(l)))).sort();
const a = load(table), b = load(reduced);
if (JSON.stringify(a) !== JSON.stringify(b)) {
  console.error(`${a.length} rows, ${b.length} expected`);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) { console.error("  table:    " + String(a[i]).slice(0, 300) + "\n  expected: " + String(b[i]).slice(0, 300)); break; }
  }
  process.exit(1);
}
JS
same() {
  local db=$1 table=$2 collection=$3
  if [[ $db == lite ]]; then
    lite "SELECT flow_document FROM \"${table//\"/\"\"}\"" > table.jsonl || fail "lite: cannot read $table"
  else
    pg -v t="$table" <<< 'SELECT flow_document FROM :"t"' > table.jsonl || fail "pg: cannot read $table"
  fi
  "$FLOWCTL" read "$collection" --reduced --data-dir data > reduced.jsonl 2>/dev/null
  node same.js table.jsonl reduced.jsonl 2>same.err || fail "$db: table $table differs from the reduced $collection: $(cat same.err)"
}

# Column descriptions as the databases' catalogs report them.
lite_columns() { lite "SELECT name || '|' || type || '|' || \"notnull\" || '|' || pk FROM pragma_table_info('${1//\'/\'\'}') ORDER BY cid"; }
pg_columns() {
  pg -v s="${2:-public}" -v t="$1" <<'SQL'
SELECT column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '') || ' ' || is_nullable
FROM information_schema.columns WHERE table_schema = :'s' AND table_name = :'t' ORDER BY ordinal_position;
SQL
}
pg_primary_key() {
  pg -v s="${2:-public}" -v t="$1" <<'SQL'
SELECT coalesce((SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
  JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = :'s' AND r.relname = :'t' AND c.contype = 'p'), 'none');
SQL
}

q() { if [[ $db == lite ]]; then lite "$1"; else pg -c "$1"; fi; }  # a query to $db
KS5=$'{tab}\t"q" back\\slash, {x} NULL\n'  # a key string of t1.jsonl and t2.jsonl

# ---- First run -------------------------------------------------------------------------
expect_status 0 "$FLOWCTL" ingest matrix/types t1.jsonl --data-dir data
expect_status 0 "$FLOWCTL" ingest matrix/names n1.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data

# Column types, NOT NULL (keys, required and non-nullable locations) and the primary key
# in key order (ks, kn, kb: not the alphabetical order), flow_document last.
expect_eq "lite: types columns (name|type|notnull|pk)" "$(lite_columns types)" "ks|TEXT|1|1
kn|INTEGER|1|2
kb|BOOLEAN|1|3
bool|BOOLEAN|1|0
cnt|INTEGER|0|0
int|INTEGER|1|0
nstr|TEXT|0|0
num|REAL|1|0
optbool|BOOLEAN|0|0
optint|INTEGER|0|0
optstr|TEXT|0|0
short|TEXT|0|0
str|TEXT|1|0
flow_document|TEXT|1|0"
expect_eq "pg: types columns" "$(pg_columns types)" "ks text NO
kn bigint NO
kb boolean NO
bool boolean NO
cnt bigint YES
int bigint NO
nstr text YES
num double precision NO
optbool boolean YES
optint bigint YES
optstr text YES
short character varying(16) YES
str text NO
flow_document json NO"
expect_eq "pg: types primary key in key order" "$(pg_primary_key types)" "PRIMARY KEY (ks, kn, kb)"

# Objects, arrays and a nullable object through projections, in the order of `include`.
expect_eq "lite: types json columns" "$(lite_columns 'types json')" "ks|TEXT|1|1
kn|INTEGER|1|2
kb|BOOLEAN|1|3
str|TEXT|1|0
obj|TEXT|1|0
arr|TEXT|1|0
nobj|TEXT|0|0
num|REAL|1|0
flow_document|TEXT|1|0"
expect_eq "pg: types json columns" "$(pg_columns 'types json')" "ks text NO
kn bigint NO
kb boolean NO
str text NO
obj json NO
arr json NO
nobj json YES
num double precision NO
flow_document json NO"

# Delta updates: the same columns, no primary key.
expect_eq "lite: types delta columns" "$(lite_columns 'types delta')" "ks|TEXT|1|0
kn|INTEGER|1|0
kb|BOOLEAN|1|0
cnt|INTEGER|0|0
bool|BOOLEAN|1|0
obj|TEXT|1|0
flow_document|TEXT|1|0"
expect_eq "pg: types delta columns" "$(pg_columns 'types delta')" "ks text NO
kn bigint NO
kb boolean NO
cnt bigint YES
bool boolean NO
obj json NO
flow_document json NO"
expect_eq "pg: types delta has no primary key" "$(pg_primary_key 'types delta')" "none"

# Odd identifiers: the key fields are user projections ("end station id", "select").
expect_eq "lite: odd names columns" "$(lite_columns 'Odd "Names" it'"'"'s.v2')" "end station id|INTEGER|1|1
select|TEXT|1|2
say \"hi\"|TEXT|1|0
it's|TEXT|0|0
MixedCase|INTEGER|0|0
UPPER|BOOLEAN|0|0
order|TEXT|0|0
a.b|REAL|0|0
x/y|TEXT|0|0
café|TEXT|0|0
nested/leaf|TEXT|0|0
flow_document|TEXT|1|0"
expect_eq "pg: odd names columns" "$(pg_columns 'Odd "Names" it'"'"'s.v2')" "end station id bigint NO
select text NO
say \"hi\" text NO
it's text YES
MixedCase bigint YES
UPPER boolean YES
order text YES
a.b double precision YES
x/y json YES
café text YES
nested/leaf text YES
flow_document json NO"
expect_eq "pg: odd names primary key" "$(pg_primary_key 'Odd "Names" it'"'"'s.v2')" 'PRIMARY KEY ("end station id", "select")'

# Stored values. SQLite stores booleans as the integers 1 and 0.
expect_eq "lite: keys differing in one component" \
  "$(lite "SELECT ks || '|' || kn || '|' || kb FROM types WHERE ks IN ('a', 'b', '') ORDER BY ks, kn, kb")" "|-1|1
a|1|0
a|1|1
a|2|1
b|1|1"
expect_eq "pg: keys differing in one component" \
  "$(pg -c "SELECT ks || '|' || kn || '|' || kb FROM types WHERE ks IN ('a', 'b', '') ORDER BY ks, kn, kb")" "|-1|true
a|1|false
a|1|true
a|2|true
b|1|true"
for db in lite pg; do
  expect_eq "$db: row count" "$(q 'SELECT count(*) FROM types')" 6
  expect_eq "$db: a string with quotes, a backslash, CR LF, a tab, emoji and CJK" \
    "$(q "SELECT str FROM types WHERE ks = 'a' AND kn = 1 AND kb = true")" \
    $'it\'s "quoted" back\\slash\r\nline2\ttab 😀 漢字 café'
  expect_eq "$db: the empty string is not NULL, the string 'NULL' is not NULL" \
    "$(q "SELECT count(*) FROM types WHERE (str = '' AND kb = false) OR (str = 'NULL' AND kn = -1)")" 2
  expect_eq "$db: a 16-character string with emoji, quotes, a backslash and a tab in VARCHAR(16)" \
    "$(q "SELECT short FROM types WHERE ks = 'a' AND kn = 1 AND kb = false")" $'😀漢字café"\'\\ \tñ€ab'
  expect_eq "$db: integers at the edges" \
    "$(q "SELECT int FROM types WHERE ks IN ('a', 'b') ORDER BY int")" "-9223372036854775808
0
9007199254740993
9223372036854775807"
  expect_eq "$db: a key with a tab, quotes, a backslash, braces and a newline, next to int64 max" \
    "$(q "SELECT $([[ $db == lite ]] && echo 'lower(hex(ks))' || echo "encode(convert_to(ks, 'UTF8'), 'hex')")
          FROM types WHERE kn = 9223372036854775807")" "$(printf '%s' "$KS5" | od -An -tx1 | tr -d ' \n')"
  expect_eq "$db: numbers (1e300, -0.5, 0.1, 3, -2.5e-300, 0)" \
    "$(q "SELECT count(*) FROM types WHERE (num = 1e300 AND kb = false AND kn = 1) OR (num = -0.5 AND kb = true AND kn = 1)
          OR (num = 0.1 AND ks = 'b') OR (num = 3 AND kn = 2) OR (num = -2.5e-300 AND int = -1) OR (num = 0 AND kn = -1)")" 6
  expect_eq "$db: absent fields and JSON null are NULL" \
    "$(q "SELECT count(*) FROM types WHERE ks = 'b' AND optstr IS NULL AND optint IS NULL AND optbool IS NULL AND nstr IS NULL AND short IS NULL")" 1
  expect_eq "$db: absent and null objects are NULL, not 'null'" \
    "$(q "SELECT count(*) FROM \"types json\" WHERE nobj IS NULL")" 5
  expect_eq "$db: a 100 000-character string" \
    "$(q "SELECT length(str) FROM types WHERE kn = 2")" 100000
  expect_eq "$db: an object as JSON text: nested, unicode, quotes, backslashes, control characters" \
    "$(q "SELECT obj FROM \"types json\" WHERE ks = 'a' AND kn = 1 AND kb = true")" \
    '{"x":{"y\"":["é 😀",1,null,"it'"'"'s"]},"back\\slash":"\n\t"}'
  expect_eq "$db: an array as JSON text" \
    "$(q "SELECT arr FROM \"types json\" WHERE ks = 'a' AND kn = 1 AND kb = true")" '[1,"two",{"three":[3]},null,true]'
  expect_eq "$db: objects and arrays: quotes, backslashes, empty, nested empty" \
    "$(q "SELECT obj || ' ' || arr FROM \"types json\" ORDER BY ks, kn, kb")" '{} []
{} []
{"x":{"y\"":["é 😀",1,null,"it'"'"'s"]},"back\\slash":"\n\t"} [1,"two",{"three":[3]},null,true]
{"k":"v"} [[]]
{} []
{"q":"'"'"'\"\\"} ["'"'"'","\"","\\"]'
done
expect_eq "lite: booleans are stored as integers 1 and 0" \
  "$(lite "SELECT DISTINCT typeof(bool) || ' ' || bool FROM types ORDER BY bool")" "integer 0
integer 1"
expect_eq "lite: storage classes" \
  "$(lite "SELECT DISTINCT typeof(ks) || typeof(kn) || typeof(kb) || typeof(int) || typeof(num) || typeof(str) || typeof(flow_document) FROM types")" \
  "textintegerintegerintegerrealtexttext"
expect_eq "pg: booleans" "$(pg -c "SELECT string_agg(bool::text, ',' ORDER BY ks, kn, kb) FROM types WHERE ks IN ('a', 'b')")" "false,true,true,false"
expect_eq "pg: the long string" "$(pg -c "SELECT str = repeat('é', 100000) FROM types WHERE kn = 2")" "t"
expect_eq "pg: 1e300 and -2.5e-300" "$(pg -c "SELECT num FROM types WHERE kb = false AND kn IN (1, 9223372036854775807) ORDER BY num")" "-2.5e-300
1e+300"
expect_eq "lite: the long string" "$(lite "SELECT str = replace(hex(zeroblob(100000)), '00', 'é') FROM types WHERE kn = 2")" "1"

# Every column equals its location in the row's flow_document (and flow_document, below,
# equals the reduced collection).
expect_eq "lite: every column equals its document location" "$(lite "SELECT count(*) FROM types WHERE
  ks IS NOT json_extract(flow_document, '\$.ks') OR kn IS NOT json_extract(flow_document, '\$.kn')
  OR kb IS NOT json_extract(flow_document, '\$.kb') OR bool IS NOT json_extract(flow_document, '\$.bool')
  OR cnt IS NOT json_extract(flow_document, '\$.cnt') OR int IS NOT json_extract(flow_document, '\$.int')
  OR nstr IS NOT json_extract(flow_document, '\$.nstr') OR num IS NOT json_extract(flow_document, '\$.num')
  OR optbool IS NOT json_extract(flow_document, '\$.optbool') OR optint IS NOT json_extract(flow_document, '\$.optint')
  OR optstr IS NOT json_extract(flow_document, '\$.optstr') OR short IS NOT json_extract(flow_document, '\$.short')
  OR str IS NOT json_extract(flow_document, '\$.str')")" 0
expect_eq "lite: every JSON column equals its document location" "$(lite "SELECT count(*) FROM \"types json\" WHERE
  json(obj) IS NOT json_extract(flow_document, '\$.obj') OR json(arr) IS NOT json_extract(flow_document, '\$.arr')
  OR json(nobj) IS NOT json_extract(flow_document, '\$.nobj') OR str IS NOT json_extract(flow_document, '\$.str')
  OR num IS NOT json_extract(flow_document, '\$.num')")" 0
expect_eq "pg: every column equals its document location" "$(pg -c "SELECT count(*) FROM types, LATERAL (SELECT flow_document::jsonb AS d) x WHERE
  ks IS DISTINCT FROM d->>'ks' OR kn IS DISTINCT FROM (d->>'kn')::bigint OR kb IS DISTINCT FROM (d->>'kb')::boolean
  OR bool IS DISTINCT FROM (d->>'bool')::boolean OR cnt IS DISTINCT FROM (d->>'cnt')::bigint
  OR int IS DISTINCT FROM (d->>'int')::bigint OR nstr IS DISTINCT FROM d->>'nstr' OR num IS DISTINCT FROM (d->>'num')::float8
  OR optbool IS DISTINCT FROM (d->>'optbool')::boolean OR optint IS DISTINCT FROM (d->>'optint')::bigint
  OR optstr IS DISTINCT FROM d->>'optstr' OR short IS DISTINCT FROM d->>'short' OR str IS DISTINCT FROM d->>'str'")" 0
expect_eq "pg: every JSON column equals its document location" "$(pg -c "SELECT count(*) FROM \"types json\", LATERAL (SELECT flow_document::jsonb AS d) x WHERE
  obj::jsonb IS DISTINCT FROM d->'obj' OR arr::jsonb IS DISTINCT FROM d->'arr'
  OR nobj::jsonb IS DISTINCT FROM nullif(d->'nobj', 'null'::jsonb) OR str IS DISTINCT FROM d->>'str'")" 0

# Odd identifiers, read back through quoted names.
read -r -d '' names_sql <<'SQL' || true
SELECT "end station id", "select", "say ""hi""", "it's", "MixedCase", "UPPER", "order", "a.b", "x/y", "café", "nested/leaf"
FROM "Odd ""Names"" it's.v2" ORDER BY "select"
SQL
expect_eq "lite: values under odd column names" "$(lite "$names_sql")" '1|SELECT||||0|||||
1|select|say "hi"|it'"'"'s|-3|1|order|1.5|{"x/y":"a.b"}|crème brûlée|🍃'
expect_eq "pg: values under odd column names" "$(pg -c "$names_sql")" '1|SELECT||||f|||||
1|select|say "hi"|it'"'"'s|-3|t|order|1.5|{"x/y":"a.b"}|crème brûlée|🍃'

for db in lite pg; do
  same $db types matrix/types
  same $db "types json" matrix/types
  same $db 'Odd "Names" it'"'"'s.v2' matrix/names
  same $db "names default" matrix/names
done

# ---- Second run: loads, reduces and updates; deltas append ----------------------------
expect_status 0 "$FLOWCTL" ingest matrix/types t2.jsonl --data-dir data
expect_status 0 "$FLOWCTL" ingest matrix/names n2.jsonl --data-dir data
expect_status 0 "$FLOWCTL" run --until-idle --data-dir data
for db in lite pg; do
  same $db types matrix/types
  same $db "types json" matrix/types
  same $db 'Odd "Names" it'"'"'s.v2' matrix/names
  same $db "names default" matrix/names
  expect_eq "$db: rows after the second run" "$(q 'SELECT count(*) FROM types')" 8
  expect_eq "$db: sums reduced into the stored rows (the tricky and the empty key loaded)" \
    "$(q "SELECT coalesce(cnt, -99) FROM types ORDER BY kn, ks, kb")" "1
-99
2
5
-99
0
-99
11"
  expect_eq "$db: an update sets NULL, adds a value, replaces an object" \
    "$(q "SELECT coalesce(t.short, 'NULL') || ' ' || t.optstr || ' ' || t.str || ' ' || j.obj || ' ' || j.nobj
          FROM types t JOIN \"types json\" j USING (ks, kn, kb) WHERE ks = 'a' AND kn = 1 AND kb = true")" \
    'NULL added updated {"replaced":true} {"z":[1]}'
  expect_eq "$db: delta updates append each document as it came" \
    "$(q "SELECT coalesce(cnt, -99) FROM \"types delta\" WHERE kn = 9223372036854775807 OR (ks = 'a' AND kn = 1 AND kb = true) ORDER BY kn, cnt")" "1
4
1
10"
  expect_eq "$db: delta row count" "$(q 'SELECT count(*) FROM "types delta"')" 11
  expect_eq "$db: a replaced document's missing values become NULL" \
    "$(q "SELECT coalesce(\"MixedCase\", -99) || ' ' || coalesce(\"café\", 'NULL') || ' ' || \"say \"\"hi\"\"\" FROM \"Odd \"\"Names\"\" it's.v2\" WHERE \"select\" = 'select'")" \
    "-99 NULL changed"
done
# The delta tables hold the ingested documents themselves.
cat t1.jsonl t2.jsonl > all.jsonl
lite 'SELECT flow_document FROM "types delta"' > delta.jsonl
node same.js delta.jsonl all.jsonl strip-meta 2>same.err || fail "lite: types delta differs from the ingested documents: $(cat same.err)"
pg -c 'SELECT flow_document FROM "types delta"' > delta.jsonl
node same.js delta.jsonl all.jsonl strip-meta 2>same.err || fail "pg: types delta differs from the ingested documents: $(cat same.err)"

# ---- flowctl materialize --dry-run prints the DDL of the tables run created ----------
dry() { "$FLOWCTL" materialize --target "$1" --collection "$2" --table-name "$3" "${@:4}" --dry-run --data-dir data 2>dry.err; }
names_fields=(--field 'say "hi"' --field "it's" --field MixedCase --field UPPER --field order --field a.b --field x/y
  --field café --field nested/leaf)
check_dry() {  # NAME COLLECTION TABLE [--field F]...
  local name=$1 collection=$2 table=$3
  shift 3
  local ddl
  ddl=$(dry lite "$collection" "$table" "$@") || fail "lite: --dry-run of $name failed: $(cat dry.err)"
  # SQLite keeps the statement it executed, without IF NOT EXISTS and the final semicolon.
  expect_eq "lite: --dry-run of $name is the DDL run executed" \
    "$(sed '1s/^CREATE TABLE IF NOT EXISTS /CREATE TABLE /; $s/;$//' <<< "$ddl")" \
    "$(lite "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '${table//\'/\'\'}'")"
  ddl=$(dry pg "$collection" "$table" "$@") || fail "pg: --dry-run of $name failed: $(cat dry.err)"
  pg -c 'DROP SCHEMA IF EXISTS dry CASCADE' -c 'CREATE SCHEMA dry' >/dev/null
  pg -c 'SET search_path TO dry' -c "$ddl" >/dev/null 2>dry.err || fail "pg: the --dry-run DDL of $name fails: $(cat dry.err)"
  expect_eq "pg: --dry-run of $name creates the table run created" \
    "$(pg_columns "$table" dry; pg_primary_key "$table" dry)" "$(pg_columns "$table"; pg_primary_key "$table")"
}
check_dry "types" matrix/types types
check_dry "types json" matrix/types "types json" --field str --field obj --field arr --field nobj --field num
check_dry "odd names" matrix/names 'Odd "Names" it'"'"'s.v2' "${names_fields[@]}"
check_dry "names default (default selection in both)" matrix/names "names default"
expect_status 0 "$FLOWCTL" materialize --target pg --collection matrix/types --table-name all --all-fields --dry-run --data-dir data
grep -qxF '  "multi" JSON,' "$WORK/out" || fail "pg: --all-fields does not store the field of several types as JSON: $(cat "$WORK/out")"
grep -qxF '  "obj" JSON NOT NULL,' "$WORK/out" || fail "pg: --all-fields does not store an object as JSON NOT NULL"
expect_eq "--dry-run creates nothing" "$(lite "SELECT count(*) FROM sqlite_master WHERE name = 'all'")|$(pg -c "SELECT to_regclass('all') IS NULL")" "0|t"

# ---- Fields no column can hold, and objects/arrays without a projection ---------------
cat > broken.yaml <<'YAML'
import: [flow.yaml]
materializations:
  matrix/broken:
    target: lite
    bindings:
      - {source: matrix/types, table: broken, fields: {include: [meta, list, multi]}}
YAML
expect_status 1 "$FLOWCTL" build --source broken.yaml --catalog broken.db
expect_err "collection \`matrix/types\` has no field \`meta\`: object locations are not projected by default"
expect_err "hint: add \`projections: {meta: /meta}\` to the collection to store it as JSON"
expect_err "collection \`matrix/types\` has no field \`list\`: array locations are not projected by default"
expect_err "field \`multi\` may be integer | string, which no single column type can hold"
expect_err "3 errors in the catalog"
expect_status 1 "$FLOWCTL" run --source broken.yaml --until-idle --data-dir data
expect_eq "a refused binding creates no table" "$(lite "SELECT count(*) FROM sqlite_master WHERE name = 'broken'")" 0
# The same mistake in `flowctl materialize` deserves the same explanation.
expect_status 1 "$FLOWCTL" materialize --target lite --collection matrix/types --table-name broken --field meta --dry-run
expect_err "object locations are not projected by default"

# ---- Names and values at the limits of the databases ----------------------------------
# Each in its own catalog and data directory, so that one failing does not stop the others.
# A column name of 70 bytes: PostgreSQL truncates identifiers to 63 bytes. The table the
# first run creates must be one the next run accepts (or the first run must refuse the name).
long=$(printf 'c%.0s' {1..70})
cat > long.yaml <<YAML
collections:
  - name: edge/long
    key: [/k]
    schema: {type: object, required: [k], properties: {k: {type: string}, $long: {type: string}}}
materializationTargets:
  pg: {postgres: {uri: "$uri"}}
materializations:
  edge/long-pg: {target: pg, bindings: [{source: edge/long, table: long names}]}
YAML
echo '{"k":"a","'"$long"'":"v1"}' > long1.jsonl
echo '{"k":"a","'"$long"'":"v2"}' > long2.jsonl
expect_status 0 "$FLOWCTL" ingest edge/long long1.jsonl --source long.yaml --data-dir ldata
set +e
"$FLOWCTL" run --until-idle --source long.yaml --data-dir ldata > /dev/null 2> long.err
rc=$?
set -e
if [[ $rc -eq 0 ]]; then
  expect_status 0 "$FLOWCTL" ingest edge/long long2.jsonl --source long.yaml --data-dir ldata
  expect_status 0 "$FLOWCTL" run --until-idle --source long.yaml --data-dir ldata
  expect_eq "pg: a 70-byte column name works across runs" "$(pg -c "SELECT \"$long\" FROM \"long names\"")" v2
else
  expect_eq "pg: a 70-byte column name is refused as a user error" "$rc" 1
  grep -q 63 long.err || fail "pg: the refusal of a 70-byte column name does not mention the 63-byte limit: $(head -3 long.err)"
fi

# An integer beyond int64 (the schema allows it, BIGINT/INTEGER cannot hold it): stored
# exactly or refused, never changed. PostgreSQL refuses it as a user error.
cat > huge.yaml <<YAML
collections:
  - name: edge/huge
    key: [/k]
    schema: {type: object, required: [k], properties: {k: {type: string}, i: {type: integer}}}
materializationTargets:
  lite: {sqlite: {path: views/huge.db}}
  pg: {postgres: {uri: "$uri"}}
materializations:
  edge/huge-lite: {target: lite, bindings: [{source: edge/huge, table: huge}]}
  edge/huge-pg: {target: pg, bindings: [{source: edge/huge, table: huge}]}
YAML
echo '{"k":"a","i":18446744073709551615}' > huge.jsonl
expect_status 0 "$FLOWCTL" ingest edge/huge huge.jsonl --source huge.yaml --data-dir hdata
if [[ $(cat "$WORK/err") == *"nothing was written"* ]]; then
  expect_err "at /i"  # refused at ingestion instead (SPEC 9): fine, if it says where
else
  expect_status 1 "$FLOWCTL" run --until-idle --source huge.yaml --data-dir hdata
  expect_err "PostgreSQL target \`pg\`: storing rows into table \`huge\` failed: value \"18446744073709551615\" is out of range for type bigint"
  expect_eq "pg: nothing of a refused transaction is written" "$(pg -c 'SELECT count(*) FROM huge')" 0
  expect_eq "lite: 18446744073709551615 is not silently stored as another number" \
    "$(sqlite3 -batch -noheader views/huge.db "SELECT count(*) FROM huge WHERE typeof(i) <> 'integer'")" 0
fi

# Fields that differ only in case are distinct columns in PostgreSQL but one in SQLite: a
# mistake in the catalog (exit 1), not an environment problem to retry (exit 3).
cat > case.yaml <<'YAML'
collections:
  - name: edge/case
    key: [/k]
    schema: {type: object, required: [k], properties: {k: {type: string}, Name: {type: string}, name: {type: string}}}
materializationTargets:
  lite: {sqlite: {path: views/case.db}}
materializations:
  edge/case-lite: {target: lite, bindings: [{source: edge/case, table: case}]}
YAML
echo '{"k":"a","Name":"N","name":"n"}' > case.jsonl
expect_status 0 "$FLOWCTL" ingest edge/case case.jsonl --source case.yaml --data-dir cdata
expect_status 1 "$FLOWCTL" run --until-idle --source case.yaml --data-dir cdata
if grep -q "retrying" "$WORK/err"; then fail "lite: columns Name and name are retried as an environment problem"; fi
expect_err "Name"  # the error names the colliding fields
finish
