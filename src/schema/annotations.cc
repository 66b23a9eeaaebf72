#include "schema/annotations.h"

#include <fmt/format.h>
#include <rapidjson/pointer.h>

#include <algorithm>
#include <atomic>
#include <map>

#include "base/strings.h"
#include "schema/bundle.h"
#include "schema/validator.h"

namespace flow::schema {

const char* StrategyName(Strategy s) {
  switch (s) {
    case Strategy::kLastWriteWins: return "lastWriteWins";
    case Strategy::kFirstWriteWins: return "firstWriteWins";
    case Strategy::kAppend: return "append";
    case Strategy::kSum: return "sum";
    case Strategy::kMinimize: return "minimize";
    case Strategy::kMaximize: return "maximize";
    case Strategy::kMerge: return "merge";
    case Strategy::kSet: return "set";
  }
  return "?";
}

const SchemaNode* SchemaNode::FindProperty(std::string_view name) const {
  auto it = std::lower_bound(properties.begin(), properties.end(), name,
                             [](const auto& p, std::string_view n) { return CompareBytes(p.first, n) < 0; });
  return it != properties.end() && SameBytes(it->first, name) ? it->second : nullptr;
}

void Applied::Push(const SchemaNode* node) {
  if (n_ < kInline) {
    inline_[n_] = node;
  } else {
    more_.push_back(node);
  }
  ++n_;
}

bool Applied::Contains(const SchemaNode* node) const {
  for (size_t i = 0; i < n_; ++i) {
    if ((*this)[i] == node) return true;
  }
  return false;
}

const ReduceSpec* Applied::Reduce() const {
  for (size_t i = 0; i < n_; ++i) {
    if ((*this)[i]->reduce) return (*this)[i]->reduce.get();
  }
  return nullptr;
}

bool Applied::HasSet() const {
  for (size_t i = 0; i < n_; ++i) {
    if ((*this)[i]->has_set) return true;
  }
  return false;
}

namespace {

std::optional<Strategy> ParseStrategy(std::string_view s) {
  static const std::pair<const char*, Strategy> kNames[] = {
      {"lastWriteWins", Strategy::kLastWriteWins}, {"firstWriteWins", Strategy::kFirstWriteWins},
      {"append", Strategy::kAppend},               {"sum", Strategy::kSum},
      {"minimize", Strategy::kMinimize},           {"maximize", Strategy::kMaximize},
      {"merge", Strategy::kMerge},                 {"set", Strategy::kSet},
  };
  for (const auto& [name, strategy] : kNames) {
    if (s == name) return strategy;
  }
  return std::nullopt;
}

}  // namespace

struct Annotations::Impl {
  rapidjson::Document bundle;
  std::map<std::string, std::unique_ptr<SchemaNode>> nodes;
  SchemaNode* root = nullptr;
  std::string error;

