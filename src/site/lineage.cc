#include "site/lineage.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <unordered_map>

#include <fmt/format.h>

#include "catalog/spec.h"
#include "site/html.h"

namespace flow::site {

namespace {

using Kind = LineageNode::Kind;

size_t AddNode(LineageGraph* g, Kind kind, std::string name, std::string detail, std::string href) {
  g->nodes.push_back({kind, std::move(name), std::move(detail), std::move(href), false});
  g->in.emplace_back();
  g->out.emplace_back();
  return g->nodes.size() - 1;
}

// Adds the edge, or appends `label` to the existing edge between the same nodes.
class EdgeAdder {
 public:
  explicit EdgeAdder(LineageGraph* g) : g_(g) {}
  void Add(size_t from, size_t to, const std::string& label) {
    auto [it, fresh] = index_.try_emplace({from, to}, g_->edges.size());
    if (!fresh) {
      std::string& l = g_->edges[it->second].label;
      if (!label.empty()) l += (l.empty() ? "" : ", ") + label;
      return;
    }
    g_->edges.push_back({from, to, label});
    g_->out[from].push_back(it->second);
    g_->in[to].push_back(it->second);
  }

 private:
  LineageGraph* g_;
  std::map<std::pair<size_t, size_t>, size_t> index_;
};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kCapture: return "capture";
    case Kind::kCollection: return "collection";
    case Kind::kDerivation: return "derivation";
    case Kind::kMaterialization: return "materialization";
  }
  return "";
}

// Gaps between columns and between the slots of one column (pixels).
constexpr double kColumnGap = 70, kNodeGap = 14, kDummyGap = 8, kMargin = 12;

// Positions p minimizing sum (p_i - want_i)^2 subject to p_{i+1} - p_i >= sep_i: with
// q_i = p_i - (sep_0 + ... + sep_{i-1}) this is an isotonic regression of the shifted
// targets, solved by pooling adjacent violators in O(n).
std::vector<double> PlaceInOrder(const std::vector<double>& want, const std::vector<double>& sep) {
  size_t n = want.size();
  std::vector<double> offset(n, 0);
  for (size_t i = 1; i < n; ++i) offset[i] = offset[i - 1] + sep[i - 1];
  struct Block {
    double sum;
    size_t count;
  };
  std::vector<Block> blocks;
  for (size_t i = 0; i < n; ++i) {
    blocks.push_back({want[i] - offset[i], 1});
    while (blocks.size() >= 2) {
      Block& b = blocks[blocks.size() - 1];
      Block& a = blocks[blocks.size() - 2];
      if (a.sum / a.count <= b.sum / b.count) break;
      a.sum += b.sum;
      a.count += b.count;
      blocks.pop_back();
    }
  }
  std::vector<double> out(n);
  size_t i = 0;
  for (const Block& b : blocks) {
    for (size_t k = 0; k < b.count; ++k, ++i) out[i] = b.sum / b.count + offset[i];
  }
  return out;
}

// Crossings between two adjacent columns: edges as (upper position, lower position) pairs;
// counts pairs whose order differs (inversions, with a Fenwick tree).
size_t CountCrossings(std::vector<std::pair<int, int>> edges, size_t lower_size) {
  std::sort(edges.begin(), edges.end());
  std::vector<size_t> tree(lower_size + 1, 0);
  size_t seen = 0, crossings = 0;
  for (const auto& [_, lower] : edges) {
    size_t not_greater = 0;
    for (size_t i = lower + 1; i > 0; i -= i & -i) not_greater += tree[i];
    crossings += seen - not_greater;
    for (size_t i = lower + 1; i <= lower_size; i += i & -i) ++tree[i];
    ++seen;
  }
  return crossings;
}

