#!/usr/bin/env node
// Helper of exactly_once.sh: generates batches of eo/events documents, and checks
// materialized tables against `flowctl read` and against what was ingested.
//
//   gen DIR FIRST LAST SEED MIN MAX
//     Writes DIR/<t>.jsonl for t in FIRST..LAST: MIN..MAX documents of eo/events with ids
//     t*1000000+i (unique across batches), a customer out of 300 (some with quotes and
//     non-ASCII text), a region, an amount (possibly negative) and sometimes a note.
//
//   final --dir DIR --state FILE --read FILE --events FILE --customers FILE -- TABLE...
//     Runs `batches` (below), then checks each TABLE, given as LABEL=FORMAT:KIND:FILE with
//     FORMAT sqlite|pg and KIND events|customers (`table` against --events or --customers,
//     the `flowctl read --reduced` outputs) or delta (`delta` against --read). Prints the
//     line of `batches`, then a line of "LABEL: N rows" per table, separated by ";".
//     Each input file is parsed once; the commands below do the same checks one at a time.
//
//   table --label L --rows FILE --format sqlite|pg --reduced FILE --key F[,F]
//     The table's rows (FILE: `sqlite3 -json` output, or `psql` JSON lines of row_to_json)
//     equal the documents of --reduced (`flowctl read --reduced`), key by key: each row's
//     flow_document equals the reduced document without _meta, and every other column equals
//     the document's value at /<column> (null when absent).
//
//   delta --label L --rows FILE --format sqlite|pg --read FILE --key F
//     A delta-updates table of a collection whose keys are never repeated: its rows are the
//     documents of --read (`flowctl read`), each exactly once (no row missing, none extra,
//     none twice), with the columns equal to the document's values as above.
//
//   batches --dir DIR --state FILE --read FILE --customers FILE
//     FILE of --state has a line "<t> acked|maybe" per ingested batch. Checks that --read
//     (`flowctl read eo/events`) holds every document of each acknowledged batch once, each
//     "maybe" batch entirely or not at all, and nothing else; then that --customers
//     (`flowctl read eo/customers --reduced`) equals the per-customer aggregates computed
//     here from the committed batches (total, orders, seq = orders, byRegion). Prints
//     "<committed batches> <committed documents> <lost maybe batches>".
'use strict';
const fs = require('fs');
const path = require('path');

const MAX_ERRORS = 20;
let errors = 0;
function problem(label, msg) {
  if (errors < MAX_ERRORS) console.error(`${label}: ${msg}`);
  else if (errors === MAX_ERRORS) console.error(`${label}: (more problems not shown)`);
  errors++;
}

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    o[argv[i].slice(2)] = argv[i + 1];
  }
  return o;
}

// Canonical JSON: sorted object keys, so documents compare independently of property order.
function canon(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  let s;
  if (Array.isArray(v)) {
    s = '[';
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + canon(v[i]);
    return s + ']';
  }
  const keys = Object.keys(v).sort();
  s = '{';
  for (let i = 0; i < keys.length; i++) s += (i ? ',' : '') + JSON.stringify(keys[i]) + ':' + canon(v[keys[i]]);
  return s + '}';
}

// Deep equality of JSON values (property order aside), cheaper than comparing canon() texts.
function same(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
    return true;
  }
  let n = 0;
  for (const k in a) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !same(a[k], b[k])) return false;
    n++;
  }
  for (const k in b) n--;
  return n === 0;
}

function stripMeta(d) {
  const { _meta, ...rest } = d;
  return rest;
}

