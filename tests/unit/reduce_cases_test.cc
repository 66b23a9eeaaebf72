// Runs the data-driven reduction cases of testdata/reductions/*.yaml (format in
// docs/reductions.md): each case's documents are validated, folded left (and right, which
// must agree), or run through a combiner (with and without spilling) when it has a key.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/files.h"
#include "catalog/yaml_reader.h"
#include "doc/node.h"
#include "doc/value.h"
#include "reduce/combiner.h"
#include "reduce/reduce.h"
#include "schema/annotations.h"
#include "schema/bundle.h"
#include "schema/index.h"
#include "schema/validator.h"

namespace {

using namespace flow;

struct Outcome {
  std::string result;  // JSON text when ok
  std::string error;   // message when failed
};

std::string Json(const doc::Value& v) {
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

class CaseRunner {
 public:
  // Compiles the case's schema; returns an error message or "".
  std::string Compile(const std::string& url, const doc::Node& schema) {
    index_.AddResource(url, &schema);
    std::vector<schema::MissingResource> missing;
    schema::SchemaLoc loc{&schema, url, "", url};
    index_.IndexSchema(loc, &missing);
    rapidjson::Document bundle = schema::BundleSchema(index_, loc);
    auto v = schema::Validator::Compile(bundle);
    if (!v) return "validator: " + v.error().message;
    auto a = schema::Annotations::Compile(bundle);
    if (!a) return "annotations: " + a.error().message;
    validator_ = v.value();
    annotations_ = a.value();
    reducer_ = std::make_shared<reduce::Reducer>(annotations_);
    return "";
  }

  // Converts and validates the documents into `alloc`.
  std::string Load(const doc::Node& docs, doc::Allocator& alloc, std::vector<doc::Value>* out) {
    size_t i = 0;
    for (const auto& n : docs.items()) {
      ++i;
      doc::Value v;
      n.ToJson(&v, alloc);
      auto errors = validator_->Validate(v, alloc);
      if (!errors.empty()) {
        return fmt::format("document {} does not validate: {}", i,
                           schema::FormatValidationErrors(errors, v, 3, annotations_.get()));
      }
      out->push_back(std::move(v));
    }
    return "";
  }

  Outcome LeftFold(std::vector<doc::Value> docs, bool full, doc::Allocator& alloc) {
    doc::Value acc;
    acc = std::move(docs[0]);
    if (full) {
      if (auto r = reducer_->Finalize(acc, alloc); !r) return {"", r.error().message};
    }
    for (size_t i = 1; i < docs.size(); ++i) {
      if (auto r = reducer_->Reduce(acc, docs[i], full, alloc); !r) return {"", r.error().message};
    }
    return {Json(acc), ""};
  }

  // d1 ⊕ (d2 ⊕ (… ⊕ dn)), partial inside; full: absent ⊕f that.
  Outcome RightFold(std::vector<doc::Value> docs, bool full, doc::Allocator& alloc) {
    doc::Value acc;
    acc = std::move(docs.back());
    for (size_t i = docs.size() - 1; i-- > 0;) {
      doc::Value lhs;
      lhs = std::move(docs[i]);
      if (auto r = reducer_->Reduce(lhs, acc, false, alloc); !r) return {"", r.error().message};
      acc = std::move(lhs);
    }
    if (full) {
      if (auto r = reducer_->Finalize(acc, alloc); !r) return {"", r.error().message};
    }
    return {Json(acc), ""};
  }

  Outcome Combine(const doc::Node& docs, const std::vector<doc::Pointer>& key, bool full, uint64_t budget) {
    reduce::CombinerOptions options;
    options.memory_budget = budget;
    reduce::Combiner combiner(reducer_, key, options);
    for (const auto& n : docs.items()) {
      doc::Value v;
      n.ToJson(&v, combiner.allocator());
      if (auto r = combiner.Add(v); !r) return {"", r.error().message};
    }
    std::string out = "[";
    auto r = combiner.Drain(full, [&](std::string_view, doc::Value& d) -> Result<bool> {
      if (out.size() > 1) out += ",";
      out += Json(d);
      return true;
    });
    if (!r) return {"", r.error().message};
    return {out + "]", ""};
  }

 private:
  schema::Index index_;
  std::shared_ptr<schema::Validator> validator_;
  std::shared_ptr<const schema::Annotations> annotations_;
  std::shared_ptr<reduce::Reducer> reducer_;
};

std::string NodeJson(const doc::Node& n) {
  rapidjson::Document d;
  n.ToJson(&d, d.GetAllocator());
  return Json(d);
}

// Runs one case; returns "" when it passes, else what went wrong.
std::string RunCase(const std::string& file, size_t index, const doc::Node& c) {
  const doc::Node* schema = c.Find("schema");
  const doc::Node* documents = c.Find("documents");
  const doc::Node* expect = c.Find("expect");
  const doc::Node* error = c.Find("error");
  const doc::Node* mode = c.Find("mode");
  const doc::Node* key = c.Find("key");
  if (!schema || !documents || !documents->is_array() || documents->items().empty() ||
      (!expect == !error)) {
    return "malformed case: needs schema, documents, and exactly one of expect/error";
  }
  bool full = !mode || mode->as_string() == "reduce";
  if (mode && mode->as_string() != "reduce" && mode->as_string() != "combine") {
    return "mode must be reduce or combine";
  }
  CaseRunner runner;
  if (auto e = runner.Compile(fmt::format("file:///reductions/{}/{}.schema.json", file, index), *schema);
      !e.empty()) {
    return "schema does not compile: " + e;
  }
  rapidjson::Document arena;
  std::vector<doc::Value> docs;
  std::string invalid = runner.Load(*documents, arena.GetAllocator(), &docs);

  Outcome got;
  if (!invalid.empty()) {
    got.error = invalid;
  } else if (key) {
    std::vector<doc::Pointer> ptrs;
    for (const auto& k : key->items()) {
      std::string why;
      ptrs.push_back(*doc::Pointer::Parse(k.as_string(), &why));
    }
    got = runner.Combine(*documents, ptrs, full, 256ull << 20);
    Outcome spilled = runner.Combine(*documents, ptrs, full, 1);
    if (got.result != spilled.result || got.error.empty() != spilled.error.empty()) {
      return fmt::format("spilling changes the result: {} vs {}", got.result + got.error,
                         spilled.result + spilled.error);
    }
  } else {
    std::vector<doc::Value> left, right;
    for (auto& d : docs) {
      left.emplace_back(d, arena.GetAllocator());
      right.emplace_back(d, arena.GetAllocator());
    }
    got = runner.LeftFold(std::move(left), full, arena.GetAllocator());
    Outcome r = runner.RightFold(std::move(right), full, arena.GetAllocator());
    if (got.error.empty() && (r.result != got.result)) {
      return fmt::format("left fold {} differs from right fold {}", got.result, r.result + r.error);
    }
  }
  if (expect) {
    if (!got.error.empty()) return "unexpected error: " + got.error;
    std::string want = NodeJson(*expect);
    if (want != got.result) return fmt::format("\n    expected {}\n    got      {}", want, got.result);
    return "";
  }
  if (!got.error.empty()) {
    if (got.error.find(error->as_string()) == std::string::npos) {
      return fmt::format("error `{}` lacks `{}`", got.error, error->as_string());
    }
    return "";
  }
  return fmt::format("expected an error containing `{}`, got {}", error->as_string(), got.result);
}

TEST_CASE("reduction cases in testdata/reductions") {
  auto dir = std::filesystem::path(FLOWCTL_SOURCE_DIR) / "testdata" / "reductions";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  size_t total = 0, failed = 0;
  for (const auto& path : files) {
    auto text = ReadFile(path.string());
    REQUIRE(text);
    Diagnostics diags;
    auto root = catalog::ReadYaml(*text, path.filename().string(), &diags);
    REQUIRE_MESSAGE(root, path.string());
    const doc::Node* cases = root->Find("cases");
    REQUIRE_MESSAGE((cases && cases->is_array()), path.string());
    for (size_t i = 0; i < cases->items().size(); ++i) {
      const doc::Node& c = cases->items()[i];
      const doc::Node* name = c.Find("name");
      std::string label = fmt::format("{}:{}: {}", path.filename().string(), c.mark().line,
                                      name ? name->as_string() : "(unnamed)");
      std::string problem = RunCase(path.stem().string(), i, c);
      ++total;
      if (!problem.empty()) {
        ++failed;
        FAIL_CHECK(label << ": " << problem);
      }
    }
  }
  MESSAGE(total << " reduction cases, " << failed << " failed");
  CHECK(total >= 100);
}

}  // namespace
