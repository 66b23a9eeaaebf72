#include "schema/fast_check.h"

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <optional>
#include <regex>
#include <string_view>
#include <unordered_map>

namespace flow::schema {

namespace {

using rapidjson::Value;

// Type bits, as valijson's TypeConstraint names them.
constexpr uint8_t kNull = 1, kBoolean = 2, kObject = 4, kArray = 8, kNumber = 16, kInteger = 32,
                  kString = 64, kAllTypes = 127;

constexpr uint64_t kUnbounded = std::numeric_limits<uint64_t>::max();
// Delegates are valijson schemas compiled one by one: beyond this many, a subschema that
// needs one answers "not known".
constexpr size_t kMaxDelegates = 64;

std::string_view Name(const Value& s) { return {s.GetString(), s.GetStringLength()}; }

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// A number as valijson's RapidJSON adapter reads it (asDouble). An unsigned integer above
// 2^63-1, which valijson casts to a negative int64, is "not known".
bool ToDouble(const Value& v, double* d) {
  if (v.IsDouble()) {
    *d = v.GetDouble();
    return true;
  }
  if (v.IsInt64()) {
    *d = static_cast<double>(v.GetInt64());
    return true;
  }
  return false;
}

// A non-negative integer keyword (minLength, maxItems, ...).
bool ToCount(const Value& v, uint64_t* out) {
  if (!v.IsInt64() || v.GetInt64() < 0) return false;
  *out = static_cast<uint64_t>(v.GetInt64());
  return true;
}

// valijson's utils::u8_strlen over the string's bytes: it stops at a NUL byte or at a
// sequence that decodes to 0. Returns false ("not known") where valijson's decoder would
// read past its table (a lead byte followed by more than five continuation bytes).
bool CodePoints(const Value& v, uint64_t* count) {
  static const uint64_t kOffsets[6] = {0x00000000UL, 0x00003080UL, 0x000E2080UL,
                                       0x03C82080UL, 0xFA082080UL, 0x82082080UL};
  const auto* s = reinterpret_cast<const unsigned char*>(v.GetString());
  size_t len = v.GetStringLength(), i = 0;
  uint64_t n = 0;
  while (i < len && s[i] != 0) {
    uint64_t ch = 0;
    int size = 0;
    do {
      ch <<= 6;
      ch += s[i++];
      ++size;
    } while (i < len && s[i] != 0 && (s[i] & 0xC0) == 0x80);
    if (size > 6) return false;
    if (ch - kOffsets[size - 1] == 0) break;
    ++n;
  }
  *count = n;
  return true;
}

// valijson's strict equalTo of a schema value (enum, const) and a document value; false
// also where valijson's answer is not certain to be the same.
bool Equal(const Value& schema, const Value& v) {
  if (schema.IsNull()) return v.IsNull();
  if (schema.IsBool()) return v.IsBool() && v.GetBool() == schema.GetBool();
  if (schema.IsNumber()) {
    double a, b;
    return v.IsNumber() && ToDouble(schema, &a) && ToDouble(v, &b) && a == b;
  }
  if (schema.IsString()) {
    return v.IsString() && v.GetStringLength() == schema.GetStringLength() &&
           std::memcmp(v.GetString(), schema.GetString(), v.GetStringLength()) == 0;
  }
  if (schema.IsArray()) {
    if (!v.IsArray() || v.Size() != schema.Size()) return false;
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      if (!Equal(schema[i], v[i])) return false;
    }
    return true;
  }
  // Objects: as many members, and each of the document's found (by its first match) in the
  // schema's with an equal value.
  if (!v.IsObject() || v.MemberCount() != schema.MemberCount()) return false;
  for (const auto& m : v.GetObject()) {
    std::string_view name = Name(m.name);
    if (HasNul(name)) return false;
    const Value* found = nullptr;
    for (const auto& s : schema.GetObject()) {
      if (Name(s.name) == name) {
        found = &s.value;
        break;
      }
    }
    if (!found || !Equal(*found, m.value)) return false;
  }
  return true;
}

}  // namespace