// The columns of a layout (LayOut's step 1): captures first; collections one to the right of
// everything they read (and captured ones all in one column); materializations in the last
// column. Sets each node's column in `layer`; returns the number of columns.
int AssignColumns(const LineageGraph& g, std::vector<int>* layer_out) {
  const size_t n = g.nodes.size();
  std::vector<int>& layer = *layer_out;
  bool captures = std::any_of(g.nodes.begin(), g.nodes.end(), [](const auto& v) { return v.kind == Kind::kCapture; });
  int base = captures ? 1 : 0;
  std::vector<size_t> indegree(n, 0), ready;
  for (size_t v = 0; v < n; ++v) {
    indegree[v] = g.in[v].size();
    layer[v] = g.nodes[v].kind == Kind::kCapture ? 0 : base;
    if (indegree[v] == 0) ready.push_back(v);
  }
  while (!ready.empty()) {  // Kahn's topological order; a cycle (never built) stays at `base`
    size_t v = ready.back();
    ready.pop_back();
    for (size_t e : g.out[v]) {
      size_t w = g.edges[e].to;
      if (g.nodes[w].kind != Kind::kMaterialization) layer[w] = std::max(layer[w], layer[v] + 1);
      if (--indegree[w] == 0) ready.push_back(w);
    }
  }
  int last = 0;
  for (size_t v = 0; v < n; ++v) {
    if (g.nodes[v].kind != Kind::kMaterialization) last = std::max(last, layer[v]);
  }
  bool sinks = false;
  for (size_t v = 0; v < n; ++v) {
    if (g.nodes[v].kind == Kind::kMaterialization) layer[v] = last + 1, sinks = true;
  }
  return last + 1 + (sinks ? 1 : 0);
}

// The vertices of a layout: the nodes, then a dummy per column an edge passes through.
struct Vertices {
  std::vector<int> layer;  // the column of each vertex
  std::vector<bool> dummy;
  std::vector<std::vector<size_t>> chain;     // per edge: its vertices from source to target
  std::vector<std::vector<size_t>> up, down;  // neighbours one column to the left, right
  double height(size_t v) const { return dummy[v] ? 0.0 : kNodeHeight; }
};

// LayOut's step 2: the vertices of graph `g` whose nodes are in columns `layer`.
Vertices AddDummies(const LineageGraph& g, const std::vector<int>& layer) {
  const size_t n = g.nodes.size();
  std::vector<int> vlayer(layer.begin(), layer.end());
  std::vector<bool> dummy(n, false);
  std::vector<std::vector<size_t>> chain(g.edges.size());
  std::vector<std::vector<size_t>> up(n), down(n);
  for (size_t e = 0; e < g.edges.size(); ++e) {
    size_t from = g.edges[e].from, to = g.edges[e].to;
    chain[e].push_back(from);
    for (int l = layer[from] + 1; l < layer[to]; ++l) {
      chain[e].push_back(vlayer.size());
      vlayer.push_back(l);
      dummy.push_back(true);
      up.emplace_back();
      down.emplace_back();
    }
    chain[e].push_back(to);
    for (size_t i = 1; i < chain[e].size(); ++i) {
      size_t a = chain[e][i - 1], b = chain[e][i];
      if (vlayer[b] == vlayer[a] + 1) {
        down[a].push_back(b);
        up[b].push_back(a);
      }
    }
  }
  return Vertices{std::move(vlayer), std::move(dummy), std::move(chain), std::move(up),
                  std::move(down)};
}

