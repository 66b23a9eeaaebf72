// Helper of docs_bench.sh: opens a generated site in headless Chromium and prints the
// index's load time (navigation timing: from navigation start to the end of the load
// event), the time to filter its collection list after typing (in the page: from the input
// event through style and layout, and to the next frame), and the lineage page's
// load time.
//
//   node browse.js SITE_DIR
'use strict';
const path = require('path');
const { launch } = require(path.join(__dirname, '../../tests/e2e/chromium'));

const site = path.resolve(process.argv[2]);
const loadMs = `(() => { const t = performance.getEntriesByType('navigation')[0];
  return { load: t.loadEventEnd - t.startTime, dom: t.domContentLoadedEventEnd - t.startTime }; })()`;

async function main() {
  const browser = await launch();
  try {
    const page = await browser.newPage();
    let best = null;
    for (let i = 0; i < 3; i++) {  // the first load also warms the browser's caches
      await page.goto(`file://${site}/index.html`);
      const t = await page.eval(loadMs);
      if (!best || t.load < best.load) best = t;
    }
    const rows = await page.eval(`document.querySelectorAll('#collections tbody tr').length`);
    console.log(`index.html: ${rows} collections; loaded in ${best.load.toFixed(0)} ms (DOMContentLoaded ${best.dom.toFixed(0)} ms), best of 3`);
    for (const q of ['customers-4', 'shop 12', 'spent', 'zzz', '']) {
      const r = await page.eval(`new Promise((resolve) => {
        const input = document.getElementById('search');
        const t0 = performance.now();
        input.value = ${JSON.stringify(q)};
        input.dispatchEvent(new Event('input'));
        document.body.offsetHeight;  // style and layout
        const sync = performance.now() - t0;
        requestAnimationFrame(() => setTimeout(() => resolve({
          sync,
          ms: performance.now() - t0,
          shown: [...document.querySelectorAll('#collections tbody tr')].filter((r) => !r.hidden).length,
        })));
      })`);
      console.log(`search ${JSON.stringify(q)}: ${r.shown} rows shown; filter, style and layout ${r.sync.toFixed(1)} ms, next frame after ${r.ms.toFixed(1)} ms`);
    }
    // Typing through the protocol, as a user would, one character at a time.
    await page.eval(`(() => { const i = document.getElementById('search'); i.value = ''; i.dispatchEvent(new Event('input')); })()`);
    const t0 = Date.now();
    await page.type('#search', 'customers-49');
    const shown = await page.eval(`[...document.querySelectorAll('#collections tbody tr')].filter((r) => !r.hidden).length`);
    console.log(`typing "customers-49" (12 keystrokes, each filtering): ${Date.now() - t0} ms in all, ${shown} rows shown`);
    await page.goto(`file://${site}/lineage.html`);
    const l = await page.eval(loadMs);
    const nodes = await page.eval(`document.querySelectorAll('svg.lineage .node').length`);
    console.log(`lineage.html: ${nodes} nodes; loaded in ${l.load.toFixed(0)} ms`);
    const errors = page.errors();
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
