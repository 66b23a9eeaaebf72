// Headless Chromium driven over the Chrome DevTools Protocol, for the docs site's browser
// test (docs_site.js) and benchmark (bench/docs_bench.sh), and the web pages that try to
// drive `flowctl develop` (develop_browser.js). The system's `chromium`
// (Debian package; $CHROMIUM overrides) is started with a private profile and no background
// networking (pages load only what a test points them at); the protocol goes through the pinned `ws` package (scripts/npm/test), so
// no browser is downloaded and no puppeteer is needed.
//
//   const { launch } = require('./chromium');
//   const browser = await launch();
//   const page = await browser.newPage();
//   await page.goto('file:///.../index.html');
//   const n = await page.eval('document.querySelectorAll("tr").length');
//   await page.screenshot('/tmp/index.png');
//   await browser.close();
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const WebSocket = require('ws');

// `args`: more Chromium flags (e.g. --host-resolver-rules for a test's own names).
async function launch({ width = 1280, height = 900, args: extra = [] } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'flowctl-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-extensions', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--metrics-recording-only', '--mute-audio', '--hide-scrollbars',
    '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${width},${height}`, ...extra,
    'about:blank',
  ];
  const proc = spawn(process.env.CHROMIUM || 'chromium', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const endpoint = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`chromium did not start in 30 s:\n${stderr}`)), 30000);
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('error', (e) => reject(new Error(`cannot start chromium: ${e.message}`)));
    proc.on('exit', (code) => reject(new Error(`chromium exited (${code}) before listening:\n${stderr}`)));
  });
  const ws = new WebSocket(endpoint, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });

  let nextId = 1;
  const pending = new Map();
  const waiters = [];  // {method, sessionId, resolve}
  const events = [];   // every event, for checks after the fact
  ws.on('message', (data) => {
    const msg = JSON.parse(data);
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (!p) return;
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
      return;
    }
    events.push(msg);
    // A dialog (alert, confirm) would block the page: dismiss it; page.events() records it.
    if (msg.method === 'Page.javascriptDialogOpening') {
      send('Page.handleJavaScriptDialog', { accept: false }, msg.sessionId).catch(() => {});
    }
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w.method === msg.method && w.sessionId === msg.sessionId) {
        waiters.splice(i, 1);
        w.resolve(msg.params);
      }
    }
  });
  const send = (method, params = {}, sessionId) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, method });
      ws.send(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }));
    });
  const waitFor = (method, sessionId, ms = 30000) =>
    new Promise((resolve, reject) => {
      const w = { method, sessionId, resolve };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) {
          waiters.splice(i, 1);
          reject(new Error(`no ${method} within ${ms} ms`));
        }
      }, ms).unref();
    });

  async function newPage() {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    const call = (method, params) => send(method, params, sessionId);
    await call('Page.enable');
    await call('Runtime.enable');
    await call('Network.enable');
    await call('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    const page = {
      call,
      // Loads `url` and waits for its load event.
      async goto(url) {
        const loaded = waitFor('Page.loadEventFired', sessionId);
        const nav = await call('Page.navigate', { url });
        if (nav.errorText) throw new Error(`cannot load ${url}: ${nav.errorText}`);
        await loaded;
      },
      // The value of a JavaScript expression in the page (awaited if it is a promise).
      async eval(expression) {
        const r = await call('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
        if (r.exceptionDetails) {
          throw new Error(`${expression}: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
        }
        return r.result.value;
      },
      // Types `text` into the element matching `selector`, one character at a time.
      async type(selector, text) {
        await page.eval(`document.querySelector(${JSON.stringify(selector)}).focus()`);
        for (const ch of text) await call('Input.insertText', { text: ch });
      },
      // Writes a PNG of the whole page (up to 8000 pixels tall) to `file`.
      async screenshot(file) {
        const metrics = await call('Page.getLayoutMetrics');
        const size = metrics.cssContentSize || metrics.contentSize;
        const clip = { x: 0, y: 0, width: Math.min(size.width, 4000), height: Math.min(size.height, 8000), scale: 1 };
        const { data } = await call('Page.captureScreenshot', { format: 'png', clip, captureBeyondViewport: true });
        fs.writeFileSync(file, Buffer.from(data, 'base64'));
      },
      // The parameters of this page's events named `method` so far.
      events(method) {
        return events.filter((e) => e.sessionId === sessionId && e.method === method).map((e) => e.params);
      },
      // Uncaught exceptions and console errors in this page so far.
      errors() {
        return page.events('Runtime.exceptionThrown')
          .concat(page.events('Runtime.consoleAPICalled').filter((p) => p.type === 'error'))
          .map((p) => JSON.stringify(p).slice(0, 400));
      },
      // URLs the page requested so far.
      requests() {
        return page.events('Network.requestWillBeSent').map((p) => p.request.url);
      },
    };
    return page;
  }

  async function close() {
    try {
      await Promise.race([send('Browser.close'), new Promise((r) => setTimeout(r, 3000))]);
    } catch (e) {
      // already gone
    }
    ws.close();
    // Chromium (and its child processes) may still be writing the profile after
    // Browser.close answers: wait for the process to exit before removing it.
    const exited = () => proc.exitCode !== null || proc.signalCode !== null;
    const waitExit = (ms) => exited() ? Promise.resolve()
      : new Promise((r) => { proc.once('exit', r); setTimeout(r, ms).unref(); });
    await waitExit(5000);
    if (!exited()) {
      proc.kill('SIGKILL');
      await waitExit(5000);
    }
    // A leftover file in the temporary profile is not a test failure: retry, then warn.
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      process.stderr.write(`warning: could not remove chromium profile ${profile}: ${e.message}\n`);
    }
  }
  return { newPage, close, version: () => send('Browser.getVersion') };
}

module.exports = { launch };
