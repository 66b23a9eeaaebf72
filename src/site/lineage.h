// The lineage graph of a catalog (captures -> collections -> derived collections ->
// materializations), its layered layout and its SVG drawing. The layout is a Sugiyama-style
// layering: fixed columns by kind and longest path, dummy points where an edge spans several
// columns (so edges pass between nodes, never through them), barycenter ordering to reduce
// crossings, and vertical placement that keeps every node's slot disjoint from its
// neighbours'. Pure functions over values; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace flow::catalog {
struct Catalog;
}  // namespace flow::catalog

namespace flow::site {

struct LineageNode {
  enum class Kind { kCapture, kCollection, kDerivation, kMaterialization };
  Kind kind = Kind::kCollection;
  std::string name;    // full name (shown ellipsized; the tooltip has it whole)
  std::string detail;  // a second tooltip line, e.g. "fileDrop incoming/rides (csv)"
  std::string href;    // link relative to the site root; empty: none
  bool focus = false;  // the subject of a neighbourhood graph
};

struct LineageEdge {
  size_t from = 0, to = 0;  // node indexes
  std::string label;        // transforms or tables the edge stands for
};

struct LineageGraph {
  std::vector<LineageNode> nodes;
  std::vector<LineageEdge> edges;             // at most one per (from, to)
  std::vector<std::vector<size_t>> in, out;   // edge indexes by node
};

// The whole catalog's lineage: one node per capture, collection and materialization (in
// catalog order, captures first), one edge per capture binding, per (source, derived
// collection) pair of transforms and per (collection, materialization) pair of bindings.
LineageGraph BuildLineage(const catalog::Catalog& catalog);

// `node` with the nodes it reads from and the nodes that read it, and the edges between
// them and `node` (marked as the focus).
LineageGraph Neighbourhood(const LineageGraph& g, size_t node);

struct Box {
  double x = 0, y = 0, w = 0, h = 0;
};
struct Point {
  double x = 0, y = 0;
};

struct LineageLayout {
  std::vector<Box> nodes;                  // by node index
  std::vector<std::vector<Point>> edges;   // by edge index: from the source's right side,
                                           // through the gaps of the columns between, to the
                                           // target's left side
  std::vector<int> layer;                  // column of each node
  double width = 0, height = 0;
  size_t crossings = 0;                    // edge crossings between adjacent columns
};

// Node sizes (pixels); labels longer than kLabelChars are ellipsized.
constexpr double kNodeWidth = 220, kNodeHeight = 30;
constexpr size_t kLabelChars = 27;

LineageLayout LayOut(const LineageGraph& g);

// The graph as an <svg> element. Links are `link_prefix` + node href (e.g. "../" from a
// collection page). Every name is escaped; edges carry data-from/data-to attributes with
// the node names, nodes data-name and data-kind.
std::string RenderSvg(const LineageGraph& g, const LineageLayout& layout, std::string_view link_prefix);

}  // namespace flow::site
