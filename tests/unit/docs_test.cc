// The documentation site (src/docs): escaping, page paths, the lineage graph of the
// examples, the layout's no-overlap guarantee (examples and a generated catalog of 500
// collections and 500 derivations), escaping of catalog values in pages, and the output
// directory's rules.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "base/files.h"
#include "base/url.h"
#include "catalog/check.h"
#include "catalog/loader.h"
#include "site/html.h"
#include "site/lineage.h"
#include "site/site.h"
#include "catalog_scratch.h"
#include "scratch.h"

namespace flow {
namespace {

using site::Box;
using site::LineageGraph;
using site::LineageLayout;
using site::LineageNode;
using testing::Must;
using testing::TempDir;

using testing::WriteFile;

// The catalog at `path`, which must check without a diagnostic.
std::unique_ptr<testing::CheckedCatalog> Check(const std::string& path) {
  auto c = testing::LoadAndCheckCatalog(path);
  REQUIRE_MESSAGE(c->diags.empty(), c->Text());
  return c;
}

bool Overlap(const Box& a, const Box& b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

// Node rectangles pairwise disjoint, inside the drawing; every edge runs left to right and
// its bends (where it passes a column) lie outside every node.
void CheckLayout(const LineageGraph& g, const LineageLayout& l) {
  REQUIRE(l.nodes.size() == g.nodes.size());
  size_t overlaps = 0;
  for (size_t i = 0; i < l.nodes.size(); ++i) {
    const Box& a = l.nodes[i];
    CHECK(a.x >= 0);
    CHECK(a.y >= 0);
    CHECK(a.x + a.w <= l.width);
    CHECK(a.y + a.h <= l.height);
    for (size_t j = i + 1; j < l.nodes.size(); ++j) overlaps += Overlap(a, l.nodes[j]) ? 1 : 0;
  }
  CHECK(overlaps == 0);
  size_t through = 0;
  for (size_t e = 0; e < g.edges.size(); ++e) {
    const auto& pts = l.edges[e];
    REQUIRE(pts.size() >= 2);
    CHECK(pts.front().x < pts.back().x);
    for (size_t i = 1; i + 1 < pts.size(); ++i) {
      for (const Box& b : l.nodes) {
        if (pts[i].x >= b.x && pts[i].x <= b.x + b.w && pts[i].y > b.y && pts[i].y < b.y + b.h) ++through;
      }
    }
  }
  CHECK(through == 0);
}

bool HasEdge(const LineageGraph& g, const std::string& from, const std::string& to) {
  for (const auto& e : g.edges) {
    if (g.nodes[e.from].name == from && g.nodes[e.to].name == to) return true;
  }
  return false;
}

TEST_CASE("docs: escaping text, attributes and JSON inside <script>") {
  CHECK(site::Escape(R"(<script>alert("x" & 'y')</script>)") ==
        "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
  CHECK(site::Escape("plain ü") == "plain ü");
  std::string json = site::ScriptJsonQuote("</script><!-- a&b \xE2\x80\xA8 \xE2\x80\xA9 \"q\"\n");
  CHECK(json == R"("\u003c/script\u003e\u003c!-- a\u0026b \u2028 \u2029 \"q\"\n")");
  CHECK(json.find('<') == std::string::npos);
  CHECK(site::Ellipsize("abcdef", 6) == "abcdef");
  CHECK(site::Ellipsize("abcdefg", 6) == "abcde…");
  CHECK(site::Ellipsize("üüüüüüü", 3) == "üü…");
  CHECK(site::Ellipsize("abc", 0) == "");
}

TEST_CASE("docs: collection page paths are distinct, flat and bounded") {
  CHECK(site::CollectionPage("acme/orders") == "collections/acme~orders.html");
  CHECK(site::CollectionPage("a/../b") == "collections/a~..~b.html");
  CHECK(site::CollectionPage("a b") == "collections/a!20b.html");
  CHECK(site::CollectionPage("a/b") != site::CollectionPage("a~b"));
  std::string long_a(300, 'a'), long_b = std::string(299, 'a') + "b";
  std::string pa = site::CollectionPage(long_a), pb = site::CollectionPage(long_b);
  CHECK(pa != pb);
  CHECK(pa.size() < 230);
  CHECK(site::UrlEncode("a/b c#d") == "a/b%20c%23d");
}

TEST_CASE("docs: the examples' lineage has its edges and a layout without overlap or crossings") {
  auto c = Check(std::string(FLOWCTL_SOURCE_DIR) + "/catalog-examples/flow.yaml");
  LineageGraph g = site::BuildLineage(c->loaded->catalog);
  CHECK(HasEdge(g, "bikeshare/rides-csv-drop", "bikeshare/rides"));
  CHECK(HasEdge(g, "bikeshare/rides", "bikeshare/bikes"));
  CHECK(HasEdge(g, "bikeshare/rides", "bikeshare/station-activity"));
  CHECK(HasEdge(g, "bikeshare/stations", "bikeshare/station-activity"));
  CHECK(HasEdge(g, "bikeshare/bikes", "bikeshare/dashboard"));
  CHECK(HasEdge(g, "bikeshare/rides", "bikeshare/analytics"));
  CHECK_FALSE(HasEdge(g, "bikeshare/stations", "bikeshare/bikes"));
  LineageLayout l = site::LayOut(g);
  CheckLayout(g, l);
  CHECK(l.crossings == 0);
  // Columns: the capture, then captured collections, derived ones, materializations.
  auto column = [&](const std::string& name) {
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].name == name) return l.layer[i];
    }
    FAIL("no node " << name);
    return -1;
  };
  CHECK(column("bikeshare/rides-csv-drop") == 0);
  CHECK(column("bikeshare/rides") == 1);
  CHECK(column("bikeshare/stations") == 1);
  CHECK(column("bikeshare/bikes") == 2);
  CHECK(column("bikeshare/dashboard") == 3);
  CHECK(column("bikeshare/analytics") == 3);

