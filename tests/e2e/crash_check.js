#!/usr/bin/env node
// Helper of crash.sh: generates transaction files, and checks what `flowctl read` returns
// (and what the ledger and the lake hold) against what each ingest acknowledged.
//
//   gen DIR FIRST LAST SEED MIN MAX
//     Writes DIR/<t>.jsonl for t in FIRST..LAST: MIN..MAX documents of crash/events with
//     ids t*100000+i, spread over the partitions (some below 1000 touch two of them, those
//     from 4000 on one). Prints "<t> <count>" per transaction and appends it to DIR/sizes.
//
//   check --txns DIR --state FILE --read FILE [--reduced FILE] [--ledger FILE [--ledger-clean]]
//         [--data-dir D [--complete]] [--seen FILE] [--update-state] [--key K] [--label TEXT]
//         [--then check options...]...
//     FILE of --state has one line per transaction that was run, in commit order:
//       <t> acked <ack line>   the ack was printed: every document present
//       <t> maybe              killed before the ack: all documents or none
//       <t> absent             failed before the ack: none
//     Documents of any other transaction (or garbage) must not appear. Checks: every line
//     is a document with a _meta.uuid (unique), equal to the ingested one apart from _meta;
//     no id twice; no partial transaction; acked offsets are the journal sizes after that
//     transaction; the ledger's heads are the journal sizes; every fragment of the lake
//     holds exactly the journal bytes its name says (--complete: fragments tile every
//     journal exactly and no spool or temporary file is left); --reduced gives the same
//     documents, one per id, in id order. --seen FILE lists the transactions earlier checks
//     saw committed: they must still be there (then FILE is rewritten with the current ones).
//     A transaction present against `absent` is reported once per --key (the data directory;
//     default: the --ledger path); --update-state also makes it `maybe` in the state FILE.
//     `--then` starts another check in the same process.
//
//   spools D
//     Every spool of data directory D holds exactly its committed bytes, and the ledger has
//     no torn tail (true right after recovery); prints the bytes beyond the heads otherwise.
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const crypto = require('crypto');
const { execFileSync } = require('child_process');

const COLLECTION = 'crash/events';
const REGIONS = ['eu', 'us', 'asia pacific', 'latam'];
const MAX_ERRORS = 25;

// Percent-encoding of partition values (SPEC 3.2).
function encodeValue(s) {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~$&+:=@]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}
const journalOf = (region) => `${COLLECTION}/region=${encodeValue(region)}/pivot=00`;

function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gen([dir, first, last, seed, min, max]) {
  first = +first; last = +last; min = +min; max = +max;
  const rand = mulberry32(+seed);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 "\\/é✓\u00a0';
  let sizes = '';
  fs.mkdirSync(dir, { recursive: true });
  for (let t = first; t <= last; t++) {
    const n = min + Math.floor(rand() * (max - min + 1));
    // In the kill loop (t < 1000) every fourth transaction touches two partitions only, so
    // acks name a subset; from 4000 on, one partition (so it alone gets megabytes); the others
    // touch all four (the fault seam covers every journal's I/O).
    const regions = t >= 4000 ? [REGIONS[t % 4]]
      : t < 1000 && t % 4 === 0 ? [REGIONS[t % 3], REGIONS[3]] : REGIONS;
    const lines = new Array(n);
    for (let i = 0; i < n; i++) {
      const len = Math.floor(rand() * rand() * 160);
      let pad = '';
      for (let k = 0; k < len; k++) pad += alphabet[Math.floor(rand() * alphabet.length)];
      const region = i < regions.length ? regions[i] : regions[Math.floor(rand() * regions.length)];
      lines[i] = JSON.stringify({ id: t * 100000 + i, region, txn: t, i, pad });
    }
    fs.writeFileSync(path.join(dir, `${t}.jsonl`), lines.join('\n') + '\n');
    sizes += `${t} ${n}\n`;
  }
  fs.appendFileSync(path.join(dir, 'sizes'), sizes);
  process.stdout.write(sizes);
}