const parsed = new Map();
function readLines(file) {
  if (!parsed.has(file)) parsed.set(file, readLinesUncached(file));
  return parsed.get(file);
}
function readLinesUncached(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l, i) => {
    try {
      return JSON.parse(l);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON: ${l.slice(0, 200)}`);
    }
  });
}

function readRows(file, format) {
  let rows;
  if (format === 'sqlite') {
    const text = fs.readFileSync(file, 'utf8').trim();
    rows = text ? JSON.parse(text) : [];  // sqlite3 -json prints nothing for no rows
  } else if (format === 'pg') {
    rows = readLinesUncached(file);
  } else {
    throw new Error(`unknown format ${format}`);
  }
  for (const r of rows) {
    if (typeof r.flow_document === 'string') r.flow_document = JSON.parse(r.flow_document);
  }
  return rows;
}

const pointerCache = new Map();
function lookup(doc, pointer) {
  let parts = pointerCache.get(pointer);
  if (!parts) pointerCache.set(pointer, (parts = pointer.split('/').slice(1)));
  let v = doc;
  for (const p of parts) {
    if (v === null || typeof v !== 'object' || !(p in v)) return undefined;
    v = v[p];
  }
  return v;
}

// Every column but flow_document holds the document's value at /<column>.
function checkColumns(label, row, doc, where) {
  for (const [col, value] of Object.entries(row)) {
    if (col === 'flow_document') continue;
    let want = lookup(doc, '/' + col);
    if (want === undefined) want = null;
    if (!same(value, want)) {
      problem(label, `${where}: column ${JSON.stringify(col)} is ${canon(value)}, the document has ${canon(want)}`);
    }
  }
}

function keyOf(doc, fields) {
  if (fields.length === 1) return canon(lookup(doc, '/' + fields[0]));
  return canon(fields.map((f) => lookup(doc, '/' + f)));
}

// The documents of a `flowctl read` output FILE by key (without _meta), computed once per file.
const indexes = new Map();
function indexDocs(label, file, fields, what) {
  const id = file + '\0' + fields.join(',');
  if (indexes.has(id)) return indexes.get(id);
  const want = new Map();
  for (const raw of readLines(file)) {
    const d = stripMeta(raw);
    const k = keyOf(d, fields);
    if (want.has(k)) problem(label, `${what} printed key ${k} twice`);
    want.set(k, d);
  }
  indexes.set(id, want);
  return want;
}

function cmdTable(o) {
  const label = o.label;
  const fields = o.key.split(',');
  const rows = readRows(o.rows, o.format);
  const want = indexDocs(label, o.reduced, fields, 'flowctl read --reduced');
  const seen = new Set();
  for (const r of rows) {
    const doc = stripMeta(r.flow_document);
    const k = keyOf(doc, fields);
    const rowKey = fields.length === 1 ? canon(r[fields[0]] === undefined ? null : r[fields[0]])
      : canon(fields.map((f) => r[f] === undefined ? null : r[f]));
    if (rowKey !== k) problem(label, `row ${rowKey}: its flow_document has key ${k}`);
    if (seen.has(k)) {
      problem(label, `key ${k}: more than one row`);
      continue;
    }
    seen.add(k);
    const w = want.get(k);
    if (!w) {
      problem(label, `key ${k}: unexpected row ${canon(doc).slice(0, 300)}`);
      continue;
    }
    if (!same(doc, w)) {
      problem(label, `key ${k}: the table has ${canon(doc).slice(0, 300)}, read --reduced has ${canon(w).slice(0, 300)}`);
    }
    checkColumns(label, r, doc, `key ${k}`);
  }
  for (const k of want.keys()) if (!seen.has(k)) problem(label, `key ${k}: missing from the table`);
  if (rows.length !== want.size) problem(label, `${rows.length} rows, read --reduced has ${want.size} documents`);
  return `${rows.length} rows`;
}

function cmdDelta(o) {
  const label = o.label;
  const fields = o.key.split(',');
  const rows = readRows(o.rows, o.format);
  const want = indexDocs(label, o.read, fields, 'flowctl read (the test expects unique keys)');
  const count = new Map();
  for (const r of rows) {
    const doc = stripMeta(r.flow_document);
    const k = keyOf(doc, fields);
    count.set(k, (count.get(k) || 0) + 1);
    if (count.get(k) === 2) problem(label, `key ${k}: duplicated row (the document was applied more than once)`);
    const w = want.get(k);
    if (!w) {
      problem(label, `key ${k}: unexpected row ${canon(doc).slice(0, 300)}`);
      continue;
    }
    if (!same(doc, w)) {
      problem(label, `key ${k}: the table has ${canon(doc).slice(0, 300)}, flowctl read has ${canon(w).slice(0, 300)}`);
    }
    checkColumns(label, r, doc, `key ${k}`);
  }
  let missing = 0;
  for (const k of want.keys()) {
    if (!count.has(k)) {
      if (missing++ < 5) problem(label, `key ${k}: missing from the table`);
    }
  }
  if (missing) problem(label, `${missing} documents missing from the table`);
  if (rows.length !== want.size) problem(label, `${rows.length} rows, but ${want.size} documents were committed`);
  return `${rows.length} rows`;
}

// A small deterministic PRNG (mulberry32).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REGIONS = ['eu', 'us', 'apac', 'latam'];
const NOTES = ['rush', 'gift "wrapped"', 'zoë\'s order', 'tab\there', '北京', 'line\nbreak'];

function customerName(c) {
  if (c % 50 === 7) return `o"brien ${c}`;
  if (c % 50 === 13) return `zoë-${c}`;
  return `c${c}`;
}

function cmdGen(dir, first, last, seed, min, max) {
  fs.mkdirSync(dir, { recursive: true });
  for (let t = first; t <= last; t++) {
    const r = rng(seed * 7919 + t);
    const n = min + Math.floor(r() * (max - min + 1));
    const lines = [];
    for (let i = 0; i < n; i++) {
      const d = {
        id: t * 1000000 + i,
        customer: customerName(Math.floor(r() * 300)),
        region: REGIONS[Math.floor(r() * REGIONS.length)],
        amount: Math.floor(r() * 1100) - 100,
      };
      if (r() < 0.1) d.note = NOTES[Math.floor(r() * NOTES.length)];
      lines.push(JSON.stringify(d));
    }
    fs.writeFileSync(path.join(dir, `${t}.jsonl`), lines.join('\n') + '\n');
  }
}

function cmdBatches(o) {
  const label = 'ingested batches';
  const state = fs.readFileSync(o.state, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [t, how] = l.split(' ');
    return { t: Number(t), how };
  });
  const read = readLines(o.read);
  const byBatch = new Map();
  const ids = new Set();
  for (const d of read) {
    if (ids.has(d.id)) problem(label, `document ${d.id} is in eo/events twice`);
    ids.add(d.id);
    const t = Math.floor(d.id / 1000000);
    if (!byBatch.has(t)) byBatch.set(t, []);
    byBatch.get(t).push(d);
  }
  const known = new Set(state.map((s) => s.t));
  for (const t of byBatch.keys()) {
    if (!known.has(t)) problem(label, `eo/events holds ${byBatch.get(t).length} documents of batch ${t}, never ingested`);
  }
  const customers = new Map();
  let committed = 0, docs = 0, lost = 0;
  for (const { t, how } of state) {
    const want = readLines(path.join(o.dir, `${t}.jsonl`));
    const got = byBatch.get(t) || [];
    if (got.length === 0 && how === 'maybe') {
      lost++;
      continue;
    }
    if (got.length !== want.length) {
      problem(label, `batch ${t} (${how}): ${got.length} of its ${want.length} documents are in eo/events`);
      continue;
    }
    const gotById = new Map(got.map((d) => [d.id, stripMeta(d)]));
    for (const w of want) {
      const g = gotById.get(w.id);
      if (!g || !same(g, w)) {
        problem(label, `batch ${t}: document ${w.id} is ${g ? canon(g) : 'missing'}, ingested ${canon(w)}`);
      }
    }
    committed++;
    docs += want.length;
    for (const w of want) {
      let c = customers.get(w.customer);
      if (!c) customers.set(w.customer, (c = { customer: w.customer, total: 0, orders: 0, byRegion: {} }));
      c.total += w.amount;
      c.orders += 1;
      c.byRegion[w.region] = (c.byRegion[w.region] || 0) + w.amount;
    }
  }
  const clabel = 'eo/customers (computed from the committed batches)';
  const reduced = new Map(readLines(o.customers).map((d) => [d.customer, stripMeta(d)]));
  for (const [name, c] of customers) {
    const g = reduced.get(name);
    if (!g) {
      problem(clabel, `customer ${JSON.stringify(name)} is missing`);
      continue;
    }
    const want = { ...c, seq: c.orders };
    if (canon(g) !== canon(want)) problem(clabel, `customer ${JSON.stringify(name)}: got ${canon(g)}, want ${canon(want)}`);
  }
  for (const name of reduced.keys()) {
    if (!customers.has(name)) problem(clabel, `unexpected customer ${JSON.stringify(name)}`);
  }
  return `${committed} ${docs} ${lost}`;
}

