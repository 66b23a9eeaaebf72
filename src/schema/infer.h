// Schema inference from sample documents (`flowctl infer-schema`, `flowctl init`): the
// types seen at each location, the properties present in every object, string formats and
// small enumerations, a key suggestion, and the widening an existing schema needs to
// accept the documents. Streaming: documents are added one at a time and none is kept, so
// memory is bounded by the number of distinct locations (capped per object) and by the
// hashes kept for key candidates (capped in rows). Not thread-safe.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "doc/value.h"
#include "schema/shape.h"

namespace flow::schema {

struct InferLimits {
  // A string location gets an `enum` when it holds at most this many distinct strings
  // (each at most `max_enum_length` bytes) over at least `min_enum_values` values.
  size_t max_enum_values = 8;
  uint64_t min_enum_values = 20;
  size_t max_enum_length = 64;
  // An object location with more distinct property names than this is described by one
  // `additionalProperties` schema for the names beyond.
  size_t max_properties = 500;
  // Key candidates are the first `max_key_candidates` top-level properties of the first
  // document; their uniqueness is checked over at most `max_key_rows` documents.
  size_t max_key_candidates = 16;
  uint64_t max_key_rows = 250'000;
};

// A suggested collection key and why it was chosen.
struct KeySuggestion {
  std::vector<std::string> pointers;  // empty: no property can serve as a key
  bool unique = false;                // no two documents share the key
  std::string explanation;            // for people, e.g. "`/order_id`: present in every ..."
};

class SchemaInferrer {
 public:
  explicit SchemaInferrer(InferLimits limits = {});
  ~SchemaInferrer();
  SchemaInferrer(const SchemaInferrer&) = delete;
  SchemaInferrer& operator=(const SchemaInferrer&) = delete;

  void Add(const doc::Value& document);
  uint64_t documents() const;

  // The JSON schema of the documents seen: `type`, `properties`, `required`, `items`,
  // `format` (date-time, date, uuid, email) and `enum`, written into `out` (which owns the
  // values). Property order is the order of first appearance.
  void WriteSchema(rapidjson::Document* out) const;

  KeySuggestion SuggestKey() const;

  // What `shape` (an existing schema) needs in order to accept the documents seen, one line
  // per change, e.g. "/properties/amount/type: integer → integer | number". Types, properties
  // that the schema forbids, and `required` properties that some documents lack are
  // compared; `enum`, bounds and patterns are not. Empty when nothing needs widening.
  std::vector<std::string> Widenings(const Shape& shape) const;

  // True if `s` is an RFC 3339 date-time / full-date, a UUID, or an e-mail address of the
  // usual `local@domain.tld` form (exposed for tests).
  static bool IsDateTime(std::string_view s);
  static bool IsDate(std::string_view s);
  static bool IsUuid(std::string_view s);
  static bool IsEmail(std::string_view s);

  struct Node;

 private:
  struct Candidate;
  InferLimits limits_;
  std::unique_ptr<Node> root_;
  std::vector<Candidate> candidates_;
  uint64_t documents_ = 0;
};

}  // namespace flow::schema
