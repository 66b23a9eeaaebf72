#!/usr/bin/env node
// Generator of the `flowctl ingest` benchmark input (bench/ingest_bench.sh).
//
//   node gen.js N SEED > pageviews.jsonl
//
// Writes N JSON lines of about 400 bytes for collection bench/pageviews (flow.yaml beside
// this file). Every document has its own id ("pv-00000000" ..), so all N are stored; the
// region partition field takes 8 values. The output depends only on N and SEED. Prints a
// summary to stderr. Node.js 20, no dependencies.
'use strict';
const fs = require('fs');

if (process.argv.length !== 4) {
  process.stderr.write('usage: node gen.js N SEED > file\n');
  process.exit(2);
}
const [N, SEED] = process.argv.slice(2).map(Number);

const next = require('../rng.js')(SEED); // uniform in [0, 2^32)
const pick = (xs) => xs[next() % xs.length];

const regions = ['af-south', 'ap-east', 'ap-south', 'eu-central', 'eu-west', 'sa-east', 'us-east', 'us-west'];
const pages = ['/', '/pricing', '/docs/getting-started', '/docs/reference/collections', '/blog/streaming-sql',
  '/blog/exactly-once', '/signup', '/account/settings', '/docs/derivations', '/careers'];
const referrers = [null, 'https://www.google.com/', 'https://news.ycombinator.com/', 'https://github.com/'];
const countries = ['US', 'DE', 'FR', 'IN', 'BR', 'JP', 'GB', 'ZA', 'SG', 'CA'];
const oses = ['Linux', 'macOS', 'Windows', 'Android', 'iOS'];
const browsers = ['Firefox 131.0', 'Chrome 130.0.6723', 'Safari 18.1', 'Edge 130.0'];
const tagWords = ['campaign-autumn', 'ab-test-b', 'returning', 'logged-in', 'newsletter', 'mobile-web'];

const out = fs.openSync('/dev/stdout', 'w');
let buf = [], bytes = 0;
const t0 = Date.UTC(2026, 10, 1);
for (let i = 0; i < N; i++) {
  const ntags = next() % 3 + 1, tags = [];
  for (let k = 0; k < ntags; k++) tags.push(pick(tagWords));
  const doc = {
    id: 'pv-' + String(i).padStart(8, '0'),
    region: pick(regions),
    ts: new Date(t0 + i * 37).toISOString(),
    user: 'user-' + String(next() % 500000).padStart(7, '0'),
    session: (next().toString(16) + next().toString(16)).padStart(16, '0'),
    page: pick(pages),
    referrer: pick(referrers),
    country: pick(countries),
    device: {kind: pick(['desktop', 'mobile', 'tablet']), os: pick(oses), browser: pick(browsers)},
    durationMs: next() % 120000,
    scrollDepth: (next() % 1000) / 1000,
    tags,
    utm: {source: pick(['google', 'newsletter', 'twitter', 'direct']), medium: pick(['cpc', 'email', 'social']),
      campaign: pick(['autumn-launch-2026', 'docs-refresh', 'webinar-series'])},
    views: 1,
  };
  const line = JSON.stringify(doc) + '\n';
  bytes += line.length;
  buf.push(line);
  if (buf.length === 4096) {
    fs.writeSync(out, buf.join(''));
    buf = [];
  }
}
if (buf.length) fs.writeSync(out, buf.join(''));
process.stderr.write(`gen: ${N} docs, ${bytes} bytes (${N ? (bytes / N).toFixed(1) : 0} bytes/doc)\n`);