function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  let out;
  switch (cmd) {
    case 'gen':
      cmdGen(rest[0], Number(rest[1]), Number(rest[2]), Number(rest[3]), Number(rest[4]), Number(rest[5]));
      return;
    case 'table':
      out = cmdTable(parseArgs(rest));
      break;
    case 'delta':
      out = cmdDelta(parseArgs(rest));
      break;
    case 'batches':
      out = cmdBatches(parseArgs(rest));
      break;
    case 'final': {
      const i = rest.indexOf('--');
      const o = parseArgs(i < 0 ? rest : rest.slice(0, i));
      const tables = i < 0 ? [] : rest.slice(i + 1);
      const parts = [cmdBatches(o)];
      for (const spec of tables) {
        const m = /^(.*)=(sqlite|pg):(events|customers|delta):(.*)$/.exec(spec);
        if (!m) throw new Error(`bad table spec ${spec}`);
        const [, label, format, kind, rows] = m;
        const before = errors;
        let r;
        if (kind === 'delta') r = cmdDelta({ label, rows, format, read: o.read, key: 'id' });
        else if (kind === 'events') r = cmdTable({ label, rows, format, reduced: o.events, key: 'id' });
        else r = cmdTable({ label, rows, format, reduced: o.customers, key: 'customer' });
        parts.push(`${label}: ${r}${errors > before ? ' (DIFFERS)' : ''}`);
      }
      out = parts[0] + '\n' + parts.slice(1).join('; ');
      break;
    }
    default:
      console.error('usage: exactly_once_check.js gen|table|delta|batches ...');
      process.exit(2);
  }
  if (errors) process.exit(1);
  console.log(out);
}

main();
