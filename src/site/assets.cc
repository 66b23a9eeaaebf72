#include "site/assets.h"

namespace flow::site {

// Light and plain: system fonts only (no network), readable line lengths, tables that
// scroll sideways on narrow screens, and the lineage colours shared by the SVG and legend.
const char kStyleCss[] = R"css(/* flowctl docs */
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #ffffff; --panel: #f6f8fb;
  --link: #1a5fb4; --accent: #2f7d32; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
header.site { display: flex; gap: 1.2em; align-items: baseline; padding: .6em 1.5em;
  border-bottom: 1px solid var(--line); background: var(--panel); }
header.site a { font-weight: 600; }
header.site .root { margin-left: auto; color: var(--muted); font-size: 90%; }
main { padding: 1em 1.5em 2em; max-width: 1300px; }
footer { padding: 1em 1.5em; color: var(--muted); font-size: 85%; border-top: 1px solid var(--line); }
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
h1 { font-size: 1.6em; margin: .3em 0; word-break: break-all; }
h1 .kind { display: block; font-size: 55%; font-weight: 500; color: var(--muted); text-transform: uppercase;
  letter-spacing: .05em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid var(--line); padding-bottom: .2em; }
h3 { font-size: 1em; margin: 1em 0 .2em; }
code, pre { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-size: 90%; }
code { background: var(--panel); padding: 0 .25em; border-radius: 3px; }
pre { background: var(--panel); border: 1px solid var(--line); padding: .6em .8em; overflow-x: auto;
  white-space: pre-wrap; word-break: break-all; }
p.title { font-size: 1.15em; font-weight: 600; margin: .2em 0; }
p.description { max-width: 60em; }
.none, .note, .where, .optional { color: var(--muted); }
.note, .where, .optional { font-size: 85%; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; margin: .5em 0; display: block; overflow-x: auto; }
th, td { border-bottom: 1px solid var(--line); padding: .3em .7em; text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
tr[hidden] { display: none; }
table.list td:first-child { white-space: nowrap; }
.search { margin: 1em 0; }
.search input { font: inherit; padding: .4em .6em; width: min(36em, 100%); border: 1px solid #aab3c2;
  border-radius: 4px; }
#search-count { color: var(--muted); margin-left: .5em; }
.entity h3 { margin-bottom: 0; }
.entity p { margin-top: .2em; }
ul.schema, ul.schema ul { list-style: none; padding-left: 1.2em; margin: 0; }
ul.schema { padding-left: 0; }
ul.schema li { margin: .1em 0; }
ul.schema summary { cursor: pointer; }
ul.schema .leaf { padding-left: 1em; }
ul.schema .name { font-family: "DejaVu Sans Mono", ui-monospace, monospace; font-weight: 600; }
ul.schema .name.pattern, ul.schema .name.index { font-weight: 400; color: var(--muted); }
.types { color: #6a3d9a; }
.reduce { color: var(--accent); font-weight: 600; }
ul.schema .doc { padding-left: 1em; color: var(--muted); font-size: 90%; }
details.lambda summary { cursor: pointer; }
details.lambda pre { margin: .3em 0; max-width: 50em; }
.graph { overflow: auto; border: 1px solid var(--line); background: #fbfcfe; max-height: 80vh; }
svg.lineage text { font: 12px "DejaVu Sans Mono", ui-monospace, monospace; fill: var(--fg); pointer-events: none; }
svg.lineage .edge { fill: none; stroke: #8a94a6; stroke-width: 1.3; }
svg.lineage .edge:hover { stroke: #1a5fb4; stroke-width: 2.5; }
svg.lineage marker path { fill: #8a94a6; }
svg.lineage rect { stroke: #7d8799; stroke-width: 1; }
svg.lineage .node:hover rect { stroke: #1a5fb4; stroke-width: 2; }
svg.lineage .focus rect { stroke: #1d2330; stroke-width: 2.5; }
.kind-capture rect, .swatch.kind-capture { fill: #fde6c4; background: #fde6c4; }
.kind-collection rect, .swatch.kind-collection { fill: #d6e6fb; background: #d6e6fb; }
.kind-derivation rect, .swatch.kind-derivation { fill: #d9f0d3; background: #d9f0d3; }
.kind-materialization rect, .swatch.kind-materialization { fill: #eadcf5; background: #eadcf5; }
.swatch { padding: 0 .4em; border: 1px solid #7d8799; border-radius: 3px; }
)css";

// The index's search: filters the collection table as you type, on every word of the query
// (case-insensitive) against each collection's name, description and field names. The data
// is embedded in the page (file:// forbids fetching it); without JavaScript the search box
// stays hidden and the full table shows.
const char kSearchJs[] = R"js(// flowctl docs: collection search
(function () {
  'use strict';
  var box = document.getElementById('search-box');
  var input = document.getElementById('search');
  var count = document.getElementById('search-count');
  var none = document.getElementById('no-match');
  var rows = document.querySelectorAll('#collections tbody tr');
  var data = JSON.parse(document.getElementById('search-data').textContent);
  var haystacks = data.map(function (d) { return (d[0] + '\n' + d[1] + '\n' + d[2]).toLowerCase(); });
  function filter() {
    var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var h = haystacks[i];
      var match = terms.every(function (t) { return h.indexOf(t) >= 0; });
      rows[i].hidden = !match;
      if (match) shown++;
    }
    count.textContent = terms.length ? shown + ' of ' + rows.length + ' collections' : rows.length + ' collections';
    none.hidden = shown > 0;
  }
  input.addEventListener('input', filter);
  var q = /[?&]q=([^&]*)/.exec(location.search);
  if (q) {
    try { input.value = decodeURIComponent(q[1].replace(/\+/g, ' ')); } catch (e) { /* a malformed query */ }
  }
  box.hidden = false;
  filter();
})();
)js";

}  // namespace flow::site
