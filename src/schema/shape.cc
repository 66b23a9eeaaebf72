#include "schema/shape.h"

#include <algorithm>
#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"

namespace flow::schema {
namespace {

using ShapePtr = std::shared_ptr<Shape>;

const std::vector<std::string> kTypeNames = {"array",  "boolean", "integer", "null",
                                             "number", "object",  "string"};
const std::vector<std::string> kStrategies = {"append",  "firstWriteWins", "lastWriteWins",
                                              "maximize", "merge",         "minimize",
                                              "set",      "sum"};

uint8_t TypeBit(const std::string& name) {
  if (name == "null") return kNull;
  if (name == "boolean") return kBoolean;
  if (name == "integer") return kInteger;
  if (name == "number") return kInteger | kNumber;
  if (name == "string") return kString;
  if (name == "object") return kObject;
  if (name == "array") return kArray;
  return 0;
}

uint8_t TypeOfValue(const doc::Node& v) {
  switch (v.kind()) {
    case doc::Node::Kind::kNull: return kNull;
    case doc::Node::Kind::kBool: return kBoolean;
    case doc::Node::Kind::kInt: return kInteger;
    case doc::Node::Kind::kFloat: {
      double d = v.as_double();
      return d == static_cast<double>(static_cast<int64_t>(d)) ? kInteger : kNumber;
    }
    case doc::Node::Kind::kString: return kString;
    case doc::Node::Kind::kArray: return kArray;
    case doc::Node::Kind::kObject: return kObject;
  }
  return 0;
}

ShapePtr AnyShape() { return std::make_shared<Shape>(); }

ShapePtr Intersect(const ShapePtr& a, const ShapePtr& b);
ShapePtr Union(const ShapePtr& a, const ShapePtr& b);

ShapePtr IntersectOpt(const ShapePtr& a, const ShapePtr& b) {
  if (!a) return b;
  if (!b) return a;
  return Intersect(a, b);
}

template <typename T>
void FirstOf(std::optional<T>& out, const std::optional<T>& a, const std::optional<T>& b) {
  out = a ? a : b;
}

// `a` is the primary side: its annotations win (a schema's own keywords beat those found
// through its `$ref` and applicators, and earlier `allOf` branches beat later ones).
ShapePtr Intersect(const ShapePtr& a, const ShapePtr& b) {
  auto s = std::make_shared<Shape>();
  s->types = a->types & b->types;
  FirstOf(s->title, a->title, b->title);
  FirstOf(s->description, a->description, b->description);
  FirstOf(s->format, a->format, b->format);
  FirstOf(s->content_encoding, a->content_encoding, b->content_encoding);
  if (a->max_length && b->max_length) {
    s->max_length = std::min(*a->max_length, *b->max_length);
  } else {
    FirstOf(s->max_length, a->max_length, b->max_length);
  }
  FirstOf(s->reduce, a->reduce, b->reduce);
  s->reduce_conflict = a->reduce ? a->reduce_conflict : (a->reduce_conflict || b->reduce_conflict);
  // Properties: sorted merge by name.
  size_t i = 0, j = 0;
  while (i < a->properties.size() || j < b->properties.size()) {
    if (j == b->properties.size() ||
        (i < a->properties.size() && a->properties[i].name < b->properties[j].name)) {
      auto p = a->properties[i++];
      p.shape = IntersectOpt(p.shape, b->additional);
      s->properties.push_back(std::move(p));
    } else if (i == a->properties.size() || b->properties[j].name < a->properties[i].name) {
      auto p = b->properties[j++];
      p.shape = IntersectOpt(a->additional, p.shape);
      s->properties.push_back(std::move(p));
    } else {
      Shape::Property p;
      p.name = a->properties[i].name;
      p.required = a->properties[i].required || b->properties[j].required;
      p.shape = Intersect(a->properties[i].shape, b->properties[j].shape);
      s->properties.push_back(std::move(p));
      ++i, ++j;
    }
  }
  s->additional = IntersectOpt(a->additional, b->additional);
  s->patterns = a->patterns;
  s->patterns.insert(s->patterns.end(), b->patterns.begin(), b->patterns.end());
  size_t n = std::max(a->tuple.size(), b->tuple.size());
  for (size_t k = 0; k < n; ++k) {
    ShapePtr x = k < a->tuple.size() ? a->tuple[k] : a->items;
    ShapePtr y = k < b->tuple.size() ? b->tuple[k] : b->items;
    auto t = IntersectOpt(x, y);
    s->tuple.push_back(t ? t : AnyShape());
  }
  s->items = IntersectOpt(a->items, b->items);
  s->min_items = std::max(a->min_items, b->min_items);
  s->enumerated = a->enumerated || b->enumerated;
  if (a->enumerated && b->enumerated) {
    for (const auto& v : a->enum_values) {
      if (std::find(b->enum_values.begin(), b->enum_values.end(), v) != b->enum_values.end()) {
        s->enum_values.push_back(v);
      }
    }
  } else {
    s->enum_values = a->enumerated ? a->enum_values : b->enum_values;
  }
  s->cut = a->cut || b->cut;
  return s;
}

template <typename T>
std::optional<T> SameOr(const std::optional<T>& a, const std::optional<T>& b) {
  return a == b ? a : std::nullopt;
}

ShapePtr Union(const ShapePtr& a, const ShapePtr& b) {
  if (a->types == 0) return b;  // `false` contributes nothing to a union
  if (b->types == 0) return a;
  auto s = std::make_shared<Shape>();
  s->types = a->types | b->types;
  s->title = SameOr(a->title, b->title);
  s->description = SameOr(a->description, b->description);
  s->format = SameOr(a->format, b->format);
  s->content_encoding = SameOr(a->content_encoding, b->content_encoding);
  if (a->max_length && b->max_length) s->max_length = std::max(*a->max_length, *b->max_length);
  if (a->reduce == b->reduce) {
    s->reduce = a->reduce;
    s->reduce_conflict = a->reduce_conflict || b->reduce_conflict;
  } else {
    s->reduce_conflict = true;
  }
  // A property declared on one side only: when the other side admits objects, it may hold
  // anything the other side allows there.
  auto other_side = [](const ShapePtr& shape, const ShapePtr& other) -> ShapePtr {
    if (!(other->types & kObject)) return shape;
    return Union(shape, other->additional ? other->additional : AnyShape());
  };
  size_t i = 0, j = 0;
  while (i < a->properties.size() || j < b->properties.size()) {
    Shape::Property p;
    if (j == b->properties.size() ||
        (i < a->properties.size() && a->properties[i].name < b->properties[j].name)) {
      p = a->properties[i++];
      p.shape = other_side(p.shape, b);
      p.required = p.required && !(b->types & kObject);
    } else if (i == a->properties.size() || b->properties[j].name < a->properties[i].name) {
      p = b->properties[j++];
      p.shape = other_side(p.shape, a);
      p.required = p.required && !(a->types & kObject);
    } else {
      p.name = a->properties[i].name;
      p.required = a->properties[i].required && b->properties[j].required;
      p.shape = Union(a->properties[i].shape, b->properties[j].shape);
      ++i, ++j;
    }
    s->properties.push_back(std::move(p));
  }
  if (a->additional && b->additional) s->additional = Union(a->additional, b->additional);
  if (!(b->types & kObject)) {
    s->additional = a->additional, s->patterns = a->patterns;
  } else if (!(a->types & kObject)) {
    s->additional = b->additional, s->patterns = b->patterns;
  }
  size_t n = std::min(a->tuple.size(), b->tuple.size());
  for (size_t k = 0; k < n; ++k) s->tuple.push_back(Union(a->tuple[k], b->tuple[k]));
  if (a->items && b->items) s->items = Union(a->items, b->items);
  s->min_items = std::min(a->min_items, b->min_items);
  s->enumerated = a->enumerated && b->enumerated;
  if (s->enumerated) {
    s->enum_values = a->enum_values;
    for (const auto& v : b->enum_values) {
      if (std::find(s->enum_values.begin(), s->enum_values.end(), v) == s->enum_values.end()) {
        s->enum_values.push_back(v);
      }
    }
  }
  s->cut = a->cut || b->cut;
  return s;
}

class Inferrer {
 public:
  Inferrer(const Index& index, Diagnostics* diags) : index_(index), diags_(diags) {}

