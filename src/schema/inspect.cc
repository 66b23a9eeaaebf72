#include "schema/inspect.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <fmt/format.h>

#include "base/url.h"

namespace flow::schema {
namespace {

class Inspector {
 public:
  Inspector(const Index& index, const std::shared_ptr<Shape>& root_shape, std::string scope,
            Diagnostics* diags)
      : index_(index), root_shape_(root_shape), scope_(std::move(scope)), diags_(diags) {}

  // `ptr` is the document location (nullopt tokens are wildcards, e.g. array items).
  // `here` is the strategy in effect at this location in this branch ("" when none yet);
  // `parent` is the strategy in effect at the enclosing location.
  void Walk(const SchemaLoc& loc, const std::vector<std::string>& ptr, bool wildcard,
            std::string here, const std::string& parent, int depth) {
    const doc::Node& n = *loc.node;
    if (!n.is_object() || depth > 256) return;
    if (const doc::Node::Member* r = n.FindMember("reduce"); r && r->value.is_object()) {
      const doc::Node* s = r->value.Find("strategy");
      if (s && s->is_string()) {
        Check(loc, *r, s->as_string(), ptr, wildcard, parent);
        here = s->as_string();
      }
    }
    const std::string inner = BaseInside(n, loc.base);  // n's `$id` re-bases what it holds
    auto same_location = [&](const doc::Node& c, const std::string& suffix) {
      Walk(SchemaLoc{&c, loc.resource, loc.pointer + suffix, inner}, ptr, wildcard, here, parent,
           depth + 1);
    };
    if (const doc::Node* ref = n.Find("$ref"); ref && ref->is_string()) {
      std::string why;
      SchemaLoc target = index_.Resolve(ref->as_string(), inner, &why);
      std::string id = target.Id() + "@" + JoinPtr(ptr);
      if (target.node && std::find(stack_.begin(), stack_.end(), id) == stack_.end() &&
          stack_.size() < 64) {
        stack_.push_back(id);
        Walk(target, ptr, wildcard, here, parent, depth + 1);
        stack_.pop_back();
      }
    }
    for (const char* kw : {"allOf", "anyOf", "oneOf"}) {
      if (const doc::Node* a = n.Find(kw); a && a->is_array()) {
        for (size_t i = 0; i < a->items().size(); ++i) {
          same_location(a->items()[i], fmt::format("/{}/{}", kw, i));
        }
      }
    }
    for (const char* kw : {"then", "else"}) {
      if (const doc::Node* b = n.Find(kw)) same_location(*b, std::string("/") + kw);
    }
    // Children. Under a `set`, add/intersect/remove hold members that reduce like `merge`.
    // An add/intersect/remove location without its own reduce holds set members.
    const std::string effective = !here.empty()           ? here
                                  : parent == "set-operand" ? "set-operand"
                                                            : InferredStrategy(ptr, wildcard);
    auto child = [&](const doc::Node& c, const std::string& suffix, const std::string& token,
                     bool wild) {
      std::vector<std::string> cp = ptr;
      cp.push_back(token);
      std::string p = effective;
      if (effective == "set") p = (token == "add" || token == "intersect" || token == "remove")
                                      ? "set-operand" : "set";
      else if (effective == "set-operand") p = "merge";
      Walk(SchemaLoc{&c, loc.resource, loc.pointer + suffix, inner}, cp, wildcard || wild, "", p,
           depth + 1);
    };
    if (const doc::Node* props = n.Find("properties"); props && props->is_object()) {
      for (const auto& m : props->members()) {
        child(m.value, "/properties/" + doc::Pointer::Escape(m.key), m.key, false);
      }
    }
    if (const doc::Node* pp = n.Find("patternProperties"); pp && pp->is_object()) {
      for (const auto& m : pp->members()) {
        child(m.value, "/patternProperties/" + doc::Pointer::Escape(m.key), "*", true);
      }
    }
    if (const doc::Node* ap = n.Find("additionalProperties")) {
      child(*ap, "/additionalProperties", "*", true);
    }
    if (const doc::Node* items = n.Find("items")) {
      if (items->is_array()) {
        for (size_t i = 0; i < items->items().size(); ++i) {
          child(items->items()[i], "/items/" + std::to_string(i), std::to_string(i), false);
        }
      } else {
        child(*items, "/items", "*", true);
      }
    }
    if (const doc::Node* ai = n.Find("additionalItems")) child(*ai, "/additionalItems", "*", true);
  }

 private:
  static std::string JoinPtr(const std::vector<std::string>& ptr) {
    std::string s;
    for (const auto& t : ptr) s += "/" + doc::Pointer::Escape(t);
    return s.empty() ? "/" : s;
  }