  std::string svg = site::RenderSvg(g, l, "");
  CHECK(svg.find("data-from=\"bikeshare/rides\" data-to=\"bikeshare/bikes\"") != std::string::npos);
  CHECK(svg.find("href=\"collections/bikeshare~rides.html\"") != std::string::npos);

  // A collection's neighbourhood: what it reads and what reads it.
  size_t rides = 0;
  while (g.nodes[rides].name != "bikeshare/rides") ++rides;
  LineageGraph near = site::Neighbourhood(g, rides);
  CHECK(HasEdge(near, "bikeshare/rides-csv-drop", "bikeshare/rides"));
  CHECK(HasEdge(near, "bikeshare/rides", "bikeshare/idle-bikes"));
  CHECK_FALSE(HasEdge(near, "bikeshare/stations", "bikeshare/station-activity"));
  CheckLayout(near, site::LayOut(near));
}

// A catalog shaped like the benchmark's: 500 captured collections each fed by one of 50
// captures, 500 derivations reading one to three collections (some of them derived), and 20
// materializations of 25 bindings each. Edges that span columns get dummies.
LineageGraph GeneratedGraph() {
  LineageGraph g;
  std::mt19937 rng(7);
  auto add = [&](LineageNode::Kind kind, std::string name) {
    g.nodes.push_back({kind, std::move(name), "", "", false});
    g.in.emplace_back();
    g.out.emplace_back();
    return g.nodes.size() - 1;
  };
  std::set<std::pair<size_t, size_t>> seen;
  auto edge = [&](size_t from, size_t to) {
    if (!seen.insert({from, to}).second) return;
    g.edges.push_back({from, to, ""});
    g.out[from].push_back(g.edges.size() - 1);
    g.in[to].push_back(g.edges.size() - 1);
  };
  std::vector<size_t> captures, captured, derived;
  for (int i = 0; i < 50; ++i) captures.push_back(add(LineageNode::Kind::kCapture, "bench/drop-" + std::to_string(i)));
  for (int i = 0; i < 500; ++i) {
    captured.push_back(add(LineageNode::Kind::kCollection, "bench/orders-with-a-rather-long-name-" + std::to_string(i)));
    edge(captures[i % 50], captured.back());
  }
  for (int i = 0; i < 500; ++i) {
    size_t d = add(LineageNode::Kind::kDerivation, "bench/customers-" + std::to_string(i));
    edge(captured[i], d);
    if (i % 3 == 0) edge(captured[rng() % 500], d);
    if (i % 10 == 0 && !derived.empty()) edge(derived[rng() % derived.size()], d);
    derived.push_back(d);
  }
  for (int m = 0; m < 20; ++m) {
    size_t mat = add(LineageNode::Kind::kMaterialization, "bench/to-db-" + std::to_string(m));
    for (int b = 0; b < 25; ++b) edge(b % 2 ? derived[rng() % 500] : captured[rng() % 500], mat);
  }
  return g;
}

TEST_CASE("docs: the layout of a generated catalog of 500 + 500 collections has no overlap") {
  LineageGraph g = GeneratedGraph();
  LineageLayout l = site::LayOut(g);
  CheckLayout(g, l);
  std::string svg = site::RenderSvg(g, l, "");
  CHECK(svg.find(">bench/orders-with-a-rather…</text>") != std::string::npos);  // 27 characters
  CHECK(svg.find("<title>bench/orders-with-a-rather-long-name-499</title>") != std::string::npos);
}

TEST_CASE("docs: catalog values are escaped in every page; the search data cannot end its script") {
  TempDir dir;
  WriteFile(dir.path + "/flow.yaml", R"(
collections:
  - name: t/evil
    key: [/id]
    schema:
      title: "</script><script>window.pwned = 1</script>"
      description: "<script>alert('x')</script> & <b>bold</b>"
      type: object
      properties:
        id: {type: integer, description: "<img src=x onerror=alert(1)>"}
        note: {type: [string, "null"]}
      required: [id]
    projections:
      "<i>odd</i>": /note
  - name: t/derived
    key: [/id]
    schema: {type: object, properties: {id: {type: integer}}, required: [id]}
    derivation:
      transform:
        "fromEvil<script>":
          source: {name: t/evil}
          publish: {sqlite: "SELECT $id AS id -- </pre><script>x</script>"}
tests:
  "<script>test</script>":
    - ingest: {collection: t/evil, documents: [{id: 1}]}
    - verify: {collection: t/derived, documents: [{id: 1}]}
)");
  auto c = Check(dir.path + "/flow.yaml");
  auto files = site::RenderSite(*c->loaded, c->built, {});
  std::map<std::string, std::string> by_path;
  for (auto& f : files) by_path[f.path] = f.content;
  REQUIRE(by_path.count("index.html"));
  REQUIRE(by_path.count("collections/t~evil.html"));
  REQUIRE(by_path.count("collections/t~derived.html"));
  REQUIRE(by_path.count("lineage.html"));
  for (const auto& page : by_path) {
    const std::string& path = page.first;  // not a structured binding: see journal_test.cc
    const std::string& html = page.second;
    CAPTURE(path);
    CHECK(html.find("<script>alert") == std::string::npos);
    CHECK(html.find("<script>window") == std::string::npos);
    CHECK(html.find("<script>x") == std::string::npos);
    CHECK(html.find("<script>test") == std::string::npos);
    CHECK(html.find("<img") == std::string::npos);
    CHECK(html.find("<i>odd") == std::string::npos);
    CHECK(html.find("<b>bold") == std::string::npos);
  }
  const std::string& page = by_path["collections/t~evil.html"];
  CHECK(page.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;") != std::string::npos);
  CHECK(page.find("<code>&lt;i&gt;odd&lt;/i&gt;</code>") != std::string::npos);
  // In the index, the only script elements are the search data and search.js.
  const std::string& index = by_path["index.html"];
  size_t scripts = 0;
  for (size_t at = index.find("<script"); at != std::string::npos; at = index.find("<script", at + 1)) ++scripts;
  CHECK(scripts == 2);
  CHECK(index.find("\\u003c/script\\u003e\\u003cscript\\u003ewindow.pwned") != std::string::npos);
}

TEST_CASE("docs: the output directory: created, refused when foreign, stale pages removed") {
  TempDir dir;
  std::string out = dir.path + "/site/nested";
  std::vector<site::SiteFile> first = {{"index.html", "1"}, {"collections/a.html", "a"}, {"collections/b.html", "b"}};
  auto report = Must(site::WriteSite(first, out));
  CHECK(report.pages == 3);
  CHECK(report.files == 3);
  CHECK(std::filesystem::exists(out + "/" + site::kMarkerFile));
  WriteFile(out + "/mine.txt", "not flowctl's");
  WriteFile(out + "/collections/notes.txt", "not flowctl's either");
  std::vector<site::SiteFile> second = {{"index.html", "2"}, {"collections/a.html", "a2"}};
  report = Must(site::WriteSite(second, out));
  CHECK(report.removed == 1);
  CHECK_FALSE(std::filesystem::exists(out + "/collections/b.html"));
  CHECK(std::filesystem::exists(out + "/mine.txt"));
  CHECK(std::filesystem::exists(out + "/collections/notes.txt"));
  CHECK(Must(ReadFile(out + "/index.html")) == "2");
  CHECK_FALSE(std::filesystem::exists(out + "/index.html.tmp"));

  // A marker cannot make it delete outside the directory.
  WriteFile(dir.path + "/precious", "keep");
  WriteFile(out + "/" + site::kMarkerFile, "header\n../../precious\n/etc/passwd\nindex.html\n");
  CHECK(Must(site::WriteSite(second, out)).removed == 0);
  CHECK(std::filesystem::exists(dir.path + "/precious"));

  std::string foreign = dir.path + "/foreign";
  WriteFile(foreign + "/report.pdf", "x");
  auto refused = site::WriteSite(second, foreign);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find(foreign + " is not empty and has no .flowctl-docs file") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(foreign + "/index.html"));

  WriteFile(dir.path + "/file", "x");
  auto not_dir = site::WriteSite(second, dir.path + "/file");
  REQUIRE_FALSE(not_dir.ok());
  CHECK(not_dir.error().message.find("is not a directory") != std::string::npos);
}

}  // namespace
}  // namespace flow
