// Validator: compiles a bundled schema (see bundle.h) once and validates documents against
// it. This file is the only user of valijson. A compiled Validator is immutable and may be
// used from several threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "base/result.h"

namespace flow::schema {

struct ValidationError {
  std::string pointer;  // document location, RFC 6901 ("" is the root)
  std::string message;  // what failed, e.g. "value type not permitted by 'type' constraint"
};

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

 private:
  Validator();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Keeps the most specific errors: drops an error whose location encloses another error's
// (valijson reports "failed to validate property x" at the parent as well).
std::vector<ValidationError> MostSpecific(const std::vector<ValidationError>& errors);

// Formats the most specific errors as "at /a/b (value "5.00"): message; ..." (at most
// `max`), showing each offending value from `doc`, truncated.
std::string FormatValidationErrors(const std::vector<ValidationError>& errors,
                                   const rapidjson::Value& doc, size_t max = 3);

}  // namespace flow::schema