// LayOut's step 3, the order within columns: barycenter sweeps, keeping the order with the
// fewest crossings. Returns the vertices of each column in order, and sets `*crossings_out`.
std::vector<std::vector<size_t>> OrderColumns(const Vertices& vx, int layers,
                                              size_t* crossings_out) {
  const auto& up = vx.up;
  const auto& down = vx.down;
  const size_t vertices = vx.layer.size();
  std::vector<std::vector<size_t>> rows(layers);
  for (size_t v = 0; v < vertices; ++v) rows[vx.layer[v]].push_back(v);
  std::vector<double> pos(vertices);
  auto index_rows = [&](std::vector<std::vector<size_t>>& r) {
    for (auto& row : r) {
      for (size_t i = 0; i < row.size(); ++i) pos[row[i]] = static_cast<double>(i);
    }
  };
  index_rows(rows);
  auto crossings = [&]() {
    size_t total = 0;
    for (int l = 0; l + 1 < layers; ++l) {
      std::vector<std::pair<int, int>> pairs;
      for (size_t v : rows[l]) {
        for (size_t w : down[v]) pairs.push_back({static_cast<int>(pos[v]), static_cast<int>(pos[w])});
      }
      total += CountCrossings(std::move(pairs), rows[l + 1].size());
    }
    return total;
  };
  auto sweep = [&](int from, int to, int step, const std::vector<std::vector<size_t>>& neighbours) {
    std::vector<double> key(vertices);
    for (int l = from; l != to; l += step) {
      auto& row = rows[l];
      for (size_t v : row) {
        const auto& nb = neighbours[v];
        if (nb.empty()) {
          key[v] = pos[v];
        } else {
          double sum = 0;
          for (size_t u : nb) sum += pos[u];
          key[v] = sum / nb.size();
        }
      }
      std::stable_sort(row.begin(), row.end(), [&](size_t a, size_t b) { return key[a] < key[b]; });
      for (size_t i = 0; i < row.size(); ++i) pos[row[i]] = static_cast<double>(i);
    }
  };
  auto best = rows;
  size_t best_crossings = crossings();
  constexpr int kSweeps = 6;  // pairs of sweeps; enough to settle the example catalogs
  for (int i = 0; i < kSweeps && best_crossings > 0; ++i) {
    sweep(1, layers, 1, up);
    sweep(layers - 2, -1, -1, down);
    size_t c = crossings();
    if (c < best_crossings) best_crossings = c, best = rows;
  }
  rows = best;
  *crossings_out = best_crossings;
  return rows;
}

// LayOut's step 4, vertical centres: each column placed as close as possible to the mean of
// its neighbours' centres, in its order, with its slots apart; alternately down and up.
std::vector<double> PlaceCentres(const Vertices& vx, const std::vector<std::vector<size_t>>& rows,
                                 int layers) {
  const auto& dummy = vx.dummy;
  const size_t vertices = vx.layer.size();
  auto height = [&](size_t v) { return vx.height(v); };
  std::vector<double> centre(vertices, 0);
  for (auto& row : rows) {
    double y = 0;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) y += (height(row[i - 1]) + height(row[i])) / 2 + (dummy[row[i - 1]] || dummy[row[i]] ? kDummyGap : kNodeGap);
      centre[row[i]] = y;
    }
  }
  auto place = [&](int from, int to, int step, const std::vector<std::vector<size_t>>& neighbours) {
    for (int l = from; l != to; l += step) {
      const auto& row = rows[l];
      if (row.empty()) continue;
      std::vector<double> want(row.size()), sep(row.size() - 1);
      for (size_t i = 0; i < row.size(); ++i) {
        const auto& nb = neighbours[row[i]];
        double sum = 0;
        for (size_t u : nb) sum += centre[u];
        want[i] = nb.empty() ? centre[row[i]] : sum / nb.size();
        if (i > 0) {
          sep[i - 1] = (height(row[i - 1]) + height(row[i])) / 2 +
                       (dummy[row[i - 1]] || dummy[row[i]] ? kDummyGap : kNodeGap);
        }
      }
      auto placed = PlaceInOrder(want, sep);
      for (size_t i = 0; i < row.size(); ++i) centre[row[i]] = placed[i];
    }
  };
  constexpr int kPlacements = 4;
  for (int i = 0; i < kPlacements; ++i) {
    place(1, layers, 1, vx.up);
    place(layers - 2, -1, -1, vx.down);
  }
  return centre;
}

}  // namespace

