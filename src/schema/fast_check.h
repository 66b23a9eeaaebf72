// FastCheck: a schema bundle (see bundle.h) translated once into a small graph of checks that
// answers one question quickly: is this document certainly valid? It is the fast path of
// Validator (validator.h), which asks valijson whenever the answer is not a plain yes, so
// every verdict and every error message stays valijson's (docs/internals/validation.md).
//
// The checks mirror valijson's own semantics (draft 7 as valijson parses it, strict types):
// type, enum, const, numeric bounds, multipleOf, string lengths in valijson's code-point
// count, pattern (std::regex, as valijson), properties, additionalProperties, required,
// property and item counts, items and additionalItems, $ref (resolved once, recursion
// allowed), allOf and anyOf. A subschema using any other keyword valijson knows (oneOf,
// not, if, dependencies, propertyNames, contains, uniqueItems, patternProperties, ...) is
// handed whole to a delegate: an exact check of that subschema alone (valijson, compiled
// by the caller). Whenever a value is unusual (an integer above 2^63-1, a numeric string
// under multipleOf, a name holding NUL, duplicate names of a closed object), the answer is
// "not known": false.
#pragma once

#include <rapidjson/document.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flow::schema {

class FastCheck {
 public:
  // An exact validity check of one subschema.
  using Delegate = std::function<bool(const rapidjson::Value&)>;
  // Makes the delegate of the subschema at `pointer` (RFC 6901) of the bundle, or returns an
  // empty function when it cannot (such a subschema then answers "not known").
  using DelegateFactory = std::function<Delegate(const std::string& pointer)>;

  ~FastCheck();

  // Translates `bundle` (which valijson has already compiled). Returns null when the bundle
  // uses what the fast path does not model at all (an `id` resolution scope, an unusual
  // `$ref`).
  static std::unique_ptr<FastCheck> Compile(const rapidjson::Value& bundle,
                                            const DelegateFactory& delegate);

  // True only when `v` is valid against the bundle; false means "not known" (ask valijson).
  // With `skip_meta`, a top-level `_meta` member of `v` is treated as absent, as
  // Validator::Validate does.
  bool Accepts(const rapidjson::Value& v, bool skip_meta) const;

  // How many subschemas are delegated (for tests).
  size_t delegates() const { return delegates_; }

 private:
  FastCheck();
  struct Node;
  struct Compiler;
  bool Eval(const Node& n, const rapidjson::Value& v, bool skip_meta) const;

  rapidjson::Document schema_;  // the bundle's copy that enum/const values point into
  std::vector<std::unique_ptr<Node>> nodes_;
  const Node* root_ = nullptr;
  size_t delegates_ = 0;
};

}  // namespace flow::schema
