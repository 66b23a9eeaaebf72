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
  // `at` is the whole schema's shape at this location and `parent_at` at the enclosing one
  // (null when unknown): what every branch together says, through `$ref`s with siblings
  // and applicators, also under array items and additionalProperties.
  void Walk(const SchemaLoc& loc, const std::vector<std::string>& ptr, bool wildcard,
            std::string here, const std::string& parent, const Shape* parent_at, const Shape* at,
            int depth) {
    const doc::Node& n = *loc.node;
    if (!n.is_object() || depth > 256) return;
    // A schema location walked before in the same context reports nothing new (a problem is
    // reported once, at the first document location found): without this, a schema that
    // recurses more than once (a tree: `left` and `right` both `$ref` the node) is walked
    // once per path, exponentially many times.
    if (!walked_.emplace(loc.Id(), loc.base, here, parent, wildcard, ptr.empty(), parent_at, at)
             .second) {
      return;
    }
    if (const doc::Node::Member* r = n.FindMember("reduce"); r && r->value.is_object()) {
      const doc::Node* s = r->value.Find("strategy");
      if (s && s->is_string()) {
        Check(loc, *r, s->as_string(), ptr, wildcard, parent, parent_at, at);
        here = s->as_string();
      }
    }
    const std::string inner = BaseInside(n, loc.base);  // n's `$id` re-bases what it holds
    auto same_location = [&](const doc::Node& c, const std::string& suffix) {
      Walk(SchemaLoc{&c, loc.resource, loc.pointer + suffix, inner}, ptr, wildcard, here,
           parent, parent_at, at, depth + 1);
    };
    if (const doc::Node* ref = n.Find("$ref"); ref && ref->is_string()) {
      std::string why;
      SchemaLoc target = index_.Resolve(ref->as_string(), inner, &why);
      std::string id = target.Id() + "@" + JoinPtr(ptr);
      if (target.node && std::find(stack_.begin(), stack_.end(), id) == stack_.end() &&
          stack_.size() < 64) {
        stack_.push_back(id);
        Walk(target, ptr, wildcard, here, parent, parent_at, at, depth + 1);
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
    // Children. The schemas a `set` location gives its children (through `properties` add,
    // intersect and remove, or through additionalProperties/patternProperties) describe its
    // parts; the set combines the parts itself, so whatever a part's schema declares, the
    // members inside it reduce by their own annotations, as under `merge`.
    const std::string effective = parent == "set"           ? "set-operand"
                                  : !here.empty()            ? here
                                                             : InferredStrategy(at);
    auto child = [&](const doc::Node& c, const std::string& suffix, const std::string& token,
                     bool wild, const Shape* child_at) {
      std::vector<std::string> cp = ptr;
      cp.push_back(token);
      std::string p = effective == "set-operand" ? "merge" : effective;
      Walk(SchemaLoc{&c, loc.resource, loc.pointer + suffix, inner}, cp, wildcard || wild,
           "", p, at, child_at, depth + 1);
    };
    auto get = [](const std::shared_ptr<Shape>& s) { return s.get(); };
    if (const doc::Node* props = n.Find("properties"); props && props->is_object()) {
      for (const auto& m : props->members()) {
        const Shape::Property* sp = at ? at->FindProperty(m.key) : nullptr;
        child(m.value, "/properties/" + doc::Pointer::Escape(m.key), m.key, false,
              sp ? get(sp->shape) : nullptr);
      }
    }
    if (const doc::Node* pp = n.Find("patternProperties"); pp && pp->is_object()) {
      for (const auto& m : pp->members()) {
        const Shape* sp = nullptr;
        for (const auto& [re, shape] : at ? at->patterns : decltype(at->patterns){}) {
          if (re == m.key) sp = shape.get();
        }
        child(m.value, "/patternProperties/" + doc::Pointer::Escape(m.key), "*", true, sp);
      }
    }
    if (const doc::Node* ap = n.Find("additionalProperties")) {
      child(*ap, "/additionalProperties", "*", true, at ? get(at->additional) : nullptr);
    }
    if (const doc::Node* items = n.Find("items")) {
      if (items->is_array()) {
        for (size_t i = 0; i < items->items().size(); ++i) {
          const Shape* sp = at && i < at->tuple.size() ? at->tuple[i].get() : nullptr;
          child(items->items()[i], "/items/" + std::to_string(i), std::to_string(i), false, sp);
        }
      } else {
        child(*items, "/items", "*", true, at ? get(at->items) : nullptr);
      }
    }
    if (const doc::Node* ai = n.Find("additionalItems")) {
      child(*ai, "/additionalItems", "*", true, at ? get(at->items) : nullptr);
    }
  }

 private:
  static std::string JoinPtr(const std::vector<std::string>& ptr) {
    std::string s;
    for (const auto& t : ptr) s += "/" + doc::Pointer::Escape(t);
    return s.empty() ? "/" : s;
  }

  // The strategy the whole schema gives a location (its shape `at`), when this branch
  // declares none.
  static std::string InferredStrategy(const Shape* at) {
    if (!at) return "";
    if (at->reduce_conflict) return "(varies)";
    return at->reduce ? at->reduce->strategy : "";
  }

  // Reports once per keyword and problem (`what`: the message, less the document
  // locations it names): a recursive schema reaches the same `reduce` at every depth of its
  // unrolling, and one mistake should give one error (at the first document location found).
  void Report(bool warning, const std::string& what, const SchemaLoc& loc, Mark mark,
              const std::vector<std::string>& ptr, std::string msg, std::string hint = {}) {
    if (!reported_.emplace(loc.resource, mark.line, mark.col, what).second) return;
    std::string scope = fmt::format("{}, document location {}", scope_, JoinPtr(ptr));
    if (warning) {
      diags_->Warning(DisplayName(loc.resource), mark, std::move(msg), std::move(scope), std::move(hint));
    } else {
      diags_->Error(DisplayName(loc.resource), mark, std::move(msg), std::move(scope), std::move(hint));
    }
  }
  void Error(const SchemaLoc& loc, Mark mark, const std::vector<std::string>& ptr,
             std::string msg, std::string hint = {}) {
    std::string what = msg;
    Report(false, what, loc, mark, ptr, std::move(msg), std::move(hint));
  }

  void Check(const SchemaLoc& loc, const doc::Node::Member& reduce, const std::string& strategy,
             const std::vector<std::string>& ptr, bool wildcard, const std::string& parent,
             const Shape* parent_at, const Shape* at) {
    if (!ptr.empty()) CheckParent(loc, reduce, strategy, ptr, wildcard, parent, parent_at);
    // Types: what this branch allows, narrowed by what the whole schema allows here.
    auto own = InferShape(index_, loc, nullptr);
    uint8_t types = own->types;
    if (at) types &= at->types;
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

  // A `reduce` below the root needs an annotation on its parent location (as in Flow): with
  // none at all, the parent is replaced whole by lastWriteWins and this one is never
  // reached, an error. A parent with another explicit strategy is legal (Flow's
  // documentation asks for such placeholders); when that strategy never reduces children,
  // the annotation has no effect and gets a warning.
  void CheckParent(const SchemaLoc& loc, const doc::Node::Member& reduce, const std::string& strategy,
                   const std::vector<std::string>& ptr, bool wildcard, const std::string& parent,
                   const Shape* parent_at) {
    std::vector<std::string> pp(ptr.begin(), ptr.end() - 1);
    if (parent.empty()) {
      Report(false, "parent has none", loc, reduce.key_mark, ptr,
             fmt::format("`reduce: {{strategy: {}}}` has no effect: its parent location {} has no "
                         "reduce annotation (so it is replaced whole, by lastWriteWins)",
                         strategy, JoinPtr(pp)),
             fmt::format("add `reduce: {{strategy: merge}}` to the schema of {} and every location "
                         "enclosing it",
                         JoinPtr(pp)));
      return;
    }
    if (parent == "set") {
      // The schema of a set's add/intersect/remove part. Flow's documentation asked for a
      // placeholder annotation here (lastWriteWins; merge says what the set does to the
      // members); anything else suggests the author expects it to act.
      if (strategy != "lastWriteWins" && strategy != "merge") {
        Report(true, "part of a set", loc, reduce.key_mark, ptr,
               fmt::format("`reduce: {{strategy: {}}}` is ignored: {} is a part of the set at {}, "
                           "which the set combines itself",
                           strategy, JoinPtr(ptr), JoinPtr(pp)),
               "annotate the set's members instead (the schemas inside add/intersect/remove)");
      }
      return;
    }
    bool effective = parent == "merge" || parent == "(varies)" ||
                     ((parent == "minimize" || parent == "maximize") && ParentHasKey(parent_at, wildcard));
    if (effective) return;
    Report(true, "parent never reduces by " + parent, loc, reduce.key_mark, ptr,
           fmt::format("`reduce: {{strategy: {}}}` can never take effect: its parent location {} "
                       "reduces by `{}`, which never reduces the values inside it",
                       strategy, JoinPtr(pp), parent),
           parent == "minimize" || parent == "maximize"
               ? fmt::format("give the `{}` at {} a `key`, so equal keys deep-merge, or remove this "
                             "annotation",
                             parent, JoinPtr(pp))
               : fmt::format("use `reduce: {{strategy: merge}}` at {} for its children to reduce, or "
                             "remove this annotation",
                             JoinPtr(pp)));
  }

  // Whether the enclosing location's minimize/maximize compares by `key` (then equal keys
  // deep-merge, so children may reduce). Unknown under a wildcard: assumed.
  static bool ParentHasKey(const Shape* parent_at, bool wildcard) {
    if (!parent_at) return wildcard;
    return parent_at->reduce && !parent_at->reduce->key.empty();
  }

  const Index& index_;
  std::shared_ptr<Shape> root_shape_;
  std::string scope_;
  Diagnostics* diags_;
  std::set<std::tuple<std::string, uint32_t, uint32_t, std::string>> reported_;
  std::vector<std::string> stack_;
  std::set<std::tuple<std::string, std::string, std::string, std::string, bool, bool, const Shape*, const Shape*>>
      walked_;
};

}  // namespace

void InspectReductions(const Index& index, const SchemaLoc& root,
                       const std::shared_ptr<Shape>& root_shape, const std::string& scope,
                       Diagnostics* diags) {
  Inspector in(index, root_shape, scope, diags);
  in.Walk(root, {}, false, "", "", nullptr, root_shape.get(), 0);
}

}  // namespace flow::schema
