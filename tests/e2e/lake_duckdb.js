// Helper of lake_duckdb.sh: queries a collection's lake with DuckDB (@duckdb/node-api) and
// compares what it returns with the committed documents that `flowctl read` printed.
//
//   node lake_duckdb.js LAKE_DIR EXT EXPECTED_JSONL PARTITIONS
//
// LAKE_DIR is <data-dir>/lake/<collection>, EXT the fragment extension (gz, zst), and
// PARTITIONS the partition fields as `field=/pointer,...`. Prints one line per mismatch
// and exits 1 if there was any.
//
// What DuckDB (1.5) does with flowctl's hive layout, found while writing this test:
// - Hive values are percent-decoded: `region=Z%C3%BCrich%2FNord` reads as `Zürich/Nord`,
//   `50%25` as `50%`. A `+` stays a `+` (no form decoding).
// - A hive column replaces a document property of the same name (e.g. `region`, stored
//   both in the documents and in the path): `SELECT *` has one `region` column, and its
//   values (and type) come from the path, not from the document. So the documents'
//   own values are checked with hive_partitioning=false, and the hive columns with
//   hive_partitioning=true by name.
// - Hive values are typed by auto-detection: an integer partition is BIGINT, utc_date a
//   DATE, utc_hour a BIGINT, but a boolean partition stays VARCHAR 'true'/'false' (pass
//   hive_types={'vip': BOOLEAN} to get booleans). An hour with a leading zero (00-09)
//   makes utc_hour VARCHAR: its type depends on when the test runs.
// - `*.zst` fragments are read by the same query (compression is detected from the
//   extension); no extension needs installing (json is built into the package).
'use strict';
const fs = require('fs');
const { DuckDBInstance } = require('@duckdb/node-api');

const [lakeDir, ext, expectedPath, partitionSpec] = process.argv.slice(2);
const partitions = partitionSpec.split(',').map((p) => {
  const eq = p.indexOf('=');
  return { field: p.slice(0, eq), pointer: p.slice(eq + 1) };
});
let failures = 0;
function fail(msg) {
  console.log(`FAIL: ${msg}`);
  failures++;
}

const lookup = (doc, pointer) =>
  pointer
    .split('/')
    .slice(1)
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((v, t) => (v === undefined || v === null ? undefined : v[t]), doc);

// DuckDB gives every row every column of the inferred schema (struct members too), with
// nulls where a document has no such property; so absent and null compare equal.
function looseEqual(a, b) {
  a = a === undefined ? null : a;
  b = b === undefined ? null : b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => looseEqual(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => looseEqual(a[k], b[k]));
  }
  return a === b;
}

// Unix milliseconds of a v1 UUID's timestamp (SPEC 3.1).
function uuidMillis(uuid) {
  const h = uuid.replace(/-/g, '');
  const ticks = (BigInt('0x' + h.slice(13, 16)) << 48n) | (BigInt('0x' + h.slice(8, 12)) << 32n) | BigInt('0x' + h.slice(0, 8));
  return Number((ticks - 0x01b21dd213814000n) / 10000n);
}