  ShapePtr Infer(const SchemaLoc& loc, int depth) {
    const doc::Node& n = *loc.node;
    if (n.is_bool()) {
      auto s = AnyShape();
      if (!n.as_bool()) s->types = 0;
      return s;
    }
    if (!n.is_object()) {
      Report(loc, n.mark(),
             fmt::format("a schema must be an object or a boolean, not {}", n.TypeName()));
      return AnyShape();
    }
    if (depth > 256) {
      Report(loc, n.mark(), "schema is nested more than 256 levels deep");
      return AnyShape();
    }
    const std::string inner = BaseInside(n, loc.base);  // n's `$id` re-bases what it holds
    auto s = Own(loc, inner, depth);
    auto child = [&](const doc::Node& c, const std::string& suffix) {
      SchemaLoc cl{&c, loc.resource, loc.pointer + suffix, inner};
      return Infer(cl, depth + 1);
    };
    if (const doc::Node* ref = n.Find("$ref"); ref && ref->is_string()) {
      std::string why;
      SchemaLoc target = index_.Resolve(ref->as_string(), inner, &why);
      if (target.node) {  // unresolvable refs are reported once, by Index::CheckRefs
        std::string id = target.Id();
        if (std::find(stack_.begin(), stack_.end(), id) != stack_.end()) {
          auto c = AnyShape();
          c->cut = true;
          s = Intersect(s, c);
        } else {
          stack_.push_back(id);
          s = Intersect(s, Infer(target, depth + 1));
          stack_.pop_back();
        }
      }
    }
    if (const doc::Node* all = n.Find("allOf"); all && all->is_array()) {
      for (size_t i = 0; i < all->items().size(); ++i) {
        s = Intersect(s, child(all->items()[i], "/allOf/" + std::to_string(i)));
      }
    }
    for (const char* kw : {"anyOf", "oneOf"}) {
      const doc::Node* any = n.Find(kw);
      if (!any || !any->is_array() || any->items().empty()) continue;
      ShapePtr u;
      for (size_t i = 0; i < any->items().size(); ++i) {
        auto c = child(any->items()[i], fmt::format("/{}/{}", kw, i));
        u = u ? Union(u, c) : c;
      }
      s = Intersect(s, u);
    }
    const doc::Node* then_ = n.Find("then");
    const doc::Node* else_ = n.Find("else");
    if (n.Find("if") && then_ && else_) {
      s = Intersect(s, Union(child(*then_, "/then"), child(*else_, "/else")));
    }
    return s;
  }

