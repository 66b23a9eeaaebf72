// Helpers the unit tests share: a scratch directory and unwrapping a Result.
#pragma once

#include <stdio.h>
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

// The standard output of the shell command `cmd`; its exit status (as pclose returns it)
// in `*status` when given.
inline std::string ShOut(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  if (status != nullptr) *status = rc;
  return out;
}

}  // namespace flow::testing