LineageGraph BuildLineage(const catalog::Catalog& cat) {
  LineageGraph g;
  EdgeAdder edges(&g);
  std::unordered_map<std::string, size_t> collection;
  for (const auto& c : cat.captures) {
    AddNode(&g, Kind::kCapture, c.name,
            fmt::format("capture: {} {} ({})", c.kind, c.path, c.format),
            "index.html#capture-" + UrlEncode(c.name));
  }
  for (const auto& c : cat.collections) {
    bool derived = c.derivation.has_value();
    collection[c.name] =
        AddNode(&g, derived ? Kind::kDerivation : Kind::kCollection, c.name,
                derived ? "derived collection" : "captured collection", CollectionPage(c.name));
  }
  std::vector<size_t> materialization;
  for (const auto& m : cat.materializations) {
    materialization.push_back(AddNode(&g, Kind::kMaterialization, m.name,
                                      fmt::format("materialization into target {}", m.target),
                                      "index.html#materialization-" + UrlEncode(m.name)));
  }
  for (size_t i = 0; i < cat.captures.size(); ++i) {
    for (const auto& b : cat.captures[i].bindings) {
      if (auto it = collection.find(b.target); it != collection.end()) edges.Add(i, it->second, "");
    }
  }
  for (const auto& c : cat.collections) {
    if (!c.derivation) continue;
    for (const auto& t : c.derivation->transforms) {
      if (auto it = collection.find(t.source); it != collection.end()) {
        edges.Add(it->second, collection[c.name], "transform " + t.name);
      }
    }
  }
  for (size_t i = 0; i < cat.materializations.size(); ++i) {
    for (const auto& b : cat.materializations[i].bindings) {
      if (auto it = collection.find(b.source); it != collection.end()) {
        edges.Add(it->second, materialization[i], "table " + b.table);
      }
    }
  }
  return g;
}

LineageGraph Neighbourhood(const LineageGraph& g, size_t node) {
  LineageGraph out;
  EdgeAdder edges(&out);
  auto copy = [&](size_t i) {
    const LineageNode& n = g.nodes[i];
    return AddNode(&out, n.kind, n.name, n.detail, n.href);
  };
  std::vector<std::pair<size_t, size_t>> upstream, downstream;  // (original edge, new node)
  for (size_t e : g.in[node]) upstream.push_back({e, copy(g.edges[e].from)});
  size_t self = copy(node);
  out.nodes[self].focus = true;
  for (size_t e : g.out[node]) downstream.push_back({e, copy(g.edges[e].to)});
  for (const auto& [e, n] : upstream) edges.Add(n, self, g.edges[e].label);
  for (const auto& [e, n] : downstream) edges.Add(self, n, g.edges[e].label);
  return out;
}

LineageLayout LayOut(const LineageGraph& g) {
  const size_t n = g.nodes.size();
  LineageLayout out;
  out.nodes.resize(n);
  out.edges.resize(g.edges.size());
  out.layer.assign(n, 0);
  if (n == 0) return out;

  // 1. Columns; 2. vertices, with a dummy per column an edge passes through.
  int layers = AssignColumns(g, &out.layer);
  Vertices vx = AddDummies(g, out.layer);
  const size_t vertices = vx.layer.size();
  const auto& vlayer = vx.layer;
  const auto& chain = vx.chain;
  // 3. Order within columns; 4. vertical centres.
  std::vector<std::vector<size_t>> rows = OrderColumns(vx, layers, &out.crossings);
  std::vector<double> centre = PlaceCentres(vx, rows, layers);
  auto height = [&](size_t v) { return vx.height(v); };
  double top = 0, bottom = 0;
  bool first = true;
  for (size_t v = 0; v < vertices; ++v) {
    double t = centre[v] - height(v) / 2, b = centre[v] + height(v) / 2;
    top = first ? t : std::min(top, t);
    bottom = first ? b : std::max(bottom, b);
    first = false;
  }
  auto x_of = [&](size_t v) { return kMargin + vlayer[v] * (kNodeWidth + kColumnGap); };
  auto y_of = [&](size_t v) { return kMargin + centre[v] - top; };  // centre, shifted
  for (size_t v = 0; v < n; ++v) {
    out.nodes[v] = {x_of(v), y_of(v) - kNodeHeight / 2, kNodeWidth, kNodeHeight};
  }
  out.width = 2 * kMargin + layers * kNodeWidth + (layers - 1) * kColumnGap;
  out.height = 2 * kMargin + (bottom - top);

  // 5. Edge routes: out of the source's right side, along each dummy's column, into the
  // target's left side.
  for (size_t e = 0; e < g.edges.size(); ++e) {
    auto& pts = out.edges[e];
    const auto& c = chain[e];
    pts.push_back({x_of(c.front()) + kNodeWidth, y_of(c.front())});
    for (size_t i = 1; i + 1 < c.size(); ++i) {
      pts.push_back({x_of(c[i]), y_of(c[i])});
      pts.push_back({x_of(c[i]) + kNodeWidth, y_of(c[i])});
    }
    pts.push_back({x_of(c.back()), y_of(c.back())});
  }
  return out;
}