 private:
  void Report(const SchemaLoc& loc, Mark mark, std::string msg, std::string hint = {}) {
    if (!diags_) return;
    diags_->Error(DisplayName(loc.resource), mark, std::move(msg),
                  fmt::format("schema at {}", loc.pointer.empty() ? "/" : loc.pointer),
                  std::move(hint));
  }

  // The shape from a schema's own keywords, before `$ref` and applicators.
  // `inner` is the base inside the schema (BaseInside).
  ShapePtr Own(const SchemaLoc& loc, const std::string& inner, int depth) {
    const doc::Node& n = *loc.node;
    auto s = AnyShape();
    auto child = [&](const doc::Node& c, const std::string& suffix) {
      SchemaLoc cl{&c, loc.resource, loc.pointer + suffix, inner};
      return Infer(cl, depth + 1);
    };
    for (const auto& m : n.members()) {
      const std::string& k = m.key;
      const doc::Node& v = m.value;
      if (k == "type") {
        uint8_t t = 0;
        std::vector<const doc::Node*> names;
        if (v.is_string()) {
          names.push_back(&v);
        } else if (v.is_array()) {
          for (const auto& i : v.items()) names.push_back(&i);
        } else {
          Report(loc, v.mark(), "`type` must be a type name or a list of type names");
        }
        for (const doc::Node* name : names) {
          uint8_t bit = name->is_string() ? TypeBit(name->as_string()) : 0;
          if (!bit) {
            Report(loc, name->mark(),
                   fmt::format("unknown type `{}`", name->is_string() ? name->as_string()
                                                                      : name->ToJsonText()),
                   name->is_string() ? DidYouMean(name->as_string(), kTypeNames) : "");
          }
          t |= bit;
        }
        if (!names.empty()) s->types &= t ? t : static_cast<uint8_t>(kAnyType);
      } else if (k == "enum") {
        if (!v.is_array()) {
          Report(loc, v.mark(), "`enum` must be a list of values");
          continue;
        }
        uint8_t t = 0;
        std::vector<std::string> values;
        for (const auto& i : v.items()) {
          t |= TypeOfValue(i);
          values.push_back(i.ToJsonText());
        }
        s->types &= t;
        Enumerate(*s, std::move(values));
      } else if (k == "const") {
        s->types &= TypeOfValue(v);
        Enumerate(*s, {v.ToJsonText()});
      } else if (k == "properties") {
        if (!v.is_object()) {
          Report(loc, v.mark(), "`properties` must be a map of property name to schema");
          continue;
        }
        for (const auto& p : v.members()) {
          Shape::Property prop;
          prop.name = p.key;
          prop.shape = child(p.value, "/properties/" + doc::Pointer::Escape(p.key));
          s->properties.push_back(std::move(prop));
        }
      } else if (k == "additionalProperties") {
        s->additional = child(v, "/additionalProperties");
      } else if (k == "patternProperties" && v.is_object()) {
        for (const auto& p : v.members()) {
          s->patterns.emplace_back(
              p.key, child(p.value, "/patternProperties/" + doc::Pointer::Escape(p.key)));
        }
      } else if (k == "items") {
        if (v.is_array()) {
          for (size_t i = 0; i < v.items().size(); ++i) {
            s->tuple.push_back(child(v.items()[i], "/items/" + std::to_string(i)));
          }
        } else {
          s->items = child(v, "/items");
        }
      } else if (k == "minItems" && v.is_int()) {
        s->min_items = static_cast<uint64_t>(std::max<int64_t>(0, v.as_int()));
      } else if (k == "maxLength" && v.is_int()) {
        s->max_length = static_cast<uint64_t>(std::max<int64_t>(0, v.as_int()));
      } else if (k == "format" && v.is_string()) {
        s->format = v.as_string();
      } else if (k == "contentEncoding" && v.is_string()) {
        s->content_encoding = v.as_string();
      } else if (k == "title" && v.is_string()) {
        s->title = v.as_string();
      } else if (k == "description" && v.is_string()) {
        s->description = v.as_string();
      } else if (k == "reduce") {
        s->reduce = ParseReduce(loc, m);
      }
    }
    // additionalItems applies only with tuple items.
    if (const doc::Node* ai = n.Find("additionalItems"); ai && !s->tuple.empty()) {
      s->items = child(*ai, "/additionalItems");
    }
    if (const doc::Node* req = n.Find("required")) {
      if (!req->is_array()) {
        Report(loc, req->mark(), "`required` must be a list of property names");
      } else {
        for (const auto& r : req->items()) {
          if (!r.is_string()) {
            Report(loc, r.mark(), "`required` must be a list of property names");
            continue;
          }
          auto it = std::find_if(s->properties.begin(), s->properties.end(),
                                 [&](const Shape::Property& p) { return p.name == r.as_string(); });
          if (it == s->properties.end()) {
            Shape::Property p;
            p.name = r.as_string();
            p.shape = s->additional ? s->additional : AnyShape();
            s->properties.push_back(std::move(p));
            it = s->properties.end() - 1;
          }
          it->required = true;
        }
      }
    }
    std::sort(s->properties.begin(), s->properties.end(),
              [](const Shape::Property& a, const Shape::Property& b) { return a.name < b.name; });
    return s;
  }

