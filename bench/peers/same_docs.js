// Compares two files of JSON lines document by document, as the peer comparisons in bench/
// need: flowctl's output against another tool's output of the same reduction, in the same
// (key) order. Documents are equal when they hold the same values: numbers compare by value
// (12.0 equals 12), object properties in any order, and a null property equals an absent
// one (SQL tools print NULL for what a document does not have). Prints one summary line,
// and the first mismatches; exits 1 if the files differ.
//
//   node same_docs.js EXPECTED ACTUAL
'use strict';
const fs = require('fs');
const readline = require('readline');

const [expectedPath, actualPath] = process.argv.slice(2);
if (!expectedPath || !actualPath) {
  process.stderr.write('usage: node same_docs.js EXPECTED ACTUAL\n');
  process.exit(2);
}

function same(a, b) {
  a = a === undefined ? null : a;
  b = b === undefined ? null : b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].every((k) => same(a[k], b[k]));
  }
  return a === b;
}

async function* lines(path) {
  for await (const line of readline.createInterface({ input: fs.createReadStream(path), crlfDelay: Infinity })) {
    if (line !== '') yield line;
  }
}

(async () => {
  const a = lines(expectedPath)[Symbol.asyncIterator]();
  const b = lines(actualPath)[Symbol.asyncIterator]();
  let compared = 0, differing = 0;
  for (;;) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done || y.done) {
      if (!x.done || !y.done) {
        console.log(`differ: ${x.done ? actualPath : expectedPath} has more than ${compared} documents`);
        process.exit(1);
      }
      break;
    }
    compared++;
    if (!same(JSON.parse(x.value), JSON.parse(y.value))) {
      if (++differing <= 3) console.log(`differ at document ${compared}:\n  ${x.value}\n  ${y.value}`);
    }
  }
  if (differing) {
    console.log(`differ: ${differing} of ${compared} documents`);
    process.exit(1);
  }
  console.log(`same: ${compared} documents`);
})();
