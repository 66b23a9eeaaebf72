// Catalog forms of Flow's preview that flowctl accepts (issue 15, point 6): one npm package
// in `nodeDependencies` of several files (merged when identical, an error naming both
// places otherwise), and the earliest inline materialization form, `{collection,
// sqlite|postgres: {..., table}}`: what it parses into, its errors, the built catalog and
// `flowctl json-schema`.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sqlite3.h>

#include "base/url.h"
#include "catalog/built.h"
#include "catalog/check.h"
#include "catalog/loader.h"
#include "catalog/source_schema.h"
#include "catalog/yaml_reader.h"
#include "schema/validator.h"
#include "catalog_scratch.h"
#include "scratch.h"

namespace flow {
namespace {

using testing::Must;
using testing::TempDir;

using testing::WriteFile;
using Checked = testing::CheckedCatalog;

std::unique_ptr<Checked> Check(const std::string& root) { return testing::LoadAndCheckCatalog(root); }

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
  WriteFile(dir.path + "/flow.yaml", std::string("import: [lib/lib.flow.yaml]\n") + kOrders +
                                     "nodeDependencies:\n  moment: \"^2.29.4\"\n  lodash: \"4.17.21\"\n");
  WriteFile(dir.path + "/lib/lib.flow.yaml", "nodeDependencies:\n  moment: \"^2.29.4\"\n  left-pad: \"1.3.0\"\n");
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
  WriteFile(dir.path + "/flow.yaml", std::string("import: [a.flow.yaml, b.flow.yaml]\n") + kOrders +
                                     "nodeDependencies:\n  moment: \"^2.29.4\"\n");
  WriteFile(dir.path + "/a.flow.yaml", "nodeDependencies:\n  moment: \"^2.24\"\n");
  WriteFile(dir.path + "/b.flow.yaml", "nodeDependencies:\n  moment: \"^2.29.4\"\n");  // same as the root
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

TEST_CASE("the inline materialization form is a target of its own and one binding") {
  TempDir dir;
  WriteFile(dir.path + "/flow.yaml", std::string("import: [views/views.flow.yaml]\n") + kOrders);
  WriteFile(dir.path + "/views/views.flow.yaml", R"(
materializations:
  acme/orders-lite:
    collection: acme/orders
    sqlite: {path: out/orders.db, table: orders}
  acme/orders-uri:
    collection: acme/orders
    sqlite: {uri: other.db, table: orders}
  acme/orders-pg:
    collection: acme/orders
    postgres:
      uri: postgresql://postgres:postgres@localhost:5432/postgres?sslmode=disable
      table: daily_orders
)");
  auto c = Check(dir.path + "/flow.yaml");
  REQUIRE_MESSAGE(c->diags.empty(), c->Text());
  const auto& cat = c->cat();
  REQUIRE(cat.materializations.size() == 3);
  REQUIRE(cat.targets.size() == 3);
  const auto& m = cat.materializations[0];
  CHECK(m.is_inline);
  CHECK(m.target == "acme/orders-lite");
  REQUIRE(m.bindings.size() == 1);
  CHECK(m.bindings[0].source == "acme/orders");
  CHECK(m.bindings[0].table == "orders");
  CHECK_FALSE(m.bindings[0].fields.present);
  const auto& t = cat.targets[0];
  CHECK(t.is_inline);
  CHECK(t.name == "acme/orders-lite");
  CHECK(t.kind == "sqlite");
  CHECK(t.written == "out/orders.db");
  // Relative to the file that declares it, as a target's path is.
  CHECK(t.address == std::filesystem::path(dir.path + "/views/out/orders.db").lexically_normal().string());
  CHECK(t.where.mark.line == 5);  // at `sqlite:`
  CHECK(cat.targets[1].address == std::filesystem::path(dir.path + "/views/other.db").lexically_normal().string());
  CHECK(cat.targets[2].kind == "postgres");
  CHECK(cat.targets[2].address == "postgresql://postgres:postgres@localhost:5432/postgres?sslmode=disable");
  CHECK(cat.materializations[2].bindings[0].table == "daily_orders");
  // The default field selection.
  const auto& fields = c->built.bindings.at("acme/orders-lite").at(0).fields;
  CHECK(fields == std::vector<std::string>{"id", "customer", "total", "flow_document"});

  std::string db = dir.path + "/catalog.db";
  Must(catalog::WriteBuiltCatalog(db, *c->loaded, c->built));
  CHECK(QueryInt(db, "SELECT count(*) FROM materializations m JOIN materialization_targets t ON t.name = m.target "
                     "WHERE t.is_inline = 1") == 3);
  CHECK(QueryInt(db, "SELECT count(*) FROM materialization_bindings WHERE materialization = 'acme/orders-lite' "
                     "AND table_name = 'orders'") == 1);
}

TEST_CASE("inline materialization errors") {
  TempDir dir;
  auto errors = [&](const std::string& materializations) {
    WriteFile(dir.path + "/flow.yaml", std::string(kOrders) +
                                       "materializationTargets:\n  localDB: {sqlite: {path: local.db}}\n"
                                       "materializations:\n" + materializations);
    return Check(dir.path + "/flow.yaml");
  };
  SUBCASE("an unknown key in the database, with did-you-mean") {
    auto c = errors("  m:\n    collection: acme/orders\n    sqlite: {path: x.db, tabel: orders}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "unknown key `tabel` in a sqlite materialization");
    CHECK(c->diags.items()[0].hint == "did you mean `table`?");
  }
  SUBCASE("an unknown key beside `collection`, with did-you-mean") {
    auto c = errors("  m:\n    colection: acme/orders\n    postgres: {uri: \"postgresql://h/db\", table: t}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "unknown key `colection` in a materialization");
    CHECK(c->diags.items()[0].hint == "did you mean `collection`?");
  }
  SUBCASE("misspelt keys of the inline form only: no error about `target`") {
    auto c = errors("  m:\n    colection: acme/orders\n    sqlit: {path: x.db, table: t}\n");
    REQUIRE(c->diags.size() == 2);
    CHECK(c->diags.items()[0].hint == "did you mean `collection`?");
    CHECK(c->diags.items()[1].hint == "did you mean `sqlite`?");
  }
  SUBCASE("`fields` has no place in the inline form") {
    auto c = errors("  m:\n    collection: acme/orders\n    sqlite: {path: x.db, table: t}\n"
                    "    fields: {include: [total]}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "unknown key `fields` in a materialization");
    CHECK(c->diags.items()[0].hint.find("write `target` and `bindings` to choose fields") != std::string::npos);
  }
  SUBCASE("the table is required") {
    auto c = errors("  m:\n    collection: acme/orders\n    sqlite: {path: x.db}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "missing required `table` (the table name)");
  }
  SUBCASE("the database is required") {
    auto c = errors("  m:\n    collection: acme/orders\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message.find("missing the database") == 0);
  }
  SUBCASE("one database only") {
    auto c = errors("  m:\n    collection: acme/orders\n    sqlite: {path: x.db, table: t}\n"
                    "    postgres: {uri: \"postgresql://h/db\", table: t}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "a materialization has exactly one of `sqlite` or `postgres`");
  }
  SUBCASE("mixing the forms") {
    auto c = errors("  m:\n    target: localDB\n    collection: acme/orders\n    sqlite: {path: x.db, table: t}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message.find("a materialization has either `target` and `bindings`, or "
                                           "`collection` with `sqlite` or `postgres`") == 0);
    CHECK(c->diags.items()[0].mark.line == 15);  // at the materialization's name
  }
  SUBCASE("an unknown collection") {
    auto c = errors("  m:\n    collection: acme/ordres\n    sqlite: {path: x.db, table: t}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "source collection `acme/ordres` does not exist");
    CHECK(c->diags.items()[0].hint == "did you mean `acme/orders`?");
  }
  SUBCASE("another materialization cannot name an inline target") {
    auto c = errors("  m:\n    collection: acme/orders\n    sqlite: {path: x.db, table: t}\n"
                    "  n:\n    target: m\n    bindings: [{source: acme/orders, table: u}]\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "materialization target `m` does not exist");
  }
  SUBCASE("a user target cannot take the name of an inline materialization") {
    auto c = errors("  localDB:\n    collection: acme/orders\n    sqlite: {path: x.db, table: t}\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message.find("materialization name `localDB` is already used by the "
                                           "materialization target") == 0);
  }
  SUBCASE("two materializations into one table of one database") {
    auto c = errors("  m:\n    collection: acme/orders\n    sqlite: {path: local.db, table: t}\n"
                    "  n:\n    target: localDB\n    bindings: [{source: acme/orders, table: t}]\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message.find("table `t` of ") == 0);
    CHECK(c->diags.items()[0].message.find("is already materialized at") != std::string::npos);
  }
  SUBCASE("misplaced binding keys in the full form say where they belong") {
    auto c = errors("  m:\n    target: localDB\n    table: t\n    bindings: [{source: acme/orders, table: t}]\n");
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "unknown key `table` in a materialization");
    CHECK(c->diags.items()[0].hint == "`table` belongs in each item of `bindings`");
  }
}

TEST_CASE("json-schema accepts either materialization form, not a mix") {
  rapidjson::Document s;
  auto text = catalog::CatalogSourceSchema();
  s.Parse(text.data(), text.size());
  REQUIRE_FALSE(s.HasParseError());
  auto v = Must(schema::Validator::Compile(s));
  auto valid = [&](const std::string& materialization) {
    Diagnostics d;
    auto node = catalog::ReadYaml("materializations:\n  m: " + materialization + "\n", "t.yaml", &d);
    REQUIRE(node);
    rapidjson::Document doc;
    node->ToJson(&doc, doc.GetAllocator());
    return v->Validate(doc, doc.GetAllocator()).empty();
  };
  CHECK(valid("{collection: a/b, sqlite: {path: x.db, table: t}}"));
  CHECK(valid("{collection: a/b, sqlite: {uri: x.db, table: t}}"));
  CHECK(valid("{collection: a/b, postgres: {uri: \"postgresql://h/db\", table: t}}"));
  CHECK(valid("{target: db, bindings: [{source: a/b, table: t}]}"));
  CHECK_FALSE(valid("{collection: a/b, sqlite: {path: x.db}}"));
  CHECK_FALSE(valid("{collection: a/b, sqlite: {table: t}}"));
  CHECK_FALSE(valid("{collection: a/b, sqlite: {path: x.db, table: t}, fields: {include: [x]}}"));
  CHECK_FALSE(valid("{collection: a/b, target: db, sqlite: {path: x.db, table: t}}"));
  CHECK_FALSE(valid("{collection: a/b, sqlite: {path: x.db, table: t}, postgres: {uri: \"postgresql://h/db\", table: t}}"));
}

}  // namespace flow
