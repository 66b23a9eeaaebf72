#!/usr/bin/env node
// The bare Node.js baseline of the `node` derivation benchmark (bench/derive_bench.sh): what
// the lambda of bench/derive/node.flow.yaml does, without flowctl.
//
//   cat docs.jsonl | node pipe.js > out.jsonl
//
// Reads JSON lines from stdin in large chunks, JSON.parses each document, builds the document
// the benchmark's lambda publishes, and writes it as a JSON line (output gathered into one
// string per input chunk). Prints `pipe: N docs` to stderr. Node.js 20, no dependencies.
'use strict';
const fs = require('fs');
const {StringDecoder} = require('string_decoder');

const input = Buffer.allocUnsafe(1 << 20);
const decoder = new StringDecoder('utf8');
let rest = '', docs = 0;
for (;;) {
  let n;
  try {
    n = fs.readSync(0, input, 0, input.length, null);
  } catch (e) {
    if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
    throw e;
  }
  if (n === 0) break;
  const text = rest + decoder.write(input.subarray(0, n));
  const end = text.lastIndexOf('\n');
  rest = text.slice(end + 1);
  let out = '';
  for (let at = 0; at < end;) {
    const nl = text.indexOf('\n', at);
    const source = JSON.parse(text.slice(at, nl));
    at = nl + 1;
    out += JSON.stringify({id: source.id, page: source.page, country: source.country,
                           durationMs: source.durationMs}) + '\n';
    ++docs;
  }
  let off = 0;
  const bytes = Buffer.from(out);
  while (off < bytes.length) off += fs.writeSync(1, bytes, off, bytes.length - off);
}
if (rest.trim()) throw new Error('the input does not end with a newline');
process.stderr.write(`pipe: ${docs} docs\n`);
