// Result<T>: a value or an Error, for runtime paths whose failures the caller must handle.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "base/diagnostics.h"

namespace flow {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}
  Result(Error error) : error_(std::move(error)) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  T& value() { assert(ok()); return *value_; }
  const T& value() const { assert(ok()); return *value_; }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const { assert(!ok()); return *error_; }

 private:
  std::optional<T> value_;
  std::optional<Error> error_;
};

}  // namespace flow