// The ledger's committed heads: records `<crc32 hex8> <json>\n` up to the first torn or
// corrupt one, as recovery reads them.
function crc32(buf) {
  if (zlib.crc32) return zlib.crc32(buf) >>> 0;
  let c, crc = 0xffffffff;
  for (const b of buf) {
    c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function readLedger(file) {
  const buf = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
  const heads = {};
  let pos = 0, records = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos);
    if (nl < 0) break;
    const line = buf.subarray(pos, nl);
    if (line.length < 10 || line[8] !== 0x20) break;
    const want = line.subarray(0, 8).toString('latin1');
    if (!/^[0-9a-f]{8}$/.test(want) || parseInt(want, 16) !== crc32(line.subarray(9))) break;
    let rec;
    try { rec = JSON.parse(line.subarray(9).toString('utf8')); } catch { break; }
    if (!rec || typeof rec.heads !== 'object') break;
    Object.assign(heads, rec.heads);
    records++;
    pos = nl + 1;
  }
  return { heads, valid: pos, size: buf.length, records };
}

function walkFiles(root) {
  const out = [];
  if (!fs.existsSync(root)) return out;
  const visit = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else out.push(p);
    }
  };
  visit(root);
  return out;
}

let zstdMissing = false;
function decompress(file, ext) {
  const raw = fs.readFileSync(file);
  if (ext === 'raw') return raw;
  if (ext === 'gz') return zlib.gunzipSync(raw);
  if (zlib.zstdDecompressSync) return zlib.zstdDecompressSync(raw);
  try {
    return execFileSync('zstd', ['-dcq', '--', file], { maxBuffer: 1 << 30 });
  } catch (e) {
    if (e.code === 'ENOENT') { zstdMissing = true; return null; }
    throw e;
  }
}

const txnLines = new Map();  // t -> its ingested lines (shared by all checks of a process)
const relaxed = new Set();    // `${key}:${t}` of transactions already reported present against `absent`

