// Helpers the unit tests share: a scratch directory and unwrapping a Result.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include <doctest/doctest.h>

#include "base/result.h"

namespace flow::testing {

// A fresh directory under /tmp, removed with everything in it at the end of its scope.
struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/flowctl-test.XXXXXX";
    char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
};

// The value of `r`, failing the test with its error when there is none.
template <typename T>
T Must(Result<T> r) {
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? std::string() : r.error().message));
  return std::move(r.value());
}

}  // namespace flow::testing