struct FastCheck::Node {
  enum class Kind : uint8_t { kAny, kNever, kChecks, kDelegate };
  Kind kind = Kind::kChecks;
  uint8_t types = kAllTypes;
  // Numbers.
  std::optional<double> minimum, exclusive_minimum, maximum, exclusive_maximum;
  enum class Multiple : uint8_t { kNone, kInt, kDouble } multiple = Multiple::kNone;
  int64_t multiple_int = 0;
  double multiple_double = 0;
  // Strings.
  uint64_t min_length = 0, max_length = kUnbounded;
  std::optional<std::regex> pattern;
  // Any value.
  const Value* enum_values = nullptr;  // an array
  const Value* const_value = nullptr;
  // Objects.
  bool has_properties = false;  // properties or additionalProperties present
  std::vector<std::pair<std::string, const Node*>> properties;
  std::unordered_map<std::string_view, size_t> property_index;  // when there are many
  const Node* additional = nullptr;                             // null: any value
  bool closed = false;                                          // additionalProperties: false
  std::vector<std::string> required;
  uint64_t min_properties = 0, max_properties = kUnbounded;
  // Arrays.
  const Node* items = nullptr;  // singular items
  bool linear = false;          // items is an array
  std::vector<const Node*> item_list;
  const Node* additional_items = nullptr;  // null: any value
  bool additional_items_forbidden = false;
  uint64_t min_items = 0, max_items = kUnbounded;
  // Applicators.
  std::vector<const Node*> all_of, any_of;
  bool has_any_of = false;
  Delegate delegate;

  bool HasObjectChecks() const {
    return has_properties || !required.empty() || min_properties > 0 ||
           max_properties != kUnbounded;
  }
  // Index of the property named `name` in `properties`, or -1.
  ptrdiff_t FindProperty(std::string_view name) const {
    if (!property_index.empty()) {
      auto it = property_index.find(name);
      return it == property_index.end() ? -1 : static_cast<ptrdiff_t>(it->second);
    }
    for (size_t i = 0; i < properties.size(); ++i) {
      if (properties[i].first == name) return static_cast<ptrdiff_t>(i);
    }
    return -1;
  }
};

struct FastCheck::Compiler {
  FastCheck* out;
  const DelegateFactory& factory;
  std::unordered_map<const Value*, const Node*> done;
  const Node* any = nullptr;
  const Node* never = nullptr;
  bool failed = false;

  Node* NewNode(Node::Kind kind) {
    out->nodes_.push_back(std::make_unique<Node>());
    out->nodes_.back()->kind = kind;
    return out->nodes_.back().get();
  }

  static std::string Escape(std::string_view token) {
    std::string s;
    for (char c : token) {
      if (c == '~') {
        s += "~0";
      } else if (c == '/') {
        s += "~1";
      } else {
        s += c;
      }
    }
    return s;
  }