  SchemaNode* Node(const std::string& location, const rapidjson::Value& json);
  SchemaNode* Ref(const std::string& ref);
  void Derive();
  Result<bool> CompileBranches();
  bool Valid(const Branch& b, const rapidjson::Value& v, bool at_root) const;
  void Expand(size_t from, const rapidjson::Value& v, bool at_root, Applied* out) const;
  std::string SourceOf(const SchemaNode* n) const;
};

SchemaNode* Annotations::Impl::Ref(const std::string& ref) {
  if (ref.empty() || ref[0] != '#') return nullptr;
  std::string ptr = ref.substr(1);
  rapidjson::Pointer p(ptr.c_str(), ptr.size());
  const rapidjson::Value* target = p.IsValid() ? p.Get(bundle) : nullptr;
  return target ? Node(ptr, *target) : nullptr;
}

SchemaNode* Annotations::Impl::Node(const std::string& location, const rapidjson::Value& json) {
  if (auto it = nodes.find(location); it != nodes.end()) return it->second.get();
  auto owned = std::make_unique<SchemaNode>();
  SchemaNode* n = owned.get();
  nodes.emplace(location, std::move(owned));
  n->location = location;
  n->json = &json;
  if (!json.IsObject()) return n;
  auto child = [&](std::string_view keyword, const rapidjson::Value& v) {
    return Node(location + "/" + std::string(keyword), v);
  };
  for (const auto& m : json.GetObject()) {
    std::string_view k(m.name.GetString(), m.name.GetStringLength());
    const rapidjson::Value& v = m.value;
    if (k == "reduce" && v.IsObject()) {
      auto strategy = v.HasMember("strategy") && v["strategy"].IsString()
                          ? ParseStrategy(v["strategy"].GetString())
                          : std::nullopt;
      if (!strategy) {
        error = fmt::format("malformed `reduce` at {}", location);
        continue;
      }
      n->reduce = std::make_unique<ReduceSpec>();
      n->reduce->strategy = *strategy;
      if (v.HasMember("key") && v["key"].IsArray()) {
        for (const auto& p : v["key"].GetArray()) {
          std::string why;
          auto ptr = p.IsString() ? doc::Pointer::Parse(p.GetString(), &why) : std::nullopt;
          if (!ptr) {
            error = fmt::format("malformed `reduce.key` at {}", location);
            continue;
          }
          n->reduce->key.push_back(*ptr);
        }
      }
    } else if (k == "properties" && v.IsObject()) {
      for (const auto& p : v.GetObject()) {
        std::string name(p.name.GetString(), p.name.GetStringLength());
        n->properties.emplace_back(name, child("properties/" + doc::Pointer::Escape(name), p.value));
      }
      std::sort(n->properties.begin(), n->properties.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
    } else if (k == "patternProperties" && v.IsObject()) {
      for (const auto& p : v.GetObject()) {
        std::string pattern(p.name.GetString(), p.name.GetStringLength());
        try {
          n->patterns.emplace_back(std::regex(pattern, std::regex::ECMAScript),
                                   child("patternProperties/" + doc::Pointer::Escape(pattern), p.value));
        } catch (const std::regex_error&) {
          error = fmt::format("invalid regex `{}` at {}/patternProperties", pattern, location);
        }
      }
    } else if (k == "additionalProperties") {
      n->additional = child(k, v);
    } else if (k == "items") {
      if (v.IsArray()) {
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
          n->tuple.push_back(child("items/" + std::to_string(i), v[i]));
        }
      } else {
        n->items = child(k, v);
      }
    } else if (k == "$ref" && v.IsString()) {
      n->ref = Ref(v.GetString());
    } else if ((k == "allOf" || k == "anyOf" || k == "oneOf") && v.IsArray()) {
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        SchemaNode* c = child(std::string(k) + "/" + std::to_string(i), v[i]);
        if (k == "allOf") {
          n->all_of.push_back(c);
        } else {
          (k == "anyOf" ? n->any_of : n->one_of).push_back(Branch{c, nullptr});
        }
      }
    } else if (k == "if") {
      n->if_.node = child(k, v);
    } else if (k == "then") {
      n->then_ = child(k, v);
    } else if (k == "else") {
      n->else_ = child(k, v);
    }
  }
  // `additionalItems` applies only beside a tuple `items`.
  if (!n->tuple.empty()) {
    if (auto it = json.FindMember("additionalItems"); it != json.MemberEnd()) {
      n->items = child("additionalItems", it->value);
    }
  }
  n->simple = !n->ref && n->all_of.empty() && n->any_of.empty() && n->one_of.empty() && !n->if_.node;
  return n;
}

void Annotations::Impl::Derive() {
  for (bool changed = true; changed;) {
    changed = false;
    for (auto& [_, owned] : nodes) {
      SchemaNode* n = owned.get();
      bool r = n->has_reduce, s = n->has_set;
      auto see = [&](const SchemaNode* c) {
        if (!c) return;
        r = r || c->has_reduce;
        s = s || c->has_set;
      };
      if (n->reduce) {
        r = true;
        s = s || n->reduce->strategy == Strategy::kSet;
      }
      for (const auto& [_, c] : n->properties) see(c);
      for (const auto& [_, c] : n->patterns) see(c);
      for (const auto* c : n->tuple) see(c);
      for (const auto* c : n->all_of) see(c);
      for (const auto& b : n->any_of) see(b.node);
      for (const auto& b : n->one_of) see(b.node);
      see(n->additional);
      see(n->items);
      see(n->ref);
      see(n->if_.node);
      see(n->then_);
      see(n->else_);
      if (r != n->has_reduce || s != n->has_set) {
        n->has_reduce = r;
        n->has_set = s;
        changed = true;
      }
    }
  }
}