function check(argv) {
  const opt = { label: 'check' };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === '--ledger-clean' || a === '--complete' || a === '--update-state') opt[a.slice(2)] = true;
    else opt[a.slice(2)] = argv[++k];
  }
  if (opt.key === undefined) opt.key = opt.ledger || opt.state;
  const errors = [];
  const err = (m) => { errors.push(m); };
  const clip = (s) => (s.length > 160 ? s.slice(0, 160) + '…' : s);

  const sizes = new Map();
  for (const l of fs.readFileSync(path.join(opt.txns, 'sizes'), 'utf8').split('\n')) {
    if (l) { const [t, n] = l.split(' '); sizes.set(+t, +n); }
  }
  const state = new Map();  // t -> {status, ack}
  const order = [];
  const rawState = fs.readFileSync(opt.state, 'utf8').split('\n').filter((l) => l);
  for (const l of rawState) {
    const m = /^(\d+) (acked|maybe|absent)(?: (.*))?$/.exec(l);
    if (!m) { err(`bad state line: ${l}`); continue; }
    const t = +m[1];
    let ack = null;
    if (m[2] === 'acked' && m[3]) {
      try { ack = JSON.parse(m[3]); } catch { err(`transaction ${t}: acknowledgement is not JSON: ${clip(m[3])}`); }
      if (ack && (typeof ack.Offsets !== 'object' || ack.Offsets === null)) {
        err(`transaction ${t}: acknowledgement lacks Offsets: ${clip(m[3])}`);
        ack = null;
      }
    }
    state.set(t, { status: m[2], ack });
    order.push(t);
  }

  const originals = (t) => {
    if (!txnLines.has(t)) txnLines.set(t, fs.readFileSync(path.join(opt.txns, `${t}.jsonl`), 'utf8').split('\n'));
    return txnLines.get(t);
  };

  // The read output.
  const text = fs.readFileSync(opt.read, 'utf8');
  if (text.length && !text.endsWith('\n')) err(`read output does not end with a newline`);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const seenId = new Map();   // id -> line number
  const seenUuid = new Map();
  const present = new Map();  // t -> count
  const journalLines = new Map();  // journal -> [line]
  const txnJournalBytes = new Map();  // t -> Map(journal -> bytes)
  const ids = [];
  // Fast path: the stored line is the ingested one with `"_meta":{"uuid":...}` added last;
  // anything else is parsed and compared as JSON.
  const FAST = /^\{"id":(\d+),"region":"([a-z ]+)",.*,"_meta":\{"uuid":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"\}\}$/;
  const fastDoc = (line) => {
    const m = FAST.exec(line);
    if (!m) return null;
    const id = +m[1], t = Math.floor(id / 100000), i = id % 100000;
    if (!state.has(t) || !sizes.has(t) || i >= sizes.get(t)) return null;
    const want = originals(t)[i];
    if (line.length !== want.length + 56 || !line.startsWith(want.slice(0, -1))) return null;
    return { id, region: m[2], _meta: { uuid: m[3] }, fast: true };
  };
  const journalCache = new Map();
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k];
    const where = () => `read line ${k + 1}`;
    let doc = fastDoc(line);
    if (!doc) {
      try { doc = JSON.parse(line); } catch { err(`${where()} is not JSON (garbage?): ${clip(line)}`); continue; }
    }
    const uuid = doc && doc._meta && doc._meta.uuid;
    if (typeof uuid !== 'string' || !UUID.test(uuid)) {
      err(`${where()} has no _meta.uuid: ${clip(line)}`);
    } else if (seenUuid.has(uuid)) {
      err(`${where()}: _meta.uuid ${uuid} also on line ${seenUuid.get(uuid)}`);
    } else seenUuid.set(uuid, k + 1);
    const id = doc && doc.id;
    if (!Number.isInteger(id)) { err(`${where()} has no integer id: ${clip(line)}`); continue; }
    const t = Math.floor(id / 100000), i = id % 100000;
    if (seenId.has(id)) {
      err(`duplicate: id ${id} (transaction ${t}, document ${i}) on read lines ${seenId.get(id)} and ${k + 1}`);
      continue;
    }
    seenId.set(id, k + 1);
    ids.push(id);
    if (!state.has(t) || !sizes.has(t) || i >= sizes.get(t)) {
      err(`${where()}: document of a transaction that was never run (or garbage): ${clip(line)}`);
      continue;
    }
    if (!doc.fast) {
      const { _meta, ...rest } = doc;
      const want = originals(t)[i];
      if (JSON.stringify(rest) !== want) {
        err(`${where()}: transaction ${t} document ${i} differs from the ingested one:\n` +
          `    got  ${clip(JSON.stringify(rest))}\n    want ${clip(want)}`);
      }
    }
    present.set(t, (present.get(t) || 0) + 1);
    let j = journalCache.get(doc.region);
    if (j === undefined) {
      j = journalOf(String(doc.region));
      journalCache.set(doc.region, j);
      journalLines.set(j, []);
    }
    journalLines.get(j).push(line);
    let tj = txnJournalBytes.get(t);
    if (!tj) txnJournalBytes.set(t, (tj = new Map()));
    tj.set(j, (tj.get(j) || 0) + Buffer.byteLength(line) + 1);
  }

  // All or nothing, and acks are the truth.
  const cum = new Map();  // journal -> bytes through the current transaction
  let committed = 0, ackedN = 0, unackedCommitted = 0, rolledBack = 0;
  for (const t of order) {
    const { status, ack } = state.get(t);
    const n = sizes.get(t), p = present.get(t) || 0;
    if (p > 0 && p < n) {
      const have = new Set();
      for (const id of ids) if (Math.floor(id / 100000) === t) have.add(id % 100000);
      const missing = [];
      for (let i = 0; i < n && missing.length < 5; i++) if (!have.has(i)) missing.push(i);
      err(`transaction ${t} (${status}) is partial: ${p} of ${n} documents present; missing e.g. documents ${missing.join(', ')}`);
    }
    if (status === 'acked' && p === 0) err(`transaction ${t} was acknowledged but none of its ${n} documents is present`);
    if (status === 'absent' && p > 0 && !relaxed.has(`${opt.key}:${t}`)) {
      err(`transaction ${t} failed before its acknowledgement (exit 3, no ack: a client would retry it), yet ${p} of its ${n} documents are present`);
      relaxed.add(`${opt.key}:${t}`);
    }
    if (p === n) {
      committed++;
      if (status === 'acked') ackedN++; else unackedCommitted++;
    } else if (p === 0 && status !== 'acked') rolledBack++;
    const tj = txnJournalBytes.get(t) || new Map();
    for (const [j, b] of tj) cum.set(j, (cum.get(j) || 0) + b);
    if (ack && p === n) {
      const got = Object.keys(ack.Offsets).sort().join(', ');
      const want = [...tj.keys()].sort().join(', ');
      if (got !== want) err(`transaction ${t}: acknowledgement names journals [${got}], its documents are in [${want}]`);
      for (const [j, off] of Object.entries(ack.Offsets)) {
        if (tj.has(j) && off !== cum.get(j)) {
          err(`transaction ${t}: acknowledged offset ${off} of ${j}, but the journal holds ${cum.get(j)} bytes through this transaction`);
        }
      }
    }
  }

  // What an earlier check saw committed stays committed.
  if (opt.seen) {
    if (fs.existsSync(opt.seen)) {
      for (const l of fs.readFileSync(opt.seen, 'utf8').split('\n')) {
        if (!l) continue;
        const t = +l;
        if ((present.get(t) || 0) !== sizes.get(t)) {
          err(`transaction ${t} was visible to an earlier read, but now ${present.get(t) || 0} of its ${sizes.get(t)} documents are present`);
        }
      }
    }
    const now = order.filter((t) => (present.get(t) || 0) === sizes.get(t));
    fs.writeFileSync(opt.seen, now.map((t) => `${t}\n`).join(''));
  }

  // The ledger.
  if (opt.ledger) {
    const l = readLedger(opt.ledger);
    if (opt['ledger-clean'] && l.valid !== l.size) {
      err(`ledger ${opt.ledger}: ${l.size - l.valid} bytes after the last intact record (the torn/corrupt tail was not dropped)`);
    }
    const journals = new Set([...Object.keys(l.heads), ...cum.keys()]);
    for (const j of journals) {
      if ((l.heads[j] || 0) !== (cum.get(j) || 0)) {
        err(`ledger head of ${j} is ${l.heads[j] || 0}, but read returned ${cum.get(j) || 0} bytes of it`);
      }
    }
  }

  // The lake.
  let fragments = 0;
  if (opt['data-dir']) {
    const lake = path.join(opt['data-dir'], 'lake');
    const byJournal = new Map();
    for (const file of walkFiles(lake)) {
      const parts = path.relative(lake, file).split(path.sep);
      const d = parts.findIndex((p) => p.startsWith('utc_date='));
      const name = parts[parts.length - 1];
      const m = /^([0-9a-f]{16})-([0-9a-f]{16})-([0-9a-f]{40})\.(gz|zst|raw)$/.exec(name);
      if (d < 1 || d !== parts.length - 3 || !/^utc_date=\d{4}-\d\d-\d\d$/.test(parts[d]) ||
          !/^utc_hour=\d\d$/.test(parts[d + 1]) || !m) {
        err(`unexpected file in the lake: ${file}`);
        continue;
      }
      const j = parts.slice(0, d).join('/');
      if (!byJournal.has(j)) byJournal.set(j, []);
      byJournal.get(j).push({ file, begin: parseInt(m[1], 16), end: parseInt(m[2], 16), sha: m[3], ext: m[4] });
    }
    for (const [j, frags] of byJournal) {
      const bytes = Buffer.from((journalLines.get(j) || []).map((l) => l + '\n').join(''), 'utf8');
      frags.sort((a, b) => a.begin - b.begin || a.end - b.end);
      let at = 0;
      for (const f of frags) {
        fragments++;
        const content = decompress(f.file, f.ext);
        if (opt.complete && f.begin !== at) {
          const overlap = f.begin < at;
          err(`${j}: fragments ${overlap ? 'overlap' : 'leave a gap'} at offset ${Math.min(at, f.begin)} ` +
            `(${f.file}); the lake would ${overlap ? 'duplicate' : 'lose'} documents`);
        }
        at = Math.max(at, f.end);
        if (content === null) continue;
        const sha = crypto.createHash('sha1').update(content).digest('hex');
        if (content.length !== f.end - f.begin) err(`${f.file}: holds ${content.length} bytes, its name says ${f.end - f.begin}`);
        else if (sha !== f.sha) err(`${f.file}: SHA-1 of its content is ${sha}`);
        else if (f.end > bytes.length) err(`${f.file}: ends at ${f.end}, beyond the ${bytes.length} committed bytes of ${j}`);
        else if (!content.equals(bytes.subarray(f.begin, f.end))) err(`${f.file}: content differs from the committed journal bytes [${f.begin}, ${f.end})`);
      }
      if (opt.complete && at !== bytes.length) err(`${j}: fragments end at ${at}, the journal at ${bytes.length}`);
    }
    if (opt.complete) {
      for (const j of journalLines.keys()) if (!byJournal.has(j)) err(`${j}: no fragment in the lake after a clean shutdown`);
      for (const f of walkFiles(path.join(opt['data-dir'], 'spool'))) err(`spool left after a clean shutdown: ${f} (${fs.statSync(f).size} bytes)`);
      for (const f of walkFiles(path.join(opt['data-dir'], 'tmp'))) err(`temporary file left after a clean shutdown: ${f}`);
    }
  }

  // --reduced: the same documents, one per id, in id order.
  if (opt.reduced) {
    const rtext = fs.readFileSync(opt.reduced, 'utf8');
    const rlines = rtext.split('\n');
    if (rlines[rlines.length - 1] === '') rlines.pop();
    let prev = -1;
    const rids = new Set();
    rlines.forEach((line, k) => {
      let doc;
      try { doc = JSON.parse(line); } catch { err(`--reduced line ${k + 1} is not JSON: ${clip(line)}`); return; }
      const id = doc.id;
      if (rids.has(id)) err(`--reduced: id ${id} twice`);
      rids.add(id);
      if (!(id > prev)) err(`--reduced: id ${id} on line ${k + 1} is not in key order (after ${prev})`);
      prev = id;
      const t = Math.floor(id / 100000), i = id % 100000;
      if (!seenId.has(id)) { err(`--reduced: id ${id} that plain read does not return: ${clip(line)}`); return; }
      const { _meta, ...rest } = doc;
      if (JSON.stringify(rest) !== originals(t)[i]) err(`--reduced: id ${id} differs from the ingested document: ${clip(line)}`);
    });
    if (rids.size !== seenId.size) {
      const missing = ids.filter((id) => !rids.has(id)).slice(0, 5);
      err(`--reduced returned ${rids.size} ids, read ${seenId.size}; missing e.g. ${missing.join(', ')}`);
    }
  }

  // --update-state: a transaction present against its status `absent` is reported once; it
  // becomes `maybe` in FILE (all or nothing still holds) so later checks do not repeat it.
  if (opt['update-state']) {
    const out = rawState.map((l) => {
      const m = /^(\d+) absent$/.exec(l);
      return m && (present.get(+m[1]) || 0) > 0 ? `${m[1]} maybe` : l;
    });
    fs.writeFileSync(opt.state, out.map((l) => l + '\n').join(''));
  }

  const summary = `${opt.label}: ${lines.length} documents; ${committed} transactions committed ` +
    `(${ackedN} acknowledged, ${unackedCommitted} without an ack), ${rolledBack} rolled back` +
    (opt['data-dir'] ? `; ${fragments} fragments` : '') + (zstdMissing ? ' (zstd fragments not decoded: no zstd)' : '');
  if (errors.length) {
    console.error(`${opt.label}: ${errors.length} problem(s):`);
    for (const e of errors.slice(0, MAX_ERRORS)) console.error(`  - ${e}`);
    if (errors.length > MAX_ERRORS) console.error(`  ... and ${errors.length - MAX_ERRORS} more`);
    console.error(`  (${summary})`);
    return false;
  }
  console.log(summary);
  return true;
}

