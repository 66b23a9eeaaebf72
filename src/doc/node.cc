#include "doc/node.h"

#include "doc/value.h"

#include <algorithm>

namespace flow::doc {

Node Node::Bool(bool b, Mark m) { Node n; n.kind_ = Kind::kBool; n.bool_ = b; n.mark_ = m; return n; }
Node Node::Int(int64_t i, Mark m) { Node n; n.kind_ = Kind::kInt; n.int_ = i; n.mark_ = m; return n; }
Node Node::Uint(uint64_t u, Mark m) {
  Node n = Int(static_cast<int64_t>(u), m);
  n.uint_ = u > static_cast<uint64_t>(INT64_MAX);
  return n;
}
Node Node::Float(double d, Mark m) { Node n; n.kind_ = Kind::kFloat; n.float_ = d; n.mark_ = m; return n; }
Node Node::String(std::string s, Mark m) {
  Node n; n.kind_ = Kind::kString; n.str_ = std::move(s); n.mark_ = m; return n;
}
Node Node::Array(Mark m) { Node n; n.kind_ = Kind::kArray; n.mark_ = m; return n; }
Node Node::Object(Mark m) { Node n; n.kind_ = Kind::kObject; n.mark_ = m; return n; }

const Node::Member* Node::FindMember(std::string_view key) const {
  if (kind_ != Kind::kObject) return nullptr;
  for (const auto& m : members_) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

const Node* Node::Find(std::string_view key) const {
  const Member* m = FindMember(key);
  return m ? &m->value : nullptr;
}

const Node* Node::At(const Pointer& ptr) const {
  const Node* n = this;
  for (const auto& t : ptr.tokens()) {
    if (n->is_object()) {
      n = n->Find(t);
    } else if (n->is_array()) {
      auto idx = Pointer::AsIndex(t);
      n = idx && *idx < n->items_.size() ? &n->items_[*idx] : nullptr;
    } else {
      n = nullptr;
    }
    if (!n) return nullptr;
  }
  return n;
}

const char* Node::TypeName() const {
  switch (kind_) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "boolean";
    case Kind::kInt: return "integer";
    case Kind::kFloat: return "number";
    case Kind::kString: return "string";
    case Kind::kArray: return "array";
    case Kind::kObject: return "object";
  }
  return "?";
}

void Node::ToJson(rapidjson::Value* out, rapidjson::Value::AllocatorType& alloc) const {
  switch (kind_) {
    case Kind::kNull: out->SetNull(); break;
    case Kind::kBool: out->SetBool(bool_); break;
    case Kind::kInt:
      if (uint_) {
        out->SetUint64(static_cast<uint64_t>(int_));
      } else {
        out->SetInt64(int_);
      }
      break;
    case Kind::kFloat: out->SetDouble(float_); break;
    case Kind::kString:
      out->SetString(str_.data(), static_cast<rapidjson::SizeType>(str_.size()), alloc);
      break;
    case Kind::kArray:
      out->SetArray();
      out->Reserve(static_cast<rapidjson::SizeType>(items_.size()), alloc);
      for (const auto& i : items_) {
        rapidjson::Value v;
        i.ToJson(&v, alloc);
        out->PushBack(v, alloc);
      }
      break;
    case Kind::kObject:
      out->SetObject();
      for (const auto& m : members_) {
        rapidjson::Value k(m.key.data(), static_cast<rapidjson::SizeType>(m.key.size()), alloc);
        rapidjson::Value v;
        m.value.ToJson(&v, alloc);
        out->AddMember(k, v, alloc);
      }
      break;
  }
}

std::string JsonText(const rapidjson::Value& v) {
  std::string out;
  AppendJson(v, &out);
  return out;
}

std::string Node::ToJsonText() const {
  rapidjson::Document d;
  ToJson(&d, d.GetAllocator());
  return JsonText(d);
}

bool JsonEqual(const Node& a, const Node& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() == b.as_int() && a.is_uint() == b.is_uint();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Node::Kind::kNull: return true;
    case Node::Kind::kBool: return a.as_bool() == b.as_bool();
    case Node::Kind::kString: return a.as_string() == b.as_string();
    case Node::Kind::kArray:
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!JsonEqual(a.items()[i], b.items()[i])) return false;
      }
      return true;
    case Node::Kind::kObject:
      if (a.members().size() != b.members().size()) return false;
      for (const auto& m : a.members()) {
        const Node* o = b.Find(m.key);
        if (!o || !JsonEqual(m.value, *o)) return false;
      }
      return true;
    default: return false;
  }
}

}  // namespace flow::doc