  // Restricts `s` to `values` (`enum` and `const` of one schema: both apply).
  static void Enumerate(Shape& s, std::vector<std::string> values) {
    if (s.enumerated) {
      std::erase_if(values, [&](const std::string& v) {
        return std::find(s.enum_values.begin(), s.enum_values.end(), v) == s.enum_values.end();
      });
    }
    s.enumerated = true;
    s.enum_values = std::move(values);
  }

  std::optional<Reduce> ParseReduce(const SchemaLoc& loc, const doc::Node::Member& m) {
    const doc::Node& v = m.value;
    if (!v.is_object()) {
      Report(loc, v.mark(), "`reduce` must be an object like `{strategy: merge}`");
      return std::nullopt;
    }
    Reduce r;
    r.mark = m.key_mark;
    r.file = DisplayName(loc.resource);
    r.declared_at = loc.resource + "#" + loc.pointer;
    for (const auto& f : v.members()) {
      if (f.key == "strategy") {
        if (!f.value.is_string()) {
          Report(loc, f.value.mark(), "`reduce.strategy` must be a string");
          return std::nullopt;
        }
        r.strategy = f.value.as_string();
        if (std::find(kStrategies.begin(), kStrategies.end(), r.strategy) == kStrategies.end()) {
          Report(loc, f.value.mark(), fmt::format("unknown reduce strategy `{}`", r.strategy),
                 DidYouMean(r.strategy, kStrategies));
          return std::nullopt;
        }
      } else if (f.key == "key") {
        if (!f.value.is_array()) {
          Report(loc, f.value.mark(), "`reduce.key` must be a list of JSON pointers");
          return std::nullopt;
        }
        for (const auto& p : f.value.items()) {
          std::string why;
          if (!p.is_string() || !doc::Pointer::Parse(p.as_string(), &why)) {
            Report(loc, p.mark(),
                   fmt::format("`reduce.key` item {} is not a JSON pointer{}", p.ToJsonText(),
                               why.empty() ? "" : ": " + why),
                   "JSON pointers start with /");
            return std::nullopt;
          }
          r.key.push_back(p.as_string());
        }
      } else {
        Report(loc, f.key_mark, fmt::format("unknown key `{}` in `reduce`", f.key),
               DidYouMean(f.key, {"strategy", "key"}));
      }
    }
    if (r.strategy.empty()) {
      Report(loc, v.mark(), "`reduce` is missing `strategy`");
      return std::nullopt;
    }
    if (!r.key.empty() && r.strategy != "minimize" && r.strategy != "maximize" &&
        r.strategy != "merge" && r.strategy != "set") {
      Report(loc, v.mark(),
             fmt::format("reduce strategy `{}` does not take a `key`", r.strategy),
             "only minimize, maximize, merge and set take a key");
    }
    return r;
  }

