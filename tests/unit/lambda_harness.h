// Shared by the lambda tests: parsed inputs kept alive for a test, and compact JSON text.
#pragma once

#include <deque>
#include <string>

#include <doctest/doctest.h>

#include "doc/parse.h"
#include "doc/value.h"
#include "lambda/lambda.h"

namespace flow::lambda::testing {

// Owns parsed inputs and the allocator of outputs for one test.
struct Harness {
  std::deque<rapidjson::Document> docs;
  rapidjson::Document out_doc;

  const doc::Value* Parse(const std::string& json) {
    auto& d = docs.emplace_back();
    doc::ParseError error;
    REQUIRE_MESSAGE(doc::ParseDocument(json, &d, &error), error.message);
    return &d;
  }
  // An update row, and a publish row (source, register, previous).
  Row Source(const std::string& source) { return Row{Parse(source), nullptr, nullptr}; }
  Row Publish(const std::string& source, const std::string& reg, const std::string& previous) {
    return Row{Parse(source), Parse(reg), Parse(previous)};
  }
};

inline std::string Json(const doc::Value& v) {
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

}  // namespace flow::lambda::testing
