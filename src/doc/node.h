// Node: a JSON value read from a catalog source, where every value and object key keeps
// the position it was read from, so that checks can say `file:line:col`. Nodes are built
// once by a reader and then only read; they own their children.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "base/diagnostics.h"
#include "doc/pointer.h"

namespace flow::doc {

class Node {
 public:
  enum class Kind : uint8_t { kNull, kBool, kInt, kFloat, kString, kArray, kObject };
  struct Member;

  Node() = default;
  static Node Null(Mark m);
  static Node Bool(bool b, Mark m);
  static Node Int(int64_t i, Mark m);
  // An integer above INT64_MAX (kind kInt; as_int() is not meaningful for it).
  static Node Uint(uint64_t u, Mark m);
  static Node Float(double d, Mark m);
  static Node String(std::string s, Mark m);
  static Node Array(Mark m);
  static Node Object(Mark m);

  Kind kind() const { return kind_; }
  Mark mark() const { return mark_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  bool is_uint() const { return uint_; }
  double as_double() const {
    if (kind_ != Kind::kInt) return float_;
    return uint_ ? static_cast<double>(static_cast<uint64_t>(int_)) : static_cast<double>(int_);
  }
  const std::string& as_string() const { return str_; }

  const std::vector<Node>& items() const { return items_; }
  std::vector<Node>& items() { return items_; }
  const std::vector<Member>& members() const { return members_; }
  std::vector<Member>& members() { return members_; }

  // Object lookup by key (linear; objects in catalogs are small). nullptr if absent.
  const Node* Find(std::string_view key) const;
  const Member* FindMember(std::string_view key) const;
  // Follows a pointer from this node; nullptr if it does not resolve.
  const Node* At(const Pointer& ptr) const;

  // "object", "array", "string", "integer", "number", "boolean" or "null".
  const char* TypeName() const;

  // Deep copy into a RapidJSON value.
  void ToJson(rapidjson::Value* out, rapidjson::Value::AllocatorType& alloc) const;
  // Compact JSON text.
  std::string ToJsonText() const;

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  bool uint_ = false;  // kInt holding a uint64 above INT64_MAX
  Mark mark_;
  int64_t int_ = 0;
  double float_ = 0;
  std::string str_;
  std::vector<Node> items_;
  std::vector<Member> members_;
};

struct Node::Member {
  std::string key;
  Mark key_mark;
  Node value;
};

// Defined once Member is complete (clang, unlike gcc, instantiates the vector's destructor
// for an inline definition in the class).
inline Node Node::Null(Mark m) {
  Node n;
  n.mark_ = m;
  return n;
}

// Deep equality of JSON values (numbers compare by value; object member order ignored).
bool JsonEqual(const Node& a, const Node& b);

// Serialises a RapidJSON value as compact JSON text.
std::string JsonText(const rapidjson::Value& v);

}  // namespace flow::doc