// spools D: after recovery every spool holds exactly its committed bytes (it was truncated
// to the ledger's head) and the ledger has no torn or corrupt tail. Prints, and fails with,
// what lies beyond the committed heads otherwise.
function spools([dir]) {
  const l = readLedger(path.join(dir, 'ledger'));
  const errors = [];
  let beyond = 0;
  if (l.valid !== l.size) errors.push(`ledger: ${l.size - l.valid} bytes after the last intact record`);
  const root = path.join(dir, 'spool');
  const files = walkFiles(root);
  for (const f of files) {
    const j = path.relative(root, path.dirname(f)).split(path.sep).join('/');
    const m = /^([0-9a-f]{16})-(\d+)(\.[a-z]+)?\.spool$/.exec(path.basename(f));  // [.<codec>]
    if (!m) { errors.push(`unexpected file among spools: ${f}`); continue; }
    const begin = parseInt(m[1], 16), head = l.heads[j] || 0, size = fs.statSync(f).size;
    if (begin > head) errors.push(`${f}: begins at ${begin}, beyond the committed head ${head}`);
    else if (size !== head - begin) {
      if (size > head - begin) beyond += size - (head - begin);
      errors.push(`${f}: ${size} bytes, but ${head - begin} are committed (head ${head}); recovery did not truncate it`);
    }
  }
  if (errors.length) {
    console.log(`${beyond} bytes beyond the committed heads in ${files.length} spool file(s)`);
    for (const e of errors) console.error(`  - ${e}`);
    process.exit(1);
  }
  console.log(`${files.length} spool file(s), each holding exactly its committed bytes; ledger intact`);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'gen') gen(rest);
else if (cmd === 'spools') spools(rest);
else if (cmd === 'check') {
  // Several checks in one process: option groups separated by --then.
  let ok = true, group = [];
  for (const a of [...rest, '--then']) {
    if (a !== '--then') { group.push(a); continue; }
    if (group.length) ok = check(group) && ok;
    group = [];
  }
  process.exit(ok ? 0 : 1);
}
else {
  console.error('usage: crash_check.js gen|check ...');
  process.exit(2);
}
