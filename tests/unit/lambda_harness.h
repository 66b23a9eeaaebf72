// Shared by the lambda tests: parsed inputs kept alive for a test, and compact JSON text.
#pragma once

#include <deque>
#include <string>
#include <vector>

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
  Row Source(const std::string& source) { return Row{Parse(source), nullptr, nullptr, {}}; }
  Row Publish(const std::string& source, const std::string& reg, const std::string& previous) {
    return Row{Parse(source), Parse(reg), Parse(previous), {}};
  }
};

inline std::string Json(const doc::Value& v) {
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

// Each row's outputs as a JSON array of documents.
inline std::vector<std::string> Texts(const Outputs& out) {
  std::vector<std::string> texts;
  for (const auto& docs : out) {
    std::string t = "[";
    for (size_t i = 0; i < docs.size(); ++i) t += (i ? "," : "") + Json(docs[i]);
    texts.push_back(t + "]");
  }
  return texts;
}

// Invokes `l` on `rows`, which must succeed, and returns each row's outputs as text.
inline std::vector<std::string> Run(Lambda& l, Harness& h, const std::vector<Row>& rows) {
  Outputs out;
  int failed = 7;
  auto r = l.Invoke(rows, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(failed == -1);
  REQUIRE(out.size() == rows.size());
  return Texts(out);
}

}  // namespace flow::lambda::testing