  // Resolves a local `$ref` as valijson does (JSON pointer tokens with ~1 and ~0; no
  // %-decoding here: a reference holding '%' is not modelled).
  const Value* Resolve(std::string_view ref) {
    if (ref.empty() || ref[0] != '#') return nullptr;
    std::string_view ptr = ref.substr(1);
    if (ptr.find('%') != std::string_view::npos || (!ptr.empty() && ptr.back() == '/'))
      return nullptr;
    if (!ptr.empty() && ptr[0] != '/') return nullptr;
    const Value* at = &out->schema_;
    while (!ptr.empty()) {
      ptr.remove_prefix(1);
      size_t end = ptr.find('/');
      std::string_view raw = ptr.substr(0, end);
      ptr = end == std::string_view::npos ? std::string_view() : ptr.substr(end);
      std::string token;
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
          token += raw[i + 1] == '0' ? '~' : '/';
          ++i;
        } else {
          token += raw[i];
        }
      }
      if (at->IsObject()) {
        auto m =
            at->FindMember(Value(token.data(), static_cast<rapidjson::SizeType>(token.size())));
        if (m == at->MemberEnd()) return nullptr;
        at = &m->value;
      } else if (at->IsArray()) {
        if (token.empty() || token.size() > 9 ||
            token.find_first_not_of("0123456789") != std::string::npos) {
          return nullptr;
        }
        size_t i = std::stoul(token);
        if (i >= at->Size()) return nullptr;
        at = &(*at)[static_cast<rapidjson::SizeType>(i)];
      } else {
        return nullptr;
      }
    }
    return at;
  }

  const Node* Delegated(Node* n, const std::string& path) {
    n->kind = Node::Kind::kDelegate;
    if (out->delegates_ < kMaxDelegates) {
      n->delegate = factory(path);
      if (n->delegate) ++out->delegates_;
    }
    return n;
  }

  // The node of the schema `s` found at `path` of the bundle.
  const Node* Compile(const Value& s, const std::string& path, int ref_depth = 0) {
    if (failed) return never;
    if (s.IsBool()) return s.GetBool() ? any : never;
    if (!s.IsObject()) return never;
    if (auto it = done.find(&s); it != done.end()) return it->second;
    if (auto ref = s.FindMember("$ref"); ref != s.MemberEnd()) {
      // valijson ignores a `$ref`'s siblings.
      const Value* target = ref->value.IsString() ? Resolve(Name(ref->value)) : nullptr;
      if (!target || ref_depth > 64) {
        failed = true;
        return never;
      }
      const Node* n = Compile(*target, std::string(Name(ref->value).substr(1)), ref_depth + 1);
      done.emplace(&s, n);
      return n;
    }
    Node* n = NewNode(Node::Kind::kChecks);
    done.emplace(&s, n);
    static const char* const kDelegated[] = {"oneOf",
                                             "not",
                                             "if",
                                             "dependencies",
                                             "propertyNames",
                                             "contains",
                                             "patternProperties",
                                             "format",
                                             "divisibleBy"};
    for (const auto& m : s.GetObject()) {
      std::string_view k = Name(m.name);
      if (k == "id" && m.value.IsString()) {
        failed = true;  // a resolution scope: not modelled
        return never;
      }
      for (const char* d : kDelegated) {
        if (k == d) return Delegated(n, path);
      }
      if (k == "uniqueItems" && !(m.value.IsBool() && !m.value.GetBool()))
        return Delegated(n, path);
    }
    if (!Fill(n, s, path)) return Delegated(n, path);
    return n;
  }

  // Fills the checks of `n` from `s`; false when a keyword's form is not modelled.
  bool Fill(Node* n, const Value& s, const std::string& path) {
    for (const auto& m : s.GetObject()) {
      std::string_view k = Name(m.name);
      const Value& v = m.value;
      if (k == "type") {
        if (!Types(v, &n->types)) return false;
      } else if (k == "enum") {
        if (!v.IsArray()) return false;
        n->enum_values = &v;
      } else if (k == "const") {
        n->const_value = &v;
      } else if (k == "minimum" || k == "exclusiveMinimum" || k == "maximum" ||
                 k == "exclusiveMaximum") {
        double d;
        if (!v.IsNumber() || !ToDouble(v, &d)) return false;
        (k == "minimum"            ? n->minimum
         : k == "exclusiveMinimum" ? n->exclusive_minimum
         : k == "maximum"          ? n->maximum
                                   : n->exclusive_maximum) = d;
      } else if (k == "multipleOf") {
        if (v.IsInt64() && v.GetInt64() > 0) {
          n->multiple = Node::Multiple::kInt;
          n->multiple_int = v.GetInt64();
        } else if (v.IsDouble() && v.GetDouble() > 0 && std::isfinite(v.GetDouble())) {
          n->multiple = Node::Multiple::kDouble;
          n->multiple_double = v.GetDouble();
        } else {
          return false;
        }
      } else if (k == "minLength" || k == "maxLength" || k == "minItems" || k == "maxItems" ||
                 k == "minProperties" || k == "maxProperties") {
        uint64_t c;
        if (!ToCount(v, &c)) return false;
        (k == "minLength"       ? n->min_length
         : k == "maxLength"     ? n->max_length
         : k == "minItems"      ? n->min_items
         : k == "maxItems"      ? n->max_items
         : k == "minProperties" ? n->min_properties
                                : n->max_properties) = c;
      } else if (k == "pattern") {
        if (!v.IsString()) return false;
        try {
          n->pattern.emplace(std::string(Name(v)));  // as valijson: std::regex(pattern)
        } catch (const std::regex_error&) {
          return false;
        }
      } else if (k == "required") {
        if (!v.IsArray()) return false;
        for (const auto& r : v.GetArray()) {
          if (!r.IsString() || HasNul(Name(r))) return false;
          n->required.emplace_back(Name(r));
        }
      } else if (k == "properties") {
        if (!v.IsObject()) return false;
        n->has_properties = true;
        for (const auto& p : v.GetObject()) {
          if (HasNul(Name(p.name))) return false;
          if (!p.value.IsObject() && !p.value.IsBool()) return false;
          n->properties.emplace_back(std::string(Name(p.name)), nullptr);
        }
      } else if (k == "additionalProperties") {
        n->has_properties = true;
        if (v.IsBool()) {
          n->closed = !v.GetBool();
        } else if (!v.IsObject()) {
          return false;
        }
      } else if (k == "items") {
        if (v.IsArray()) {
          n->linear = true;
        } else if (!v.IsObject() && !v.IsBool()) {
          return false;
        }
      } else if (k == "additionalItems") {
        if (!v.IsObject() && !v.IsBool()) return false;
      } else if (k == "allOf" || k == "anyOf") {
        if (!v.IsArray()) return false;
        for (const auto& c : v.GetArray()) {
          if (!c.IsObject() && !c.IsBool()) return false;
        }
      }
      // Any other keyword is one valijson ignores too (title, description, $defs, reduce, ...).
    }
    // Subschemas, once the node's own keywords are known to be modelled.
    for (const auto& m : s.GetObject()) {
      std::string_view k = Name(m.name);
      const Value& v = m.value;
      std::string at = path + "/" + Escape(k);
      if (k == "properties") {
        size_t i = 0;
        for (const auto& p : v.GetObject()) {
          n->properties[i++].second = Compile(p.value, at + "/" + Escape(Name(p.name)));
        }
      } else if (k == "additionalProperties" && v.IsObject()) {
        n->additional = Compile(v, at);
      } else if (k == "items") {
        if (v.IsArray()) {
          for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            n->item_list.push_back(Compile(v[i], at + "/" + std::to_string(i)));
          }
        } else {
          n->items = Compile(v, at);
        }
      } else if (k == "additionalItems" && n->linear) {
        if (v.IsBool()) {
          n->additional_items_forbidden = !v.GetBool();
        } else {
          n->additional_items = Compile(v, at);
        }
      } else if (k == "allOf" || k == "anyOf") {
        auto& list = k == "allOf" ? n->all_of : n->any_of;
        n->has_any_of = n->has_any_of || k == "anyOf";
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
          list.push_back(Compile(v[i], at + "/" + std::to_string(i)));
        }
      }
    }
    if (n->properties.size() > 16) {
      for (size_t i = 0; i < n->properties.size(); ++i) {
        n->property_index.emplace(n->properties[i].first, i);  // the first of a repeated name
      }
    }
    return true;
  }

  static bool Types(const Value& v, uint8_t* out) {
    auto bit = [](std::string_view t) -> uint8_t {
      if (t == "null") return kNull;
      if (t == "boolean") return kBoolean;
      if (t == "object") return kObject;
      if (t == "array") return kArray;
      if (t == "number") return kNumber;
      if (t == "integer") return kInteger;
      if (t == "string") return kString;
      return 0;
    };
    if (v.IsString()) {
      *out = bit(Name(v));
      return *out != 0;
    }
    if (!v.IsArray()) return false;
    *out = 0;
    for (const auto& t : v.GetArray()) {
      uint8_t b = t.IsString() ? bit(Name(t)) : 0;
      if (!b) return false;
      *out |= b;
    }
    return true;
  }
};