Result<bool> Annotations::Impl::CompileBranches() {
  auto compile = [&](Branch& b) -> Result<bool> {
    rapidjson::Document d;
    d.SetObject();
    auto& a = d.GetAllocator();
    d.AddMember("$ref", rapidjson::Value(("#" + b.node->location).c_str(), a), a);
    d.AddMember("$defs", rapidjson::Value(bundle["$defs"], a), a);
    auto v = Validator::Compile(d);
    if (!v) return v.error();
    b.validator = std::move(v.value());
    return true;
  };
  for (auto& [_, owned] : nodes) {
    SchemaNode* n = owned.get();
    for (auto* list : {&n->any_of, &n->one_of}) {
      for (auto& b : *list) {
        if (b.node->has_reduce) {
          if (auto r = compile(b); !r) return r.error();
        }
      }
    }
    bool conditional = (n->then_ && n->then_->has_reduce) || (n->else_ && n->else_->has_reduce) ||
                       (n->if_.node && n->if_.node->has_reduce);
    if (n->if_.node && conditional) {
      if (auto r = compile(n->if_); !r) return r.error();
    }
  }
  return true;
}

bool Annotations::Impl::Valid(const Branch& b, const rapidjson::Value& v, bool at_root) const {
  if (at_root && v.IsObject() && v.HasMember("_meta")) {
    rapidjson::Document copy;
    copy.SetObject();
    for (const auto& m : v.GetObject()) {
      if (m.name == "_meta") continue;
      copy.AddMember(rapidjson::Value(m.name, copy.GetAllocator()),
                     rapidjson::Value(m.value, copy.GetAllocator()), copy.GetAllocator());
    }
    return b.validator->IsValid(copy);
  }
  return b.validator->IsValid(v);
}

void Annotations::Impl::Expand(size_t from, const rapidjson::Value& v, bool at_root, Applied* out) const {
  for (size_t i = from; i < out->size(); ++i) {
    const SchemaNode* n = (*out)[i];
    if (n->simple) continue;
    auto add = [&](const SchemaNode* c) {
      if (c && !out->Contains(c)) out->Push(c);
    };
    add(n->ref);
    for (const auto* c : n->all_of) add(c);
    for (const auto* list : {&n->any_of, &n->one_of}) {
      for (const auto& b : *list) {
        if (b.validator && Valid(b, v, at_root)) add(b.node);
      }
    }
    if (n->if_.validator) {
      if (Valid(n->if_, v, at_root)) {
        add(n->if_.node);
        add(n->then_);
      } else {
        add(n->else_);
      }
    }
  }
}

