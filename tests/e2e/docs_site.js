// Helper of docs_site.sh: loads the generated sites from disk in headless Chromium
// (chromium.js) and checks the DOM: the collection list and its search, a projection table,
// the schema tree's reductions, a lineage edge, node boxes that do not overlap and labels
// that fit them as the browser lays them out, pages without JavaScript, no request other
// than file://, escaped catalog values; runs the lake query a page shows with DuckDB; and
// saves screenshots.
//
//   node docs_site.js EXAMPLES_SITE EVIL_SITE ARTIFACTS_DIR WORK_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const { launch } = require('./chromium');

const [examples, evil, artifacts, work] = process.argv.slice(2).map((p) => path.resolve(p));
let failures = 0;
function fail(msg) {
  console.log(`FAIL: ${msg}`);
  failures++;
}
function expectEq(what, got, want) {
  if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
const url = (site, page) => `file://${path.join(site, page)}`;

// Every request is a local file, and no script failed.
function checkClean(page, what) {
  const remote = page.requests().filter((u) => !u.startsWith('file://') && !u.startsWith('about:'));
  if (remote.length) fail(`${what}: requests beyond file://: ${remote.join(', ')}`);
  for (const e of page.errors()) fail(`${what}: page error ${e}`);
}

// The lineage SVG as the browser lays it out: node boxes pairwise disjoint and every label
// inside its box.
async function checkLineageBoxes(page, what) {
  const r = await page.eval(`(() => {
    const nodes = [...document.querySelectorAll('svg.lineage .node')].map((n) => {
      const b = n.querySelector('rect').getBBox(), t = n.querySelector('text').getBBox();
      return { name: n.dataset.name, b: [b.x, b.y, b.width, b.height], t: [t.x, t.y, t.width, t.height] };
    });
    return nodes;
  })()`);
  if (!r.length) fail(`${what}: no lineage nodes`);
  for (let i = 0; i < r.length; i++) {
    const [x, y, w, h] = r[i].b;
    const [tx, ty, tw, th] = r[i].t;
    if (tx < x || tx + tw > x + w || ty < y || ty + th > y + h) fail(`${what}: the label of ${r[i].name} overflows its box (${r[i].t} in ${r[i].b})`);
    for (let j = i + 1; j < r.length; j++) {
      const [x2, y2, w2, h2] = r[j].b;
      if (x < x2 + w2 && x2 < x + w && y < y2 + h2 && y2 < y + h) fail(`${what}: nodes ${r[i].name} and ${r[j].name} overlap`);
    }
  }
  return r.length;
}

async function visibleRows(page) {
  return page.eval(`[...document.querySelectorAll('#collections tbody tr')].filter((r) => !r.hidden && r.offsetParent !== null).map((r) => r.cells[0].textContent)`);
}

async function clearSearch(page) {
  await page.eval(`(() => { const i = document.getElementById('search'); i.value = ''; i.dispatchEvent(new Event('input')); })()`);
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  console.log(`browser: ${(await browser.version()).product}`);
  try {
    const page = await browser.newPage();
    const shot = async (name) => {
      const file = path.join(artifacts, name);
      await page.screenshot(file);
      console.log(`screenshot ${file}`);
    };

    // The index of the examples: every collection listed, and the search filters.
    await page.goto(url(examples, 'index.html'));
    const all = await visibleRows(page);
    expectEq('index rows', [...all].sort(), [
      'bikeshare/bikes', 'bikeshare/daily-ridership', 'bikeshare/idle-bikes', 'bikeshare/rides',
      'bikeshare/station-activity', 'bikeshare/stations',
    ]);
    expectEq('search box shown with JavaScript', await page.eval(`!document.getElementById('search-box').hidden`), true);
    await shot('index.png');
    await page.type('#search', 'idle-bikes');
    expectEq('rows matching "idle-bikes"', await visibleRows(page), ['bikeshare/idle-bikes']);
    expectEq('search count', await page.eval(`document.getElementById('search-count').textContent`), '1 of 6 collections');
    await clearSearch(page);
    // A field name finds its collection: `ride_seconds` is a field of bikes only.
    await page.type('#search', 'ride_seconds');
    expectEq('rows matching a field name', await visibleRows(page), ['bikeshare/bikes']);
    await shot('index-search.png');
    await clearSearch(page);
    await page.type('#search', 'STATION');
    const stations = await visibleRows(page);
    const want = await page.eval(`(() => {
      const data = JSON.parse(document.getElementById('search-data').textContent);
      return data.filter((d) => (d[0] + ' ' + d[1] + ' ' + d[2]).toLowerCase().includes('station')).map((d) => d[0]);
    })()`);
    expectEq('rows matching "STATION" (any case, in name, description or fields)', stations, want);
    if (stations.length < 2) fail(`"station" should match several collections, matched ${stations}`);
    await clearSearch(page);
    await page.type('#search', 'no such thing');
    expectEq('rows matching nothing', await visibleRows(page), []);
    expectEq('"no match" shown', await page.eval(`!document.getElementById('no-match').hidden`), true);
    checkClean(page, 'index');
    await page.goto(url(examples, 'index.html') + '?q=idle%20bikes');
    expectEq('index.html?q=idle%20bikes', await visibleRows(page), ['bikeshare/idle-bikes']);

    // A collection page: facts, the projection table, who reads and materializes it, tests,
    // the lake query.
    await page.goto(url(examples, 'collections/bikeshare~rides.html'));
    expectEq('h1', await page.eval(`document.querySelector('h1').lastChild.textContent.trim()`), 'bikeshare/rides');
    const projections = await page.eval(`[...document.querySelectorAll('#projections tbody tr')].map((r) => [...r.cells].map((c) => c.textContent))`);
    const byField = Object.fromEntries(projections.map((r) => [r[0], r]));
    if (!byField.bike_id) fail(`no bike_id projection in ${JSON.stringify(projections)}`);
    else expectEq('projection bike_id', byField.bike_id.slice(1), ['/bike_id', 'integer', 'no', 'key, default']);
    if (!byField.start_station_name) fail(`no start_station_name projection in ${JSON.stringify(projections)}`);
    else expectEq('projection start_station_name', byField.start_station_name[1], '/begin/station/name');
    if (byField.user_type) expectEq('projection user_type role', byField.user_type[4], 'partition, user projection');
    if (!byField.flow_document) fail('no flow_document projection');
    const key = await page.eval(`document.querySelector('dd.key').textContent`);
    expectEq('key of rides', key, '/bike_id, /begin/timestamp');
    const readBy = await page.eval(`[...document.querySelectorAll('#read-by tbody tr')].map((r) => r.cells[0].textContent)`);
    for (const d of ['bikeshare/bikes', 'bikeshare/daily-ridership', 'bikeshare/idle-bikes', 'bikeshare/station-activity']) {
      if (!readBy.includes(d)) fail(`rides: "read by" lacks ${d}: ${readBy}`);
    }
    const mats = await page.eval(`[...document.querySelectorAll('#materializations tbody tr')].map((r) => [r.cells[0].textContent, r.cells[2].textContent])`);
    expectEq('rides materialized', mats, [['bikeshare/analytics', 'rides delta updates']]);
    const target = await page.eval(`document.querySelector('#materializations tbody td:nth-child(2)').textContent`);
    if (!target.includes('postgres') || target.includes(':flow@')) fail(`the target should show postgres with its password hidden: ${target}`);
    const tests = await page.eval(`document.querySelectorAll('#tests tbody tr').length`);
    if (tests < 3) fail(`rides should be covered by several tests, got ${tests}`);
    const sql = await page.eval(`document.querySelector('#lake pre.sql').textContent`);
    expectEq('lake query', sql,
      "SELECT * FROM read_json_auto('flowctl-data/lake/bikeshare/rides/user_type=*/pivot=00/utc_date=*/utc_hour=*/*.gz', hive_partitioning=true) LIMIT 10;");
    const edges = await page.eval(`[...document.querySelectorAll('svg.lineage path.edge')].map((e) => e.dataset.from + ' -> ' + e.dataset.to)`);
    for (const e of ['bikeshare/rides-csv-drop -> bikeshare/rides', 'bikeshare/rides -> bikeshare/bikes', 'bikeshare/rides -> bikeshare/analytics']) {
      if (!edges.includes(e)) fail(`rides' neighbourhood lacks the edge ${e}: ${edges}`);
    }
    await checkLineageBoxes(page, 'rides neighbourhood');
    await shot('collection-rides.png');
    checkClean(page, 'rides page');

    // The schema tree shows reduction strategies.
    await page.goto(url(examples, 'collections/bikeshare~bikes.html'));
    const reductions = await page.eval(`Object.fromEntries([...document.querySelectorAll('ul.schema li')].map((li) => {
      const head = li.querySelector(':scope > details > summary, :scope > div.leaf');
      const reduce = head && head.querySelector('.reduce');
      return [head.querySelector('.name').textContent, reduce ? reduce.textContent : ''];
    }))`);
    expectEq('reductions of bikes', [reductions['(document root)'], reductions.rides, reductions.longest_ride, reductions.stations],
      ['merge', 'sum', 'maximize by /seconds', 'append']);
    const derivedFrom = await page.eval(`[...document.querySelectorAll('#derived-from tbody tr')].map((r) => r.cells[1].textContent)`);
    expectEq('bikes derived from', derivedFrom, ['bikeshare/rides']);
    await shot('collection-bikes.png');
    checkClean(page, 'bikes page');

    // The whole lineage: every capture, collection and materialization, an edge, no overlap;
    // a node links to its page.
    await page.goto(url(examples, 'lineage.html'));
    const nodes = await checkLineageBoxes(page, 'lineage');
    expectEq('lineage nodes (1 capture, 6 collections, 2 materializations)', nodes, 9);
    expectEq('lineage edge rides -> bikes',
      await page.eval(`document.querySelectorAll('path.edge[data-from="bikeshare/rides"][data-to="bikeshare/bikes"]').length`), 1);
    expectEq('lineage edge stations -> station-activity',
      await page.eval(`document.querySelectorAll('path.edge[data-from="bikeshare/stations"][data-to="bikeshare/station-activity"]').length`), 1);
    const href = await page.eval(`document.querySelector('a.node[data-name="bikeshare/stations"]').href.baseVal`);
    await shot('lineage.png');
    checkClean(page, 'lineage');
    await page.goto(url(examples, href));
    expectEq('lineage node link', await page.eval(`document.querySelector('h1').lastChild.textContent.trim()`), 'bikeshare/stations');

    // Escaped catalog values: a description with <script> renders as text; nothing runs.
    await page.goto(url(evil, 'collections/t~evil.html'));
    expectEq('description rendered as text', await page.eval(`document.querySelector('p.description').textContent`),
      "<script>window.pwned = 1; alert('x')</script> & <b>bold</b>");
    expectEq('title rendered as text', await page.eval(`document.querySelector('p.title').textContent`),
      '</script><script>window.pwned = 2</script>');
    expectEq('no script ran', await page.eval(`typeof window.pwned`), 'undefined');
    expectEq('no script or b element', await page.eval(`document.querySelectorAll('script, b, img').length`), 0);
    await shot('evil-collection.png');
    const lakeSql = await page.eval(`document.querySelector('#lake pre.sql').textContent`);
    checkClean(page, 'evil page');
    await page.goto(url(evil, 'index.html'));
    expectEq('index: no script ran', await page.eval(`typeof window.pwned`), 'undefined');
    expectEq('index: only the two scripts', await page.eval(`document.querySelectorAll('script').length`), 2);
    await page.type('#search', '<script>window');
    expectEq('search for "<script>window"', await visibleRows(page), ['t/evil']);
    checkClean(page, 'evil index');
    expectEq('no alert() dialogs', page.events('Page.javascriptDialogOpening').length, 0);

    // Without JavaScript, pages work (the search box stays hidden, the list is complete).
    const nojs = await browser.newPage();
    await nojs.call('Emulation.setScriptExecutionDisabled', { value: true });
    await nojs.goto(url(examples, 'index.html'));
    await nojs.call('Emulation.setScriptExecutionDisabled', { value: false });
    expectEq('no-JS index rows', (await visibleRows(nojs)).length, 6);
    expectEq('no-JS search box hidden', await nojs.eval(`document.getElementById('search-box').hidden`), true);

    // The lake query of a page reads exactly the collection's documents (not those of the
    // nested collection t/evil/child) with DuckDB, run where the data directory is.
    process.chdir(work);
    const { DuckDBInstance } = require('@duckdb/node-api');
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    const rows = (await conn.runAndReadAll(lakeSql.replace('LIMIT 10', ''))).getRowObjectsJS();
    expectEq('documents read by the page\'s DuckDB query', rows.map((r) => Number(r.id)).sort((a, b) => a - b), [1, 2, 3]);
    expectEq('partition column', rows.map((r) => r.region).sort(), ['EU', 'EU', 'US']);
  } finally {
    await browser.close();
  }
  for (const f of fs.readdirSync(artifacts)) {
    const b = fs.readFileSync(path.join(artifacts, f));
    if (b.length < 2000 || b.toString('latin1', 1, 4) !== 'PNG') fail(`${f} is not a PNG screenshot (${b.length} bytes)`);
  }
  if (failures) {
    console.log(`${failures} browser check(s) failed`);
    process.exit(1);
  }
  console.log('browser checks passed');
}

main().catch((e) => {
  console.log(`FAIL: ${e.stack || e}`);
  process.exit(1);
});
