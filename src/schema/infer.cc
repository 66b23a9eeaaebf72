#include "schema/infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>

// Non-obvious details:
// - A property is required when it is present in every object seen at its parent location
//   (a null value counts as present: the type becomes nullable instead).
// - Integers and other numbers are told apart by the parsed value (doc::IsInteger): a
//   location that held both is `number`, which JSON Schema defines to include integers.
// - Key uniqueness is checked on 64-bit hashes of each candidate's compact JSON text, one
//   per document, kept in a vector per candidate (8 bytes a row) and sorted at the end; a
//   pair's hash combines its members' hashes of the same row. A collision would only make
//   a unique column look duplicated (a safe mistake) and has a ~2^-64 chance per pair.

namespace flow::schema {

struct SchemaInferrer::Node {
  uint8_t types = 0;
  uint64_t values = 0;  // values seen at this location
  // Strings.
  uint64_t strings = 0;
  bool date_time = true, date = true, uuid = true, email = true;
  std::vector<std::string> distinct;  // at most max_enum_values + 1 distinct strings
  bool enum_overflow = false;
  // Objects: properties in order of first appearance.
  uint64_t objects = 0;
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> properties;
  std::map<std::string, size_t, std::less<>> index;
  std::unique_ptr<Node> additional;  // names beyond max_properties
  // Arrays.
  std::unique_ptr<Node> items;
};

struct SchemaInferrer::Candidate {
  std::string name;
  bool alive = true;  // present, as an integer or a string, in every document so far
  uint8_t types = 0;
  std::vector<uint64_t> hashes;  // one per document, up to max_key_rows
};

namespace {

using Node = SchemaInferrer::Node;

bool Digits(std::string_view s, size_t at, size_t n) {
  if (at + n > s.size()) return false;
  for (size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}
int Num(std::string_view s, size_t at, size_t n) {
  int v = 0;
  for (size_t i = at; i < at + n; ++i) v = v * 10 + (s[i] - '0');
  return v;
}
bool Hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void Observe(Node& n, const doc::Value& v, const InferLimits& limits) {
  ++n.values;
  if (v.IsNull()) {
    n.types |= kNull;
  } else if (v.IsBool()) {
    n.types |= kBoolean;
  } else if (v.IsNumber()) {
    n.types |= doc::IsInteger(v) ? kInteger : kNumber;
  } else if (v.IsString()) {
    n.types |= kString;
    ++n.strings;
    std::string_view s(v.GetString(), v.GetStringLength());
    if (n.date_time) n.date_time = SchemaInferrer::IsDateTime(s);
    if (n.date) n.date = SchemaInferrer::IsDate(s);
    if (n.uuid) n.uuid = SchemaInferrer::IsUuid(s);
    if (n.email) n.email = SchemaInferrer::IsEmail(s);
    if (!n.enum_overflow) {
      if (s.size() > limits.max_enum_length) {
        n.enum_overflow = true;
      } else if (std::find(n.distinct.begin(), n.distinct.end(), s) == n.distinct.end()) {
        n.distinct.emplace_back(s);
        if (n.distinct.size() > limits.max_enum_values) n.enum_overflow = true;
      }
      if (n.enum_overflow) n.distinct.clear();
    }
  } else if (v.IsObject()) {
    n.types |= kObject;
    ++n.objects;
    for (const auto& m : v.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      Node* child;
      auto it = n.index.find(name);
      if (it != n.index.end()) {
        child = n.properties[it->second].second.get();
      } else if (n.properties.size() < limits.max_properties) {
        n.index.emplace(std::string(name), n.properties.size());
        n.properties.emplace_back(std::string(name), std::make_unique<Node>());
        child = n.properties.back().second.get();
      } else {
        if (!n.additional) n.additional = std::make_unique<Node>();
        child = n.additional.get();
      }
      Observe(*child, m.value, limits);
    }
  } else if (v.IsArray()) {
    n.types |= kArray;
    for (const auto& item : v.GetArray()) {
      if (!n.items) n.items = std::make_unique<Node>();
      Observe(*n.items, item, limits);
    }
  }
}

// JSON Schema `type` names: `number` covers integers, so integer+number is `number`.
std::vector<std::string> SchemaTypeNames(uint8_t types) {
  if (types & kNumber) types &= ~kInteger;
  std::vector<std::string> names;
  if (types & kArray) names.push_back("array");
  if (types & kBoolean) names.push_back("boolean");
  if (types & kInteger) names.push_back("integer");
  if (types & kNumber) names.push_back("number");
  if (types & kObject) names.push_back("object");
  if (types & kString) names.push_back("string");
  if (types & kNull) names.push_back("null");
  return names;
}

std::string TypeText(uint8_t types) {
  auto names = SchemaTypeNames(types);
  if (names.empty()) return "(nothing)";
  if (names.size() == 1) return names[0];
  return "[" + fmt::format("{}", fmt::join(names, ", ")) + "]";
}

void SetString(rapidjson::Value& obj, const char* key, std::string_view s, doc::Allocator& a) {
  obj.AddMember(rapidjson::Value(key, a),
                rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a), a);
}

rapidjson::Value SchemaOf(const Node& n, const InferLimits& limits, doc::Allocator& a) {
  rapidjson::Value s(rapidjson::kObjectType);
  auto names = SchemaTypeNames(n.types);
  if (names.size() == 1) {
    SetString(s, "type", names[0], a);
  } else if (!names.empty()) {
    rapidjson::Value list(rapidjson::kArrayType);
    for (const auto& t : names) list.PushBack(rapidjson::Value(t.c_str(), a), a);
    s.AddMember("type", list, a);
  }
  if (n.strings > 0) {
    const char* format = n.date_time ? "date-time"
                         : n.date    ? "date"
                         : n.uuid    ? "uuid"
                         : n.email   ? "email"
                                     : nullptr;
    if (format) {
      SetString(s, "format", format, a);
    } else if ((n.types & ~kNull) == kString && !n.enum_overflow &&
               n.strings >= limits.min_enum_values && !n.distinct.empty()) {
      std::vector<std::string> values = n.distinct;
      std::sort(values.begin(), values.end());
      rapidjson::Value list(rapidjson::kArrayType);
      for (const auto& v : values) {
        list.PushBack(rapidjson::Value(v.data(), static_cast<rapidjson::SizeType>(v.size()), a), a);
      }
      if (n.types & kNull) list.PushBack(rapidjson::Value(), a);
      s.AddMember("enum", list, a);
    }
  }
  if (!n.properties.empty()) {
    rapidjson::Value props(rapidjson::kObjectType);
    rapidjson::Value required(rapidjson::kArrayType);
    for (const auto& [name, child] : n.properties) {
      props.AddMember(
          rapidjson::Value(name.data(), static_cast<rapidjson::SizeType>(name.size()), a),
          SchemaOf(*child, limits, a), a);
      if (child->values == n.objects) {
        required.PushBack(
            rapidjson::Value(name.data(), static_cast<rapidjson::SizeType>(name.size()), a), a);
      }
    }
    s.AddMember("properties", props, a);
    if (!required.Empty()) s.AddMember("required", required, a);
  }
  if (n.additional) s.AddMember("additionalProperties", SchemaOf(*n.additional, limits, a), a);
  if (n.items) s.AddMember("items", SchemaOf(*n.items, limits, a), a);
  return s;
}

void Widen(const Node& n, const Shape& shape, const std::string& path,
           std::vector<std::string>* out) {
  uint8_t observed = n.types;
  if (observed & ~shape.types) {
    out->push_back(fmt::format("{}/type: {} → {}", path, TypeText(shape.types),
                               TypeText(shape.types | observed)));
  }
  if (observed & kObject) {
    std::vector<std::string> dropped;
    for (const auto& p : shape.properties) {
      if (!p.required) continue;
      auto it = n.index.find(p.name);
      uint64_t present = it == n.index.end() ? 0 : n.properties[it->second].second->values;
      if (present < n.objects) dropped.push_back(p.name);
    }
    if (!dropped.empty()) {
      std::vector<std::string> kept;
      for (const auto& p : shape.properties) {
        if (p.required && std::find(dropped.begin(), dropped.end(), p.name) == dropped.end())
          kept.push_back(p.name);
      }
      out->push_back(
          fmt::format("{}/required: `{}` is missing from some documents: drop it (required: [{}])",
                      path, fmt::join(dropped, "`, `"), fmt::join(kept, ", ")));
    }
    auto visit = [&](const std::string& name, const Node& child) {
      std::string child_path = fmt::format("{}/properties/{}", path, doc::Pointer::Escape(name));
      if (const Shape::Property* p = shape.FindProperty(name)) {
        if (p->shape) Widen(child, *p->shape, child_path, out);
        return;
      }
      if (!shape.patterns.empty()) return;  // not compared: a pattern may admit it
      if (!shape.additional) return;        // anything goes
      if (shape.additional->types == 0) {
        out->push_back(fmt::format("{}: (not allowed) → add the property, type {}", child_path,
                                   TypeText(child.types)));
        return;
      }
      Widen(child, *shape.additional, fmt::format("{}/additionalProperties", path), out);
    };
    for (const auto& [name, child] : n.properties) visit(name, *child);
  }
  if ((observed & kArray) && n.items) {
    if (shape.items) {
      Widen(*n.items, *shape.items, path + "/items", out);
    }
  }
}

size_t IdRank(const std::string& name) {
  std::string lower;
  for (char c : name)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "id") return 0;
  if (lower.ends_with("_id") || lower.ends_with("-id") || lower.ends_with(" id") ||
      name.ends_with("Id") || lower.ends_with("uuid") || lower == "key" ||
      lower.ends_with("_key")) {
    return 1;
  }
  return 2;
}

bool Unique(std::vector<uint64_t> hashes) {
  std::sort(hashes.begin(), hashes.end());
  return std::adjacent_find(hashes.begin(), hashes.end()) == hashes.end();
}

std::string Rows(uint64_t n) {
  // 2000 -> "2,000"
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace

SchemaInferrer::SchemaInferrer(InferLimits limits)
    : limits_(limits), root_(std::make_unique<Node>()) {}
SchemaInferrer::~SchemaInferrer() = default;

uint64_t SchemaInferrer::documents() const { return documents_; }

void SchemaInferrer::Add(const doc::Value& document) {
  Observe(*root_, document, limits_);
  if (documents_ == 0 && document.IsObject()) {
    for (const auto& m : document.GetObject()) {
      if (candidates_.size() == limits_.max_key_candidates) break;
      candidates_.push_back(
          {std::string(m.name.GetString(), m.name.GetStringLength()), true, 0, {}});
    }
  }
  ++documents_;
  std::string text;
  for (auto& c : candidates_) {
    if (!c.alive) continue;
    const doc::Value* v = nullptr;
    if (document.IsObject()) {
      auto it =
          document.FindMember(rapidjson::Value(rapidjson::StringRef(c.name.data(), c.name.size())));
      if (it != document.MemberEnd()) v = &it->value;
    }
    if (!v || !(v->IsString() || (v->IsNumber() && doc::IsInteger(*v)))) {
      c.alive = false;
      c.hashes = {};
      continue;
    }
    c.types |= v->IsString() ? kString : kInteger;
    if (c.hashes.size() < limits_.max_key_rows) {
      text.clear();
      doc::AppendJson(*v, &text);
      c.hashes.push_back(std::hash<std::string>{}(text));
    }
  }
}

void SchemaInferrer::WriteSchema(rapidjson::Document* out) const {
  rapidjson::Value s = SchemaOf(*root_, limits_, out->GetAllocator());
  static_cast<rapidjson::Value&>(*out) = s;  // moves
}

KeySuggestion SchemaInferrer::SuggestKey() const {
  KeySuggestion k;
  std::vector<const Candidate*> alive;
  for (const auto& c : candidates_) {
    if (c.alive) alive.push_back(&c);
  }
  auto node_of = [&](const Candidate& c) -> const Node* {
    auto it = root_->index.find(c.name);
    return it == root_->index.end() ? nullptr : root_->properties[it->second].second.get();
  };
  // Id-like names first, then UUIDs and integers, then the order of the columns.
  auto rank = [&](const Candidate& c) {
    const Node* n = node_of(c);
    bool uuid = n && n->strings && n->uuid;
    return std::tuple(IdRank(c.name), uuid ? 0 : c.types == kInteger ? 1 : 2);
  };
  std::stable_sort(alive.begin(), alive.end(),
                   [&](const Candidate* a, const Candidate* b) { return rank(*a) < rank(*b); });
  if (alive.empty()) {
    k.explanation = documents_ == 0
                        ? "there are no documents to choose a key from"
                        : "no top-level property holds a string or an integer in every document";
    return k;
  }
  uint64_t checked = std::min<uint64_t>(documents_, limits_.max_key_rows);
  std::string over =
      documents_ > checked
          ? fmt::format("the first {} of the {} documents", Rows(checked), Rows(documents_))
          : fmt::format("the {} document{}", Rows(documents_), documents_ == 1 ? "" : "s");
  auto kind = [](const Candidate& c) {
    return c.types == kInteger  ? "an integer"
           : c.types == kString ? "a string"
                                : "an integer or a string";
  };
  auto ptr = [](const Candidate& c) { return "/" + doc::Pointer::Escape(c.name); };
  for (const Candidate* c : alive) {
    if (Unique(c->hashes)) {
      k.pointers = {ptr(*c)};
      k.unique = true;
      k.explanation = fmt::format("`{}`: present in every document, unique over {}, {}", ptr(*c),
                                  over, kind(*c));
      return k;
    }
  }
  for (size_t i = 0; i < alive.size(); ++i) {
    for (size_t j = i + 1; j < alive.size(); ++j) {
      const auto &a = alive[i]->hashes, &b = alive[j]->hashes;
      std::vector<uint64_t> pair(a.size());
      for (size_t r = 0; r < a.size(); ++r)
        pair[r] = a[r] * 0x9E3779B97F4A7C15ull ^ (b[r] + 0x632BE59BD9B4E019ull);
      if (Unique(std::move(pair))) {
        k.pointers = {ptr(*alive[i]), ptr(*alive[j])};
        k.unique = true;
        k.explanation = fmt::format(
            "no single property is unique; `{}` and `{}` together are: present in every document, "
            "unique over {}",
            ptr(*alive[i]), ptr(*alive[j]), over);
        return k;
      }
    }
  }
  k.pointers = {ptr(*alive[0])};
  k.explanation = fmt::format(
      "no property, nor pair of properties, is unique over {}; `{}` is present in every document, "
      "but documents "
      "with equal keys are combined into one (by default the last one wins)",
      over, ptr(*alive[0]));
  return k;
}

std::vector<std::string> SchemaInferrer::Widenings(const Shape& shape) const {
  std::vector<std::string> out;
  if (documents_) Widen(*root_, shape, "", &out);
  return out;
}

bool SchemaInferrer::IsDate(std::string_view s) {
  if (s.size() != 10 || !Digits(s, 0, 4) || s[4] != '-' || !Digits(s, 5, 2) || s[7] != '-' ||
      !Digits(s, 8, 2)) {
    return false;
  }
  int y = Num(s, 0, 4), m = Num(s, 5, 2), d = Num(s, 8, 2);
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return !(m == 2 && d == 29 && !leap);
}

bool SchemaInferrer::IsDateTime(std::string_view s) {
  // full-date "T" HH:MM:SS [.frac] (Z | +HH:MM | -HH:MM)
  if (s.size() < 20 || !IsDate(s.substr(0, 10)) || (s[10] != 'T' && s[10] != 't')) return false;
  if (!Digits(s, 11, 2) || s[13] != ':' || !Digits(s, 14, 2) || s[16] != ':' || !Digits(s, 17, 2))
    return false;
  if (Num(s, 11, 2) > 23 || Num(s, 14, 2) > 59 || Num(s, 17, 2) > 60) return false;
  size_t i = 19;
  if (s[i] == '.') {
    size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == s.size();
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    return i + 6 == s.size() && Digits(s, i + 1, 2) && s[i + 3] == ':' && Digits(s, i + 4, 2) &&
           Num(s, i + 1, 2) <= 23 && Num(s, i + 4, 2) <= 59;
  }
  return false;
}

bool SchemaInferrer::IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !Hex(s[i])) return false;
  }
  return true;
}

bool SchemaInferrer::IsEmail(std::string_view s) {
  size_t at = s.find('@');
  if (at == 0 || at == std::string_view::npos || s.size() > 254) return false;
  std::string_view local = s.substr(0, at), domain = s.substr(at + 1);
  if (local.size() > 64 || local.front() == '.' || local.back() == '.' ||
      local.find("..") != std::string_view::npos)
    return false;
  for (char c : local) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) ||
              std::string_view("!#$%&'*+/=?^_`{|}~.-").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  // Labels of letters, digits and hyphens (not at their ends), at least two of them.
  size_t labels = 0;
  while (true) {
    size_t dot = domain.find('.');
    std::string_view label = domain.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    ++labels;
    if (dot == std::string_view::npos) break;
    domain.remove_prefix(dot + 1);
  }
  return labels >= 2;
}

}  // namespace flow::schema