std::string Annotations::Impl::SourceOf(const SchemaNode* n) const {
  // Locations look like /$defs/sN/rest; each def records where it was declared.
  const std::string prefix = "/$defs/";
  if (n->location.compare(0, prefix.size(), prefix) != 0) return "#" + n->location;
  size_t end = n->location.find('/', prefix.size());
  std::string def = n->location.substr(prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
  std::string rest = end == std::string::npos ? "" : n->location.substr(end);
  const auto& defs = bundle["$defs"];
  auto it = defs.FindMember(def.c_str());
  if (it == defs.MemberEnd() || !it->value.IsObject() || !it->value.HasMember("x-flow-source")) {
    return "#" + n->location;
  }
  return std::string(it->value["x-flow-source"].GetString()) + rest;
}

Annotations::Annotations() : impl_(std::make_unique<Impl>()) {
  static std::atomic<uint64_t> ids{0};
  id_ = ++ids;
}
Annotations::~Annotations() = default;

Result<std::shared_ptr<const Annotations>> Annotations::Compile(const rapidjson::Value& bundle) {
  if (std::string cycle = FindInPlaceRefCycle(bundle); !cycle.empty()) {
    return Error::User(
        fmt::format("a $ref cycle consumes no input ({}), so validating would never end; build the "
                    "catalog again with this version of flowctl, which reports where",
                    cycle));
  }
  std::shared_ptr<Annotations> a(new Annotations());
  Impl& impl = *a->impl_;
  impl.bundle.CopyFrom(bundle, impl.bundle.GetAllocator());
  if (!impl.bundle.IsObject() || !impl.bundle.HasMember("$defs") || !impl.bundle.HasMember("$ref") ||
      !impl.bundle["$ref"].IsString()) {
    return Error::User("a schema bundle must have `$ref` and `$defs`");
  }
  impl.root = impl.Ref(impl.bundle["$ref"].GetString());
  if (!impl.root) return Error::User("the schema bundle's root `$ref` does not resolve");
  if (!impl.error.empty()) return Error::User(impl.error);
  impl.Derive();
  if (auto r = impl.CompileBranches(); !r) return r.error();
  return std::shared_ptr<const Annotations>(std::move(a));
}

void Annotations::Root(const rapidjson::Value& v, Applied* out) const {
  out->Clear();
  out->Push(impl_->root);
  impl_->Expand(0, v, /*at_root=*/true, out);
}

bool Annotations::AnySet() const { return impl_->root->has_set; }

void Annotations::Property(const Applied& parent, std::string_view name, const rapidjson::Value& child,
                           Applied* out) const {
  Named(parent, name, out);
  ExpandNamed(child, out);
}

void Annotations::ExpandNamed(const rapidjson::Value& child, Applied* named) const {
  impl_->Expand(0, child, /*at_root=*/false, named);
}

void Annotations::Named(const Applied& parent, std::string_view name, Applied* out) const {
  out->Clear();
  for (size_t i = 0; i < parent.size(); ++i) {
    const SchemaNode* n = parent[i];
    bool matched = false;
    if (const SchemaNode* p = n->FindProperty(name)) {
      matched = true;
      if (!out->Contains(p)) out->Push(p);
    }
    if (!n->patterns.empty()) {
      std::string s(name);
      for (const auto& [re, p] : n->patterns) {
        if (std::regex_search(s, re)) {
          matched = true;
          if (!out->Contains(p)) out->Push(p);
        }
      }
    }
    if (!matched && n->additional && !out->Contains(n->additional)) out->Push(n->additional);
  }
}

void Annotations::Item(const Applied& parent, size_t index, const rapidjson::Value& child,
                       Applied* out) const {
  out->Clear();
  for (size_t i = 0; i < parent.size(); ++i) {
    const SchemaNode* n = parent[i];
    const SchemaNode* c = index < n->tuple.size() ? n->tuple[index] : n->items;
    if (c && !out->Contains(c)) out->Push(c);
  }
  impl_->Expand(0, child, /*at_root=*/false, out);
}

std::string Annotations::KeywordLocation(const doc::Pointer& ptr, std::string_view keyword,
                                         const rapidjson::Value** keyword_value) const {
  // Every schema that could apply, ignoring whether branches validate.
  std::vector<const SchemaNode*> set{impl_->root};
  auto close = [](std::vector<const SchemaNode*>* s) {
    for (size_t i = 0; i < s->size(); ++i) {
      const SchemaNode* n = (*s)[i];
      auto add = [&](const SchemaNode* c) {
        if (c && std::find(s->begin(), s->end(), c) == s->end()) s->push_back(c);
      };
      add(n->ref);
      for (const auto* c : n->all_of) add(c);
      for (const auto& b : n->any_of) add(b.node);
      for (const auto& b : n->one_of) add(b.node);
      add(n->if_.node);
      add(n->then_);
      add(n->else_);
    }
  };
  close(&set);
  for (const auto& token : ptr.tokens()) {
    std::vector<const SchemaNode*> next;
    auto add = [&](const SchemaNode* c) {
      if (c && std::find(next.begin(), next.end(), c) == next.end()) next.push_back(c);
    };
    auto index = doc::Pointer::AsIndex(token);
    for (const SchemaNode* n : set) {
      bool matched = false;
      if (const SchemaNode* p = n->FindProperty(token)) {
        matched = true;
        add(p);
      }
      for (const auto& [re, p] : n->patterns) {
        if (std::regex_search(token, re)) {
          matched = true;
          add(p);
        }
      }
      if (!matched) add(n->additional);
      if (index) add(*index < n->tuple.size() ? n->tuple[*index] : n->items);
    }
    set = std::move(next);
    close(&set);
  }
  for (const SchemaNode* n : set) {
    if (!n->json->IsObject()) continue;
    auto it = n->json->FindMember(rapidjson::StringRef(keyword.data(), keyword.size()));
    if (it != n->json->MemberEnd()) {
      if (keyword_value) *keyword_value = &it->value;
      return impl_->SourceOf(n) + "/" + std::string(keyword);
    }
  }
  return "";
}

}  // namespace flow::schema