FastCheck::FastCheck() = default;
FastCheck::~FastCheck() = default;

std::unique_ptr<FastCheck> FastCheck::Compile(const rapidjson::Value& bundle,
                                              const DelegateFactory& delegate) {
  std::unique_ptr<FastCheck> f(new FastCheck());
  f->schema_.CopyFrom(bundle, f->schema_.GetAllocator());
  Compiler c{f.get(), delegate, {}, nullptr, nullptr, false};
  c.any = c.NewNode(Node::Kind::kAny);
  c.never = c.NewNode(Node::Kind::kNever);
  f->root_ = c.Compile(f->schema_, "");
  if (c.failed) return nullptr;
  return f;
}

bool FastCheck::Accepts(const rapidjson::Value& v, bool skip_meta) const {
  return Eval(*root_, v, skip_meta && v.IsObject() && v.HasMember("_meta"));
}

bool FastCheck::Eval(const Node& n, const Value& v, bool skip) const {
  switch (n.kind) {
    case Node::Kind::kAny:
      return true;
    case Node::Kind::kNever:
      return false;
    case Node::Kind::kDelegate:
      return !skip && n.delegate && n.delegate(v);
    case Node::Kind::kChecks:
      break;
  }
  if (n.types != kAllTypes) {
    uint8_t bit = v.IsNull()                      ? kNull
                  : v.IsBool()                    ? kBoolean
                  : v.IsObject()                  ? kObject
                  : v.IsArray()                   ? kArray
                  : v.IsString()                  ? kString
                  : (v.IsInt64() || v.IsUint64()) ? uint8_t(kInteger | kNumber)
                                                  : kNumber;
    if (!(n.types & bit)) return false;
  }
  if (n.enum_values || n.const_value) {
    if (skip) return false;
    if (n.const_value && !Equal(*n.const_value, v)) return false;
    if (n.enum_values) {
      bool found = false;
      for (const auto& e : n.enum_values->GetArray()) {
        if ((found = Equal(e, v))) break;
      }
      if (!found) return false;
    }
  }
  if (v.IsNumber()) {
    double d = 0;
    bool need = n.minimum || n.exclusive_minimum || n.maximum || n.exclusive_maximum ||
                n.multiple == Node::Multiple::kDouble;
    if (need && !ToDouble(v, &d)) return false;
    if (n.minimum && d < *n.minimum) return false;
    if (n.exclusive_minimum && d <= *n.exclusive_minimum) return false;
    if (n.maximum && d > *n.maximum) return false;
    if (n.exclusive_maximum && d >= *n.exclusive_maximum) return false;
    if (n.multiple == Node::Multiple::kDouble && d != 0 &&
        std::fabs(std::remainder(d, n.multiple_double)) > std::numeric_limits<double>::epsilon()) {
      return false;
    }
    if (n.multiple == Node::Multiple::kInt) {
      // valijson truncates a double to an integer here: not modelled.
      if (!v.IsInt64()) return false;
      int64_t i = v.GetInt64();
      if (i != 0 && i % n.multiple_int != 0) return false;
    }
  } else if (v.IsString()) {
    if (n.multiple != Node::Multiple::kNone) return false;  // valijson reads numeric strings
    if (n.min_length > 0 || n.max_length != kUnbounded) {
      uint64_t count;
      if (!CodePoints(v, &count) || count < n.min_length || count > n.max_length) return false;
    }
    if (n.pattern &&
        !std::regex_search(v.GetString(), v.GetString() + v.GetStringLength(), *n.pattern)) {
      return false;
    }
  } else if (v.IsObject()) {
    if (n.HasObjectChecks()) {
      uint64_t count = 0;
      // A closed object with a repeated property name is invalid to valijson (it counts
      // names): such an object is "not known" here.
      uint64_t seen_small = 0;
      std::vector<bool> seen_large;
      if (n.closed && n.properties.size() > 64) seen_large.resize(n.properties.size());
      for (const auto& m : v.GetObject()) {
        std::string_view name = Name(m.name);
        if (skip && name == "_meta") continue;
        ++count;
        if (!n.has_properties) continue;
        ptrdiff_t i = n.FindProperty(name);
        if (i >= 0) {
          if (n.closed) {
            if (seen_large.empty()) {
              if (seen_small & (uint64_t{1} << i)) return false;
              seen_small |= uint64_t{1} << i;
            } else {
              if (seen_large[static_cast<size_t>(i)]) return false;
              seen_large[static_cast<size_t>(i)] = true;
            }
          }
          if (!Eval(*n.properties[static_cast<size_t>(i)].second, m.value, false)) return false;
        } else if (n.closed) {
          return false;
        } else if (n.additional && !Eval(*n.additional, m.value, false)) {
          return false;
        }
      }
      if (count < n.min_properties || count > n.max_properties) return false;
      for (const auto& r : n.required) {
        if (skip && r == "_meta") return false;
        if (!v.HasMember(Value(rapidjson::StringRef(r.data(), r.size())))) return false;
      }
    }
  } else if (v.IsArray()) {
    uint64_t size = v.Size();
    if (size < n.min_items || size > n.max_items) return false;
    if (n.items) {
      for (const auto& e : v.GetArray()) {
        if (!Eval(*n.items, e, false)) return false;
      }
    } else if (n.linear) {
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        if (i < n.item_list.size()) {
          if (!Eval(*n.item_list[i], v[i], false)) return false;
        } else if (n.additional_items_forbidden) {
          return false;
        } else if (n.additional_items && !Eval(*n.additional_items, v[i], false)) {
          return false;
        }
      }
    }
  }
  for (const Node* c : n.all_of) {
    if (!Eval(*c, v, skip)) return false;
  }
  if (n.has_any_of) {
    bool one = false;
    for (const Node* c : n.any_of) {
      if ((one = Eval(*c, v, skip))) break;
    }
    if (!one) return false;
  }
  return true;
}

}  // namespace flow::schema
