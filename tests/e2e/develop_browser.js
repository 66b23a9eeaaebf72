// Helper of develop_browser.sh: web pages and WebSocket clients that try to drive a running
// `flowctl develop` (issue 16 item 3, docs/security.md).
//
//   node develop_browser.js freeport
//       prints a free TCP port of 127.0.0.1.
//   node develop_browser.js ws URL ORIGIN HOST LINE
//       opens a WebSocket to URL with the `ws` package, sending an Origin header ORIGIN and
//       Host HOST (`-` for none / the default), sends LINE and waits for the
//       acknowledgement. Prints `refused STATUS BODY`, or `acked MESSAGE`, or `closed CODE`.
//   node develop_browser.js chromium DEV_URL FOREIGN_PORT ALLOWED_PORT
//       serves a page on 127.0.0.1:FOREIGN_PORT (an origin develop does not know) and one on
//       127.0.0.1:ALLOWED_PORT (listed with --allow-origin), loads each in headless Chromium
//       (chromium.js) and runs in it what a page's script can do: a WebSocket to
//       /ingest/acme/orders, no-cors text/plain POSTs to /ingest and /materializations, a
//       text/plain form posted to /materializations, a CORS fetch with a JSON body. Then a
//       DNS rebinding: a page of http://rebind.test:DEV_PORT (Chromium resolves the name to
//       127.0.0.1) posts to /ingest as its own origin. Prints one line of JSON: what each
//       attempt observed. Order ids: foreign 7001-7003, allowed 7101-7103, rebinding 7201.
'use strict';
const http = require('http');
const net = require('net');

const [mode, ...args] = process.argv.slice(2);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function wsClient(url, origin, host, line) {
  const WebSocket = require('ws');
  const options = { perMessageDeflate: false, headers: {} };
  if (origin !== '-') options.origin = origin;
  if (host !== '-') options.headers.Host = host;
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    const timer = setTimeout(() => {
      resolve('timeout');
      ws.terminate();
    }, 10000);
    const done = (text) => {
      clearTimeout(timer);
      resolve(text);
    };
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => done(`refused ${res.statusCode} ${body}`));
    });
    ws.on('open', () => ws.send(line));
    ws.on('message', (data) => {
      done(`acked ${data}`);
      ws.close();
    });
    ws.on('close', (code) => done(`closed ${code}`));
    ws.on('error', (e) => done(`error ${e.message}`));
  });
}

// A page server: any path answers a small HTML page.
function servePage(port, name) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>${name}</title><p>${name}</p><iframe name="sink"></iframe>`);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

// The script a page runs: every way it has to send develop a request. `dev` is develop's
// URL, `prefix` the order id prefix, `table` the prefix of table names it asks for.
function attack(dev, first, table) {
  return `(async () => {
    const dev = ${JSON.stringify(dev)};
    const order = (id) => ({ id, customer: 'page', total: 1 });
    const r = {};
    r.ws = await new Promise((resolve) => {
      let opened = false;
      const ws = new WebSocket(dev.replace(/^http/, 'ws') + '/ingest/acme/orders');
      ws.onopen = () => { opened = true; ws.send(JSON.stringify(order(${first})) + '\\n'); };
      ws.onmessage = (e) => { resolve('acked ' + e.data); ws.close(); };
      ws.onclose = (e) => resolve((opened ? 'opened, ' : '') + 'closed ' + e.code);
      setTimeout(() => resolve(opened ? 'opened' : 'timeout'), 8000);
    });
    const send = async (path, body, mode) => {
      try {
        const res = await fetch(dev + path, { method: 'POST', mode, body,
          headers: { 'Content-Type': 'text/plain' } });
        return res.type === 'opaque' ? 'opaque' : 'status ' + res.status;
      } catch (e) {
        return 'error ' + e.message;
      }
    };
    r.noCorsIngest = await send('/ingest', JSON.stringify({ 'acme/orders': [order(${first + 1})] }), 'no-cors');
    r.noCorsMaterialize = await send('/materializations',
      JSON.stringify({ target: 'local', collection: 'acme/orders', table: '${table}_fetch' }), 'no-cors');
    r.textPlain = await send('/materializations',
      JSON.stringify({ target: 'local', collection: 'acme/orders', table: '${table}_text' }), 'cors');
    // The classic: a form whose text/plain body is JSON.
    r.form = await new Promise((resolve) => {
      const f = document.createElement('form');
      f.method = 'POST';
      f.enctype = 'text/plain';
      f.action = dev + '/materializations';
      f.target = 'sink';
      const i = document.createElement('input');
      i.name = '{"target": "local", "collection": "acme/orders", "table": "${table}_form", "x": "';
      i.value = '"}';
      f.appendChild(i);
      document.body.appendChild(f);
      document.querySelector('iframe').onload = () => resolve('submitted');
      setTimeout(() => resolve('timeout'), 8000);
      f.submit();
    });
    try {
      const res = await fetch(dev + '/ingest', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ 'acme/orders': [order(${first + 2})] }) });
      r.corsJson = 'status ' + res.status + ' ' + (await res.text()).trim();
    } catch (e) {
      r.corsJson = 'error ' + e.message;
    }
    return r;
  })()`;
}

async function chromium(dev, foreignPort, allowedPort) {
  const { launch } = require('./chromium');
  const devPort = new URL(dev).port;
  const servers = [await servePage(foreignPort, 'foreign'), await servePage(allowedPort, 'allowed')];
  const browser = await launch({
    args: ['--no-proxy-server', '--host-resolver-rules=MAP rebind.test 127.0.0.1'],
  });
  const out = {};
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${foreignPort}/`);
    out.foreign = await page.eval(attack(dev, 7001, 'foreign'));
    await page.goto(`http://127.0.0.1:${allowedPort}/`);
    out.allowed = await page.eval(attack(dev, 7101, 'allowed'));
    // DNS rebinding: the page's own name now resolves to develop; its requests are
    // same-origin, so it could read the answers.
    await page.goto(`http://rebind.test:${devPort}/healthz`);
    out.rebindPage = await page.eval('document.body.innerText');
    out.rebindIngest = await page.eval(`fetch('/ingest', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ 'acme/orders': [{ id: 7201, customer: 'page', total: 1 }] }) })
      .then(async (res) => 'status ' + res.status + ' ' + (await res.text()).trim(), (e) => 'error ' + e.message)`);
  } finally {
    await browser.close();
    for (const s of servers) s.close();
  }
  console.log(JSON.stringify(out));
}

async function main() {
  if (mode === 'freeport') {
    console.log(await freePort());
  } else if (mode === 'ws') {
    console.log(await wsClient(...args));
  } else if (mode === 'chromium') {
    await chromium(args[0], Number(args[1]), Number(args[2]));
  } else {
    console.error('usage: develop_browser.js freeport | ws URL ORIGIN HOST LINE | chromium DEV_URL FOREIGN_PORT ALLOWED_PORT');
    process.exit(2);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
