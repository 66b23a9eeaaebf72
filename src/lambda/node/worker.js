// The Node.js worker of flowctl's nodeJS lambdas (see src/lambda/node/protocol.h), embedded
// into flowctl at build time and run as `node --enable-source-maps -e <this> <config>`.
//
// It loads the transpiled module (and the dependencies as globals), then answers requests
// until its input ends. Reads and writes are synchronous and whole-request: one JSON.parse
// and one JSON.stringify per request, no per-document system calls. Update and publish
// lambdas are synchronous functions; the event loop runs only while a bootstrap lambda (an
// async function) is awaited. The TypeScript module is <hash>.ts in stack traces (through
// the source map esbuild inlines, and --enable-source-maps): the worker reports the
// innermost frame within it, which flowctl maps to a body's line.
'use strict';
const fs = require('fs');
const FD = 3;
const config = JSON.parse(process.argv[1]);
const header = Buffer.allocUnsafe(8);
let input = Buffer.allocUnsafe(1 << 16);
let output = Buffer.allocUnsafe(1 << 16);

function readExact(buf, n) {
  let off = 0;
  while (off < n) {
    let k;
    try {
      k = fs.readSync(FD, buf, off, n - off, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
      throw e;
    }
    if (k === 0) process.exit(0);  // flowctl is done with us, or gone
    off += k;
  }
}

function send(status, text) {
  // UTF-16 code units take at most 3 bytes of UTF-8 each.
  const max = 5 + (text.length < (1 << 24) ? text.length * 3 : Buffer.byteLength(text));
  if (output.length < max) output = Buffer.allocUnsafe(Math.max(max, output.length * 2));
  const n = output.write(text, 5);
  output.writeUInt32LE(n + 1, 0);
  output[4] = status;
  const total = n + 5;
  let off = 0;
  while (off < total) {
    try {
      off += fs.writeSync(FD, output, off, total - off);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
      throw e;
    }
  }
}

function fail(row, kind, message, where) {
  const [line, column] = where || [0, 0];
  send(1, JSON.stringify({row, kind, message, line, column}));
}

function describe(v) {
  if (v === null || v === undefined) return String(v);
  if (typeof v.then === 'function') return 'a Promise (lambdas are synchronous)';
  if (typeof v === 'object') return 'an object';
  return (/^[aeiou]/.test(typeof v) ? 'an ' : 'a ') + typeof v;
}

function messageOf(e) {
  if (e instanceof Error || (e && typeof e === 'object' && typeof e.message === 'string')) {
    const name = typeof e.name === 'string' && e.name !== 'Error' ? e.name + ': ' : '';
    return name + e.message;
  }
  if (typeof e === 'string') return e;
  try {
    const json = JSON.stringify(e);
    if (json !== undefined) return json;
  } catch (_) {}
  return String(e);
}

// The line and column in the TypeScript module of the innermost stack frame within it.
function positionOf(e) {
  const stack = e && typeof e === 'object' ? String(e.stack || '') : '';
  const at = stack.indexOf(config.source + ':');
  if (at < 0) return null;
  const m = /^:(\d+):(\d+)/.exec(stack.slice(at + config.source.length));
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function run(fn, rows) {
  const out = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    let o;
    try {
      o = fn(r[0], r.length > 1 ? r[1] : null, r.length > 2 ? r[2] : null);
    } catch (e) {
      return fail(i, 'threw', messageOf(e), positionOf(e));
    }
    if (!Array.isArray(o)) return fail(i, 'notArray', describe(o));
    for (let j = 0; j < o.length; j++) {
      const t = typeof o[j];
      if (t === 'undefined' || t === 'function' || t === 'symbol') {
        return fail(i, 'unserializable', `its element ${j} is ${describe(o[j])}`);
      }
    }
    out[i] = o;
  }
  let text;
  try {
    text = JSON.stringify(out);
  } catch (e) {
    for (let i = 0; i < out.length; i++) {
      try {
        JSON.stringify(out[i]);
      } catch (e2) {
        return fail(i, 'unserializable', messageOf(e2));
      }
    }
    return fail(-1, 'unserializable', messageOf(e));
  }
  send(0, text);
}

// A bootstrap: an async function of no arguments, awaited (so it may use timers and I/O:
// the event loop runs while it is pending); what it returns is ignored.
// A promise that can never settle (nothing left for the event loop to run) ends the
// process; say why.
let awaiting = false;
process.on('exit', () => {
  if (awaiting) process.stderr.write('a bootstrap lambda returned a promise that never settles\n');
});
async function runBootstrap(fn) {
  awaiting = true;
  try {
    await fn();
  } catch (e) {
    return fail(0, 'threw', messageOf(e), positionOf(e));
  } finally {
    awaiting = false;
  }
  send(0, '[[]]');
}

const bootstraps = new Set(config.bootstraps);
let lambdas;
try {
  if (config.deps.length) {
    const path = require('path');
    const req = require('module').createRequire(path.join(config.depsDir, 'package.json'));
    for (const [pkg, name] of config.deps) {
      let m;
      try {
        m = req(pkg);
      } catch (e) {
        throw new Error(`nodeDependencies package \`${pkg}\` cannot be loaded: ${messageOf(e)}`);
      }
      if (!(name in globalThis)) globalThis[name] = m;
    }
  }
  lambdas = require(config.module);
  if (!Array.isArray(lambdas) || lambdas.length !== config.count ||
      !lambdas.every((f) => typeof f === 'function')) {
    throw new Error('the generated module does not hold one function per lambda ' +
                    '(does a lambda body close its function early?)');
  }
} catch (e) {
  fail(-1, 'load', messageOf(e), positionOf(e));
  process.exit(1);
}
send(0, JSON.stringify({node: process.version}));

(async () => {
  for (;;) {
    readExact(header, 8);
    const n = header.readUInt32LE(0) - 4;
    const index = header.readUInt32LE(4);
    if (input.length < n) input = Buffer.allocUnsafe(Math.max(n, input.length * 2));
    readExact(input, n);
    if (bootstraps.has(index)) {
      await runBootstrap(lambdas[index]);
    } else {
      run(lambdas[index], JSON.parse(input.toString('utf8', 0, n)));
    }
  }
})();