  const Index& index_;
  Diagnostics* diags_;
  std::vector<std::string> stack_;
};

}  // namespace

const Shape::Property* Shape::FindProperty(const std::string& name) const {
  auto it = std::lower_bound(properties.begin(), properties.end(), name,
                             [](const Property& p, const std::string& n) { return p.name < n; });
  return it != properties.end() && it->name == name ? &*it : nullptr;
}

std::string TypesToString(uint8_t types) {
  auto names = TypeNames(types);
  if (names.empty()) return "nothing (the schema admits no value)";
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? " | " : "") + names[i];
  return out;
}

uint8_t TypesFromNames(const std::vector<std::string>& names) {
  uint8_t t = 0;
  for (const auto& n : names) t |= TypeBit(n);
  return t;
}

std::vector<std::string> TypeNames(uint8_t types) {
  std::vector<std::string> out;
  if (types & kArray) out.push_back("array");
  if (types & kBoolean) out.push_back("boolean");
  if ((types & (kInteger | kNumber)) == (kInteger | kNumber)) {
    out.push_back("number");
  } else if (types & kInteger) {
    out.push_back("integer");
  } else if (types & kNumber) {
    out.push_back("number");
  }
  if (types & kNull) out.push_back("null");
  if (types & kObject) out.push_back("object");
  if (types & kString) out.push_back("string");
  return out;
}

