#!/usr/bin/env node
// Generator of the `flowctl combine` benchmark input (bench/combine_bench.sh).
//
//   node gen.js N KEYS SEED > events.jsonl
//
// Writes N JSON lines (~300 bytes each) for collection bench/events of flow.yaml beside this
// file, over KEYS ids ("user-00000000" .. ) drawn uniformly at random. The output depends
// only on N, KEYS and SEED. Prints a summary (bytes, average line length, distinct ids) to
// stderr. Node.js 20, no dependencies.
//
// Values are chosen so that any correct combine prints the same bytes whatever its memory
// budget: `count` is always 1 (a key's reduced count is its number of events) and `total`
// is a multiple of 1/8 below 1000, so float sums are exact in any grouping.
'use strict';
const fs = require('fs');

function usage(msg) {
  process.stderr.write(`gen.js: ${msg}\nusage: node gen.js N KEYS SEED > file\n`);
  process.exit(2);
}
if (process.argv.length !== 5) usage('expected 3 arguments');
const [N, KEYS, SEED] = process.argv.slice(2).map(Number);
if (!Number.isSafeInteger(N) || N < 0) usage('N must be a non-negative integer');
if (!Number.isSafeInteger(KEYS) || KEYS < 1 || KEYS > 1e8) usage('KEYS must be in 1..1e8');
if (!Number.isSafeInteger(SEED)) usage('SEED must be an integer');

const next = require('../rng.js')(SEED); // uniform in [0, 2^32)
const below = (n) => Math.floor((next() / 4294967296) * n); // uniform in [0, n)
const pick = (list) => list[below(list.length)];

const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-south-1',
  'ap-northeast-1', 'sa-east-1'];
const TAGS = ['mobile', 'desktop', 'tablet', 'promo', 'organic', 'paid', 'email', 'social',
  'returning', 'new', 'beta', 'vip', 'trial', 'churn-risk', 'a/b:blue', 'a/b:green'];
const KINDS = ['click', 'view', 'scroll', 'hover', 'share', 'purchase'];
const SECTIONS = ['products', 'cart', 'checkout', 'blog', 'help', 'account', 'search'];
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36',
];
const TAGS_JSON = TAGS.map((t) => JSON.stringify(t));
const AGENTS_JSON = AGENTS.map((a) => JSON.stringify(a));
const T0 = Date.UTC(2024, 0, 1);          // events fall in the 30 days from 2024-01-01
const SPAN = 30 * 24 * 3600 * 1000;

const idWidth = Math.max(8, String(KEYS - 1).length);
const seen = new Uint8Array(KEYS);
let distinct = 0;

function line() {
  const k = below(KEYS);
  if (!seen[k]) { seen[k] = 1; distinct++; }
  const id = 'user-' + String(k).padStart(idWidth, '0');
  const total = below(1000) + (1 + below(7)) / 8; // k + j/8, never integral
  const ts = new Date(T0 + below(SPAN)).toISOString(); // fixed width: text order = time order
  const ntags = 1 + below(2);
  let tags = pick(TAGS_JSON);
  for (let i = 1; i < ntags; i++) tags += ',' + pick(TAGS_JSON);
  const first = below(KINDS.length);
  const second = (first + 1 + below(KINDS.length - 1)) % KINDS.length; // distinct from first
  const byKind = below(2)
    ? `{"${KINDS[first]}":${1 + below(3)},"${KINDS[second]}":${1 + below(3)}}`
    : `{"${KINDS[first]}":${1 + below(3)}}`;
  const page = `/${pick(SECTIONS)}/${below(100000)}`;
  return `{"id":"${id}","count":1,"total":${total},"last_seen":"${ts}",` +
    `"region":"${pick(REGIONS)}","page":"${page}","user_agent":${pick(AGENTS_JSON)},` +
    `"tags":[${tags}],"by_kind":${byKind}}\n`;
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
  off += out.latin1Write(line(), off); // ASCII only: one byte per character
  if (off >= CHUNK) {
    writeAll(out.subarray(0, off));
    bytes += off;
    off = 0;
  }
}
writeAll(out.subarray(0, off));
bytes += off;
process.stderr.write(`gen: ${N} docs, ${bytes} bytes, average ${N ? (bytes / N).toFixed(1) : 0} ` +
  `bytes/doc, ${distinct} distinct ids of ${KEYS} (seed ${SEED})\n`);
