// Validator: compiles a bundled schema (see bundle.h) once and validates documents against
// it. This file is the only user of valijson. A compiled Validator is immutable and may be
// used from several threads. Most valid documents are accepted by a compiled fast path
// (fast_check.h); valijson decides every other document and writes every error.
//
// `format` is an annotation, not an assertion (the draft 2019-09 default): it is removed
// from the copy valijson compiles, whose format checks build a std::regex per value.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "base/result.h"

namespace flow::schema {

class Annotations;

struct ValidationError {
  std::string pointer;  // document location, RFC 6901 ("" is the root)
  std::string message;  // what failed, e.g. "value type not permitted by 'type' constraint"
};

// The schema keyword a valijson message is about ("type", "required", ...), or "".
std::string KeywordOfMessage(const std::string& message);

class Validator {
 public:
  ~Validator();
  // Compiles a bundle. Fails with a user error when the schema is malformed.
  static Result<std::shared_ptr<Validator>> Compile(const rapidjson::Value& bundle);

  // Validates `doc`; returns the errors (empty when valid). A top-level `_meta` property is
  // never rejected: it is removed before validation and restored after
  // (using `alloc`, the allocator that owns `doc`).
  std::vector<ValidationError> Validate(rapidjson::Value& doc,
                                        rapidjson::Document::AllocatorType& alloc) const;

  // Whether `v` is valid, without collecting errors (and without `_meta` handling).
  bool IsValid(const rapidjson::Value& v) const;

  // For the differential test of the fast path (docs/internals/validation.md): valijson's
  // verdict alone; whether the fast path alone accepts `v` (with `skip_meta`, as Validate
  // treats a top-level `_meta`); whether the bundle has a fast path at all.
  bool ValijsonAccepts(const rapidjson::Value& v) const;
  bool FastPathAccepts(const rapidjson::Value& v, bool skip_meta) const;
  bool HasFastPath() const;

 private:
  Validator();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Keeps the most specific errors: drops an error whose location encloses another error's
// (valijson reports "failed to validate property x" at the parent as well).
std::vector<ValidationError> MostSpecific(const std::vector<ValidationError>& errors);

// Formats the most specific errors (at most `max`), each as
//   at /a/b: <message> (keyword `type` at <schema location>); value "5.00"
// showing the offending value from `doc`, truncated. The keyword's schema location is found
// through `annotations` when given.
std::string FormatValidationErrors(const std::vector<ValidationError>& errors,
                                   const rapidjson::Value& doc, size_t max = 3,
                                   const Annotations* annotations = nullptr);

}  // namespace flow::schema
