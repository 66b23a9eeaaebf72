// Annotations: a schema bundle (see bundle.h) compiled into a graph that answers, for a
// location of a concrete document, which schemas apply there and therefore which
// reduction strategy governs it (SPEC section 2, docs/reductions.md). Conditional
// branches (anyOf/oneOf/if) apply only when the value validates against them; those
// checks run through valijson and only for branches that contain a `reduce`.
//
// The graph also locates the schema keyword behind a validation error, for messages.
#pragma once

#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "base/result.h"
#include "doc/pointer.h"

namespace flow::schema {

class Validator;

enum class Strategy : uint8_t {
  kLastWriteWins,
  kFirstWriteWins,
  kAppend,
  kSum,
  kMinimize,
  kMaximize,
  kMerge,
  kSet,
};
const char* StrategyName(Strategy s);

struct ReduceSpec {
  Strategy strategy = Strategy::kLastWriteWins;
  std::vector<doc::Pointer> key;  // minimize/maximize/merge/set
};

struct SchemaNode;

// A conditional branch: applies when the value validates against `node`.
struct Branch {
  SchemaNode* node = nullptr;
  mutable std::shared_ptr<Validator> validator;  // compiled on first use
};

struct SchemaNode {
  std::string location;                 // JSON pointer of this schema within the bundle
  const rapidjson::Value* json = nullptr;
  std::unique_ptr<ReduceSpec> reduce;
  std::vector<std::pair<std::string, SchemaNode*>> properties;  // sorted by name
  std::vector<std::pair<std::regex, SchemaNode*>> patterns;
  SchemaNode* additional = nullptr;     // additionalProperties
  std::vector<SchemaNode*> tuple;       // `items` as an array
  SchemaNode* items = nullptr;          // `items` as a schema, or `additionalItems`
  SchemaNode* ref = nullptr;
  std::vector<SchemaNode*> all_of;
  std::vector<Branch> any_of, one_of;
  Branch if_;
  SchemaNode* then_ = nullptr;
  SchemaNode* else_ = nullptr;
  // Derived: whether this schema or anything reachable from it has a `reduce` (a `set`).
  bool has_reduce = false;
  bool has_set = false;
  // No $ref, allOf, anyOf, oneOf or if: the node applies alone.
  bool simple = true;

  const SchemaNode* FindProperty(std::string_view name) const;
};

// The schemas that apply at one location, in precedence order (breadth-first).
class Applied {
 public:
  size_t size() const { return n_; }
  const SchemaNode* operator[](size_t i) const { return i < kInline ? inline_[i] : more_[i - kInline]; }
  void Clear() {
    n_ = 0;
    more_.clear();
  }
  void Push(const SchemaNode* node);
  bool Contains(const SchemaNode* node) const;

  // The governing `reduce` (the first applying schema that has one), or null.
  const ReduceSpec* Reduce() const;
  // Whether anything applying here, or below, is a `set` (which full reduction rewrites).
  bool HasSet() const;

 private:
  static constexpr size_t kInline = 4;
  const SchemaNode* inline_[kInline];
  size_t n_ = 0;
  std::vector<const SchemaNode*> more_;
};

class Annotations {
 public:
  ~Annotations();
  // Compiles a bundle ({"$ref": "#/$defs/s0", "$defs": {...}}).
  static Result<std::shared_ptr<const Annotations>> Compile(const rapidjson::Value& bundle);

  // The schemas applying to a document `v` at the root.
  void Root(const rapidjson::Value& v, Applied* out) const;
  // Whether any schema reachable from the root has a `set` (Applied::HasSet at the root of
  // any document).
  bool AnySet() const;
  // The schemas applying to `child`, the property `name` of an object at `parent`.
  void Property(const Applied& parent, std::string_view name, const rapidjson::Value& child,
                Applied* out) const;
  // Property in two steps: the schemas that the property `name` of an object at `parent`
  // falls under by its name alone (which callers may keep for the next object of the same
  // parent and name), then those applying to its value `child` too.
  void Named(const Applied& parent, std::string_view name, Applied* out) const;
  void ExpandNamed(const rapidjson::Value& child, Applied* named) const;
  // Unique among the Annotations objects of the process, ever: what a cache of Named results
  // may be keyed by (an address may be reused once these are freed).
  uint64_t id() const { return id_; }
  // The schemas applying to `child`, the item `index` of an array at `parent`.
  void Item(const Applied& parent, size_t index, const rapidjson::Value& child, Applied* out) const;

  // For messages: the schema location (a URL with a JSON-pointer fragment, as declared in
  // the catalog sources) of the first schema applying at document location `ptr` that has
  // `keyword`, considering every branch. Empty if none is found.
  std::string KeywordLocation(const doc::Pointer& ptr, std::string_view keyword,
                              const rapidjson::Value** keyword_value) const;

 private:
  Annotations();
  uint64_t id_;  // unique among the Annotations of the process
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::schema