bool SingleScalarType(uint8_t types, std::string* name) {
  uint8_t t = types & ~kNull;
  if (t == kString) {
    *name = "string";
  } else if (t == kInteger) {
    *name = "integer";
  } else if (t == (kInteger | kNumber) || t == kNumber) {
    *name = "number";
  } else if (t == kBoolean) {
    *name = "boolean";
  } else {
    return false;
  }
  return true;
}

std::shared_ptr<Shape> InferShape(const Index& index, const SchemaLoc& loc, Diagnostics* diags) {
  Inferrer inf(index, diags);
  return inf.Infer(loc, 0);
}

LocatedShape ShapeAt(const std::shared_ptr<Shape>& root, const doc::Pointer& ptr) {
  LocatedShape out{root, true};
  for (const auto& t : ptr.tokens()) {
    const Shape& s = *out.shape;
    ShapePtr next;
    bool required = false, declared = true;
    auto index = doc::Pointer::AsIndex(t);
    if (s.types & kObject) {
      if (const auto* p = s.FindProperty(t)) {
        next = p->shape, required = p->required && (s.types & ~kObject) == 0;
      } else if (!s.patterns.empty()) {
        next = s.patterns.front().second;  // patterns are not matched: an approximation
      } else if (s.additional) {
        next = s.additional->types ? s.additional : nullptr;
      } else {
        next = AnyShape();
        declared = false;
      }
    }
    if ((!next || !declared) && index && (s.types & kArray)) {
      declared = true;
      if (*index < s.tuple.size()) {
        next = s.tuple[*index];
      } else if (s.items) {
        next = s.items;
      } else {
        next = AnyShape();
        declared = false;
      }
      required = *index < s.min_items && (s.types & ~kArray) == 0;
    }
    if (!next) {
      if (s.cut) {
        next = AnyShape();
      } else {
        return LocatedShape{nullptr, false, false};
      }
    }
    out.shape = next;
    out.must_exist = out.must_exist && required;
    out.declared = out.declared && declared && !s.cut;
  }
  return out;
}

std::vector<Location> EnumerateLocations(const std::shared_ptr<Shape>& root) {
  std::vector<Location> out;
  // Bounds keep pathological schemas (deeply nested `$ref` fan-out) from exploding.
  constexpr size_t kMaxLocations = 10000;
  constexpr size_t kMaxDepth = 32;
  struct Frame {
    doc::Pointer ptr;
    ShapePtr shape;
    bool must_exist;
  };
  std::vector<Frame> stack{{doc::Pointer(), root, true}};
  while (!stack.empty() && out.size() < kMaxLocations) {
    Frame f = std::move(stack.back());
    stack.pop_back();
    out.push_back(Location{f.ptr, f.shape, f.must_exist});
    if (f.ptr.tokens().size() >= kMaxDepth) continue;
    std::vector<Frame> children;
    if (f.shape->types & kObject) {
      bool only_object = (f.shape->types & ~kObject) == 0;
      for (const auto& p : f.shape->properties) {
        if (p.shape->types == 0) continue;
        children.push_back({f.ptr.Push(p.name), p.shape,
                            f.must_exist && p.required && only_object});
      }
    }
    if (f.shape->types & kArray) {
      bool only_array = (f.shape->types & ~kArray) == 0;
      for (size_t i = 0; i < f.shape->tuple.size(); ++i) {
        children.push_back({f.ptr.Push(std::to_string(i)), f.shape->tuple[i],
                            f.must_exist && i < f.shape->min_items && only_array});
      }
    }
    for (auto it = children.rbegin(); it != children.rend(); ++it) stack.push_back(*it);
  }
  return out;
}

}  // namespace flow::schema