  // The strategy the whole schema gives a location, when this branch declares none.
  std::string InferredStrategy(const std::vector<std::string>& ptr, bool wildcard) {
    if (wildcard) return "";
    doc::Pointer p;
    for (const auto& t : ptr) p = p.Push(t);
    auto at = ShapeAt(root_shape_, p);
    if (!at.shape) return "";
    if (at.shape->reduce_conflict) return "(varies)";
    return at.shape->reduce ? at.shape->reduce->strategy : "";
  }

  // Reports once per keyword and message: a recursive schema reaches the same `reduce`
  // at every depth of its unrolling, and one mistake should give one error (at the first
  // document location found).
  void Error(const SchemaLoc& loc, Mark mark, const std::vector<std::string>& ptr,
             std::string msg, std::string hint = {}) {
    if (!reported_.emplace(loc.resource, mark.line, mark.col, msg).second) return;
    diags_->Error(DisplayName(loc.resource), mark, std::move(msg),
                  fmt::format("{}, document location {}", scope_, JoinPtr(ptr)), std::move(hint));
  }

  void Check(const SchemaLoc& loc, const doc::Node::Member& reduce, const std::string& strategy,
             const std::vector<std::string>& ptr, bool wildcard, const std::string& parent) {
    if (!ptr.empty()) {
      bool ok = parent == "merge" || parent == "set-operand" || parent == "(varies)" ||
                ((parent == "minimize" || parent == "maximize") && ParentHasKey(ptr, wildcard));
      if (!ok) {
        std::vector<std::string> pp(ptr.begin(), ptr.end() - 1);
        Error(loc, reduce.key_mark, ptr,
              fmt::format("`reduce: {{strategy: {}}}` has no effect: its parent location {} {}",
                          strategy, JoinPtr(pp),
                          parent.empty() ? "has no reduce annotation (lastWriteWins)"
                                         : fmt::format("reduces by `{}`", parent)),
              fmt::format("add `reduce: {{strategy: merge}}` to the schema of {} and every "
                          "location enclosing it",
                          JoinPtr(pp)));
      }
    }
    // Types: what this branch allows, narrowed by what the whole schema allows here.
    auto own = InferShape(index_, loc, nullptr);
    uint8_t types = own->types;
    if (!wildcard) {
      doc::Pointer p;
      for (const auto& t : ptr) p = p.Push(t);
      if (auto at = ShapeAt(root_shape_, p); at.shape) types &= at.shape->types;
    }
    auto bad_type = [&](const char* allowed) {
      Error(loc, reduce.key_mark, ptr,
            fmt::format("strategy `{}` needs a location of type {}, but it may be {}", strategy,
                        allowed, TypesToString(types)),
            strategy == "sum"     ? "declare `type: number` or `type: integer` at this location"
            : strategy == "merge" ? "declare `type: object` (or `type: array`) at this location"
                                  : "declare `type: object` at this location");
    };
    if (strategy == "sum" && (types == 0 || (types & ~(kInteger | kNumber)))) {
      bad_type("integer or number");
    } else if (strategy == "merge" && (types == 0 || (types & ~(kObject | kArray)))) {
      bad_type("object or array");
    } else if (strategy == "set") {
      if (types != kObject) {
        bad_type("object");
      } else {
        for (const auto& p : own->properties) {
          if (p.name != "add" && p.name != "intersect" && p.name != "remove") {
            Error(loc, reduce.key_mark, ptr,
                  fmt::format("a `set` location may only declare properties `add`, `intersect` "
                              "and `remove`, not `{}`",
                              p.name),
                  "put the members under `add`");
          }
        }
      }
    }
  }

  // Whether the enclosing location's minimize/maximize compares by `key` (then equal keys
  // deep-merge, so children may reduce).
  bool ParentHasKey(const std::vector<std::string>& ptr, bool wildcard) {
    if (wildcard) return true;
    doc::Pointer p;
    for (size_t i = 0; i + 1 < ptr.size(); ++i) p = p.Push(ptr[i]);
    auto at = ShapeAt(root_shape_, p);
    return at.shape && at.shape->reduce && !at.shape->reduce->key.empty();
  }

  const Index& index_;
  std::shared_ptr<Shape> root_shape_;
  std::string scope_;
  Diagnostics* diags_;
  std::set<std::tuple<std::string, uint32_t, uint32_t, std::string>> reported_;
  std::vector<std::string> stack_;
};

}  // namespace

void InspectReductions(const Index& index, const SchemaLoc& root,
                       const std::shared_ptr<Shape>& root_shape, const std::string& scope,
                       Diagnostics* diags) {
  Inspector in(index, root_shape, scope, diags);
  in.Walk(root, {}, false, "", "", 0);
}

}  // namespace flow::schema
