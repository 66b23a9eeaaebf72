#!/usr/bin/env node
// Generator of the materialization benchmark input (bench/materialize_bench.sh).
//
//   node gen.js N KEYS SEED > payments.jsonl
//
// Writes N JSON lines (~280 bytes each) for collection bench/accounts of flow.yaml beside
// this file, over KEYS accounts ("acct-0000000" ..), in rounds of KEYS lines: each round is a
// random permutation of all the accounts (the last one may be cut short), so no account
// repeats within a round and a round ingested as one transaction is stored document for
// document (ingest combines by key). The output depends only on N, KEYS and SEED. Prints a
// summary to stderr, ending with the figures the benchmark checks the tables against:
//
//   gen: N docs, B bytes, average L bytes/doc, D distinct accounts of KEYS, C cents (seed S)
//
// Every line has `events: 1` (a row's events is its number of payments, adding up to N) and
// an integer `amountCents` (adding up to C). Node.js 20, no dependencies.
'use strict';
const fs = require('fs');

function usage(msg) {
  process.stderr.write(`gen.js: ${msg}\nusage: node gen.js N KEYS SEED > file\n`);
  process.exit(2);
}
if (process.argv.length !== 5) usage('expected 3 arguments');
const [N, KEYS, SEED] = process.argv.slice(2).map(Number);
if (!Number.isSafeInteger(N) || N < 0) usage('N must be a non-negative integer');
if (!Number.isSafeInteger(KEYS) || KEYS < 1 || KEYS > 1e7) usage('KEYS must be in 1..1e7');
if (!Number.isSafeInteger(SEED)) usage('SEED must be an integer');

const next = require('../rng.js')(SEED); // uniform in [0, 2^32)
const below = (n) => Math.floor((next() / 4294967296) * n); // uniform in [0, n)
const pick = (list) => list[below(list.length)];

const STATUSES = ['approved', 'approved', 'approved', 'approved', 'declined', 'pending', 'refunded'];
const CURRENCIES = ['EUR', 'USD', 'GBP', 'JPY', 'BRL', 'INR'];
const CHANNELS = ['web', 'mobile', 'pos', 'phone'];
const COUNTRIES = ['US', 'DE', 'FR', 'IN', 'BR', 'JP', 'GB', 'ZA', 'SG', 'CA'];
const BRANDS = ['visa', 'mastercard', 'amex', 'discover'];
const MERCHANTS = ['Corner Grocery & Deli', 'Northwind Traders', 'Blue Bottle Coffee', 'Acme Hardware Supply',
  'City Parking Authority', 'Streamflix Subscription', 'Riverside Pharmacy', 'Skyline Airlines',
  'Bookworm Online Store', 'Green Leaf Restaurant'];
const T0 = Date.UTC(2026, 0, 1); // payments fall in the 30 days from 2026-01-01
const SPAN = 30 * 24 * 3600 * 1000;

const seen = new Uint8Array(KEYS);
let distinct = 0, cents = 0;

const perm = Uint32Array.from({length: KEYS}, (_, i) => i);

function line(i) {
  const r = i % KEYS;
  if (r === 0) { // a new round: shuffle the accounts (Fisher-Yates)
    for (let j = KEYS - 1; j > 0; j--) {
      const t = below(j + 1);
      [perm[j], perm[t]] = [perm[t], perm[j]];
    }
  }
  const k = perm[r];
  if (!seen[k]) { seen[k] = 1; distinct++; }
  const c = 1 + below(250000);
  cents += c;
  const volume = below(1000) + below(8) / 8;
  const ts = new Date(T0 + below(SPAN)).toISOString(); // fixed width: text order = time order
  return `{"account":"acct-${String(k).padStart(7, '0')}","events":1,"amountCents":${c},` +
    `"volume":${volume},"largestCents":${c},"lastSeen":"${ts}","status":"${pick(STATUSES)}",` +
    `"currency":"${pick(CURRENCIES)}","merchant":"${pick(MERCHANTS)}","channel":"${pick(CHANNELS)}",` +
    `"country":"${pick(COUNTRIES)}","card":{"brand":"${pick(BRANDS)}","last4":"${String(below(10000)).padStart(4, '0')}"}}\n`;
}

function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e; // stdout may be a non-blocking pipe
    }
  }
}

// Lines are encoded straight into one reused buffer, written out whenever ~4 MiB are ready.
const CHUNK = 4 << 20;
const out = Buffer.allocUnsafe(CHUNK + (1 << 20));
let off = 0, bytes = 0;
for (let i = 0; i < N; i++) {
  off += out.latin1Write(line(i), off); // ASCII only: one byte per character
  if (off >= CHUNK) {
    writeAll(out.subarray(0, off));
    bytes += off;
    off = 0;
  }
}
writeAll(out.subarray(0, off));
bytes += off;
process.stderr.write(`gen: ${N} docs, ${bytes} bytes, average ${N ? (bytes / N).toFixed(1) : 0} bytes/doc, ` +
  `${distinct} distinct accounts of ${KEYS}, ${cents} cents (seed ${SEED})\n`);
