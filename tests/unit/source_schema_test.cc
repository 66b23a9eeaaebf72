#include <doctest/doctest.h>
#include <filesystem>

#include "base/files.h"
#include "catalog/source_schema.h"
#include "catalog/yaml_reader.h"
#include "schema/validator.h"

using namespace flow;

namespace {

// Validates a catalog source file against `flowctl json-schema`'s output.
std::string ValidateSource(const std::shared_ptr<schema::Validator>& v, const std::string& path) {
  auto text = ReadFile(path);
  REQUIRE(text);
  Diagnostics d;
  auto node = catalog::ReadYaml(*text, path, &d);
  REQUIRE(node);
  rapidjson::Document doc;
  node->ToJson(&doc, doc.GetAllocator());
  auto errors = v->Validate(doc, doc.GetAllocator());
  return errors.empty() ? "" : schema::FormatValidationErrors(errors, doc);
}

std::shared_ptr<schema::Validator> SourceValidator() {
  rapidjson::Document s;
  auto text = catalog::CatalogSourceSchema();
  s.Parse(text.data(), text.size());
  REQUIRE_FALSE(s.HasParseError());
  auto v = schema::Validator::Compile(s);
  REQUIRE(v);
  return v.value();
}

}  // namespace

TEST_CASE("every catalog file of the golden catalog and the examples matches json-schema") {
  auto v = SourceValidator();
  size_t checked = 0;
  for (const char* dir : {"testdata/golden", "testdata/patterns", "catalog-examples"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(
             std::filesystem::path(FLOWCTL_SOURCE_DIR) / dir)) {
      std::string name = e.path().filename().string();
      if (!e.is_regular_file() || name.size() < 9 || name.substr(name.size() - 9) != "flow.yaml") {
        continue;
      }
      INFO(e.path().string());
      CHECK(ValidateSource(v, e.path().string()) == "");
      ++checked;
    }
  }
  CHECK(checked >= 10);
}

TEST_CASE("json-schema rejects what the build rejects as unknown keys") {
  auto v = SourceValidator();
  std::string path =
      std::string(FLOWCTL_SOURCE_DIR) + "/testdata/broken/001-unknown-collection-key/flow.yaml";
  CHECK(ValidateSource(v, path) != "");
}