std::string RenderSvg(const LineageGraph& g, const LineageLayout& layout, std::string_view link_prefix) {
  std::string s;
  s.reserve(512 + g.nodes.size() * 400 + g.edges.size() * 300);
  s += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"lineage\" width=\"{0:.0f}\" height=\"{1:.0f}\" "
      "viewBox=\"0 0 {0:.0f} {1:.0f}\" role=\"img\" aria-label=\"lineage graph\">\n"
      "<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"8\" "
      "markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\"/></marker></defs>\n<g class=\"edges\">\n",
      layout.width, layout.height);
  for (size_t e = 0; e < g.edges.size(); ++e) {
    const auto& edge = g.edges[e];
    const auto& pts = layout.edges[e];
    s += "<path class=\"edge\" d=\"";
    s += fmt::format("M{:.1f},{:.1f}", pts[0].x, pts[0].y);
    for (size_t i = 1; i < pts.size(); ++i) {
      const Point& a = pts[i - 1];
      const Point& b = pts[i];
      if (i % 2 == 0) {  // along a column, at a dummy's height
        s += fmt::format(" L{:.1f},{:.1f}", b.x, b.y);
      } else {  // across a gap between columns
        double mid = (a.x + b.x) / 2;
        s += fmt::format(" C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}", mid, a.y, mid, b.y, b.x, b.y);
      }
    }
    s += "\" marker-end=\"url(#arrow)\" data-from=\"";
    AppendEscaped(&s, g.nodes[edge.from].name);
    s += "\" data-to=\"";
    AppendEscaped(&s, g.nodes[edge.to].name);
    s += "\"><title>";
    AppendEscaped(&s, g.nodes[edge.from].name);
    s += " → ";
    AppendEscaped(&s, g.nodes[edge.to].name);
    if (!edge.label.empty()) {
      s += " (";
      AppendEscaped(&s, edge.label);
      s += ")";
    }
    s += "</title></path>\n";
  }
  s += "</g>\n<g class=\"nodes\">\n";
  for (size_t v = 0; v < g.nodes.size(); ++v) {
    const auto& node = g.nodes[v];
    const Box& b = layout.nodes[v];
    std::string attrs = fmt::format("class=\"node kind-{}{}\" data-kind=\"{}\" data-name=\"", KindName(node.kind),
                                    node.focus ? " focus" : "", KindName(node.kind));
    AppendEscaped(&attrs, node.name);
    attrs += "\"";
    if (node.href.empty()) {
      s += "<g " + attrs + ">";
    } else {
      s += "<a " + attrs + " href=\"";
      AppendEscaped(&s, std::string(link_prefix) + node.href);
      s += "\">";
    }
    s += "<title>";
    AppendEscaped(&s, node.name);
    if (!node.detail.empty()) {
      s += "\n";
      AppendEscaped(&s, node.detail);
    }
    s += fmt::format("</title><rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.0f}\" height=\"{:.0f}\" rx=\"5\"/>"
                     "<text x=\"{:.1f}\" y=\"{:.1f}\">",
                     b.x, b.y, b.w, b.h, b.x + 8, b.y + b.h / 2 + 4);
    AppendEscaped(&s, Ellipsize(node.name, kLabelChars));
    s += node.href.empty() ? "</text></g>\n" : "</text></a>\n";
  }
  s += "</g>\n</svg>\n";
  return s;
}

}  // namespace flow::site
