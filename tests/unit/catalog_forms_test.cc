// Catalog forms of Flow's preview that flowctl accepts (issue 15, point 6): one npm package
// in `nodeDependencies` of several files (merged when identical, an error naming both
// places otherwise).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sqlite3.h>

#include "base/url.h"
#include "catalog/built.h"
#include "catalog/check.h"
#include "catalog/loader.h"
#include "scratch.h"

namespace flow {
namespace {

using testing::Must;
using testing::TempDir;

void Write(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << content;
}

struct Checked {
  std::unique_ptr<catalog::Loaded> loaded;
  catalog::Built built;
  Diagnostics diags;

  const catalog::Catalog& cat() const { return loaded->catalog; }
  // Every diagnostic, formatted, one after the other.
  std::string Text() const {
    std::string out;
    for (const auto& d : diags.items()) out += d.Format(false) + "\n";
    return out;
  }
};

std::unique_ptr<Checked> Check(const std::string& root) {
  auto c = std::make_unique<Checked>();
  catalog::Fetcher fetcher;
  c->loaded = catalog::LoadCatalog(FileUrl(root), &fetcher, &c->diags);
  catalog::CheckCatalog(*c->loaded, &c->built, &c->diags);
  c->diags.SortAndDedupe();
  return c;
}

// One integer a query of the built catalog at `path` returns.
int64_t QueryInt(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK, sqlite3_errmsg(db));
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

const char* kOrders = R"(
collections:
  - name: acme/orders
    key: [/id]
    schema:
      type: object
      required: [id, customer]
      properties:
        id: {type: integer}
        customer: {type: string}
        total: {type: number}
)";

}  // namespace

TEST_CASE("one npm package declared identically in two files is one dependency") {
  TempDir dir;
  Write(dir.path + "/flow.yaml", std::string("import: [lib/lib.flow.yaml]\n") + kOrders +
                                     "nodeDependencies:\n  moment: \"^2.29.4\"\n  lodash: \"4.17.21\"\n");
  Write(dir.path + "/lib/lib.flow.yaml", "nodeDependencies:\n  moment: \"^2.29.4\"\n  left-pad: \"1.3.0\"\n");
  auto c = Check(dir.path + "/flow.yaml");
  REQUIRE_MESSAGE(c->diags.empty(), c->Text());
  const auto& deps = c->cat().node_dependencies;
  REQUIRE(deps.size() == 3);  // moment once, lodash, left-pad
  CHECK(deps[0].package == "moment");
  CHECK(deps[0].version == "^2.29.4");
  CHECK(deps[0].where.url == FileUrl(dir.path + "/flow.yaml"));  // the first declaration (the root's) is kept
  std::string db = dir.path + "/catalog.db";
  Must(catalog::WriteBuiltCatalog(db, *c->loaded, c->built));
  CHECK(QueryInt(db, "SELECT count(*) FROM node_dependencies WHERE package = 'moment'") == 1);
  CHECK(QueryInt(db, "SELECT count(*) FROM node_dependencies") == 3);
}

TEST_CASE("conflicting version ranges of one npm package are an error naming both places") {
  TempDir dir;
  Write(dir.path + "/flow.yaml", std::string("import: [a.flow.yaml, b.flow.yaml]\n") + kOrders +
                                     "nodeDependencies:\n  moment: \"^2.29.4\"\n");
  Write(dir.path + "/a.flow.yaml", "nodeDependencies:\n  moment: \"^2.24\"\n");
  Write(dir.path + "/b.flow.yaml", "nodeDependencies:\n  moment: \"^2.29.4\"\n");  // same as the root
  auto c = Check(dir.path + "/flow.yaml");
  REQUIRE(c->diags.size() == 1);
  const Diagnostic& d = c->diags.items()[0];
  CHECK(d.file.find("a.flow.yaml") != std::string::npos);
  CHECK(d.mark.line == 2);
  CHECK(d.mark.col == 3);
  CHECK(d.message.find("npm package `moment` is declared with version range \"^2.24\" here but "
                       "\"^2.29.4\" at ") == 0);
  CHECK(d.message.find("flow.yaml:" + std::to_string(c->cat().node_dependencies[0].where.mark.line) + ":3") !=
        std::string::npos);
  CHECK(d.hint.find("same version range") != std::string::npos);
}

}  // namespace flow