(async () => {
  const lines = fs.readFileSync(expectedPath, 'utf8').split('\n').filter((l) => l !== '');
  const expected = new Map();
  for (const line of lines) {
    const doc = JSON.parse(line);
    expected.set(doc._meta.uuid, { line, doc });
  }
  if (expected.size !== lines.length) fail(`flowctl read printed ${lines.length} documents but ${expected.size} distinct UUIDs`);
  if (lines.length === 0) fail('flowctl read printed no documents');

  const glob = `${lakeDir}/**/*.${ext}`.replace(/'/g, "''");
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const query = async (sql) => (await conn.runAndReadAll(sql)).getRowObjectsJson();

  // Checks that `rows` (objects with a `uuid`) are the expected documents, once each.
  const sameDocuments = (what, rows) => {
    if (rows.length !== expected.size) fail(`${what}: ${rows.length} rows, want ${expected.size}`);
    const seen = new Set();
    for (const r of rows) {
      if (!expected.has(r.uuid)) fail(`${what}: a row with an unknown _meta.uuid ${r.uuid}`);
      if (seen.has(r.uuid)) fail(`${what}: document ${r.uuid} is returned more than once`);
      seen.add(r.uuid);
    }
    for (const u of expected.keys()) if (!seen.has(u)) fail(`${what}: document ${u} is missing`);
  };

  // 1. The acceptance query, SELECT * with hive partitioning: every committed document once;
  //    its non-hive columns equal the document; hive columns are there.
  const hiveColumns = [...partitions.map((p) => p.field), 'pivot', 'utc_date', 'utc_hour'];
  {
    const reader = await conn.runAndReadAll(`SELECT * FROM read_json_auto('${glob}', hive_partitioning=true)`);
    const names = reader.columnNames();
    for (const c of hiveColumns) if (!names.includes(c)) fail(`SELECT *: no column \`${c}\` (columns: ${names.join(', ')})`);
    if (new Set(names).size !== names.length) fail(`SELECT *: duplicate column names: ${names.join(', ')}`);
    const rows = (
      await query(`SELECT to_json(t)::VARCHAR AS j FROM read_json_auto('${glob}', hive_partitioning=true) t`)
    ).map((r) => JSON.parse(r.j));
    sameDocuments('SELECT * (hive_partitioning=true)', rows.map((r) => ({ uuid: r._meta && r._meta.uuid })));
    for (const r of rows) {
      const e = expected.get(r._meta && r._meta.uuid);
      if (!e) continue;
      for (const [k, v] of Object.entries(r)) {
        if (hiveColumns.includes(k)) continue;
        if (!looseEqual(v, e.doc[k])) fail(`SELECT *: document ${r._meta.uuid}: column ${k} is ${JSON.stringify(v)}, the document has ${JSON.stringify(e.doc[k])}`);
      }
      for (const k of Object.keys(e.doc)) {
        if (!(k in r)) fail(`SELECT *: document ${r._meta.uuid}: property ${k} has no column`);
      }
    }
  }

  // 2. Without hive partitioning: the documents' own values, including the properties that
  //    the hive columns shadow above, equal the committed documents.
  {
    const rows = (await query(`SELECT to_json(t)::VARCHAR AS j FROM read_json_auto('${glob}', hive_partitioning=false) t`)).map((r) =>
      JSON.parse(r.j),
    );
    sameDocuments('hive_partitioning=false', rows.map((r) => ({ uuid: r._meta && r._meta.uuid })));
    for (const r of rows) {
      const e = expected.get(r._meta && r._meta.uuid);
      if (e && !looseEqual(r, e.doc)) fail(`hive_partitioning=false: document differs:\n  duckdb: ${JSON.stringify(r)}\n  flowctl: ${e.line}`);
    }
  }

  // 3. The hive columns by name: values equal the documents' partition values (decoded),
  //    pivot=00, and utc_date/utc_hour the UTC hour the document was committed in.
  {
    const cols = hiveColumns.map((c) => `"${c}"`).join(', ');
    const reader = await conn.runAndReadAll(
      `SELECT "_meta".uuid::VARCHAR AS uuid, ${cols}, typeof(utc_date) AS date_type, typeof(utc_hour) AS hour_type ` +
        `FROM read_json_auto('${glob}', hive_partitioning=true)`,
    );
    const rows = reader.getRowObjectsJson();
    sameDocuments('hive columns by name', rows);
    for (const r of rows) {
      const e = expected.get(r.uuid);
      if (!e) continue;
      for (const p of partitions) {
        const want = lookup(e.doc, p.pointer);
        if (r[p.field] !== String(want)) fail(`document ${r.uuid}: hive column ${p.field} is ${JSON.stringify(r[p.field])}, the document has ${JSON.stringify(want)} at ${p.pointer}`);
      }
      if (r.pivot !== '00') fail(`document ${r.uuid}: pivot is ${JSON.stringify(r.pivot)}`);
      // VARCHAR when any hour of the lake has a leading zero, else BIGINT.
      if (r.date_type !== 'DATE' || !['BIGINT', 'VARCHAR'].includes(r.hour_type)) {
        fail(`utc_date/utc_hour are ${r.date_type}/${r.hour_type}, want DATE/BIGINT (or VARCHAR for hours 00-09)`);
      }
      // The fragment's hour is when it was started, just before the commit stamped the
      // document: the document's time is within that hour (or a minute past its end).
      const hourStart = Date.parse(`${r.utc_date}T${String(r.utc_hour).padStart(2, '0')}:00:00Z`);
      const t = uuidMillis(r.uuid);
      if (!(t >= hourStart && t < hourStart + 3600e3 + 60e3)) {
        fail(`document ${r.uuid} committed at ${new Date(t).toISOString()} is in the fragment of utc_date=${r.utc_date}/utc_hour=${r.utc_hour}`);
      }
    }
  }

  // 4. The raw lines (read_json_objects keeps each document's text): byte-equal to what
  //    `flowctl read` prints, with the same hive values.
  {
    const rows = await query(
      `SELECT json::VARCHAR AS line, "${partitions[0].field}" AS part FROM read_json_objects('${glob}', hive_partitioning=true)`,
    );
    const got = rows.map((r) => r.line).sort();
    const want = [...lines].sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) fail(`read_json_objects: the lines differ from flowctl read's:\n  got  ${got.join('\n       ')}\n  want ${want.join('\n       ')}`);
    for (const r of rows) {
      const want = String(lookup(JSON.parse(r.line), partitions[0].pointer));
      if (r.part !== want) fail(`read_json_objects: hive ${partitions[0].field} ${JSON.stringify(r.part)} for a document with ${JSON.stringify(want)}`);
    }
  }

  if (failures) process.exit(1);
  console.log(`duckdb: ${expected.size} documents in ${lakeDir}/**/*.${ext} match`);
})().catch((e) => {
  console.log(`FAIL: ${e.message}`);
  process.exit(1);
});
