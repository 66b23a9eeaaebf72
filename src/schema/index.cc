#include "schema/index.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <tuple>

#include "base/strings.h"
#include "base/url.h"

namespace flow::schema {
namespace {

// A resource as messages name it: a file, or an inline schema by its place in its file.
std::string ResourceName(const std::string& url) {
  std::string file, ptr;
  if (SplitInlineSchemaUrl(url, &file, &ptr)) {
    return fmt::format("the inline schema at {} of `{}`", ptr.empty() ? "/" : ptr,
                       DisplayName(file));
  }
  return fmt::format("`{}`", DisplayName(url));
}

}  // namespace

bool IsInPlaceApplicator(std::string_view k) {
  return k == "allOf" || k == "anyOf" || k == "oneOf" || k == "not" || k == "if" || k == "then" ||
         k == "else" || k == "dependentSchemas" || k == "dependencies";
}

SubschemaKind SubschemaKeyword(const std::string& k, const doc::Node& v) {
  if (k == "additionalProperties" || k == "additionalItems" || k == "not" || k == "if" ||
      k == "then" || k == "else" || k == "contains" || k == "propertyNames" ||
      k == "unevaluatedItems" || k == "unevaluatedProperties" || (k == "items" && !v.is_array())) {
    return SubschemaKind::kSingle;
  }
  if ((k == "properties" || k == "patternProperties" || k == "$defs" || k == "definitions" ||
       k == "dependentSchemas") && v.is_object()) {
    return SubschemaKind::kMap;
  }
  if ((k == "allOf" || k == "anyOf" || k == "oneOf" || k == "prefixItems" || k == "items") &&
      v.is_array()) {
    return SubschemaKind::kList;
  }
  return SubschemaKind::kNone;
}

std::string InlineSchemaUrl(std::string_view file_url, std::string_view pointer) {
  std::string out(file_url);
  out += "?ptr=";
  for (char ch : pointer) {
    auto c = static_cast<unsigned char>(ch);
    // What RFC 3986 allows in a query passes (`~` escapes of the pointer included); `%`,
    // `#`, spaces, controls and non-ASCII bytes are percent-encoded.
    if (std::isalnum(c) ||
        std::string_view("-._~!$&'()*+,;=:@/?").find(ch) != std::string_view::npos) {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

bool SplitInlineSchemaUrl(std::string_view url, std::string* file, std::string* pointer) {
  size_t q = url.find('?');
  if (q == std::string_view::npos || url.substr(q + 1, 4) != "ptr=") return false;
  std::string ptr = PercentDecode(url.substr(q + 5));
  if (!ptr.empty() && ptr[0] != '/') return false;
  *file = std::string(url.substr(0, q));
  *pointer = std::move(ptr);
  return true;
}

std::string BaseInside(const doc::Node& n, const std::string& base) {
  const doc::Node* id = n.is_object() ? n.Find("$id") : nullptr;
  if (!id || !id->is_string() || id->as_string().empty() || id->as_string()[0] == '#') return base;
  std::string res, frag;
  SplitFragment(flow::ResolveUrl(base, id->as_string()), &res, &frag);
  return res;
}

void Index::AddResource(const std::string& url, const doc::Node* root) {
  resources_[url] = root;
}

const doc::Node* Index::Resource(const std::string& url) const {
  auto it = resources_.find(url);
  return it == resources_.end() ? nullptr : it->second;
}

void Index::IndexInlineSchema(const SchemaLoc& loc, std::vector<MissingResource>* missing) {
  if (!loc.node) return;
  ids_.emplace(loc.base, Entry{loc.node, loc.resource, loc.pointer, loc.base});
  IndexSchema(loc, missing);
}

bool Index::Known(const std::string& url) const {
  if (resources_.count(url) || ids_.count(url)) return true;
  std::string file, ptr;
  return SplitInlineSchemaUrl(url, &file, &ptr) && resources_.count(file);
}

void Index::IndexSchema(const SchemaLoc& loc, std::vector<MissingResource>* missing) {
  if (!loc.node || indexed_.count(loc.node)) return;
  Walk(*loc.node, loc.resource, loc.pointer, loc.base, missing, 0);
}

void Index::Walk(const doc::Node& n, const std::string& resource, const std::string& pointer,
                 std::string base, std::vector<MissingResource>* missing, int depth) {
  if (!n.is_object() || depth > 512) return;
  if (!indexed_.emplace(&n, true).second) return;
  const std::string enclosing = base;
  if (const doc::Node* id = n.Find("$id"); id && id->is_string()) {
    std::string abs = flow::ResolveUrl(base, id->as_string());
    std::string res, frag;
    SplitFragment(abs, &res, &frag);
    if (!frag.empty() && res == base.substr(0, base.find('#'))) {
      // Draft-7 plain-name fragment: `$id: "#name"` is an anchor.
      anchors_.emplace(res + "#" + frag, Entry{&n, resource, pointer, enclosing});
    } else {
      base = res;
      ids_.emplace(res, Entry{&n, resource, pointer, enclosing});
    }
  }
  if (const doc::Node* a = n.Find("$anchor"); a && a->is_string()) {
    std::string res, frag;
    SplitFragment(base, &res, &frag);
    anchors_.emplace(res + "#" + a->as_string(), Entry{&n, resource, pointer, enclosing});
  }
  if (const doc::Node* r = n.Find("$ref"); r && r->is_string()) {
    refs_.push_back(RefSite{r, resource, pointer, base});
    std::string abs = flow::ResolveUrl(base, r->as_string());
    std::string res, frag;
    SplitFragment(abs, &res, &frag);
    if (!res.empty() && !Known(res) && res != base.substr(0, base.find('#'))) {
      // An inline schema of a source not loaded yet: load the source.
      std::string file, ptr;
      if (SplitInlineSchemaUrl(res, &file, &ptr)) res = file;
      missing->push_back(MissingResource{res, r, resource});
    }
  }
  ForEachSubschema(n, [&](const doc::Node& child, const std::string& suffix) {
    Walk(child, resource, pointer + suffix, base, missing, depth + 1);
  });
}

SchemaLoc Index::ResolvePointer(const SchemaLoc& root, std::string_view fragment,
                                std::string* why) const {
  std::string perr;
  auto ptr = doc::Pointer::Parse(fragment, &perr);
  if (!ptr) {
    *why = fmt::format("fragment `#{}` is not a valid JSON pointer: {}", fragment, perr);
    return {};
  }
  SchemaLoc loc = root;
  for (const auto& t : ptr->tokens()) {
    loc.base = BaseInside(*loc.node, loc.base);
    const doc::Node* next = nullptr;
    if (loc.node->is_object()) {
      next = loc.node->Find(t);
    } else if (loc.node->is_array()) {
      auto i = doc::Pointer::AsIndex(t);
      if (i && *i < loc.node->items().size()) next = &loc.node->items()[*i];
    }
    if (!next) {
      std::string file, inline_ptr;
      if (SplitInlineSchemaUrl(root.base, &file, &inline_ptr) && file == root.resource &&
          inline_ptr == root.pointer) {  // within an inline schema, pointers are its own
        *why = fmt::format("{} has no location `{}`", ResourceName(root.base), ptr->ToString());
      } else {
        *why = fmt::format("`{}` has no location `{}`", DisplayName(root.resource),
                           root.pointer + ptr->ToString());
      }
      return {};
    }
    loc.node = next;
    loc.pointer += "/" + doc::Pointer::Escape(t);
  }
  return loc;
}

SchemaLoc Index::Root(const std::string& res) const {
  if (auto it = ids_.find(res); it != ids_.end()) {
    return SchemaLoc{it->second.node, it->second.resource, it->second.pointer, it->second.base};
  }
  if (auto r = resources_.find(res); r != resources_.end()) {
    return SchemaLoc{r->second, res, "", res};
  }
  // `file?ptr=/p` names the location /p of a loaded source as a resource of its own (inline
  // schemas of the catalog were registered under such URLs; this serves any other place).
  std::string file, ptr, why;
  if (SplitInlineSchemaUrl(res, &file, &ptr)) {
    if (auto r = resources_.find(file); r != resources_.end()) {
      SchemaLoc at = ResolvePointer(SchemaLoc{r->second, file, "", file}, ptr, &why);
      at.base = res;
      return at;
    }
  }
  return {};
}

SchemaLoc Index::Resolve(std::string_view ref, std::string_view base, std::string* why) const {
  std::string abs = base.empty() ? std::string(ref) : flow::ResolveUrl(base, ref);
  std::string res, frag;
  SplitFragment(abs, &res, &frag);
  SchemaLoc root = Root(res);
  if (!root.node) {
    std::string file, ptr;
    if (SplitInlineSchemaUrl(res, &file, &ptr) && resources_.count(file)) {
      *why = fmt::format("`{}` has no location `{}`", DisplayName(file), ptr);
    } else {
      *why = fmt::format("`{}` was not loaded", res);
    }
    return {};
  }
  if (frag.empty()) return root;
  if (frag[0] == '/') return ResolvePointer(root, frag, why);
  if (auto it = anchors_.find(res + "#" + frag); it != anchors_.end()) {
    return SchemaLoc{it->second.node, it->second.resource, it->second.pointer, it->second.base};
  }
  *why = fmt::format("no `$anchor: {}` in {}", frag, ResourceName(res));
  std::vector<std::string> names;
  for (const auto& [k, _] : anchors_) {
    if (k.rfind(res + "#", 0) == 0) names.push_back(k.substr(res.size() + 1));
  }
  // Anchors are case-sensitive; a case-only difference is the likeliest typo.
  auto lower = [](std::string x) {
    for (auto& c : x) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return x;
  };
  std::optional<std::string> guess;
  for (const auto& n : names) {
    if (lower(n) == lower(frag)) guess = n;
  }
  if (!guess) guess = ClosestMatch(frag, names);
  if (guess) *why += fmt::format(" (did you mean `#{}`?)", *guess);
  return {};
}

void Index::CheckRefs(Diagnostics* diags) const {
  for (const auto& site : refs_) {
    std::string why;
    std::string res, frag;
    SplitFragment(flow::ResolveUrl(site.base, site.ref->as_string()), &res, &frag);
    if (IsHttpUrl(site.resource) && !IsHttpUrl(res)) {  // SPEC 1.1; never read (loader.cc)
      diags->Error(DisplayName(site.resource), site.ref->mark(),
                   fmt::format("$ref `{}` names a local file, `{}`: a source fetched over HTTP "
                               "may refer only to remote (http:// or https://) sources, never "
                               "to local files",
                               site.ref->as_string(), DisplayName(res)),
                   fmt::format("schema at {}", site.pointer.empty() ? "/" : site.pointer),
                   "serve it over HTTP as well, or make the catalog that refers to it local");
      continue;
    }
    SchemaLoc loc = Resolve(site.ref->as_string(), site.base, &why);
    if (loc.node) continue;
    if (!Known(res)) continue;  // unreadable: reported on load
    std::string hint;
    const std::string& r = site.ref->as_string();
    std::string file, inline_ptr;
    if (!r.empty() && r[0] == '#' && r.size() > 1 && r[1] != '/' &&
        r.find('/') != std::string::npos) {
      hint = "JSON pointers start with / (write `#/" + r.substr(1) + "`)";
    } else if (!r.empty() && r[0] == '#' && SplitInlineSchemaUrl(res, &file, &inline_ptr) &&
               PercentDecode(r.substr(1)).rfind(inline_ptr + "/", 0) == 0) {
      // A pointer from the top of the file, as if `#` were the whole file, not the schema.
      hint = fmt::format("`#` is the inline schema at {} itself, not the whole file (write `#{}`)",
                         inline_ptr, PercentDecode(r.substr(1)).substr(inline_ptr.size()));
    }
    diags->Error(DisplayName(site.resource), site.ref->mark(),
                 fmt::format("$ref `{}` resolves to nothing: {}", r, why),
                 fmt::format("schema at {}", site.pointer.empty() ? "/" : site.pointer), hint);
  }
}

}  // namespace flow::schema

namespace flow::schema {
namespace {

// An edge of the graph of schemas applying to the same instance.
struct InPlaceEdge {
  SchemaLoc to;
  const doc::Node* ref = nullptr;  // the `$ref` string, when the edge is a `$ref`
  SchemaLoc from;                  // the schema holding the edge
};

}  // namespace

void Index::CheckRefCycles(Diagnostics* diags) const {
  // Depth-first search, iterative (chains of `$ref`s may be long), over schemas identified
  // by node and base (an inline schema's node is also reachable through its file's URL,
  // where its `#...` references mean something else). Every cycle contains a `$ref`, so
  // starting from every `$ref`'s target reaches them all; every strongly connected region
  // with a cycle yields at least one back edge.
  auto edges_of = [this](const SchemaLoc& loc) {
    std::vector<InPlaceEdge> out;
    const doc::Node& n = *loc.node;
    if (!n.is_object()) return out;
    std::string base = BaseInside(n, loc.base);
    auto add = [&](const doc::Node& child, const std::string& suffix) {
      if (!child.is_object()) return;
      out.push_back({SchemaLoc{&child, loc.resource, loc.pointer + suffix, base}, nullptr, loc});
    };
    for (const auto& m : n.members()) {
      const std::string& k = m.key;
      if (k == "$ref" && m.value.is_string()) {
        std::string why;
        SchemaLoc to = Resolve(m.value.as_string(), base, &why);
        if (to.node) out.push_back({to, &m.value, loc});
      } else if (IsInPlaceApplicator(k)) {
        std::string at = "/" + doc::Pointer::Escape(k);
        if (m.value.is_array()) {
          for (size_t i = 0; i < m.value.items().size(); ++i) {
            add(m.value.items()[i], at + "/" + std::to_string(i));
          }
        } else if (k == "dependentSchemas" || k == "dependencies") {
          if (m.value.is_object()) {
            for (const auto& p : m.value.members())
              add(p.value, at + "/" + doc::Pointer::Escape(p.key));
          }
        } else {
          add(m.value, at);
        }
      }
    }
    return out;
  };
  using Key = std::pair<const doc::Node*, std::string>;
  auto key = [](const SchemaLoc& l) { return Key{l.node, l.base}; };
  std::map<Key, bool> done;  // false while on the stack
  std::set<const doc::Node*> reported;
  struct Frame {
    SchemaLoc loc;
    std::vector<InPlaceEdge> edges;
    size_t next = 0;
    InPlaceEdge in;  // how the search got here
  };
  auto report = [&](const std::vector<Frame>& stack, size_t from, const InPlaceEdge& back) {
    // The cycle's edges, in order, from stack[from] around to it again.
    std::vector<const InPlaceEdge*> cycle;
    for (size_t i = from + 1; i < stack.size(); ++i) cycle.push_back(&stack[i].in);
    cycle.push_back(&back);
    // Report at the `$ref` of the cycle that comes first in its file, so the choice does
    // not depend on where the search started.
    size_t at = cycle.size();
    auto order = [](const InPlaceEdge& e) {
      return std::make_tuple(DisplayName(e.from.resource), e.ref->mark().line, e.ref->mark().col);
    };
    for (size_t i = 0; i < cycle.size(); ++i) {
      if (cycle[i]->ref && (at == cycle.size() || order(*cycle[i]) < order(*cycle[at]))) at = i;
    }
    if (at == cycle.size() || !reported.insert(cycle[at]->ref).second) return;
    const InPlaceEdge& e = *cycle[at];
    auto name = [&](const SchemaLoc& l) {  // a place in the file of the error, or elsewhere
      if (l.resource != e.from.resource) return DisplayName(l.resource) + "#" + l.pointer;
      return l.pointer.empty() ? std::string("/") : l.pointer;
    };
    std::string path = name(e.from);
    for (size_t i = 0; i < cycle.size(); ++i) {
      path += " → " + name(cycle[(at + i) % cycle.size()]->to);
    }
    diags->Error(
        DisplayName(e.from.resource), e.ref->mark(),
        fmt::format("$ref `{}` is a cycle that consumes no input: {}", e.ref->as_string(), path),
        fmt::format("schema at {}", e.from.pointer.empty() ? "/" : e.from.pointer),
        "validating a document would never end; a recursive schema must descend "
        "into the document (through `properties`, `items`, ...) before it refers back");
  };
  for (const auto& site : refs_) {
    std::string why;
    SchemaLoc start = Resolve(site.ref->as_string(), site.base, &why);
    if (!start.node || done.count(key(start))) continue;
    std::vector<Frame> stack;
    done[key(start)] = false;
    stack.push_back(Frame{start, edges_of(start), 0, {}});
    while (!stack.empty()) {
      Frame& top = stack.back();
      if (top.next == top.edges.size()) {
        done[key(top.loc)] = true;
        stack.pop_back();
        continue;
      }
      InPlaceEdge e = top.edges[top.next++];
      auto it = done.find(key(e.to));
      if (it == done.end()) {
        done[key(e.to)] = false;
        std::vector<InPlaceEdge> next = edges_of(e.to);
        stack.push_back(Frame{e.to, std::move(next), 0, e});
      } else if (!it->second) {  // back to a schema on the stack: a cycle
        size_t from = 0;
        while (key(stack[from].loc) != key(e.to)) ++from;
        report(stack, from, e);
      }
    }
  }
}

}  // namespace flow::schema
