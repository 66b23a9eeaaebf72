// The catalog side of dead letters (SPEC 9, issue 16 item 7): `deadLetters` on a transform,
// a materialization binding and the inline materialization form; what it parses into, its
// errors and checks, the built catalog (format 4, and format 3 refused), `flowctl
// json-schema`, the compiled plan's `dead_letters` collections, and dead letters that would
// come back to the task that wrote them. The broken-catalog scenarios 104-109 show each
// check's full diagnostic.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include "catalog/built.h"
#include "catalog/source_schema.h"
#include "catalog/yaml_reader.h"
#include "catalog_scratch.h"
#include "doc/uuid.h"
#include "runtime/plan.h"
#include "schema/validator.h"
#include "scratch.h"

namespace flow {
namespace {

using testing::Must;
using testing::TempDir;
using testing::WriteFile;

// Collections: orders, the recommended dead-letter collection, and a derivation of orders
// whose transform `fromOrders` has `deadLetters: ` followed by `$DL` (replaced by callers).
const char* kCatalog = R"(
collections:
  - name: shop/orders
    schema:
      type: object
      properties:
        order_id: {type: integer}
        customer_id: {type: integer}
      required: [order_id, customer_id]
    key: [/order_id]
  - name: shop/dead-letters
    schema:
      type: object
      properties:
        task: {type: string}
        taskKind: {enum: [derivation, materialization]}
        binding: {type: string}
        collection: {type: string}
        journal: {type: string}
        offset: {type: integer}
        error: {type: string}
        document: {}
      required: [task, taskKind, binding, collection, journal, offset, error, document]
    key: [/task, /binding, /journal, /offset]
  - name: shop/totals
    schema:
      type: object
      reduce: {strategy: merge}
      properties:
        customer_id: {type: integer}
        orders: {type: integer, reduce: {strategy: sum}}
      required: [customer_id]
    key: [/customer_id]
    derivation:
      transform:
        fromOrders:
          source: shop/orders
          deadLetters: $DL
          publish: {sqlite: "SELECT $customer_id AS customer_id, 1 AS orders"}
        fromOrdersToo:
          source: shop/orders
          publish: {sqlite: "SELECT $customer_id AS customer_id, 1 AS orders"}
materializationTargets:
  db: {sqlite: {path: out/shop.db}}
)";

// kCatalog with `dead_letters` as the transform's `deadLetters` value, `collections` added
// to its collections, then `more`.
std::string Catalog(const std::string& dead_letters, const std::string& more = "",
                    const std::string& collections = "") {
  std::string text = kCatalog;
  text.replace(text.find("$DL"), 3, dead_letters);
  text.insert(text.find("materializationTargets:"), collections);
  return text + more;
}

std::unique_ptr<testing::CheckedCatalog> Check(const TempDir& dir, const std::string& text) {
  WriteFile(dir.path + "/flow.yaml", text);
  return testing::LoadAndCheckCatalog(dir.path + "/flow.yaml");
}

// The messages of every diagnostic, one per line.
std::string Messages(const testing::CheckedCatalog& c) {
  std::string out;
  for (const auto& d : c.diags.items()) out += d.message + "\n";
  return out;
}

// The rows of a query of the built catalog at `path`, columns separated by spaces.
std::string Query(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK, sqlite3_errmsg(db));
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW) {
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const unsigned char* t = sqlite3_column_text(st, i);
      out += (i ? " " : "") + std::string(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    out += "\n";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

const char* kMaterializations = R"(
materializations:
  shop/views:
    target: db
    bindings:
      - source: shop/totals
        table: totals
        deadLetters: shop/dead-letters
      - {source: shop/orders, table: orders}
  shop/orders-lite:
    collection: shop/orders
    sqlite: {path: out/orders.db, table: orders}
    deadLetters: shop/dead-letters
)";

}  // namespace

TEST_CASE(
    "deadLetters on a transform, a binding and an inline materialization: parsed, built, planned") {
  TempDir dir;
  auto c = Check(dir, Catalog("shop/dead-letters", kMaterializations));
  REQUIRE_MESSAGE(c->diags.empty(), c->Text());
  const auto& cat = c->cat();

  const auto& transforms = cat.collections[2].derivation->transforms;
  CHECK(transforms[0].dead_letters == "shop/dead-letters");
  CHECK(transforms[0].dead_letters_where.mark.line == 38);
  CHECK(transforms[0].dead_letters_where.mark.col == 24);
  CHECK(transforms[0].dead_letters_where.pointer ==
        "/collections/2/derivation/transform/fromOrders/deadLetters");
  CHECK(transforms[1].dead_letters.empty());
  const auto& views = cat.materializations[0];
  CHECK(views.bindings[0].dead_letters == "shop/dead-letters");
  CHECK(views.bindings[0].dead_letters_where.pointer ==
        "/materializations/shop~1views/bindings/0/deadLetters");
  CHECK(views.bindings[1].dead_letters.empty());
  const auto& lite = cat.materializations[1];
  REQUIRE(lite.is_inline);
  CHECK(lite.bindings[0].dead_letters == "shop/dead-letters");
  CHECK(lite.bindings[0].dead_letters_where.pointer ==
        "/materializations/shop~1orders-lite/deadLetters");

  CHECK(c->built.derivations[0].transforms[0].dead_letters == "shop/dead-letters");
  CHECK(c->built.derivations[0].transforms[1].dead_letters.empty());
  CHECK(c->built.bindings.at("shop/views")[0].dead_letters == "shop/dead-letters");
  CHECK(c->built.bindings.at("shop/views")[1].dead_letters.empty());
  CHECK(c->built.bindings.at("shop/orders-lite")[0].dead_letters == "shop/dead-letters");

  std::string db = dir.path + "/catalog.db";
  Must(catalog::WriteBuiltCatalog(db, *c->loaded, c->built));
  CHECK(Query(db, "SELECT value FROM meta WHERE key = 'format'") == "4\n");
  CHECK(Query(db, "SELECT name, dead_letters FROM transforms ORDER BY name") ==
        "fromOrders shop/dead-letters\nfromOrdersToo NULL\n");
  CHECK(
      Query(db,
            "SELECT materialization, idx, dead_letters FROM materialization_bindings ORDER BY 1, "
            "2") ==
      "shop/orders-lite 0 shop/dead-letters\nshop/views 0 shop/dead-letters\nshop/views 1 NULL\n");

  // The plan hands the runtime the compiled dead-letter collection, shared with the plan's
  // own (so a task appends to the collection every other task reads).
  auto plan = Must(runtime::CompilePlan(cat, c->built, {}));
  const auto& dl = plan.collections.at("shop/dead-letters");
  REQUIRE(plan.derivations.size() == 1);
  CHECK(plan.derivations[0]->transforms[0].dead_letters == dl);
  CHECK(plan.derivations[0]->transforms[1].dead_letters == nullptr);
  REQUIRE(plan.materializations.size() == 2);
  CHECK(plan.materializations[0]->bindings[0].dead_letters == dl);
  CHECK(plan.materializations[0]->bindings[1].dead_letters == nullptr);
  CHECK(plan.materializations[1]->bindings[0].dead_letters == dl);
}

TEST_CASE(
    "a built catalog of format 3 (before dead letters) is refused, with the advice to rebuild it") {
  TempDir dir;
  auto c = Check(dir, Catalog("shop/dead-letters", kMaterializations));
  REQUIRE_MESSAGE(c->diags.empty(), c->Text());
  std::string db = dir.path + "/catalog.db";
  Must(catalog::WriteBuiltCatalog(db, *c->loaded, c->built));
  CHECK(catalog::ReadBuiltCollections(db).ok());
  CHECK(catalog::ReadBuiltResources(db).ok());
  Query(db, "UPDATE meta SET value = '3' WHERE key = 'format'");
  const std::string want =
      db +
      " is not a usable built catalog: format `3`, expected 4; rebuild it with `flowctl build`";
  auto collections = catalog::ReadBuiltCollections(db);
  REQUIRE_FALSE(collections.ok());
  CHECK(collections.error().message == want);
  CHECK(collections.error().code == Error::Code::kUser);
  auto resources = catalog::ReadBuiltResources(db);
  REQUIRE_FALSE(resources.ok());
  CHECK(resources.error().message == want);
}

TEST_CASE("deadLetters parse errors") {
  TempDir dir;
  SUBCASE("not a string") {
    auto c = Check(dir, Catalog("[shop/dead-letters]"));
    CHECK(Messages(*c) == "`deadLetters` must be a string, found an array\n");
  }
  SUBCASE("empty") {
    auto c = Check(dir, Catalog("\"\""));
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "`deadLetters` may not be empty");
    CHECK(c->diags.items()[0].mark.line == 38);
    CHECK(c->diags.items()[0].hint.find("omit `deadLetters` to halt on errors") !=
          std::string::npos);
  }
  SUBCASE("misspelt on a transform") {
    auto c = Check(dir, Catalog("shop/dead-letters\n          deadLeters: shop/dead-letters"));
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "unknown key `deadLeters` in a transform");
    CHECK(c->diags.items()[0].hint == "did you mean `deadLetters`?");
  }
  SUBCASE("on a materialization of the long form: it belongs in a binding") {
    auto c = Check(dir, Catalog("shop/dead-letters", R"(
materializations:
  shop/views:
    target: db
    deadLetters: shop/dead-letters
    bindings: [{source: shop/totals, table: totals}]
)"));
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message == "unknown key `deadLetters` in a materialization");
    CHECK(c->diags.items()[0].hint == "`deadLetters` belongs in each item of `bindings`");
  }
  SUBCASE("beside misspelt keys of the inline form: not itself an unknown key") {
    auto c = Check(dir, Catalog("shop/dead-letters", R"(
materializations:
  shop/orders-lite:
    colection: shop/orders
    sqlit: {path: out/orders.db, table: orders}
    deadLetters: shop/dead-letters
)"));
    CHECK(
        Messages(*c) ==
        "unknown key `colection` in a materialization\nunknown key `sqlit` in a materialization\n");
  }
}

TEST_CASE("deadLetters checks") {
  TempDir dir;
  auto one = [&](const std::string& text) {
    auto c = Check(dir, text);
    REQUIRE_MESSAGE(c->diags.size() == 1, c->Text());
    return c->diags.items()[0];
  };
  SUBCASE("the collection exists") {
    auto d = one(Catalog("shop/dead-letter"));
    CHECK(d.message == "dead-letter collection `shop/dead-letter` does not exist");
    CHECK(d.hint == "did you mean `shop/dead-letters`?");
    CHECK(d.scope ==
          "transform `fromOrders` of `shop/totals` at "
          "/collections/2/derivation/transform/fromOrders/deadLetters");
    CHECK(d.mark.line == 38);
    CHECK(d.mark.col == 24);
  }
  SUBCASE("without a close name, the hint shows the recommended collection") {
    auto d = one(Catalog("ops/rejected"));
    CHECK(d.hint.find("declare it under `collections`; a dead-letter collection as "
                      "docs/reference/dead-letters.md "
                      "recommends has `key: [/task, /binding, /journal, /offset]`") == 0);
  }
  SUBCASE("not the derivation's own collection") {
    auto d = one(Catalog("shop/totals"));
    CHECK(d.message == "dead-letter collection `shop/totals` is this derivation's own collection");
    CHECK(d.hint.find("a derivation owns its collection's writes") == 0);
  }
  SUBCASE("not a derived collection") {
    auto d = one(Catalog("shop/dead-letters", R"(
materializations:
  shop/views:
    target: db
    bindings: [{source: shop/orders, table: orders, deadLetters: shop/totals}]
)"));
    CHECK(d.message == "dead-letter collection `shop/totals` is a derived collection");
    CHECK(d.scope ==
          "materialization `shop/views` at /materializations/shop~1views/bindings/0/deadLetters");
  }
  SUBCASE("not the transform's source") {
    auto d = one(Catalog("shop/orders"));
    CHECK(d.message ==
          "dead-letter collection `shop/orders` is the source collection of this transform");
  }
  SUBCASE("not the binding's source, in the inline form too") {
    auto d = one(Catalog("shop/dead-letters", R"(
materializations:
  shop/orders-lite:
    collection: shop/orders
    sqlite: {path: out/orders.db, table: orders}
    deadLetters: shop/orders
)"));
    CHECK(d.message ==
          "dead-letter collection `shop/orders` is the source collection of this binding");
    CHECK(d.mark.line == 50);
  }
  SUBCASE("its schema takes a dead letter with this task's values") {
    // A collection for the dead letters of materializations only: a transform may not use it.
    auto d = one(Catalog("shop/materialization-letters", "", R"(
  - name: shop/materialization-letters
    schema:
      type: object
      properties:
        task: {type: string}
        taskKind: {const: materialization}
        binding: {type: string}
        journal: {type: string}
        offset: {type: integer}
        document: {type: object}
      required: [task, taskKind, binding, journal, offset]
    key: [/task, /binding, /journal, /offset]
)"));
    CHECK(d.message ==
          "dead-letter collection `shop/materialization-letters` does not accept a dead letter: at "
          "/taskKind (value \"derivation\"): failed to match expected value set by 'const' "
          "constraint "
          "[`const`]");
    CHECK(d.hint.find(
              "a dead-letter collection as docs/reference/dead-letters.md recommends has") == 0);
    CHECK(d.hint.find("required: [task, taskKind, binding, collection, journal, offset, error, "
                      "document]}`") != std::string::npos);
  }
  SUBCASE("the schema rejects additional properties of a dead letter") {
    auto d = one(Catalog("shop/narrow-letters", "", R"(
  - name: shop/narrow-letters
    schema:
      type: object
      properties:
        task: {type: string}
        binding: {type: string}
        journal: {type: string}
        offset: {type: integer}
      additionalProperties: false
      required: [task, binding, journal, offset]
    key: [/task, /binding, /journal, /offset]
)"));
    CHECK(d.message.find(
              "dead-letter collection `shop/narrow-letters` does not accept a dead letter: ") == 0);
  }
  // The sample dead letter is realistic (a stored document, an error of the runtime's shape
  // and length), so that a schema refusing every real dead letter fails at build.
  // `document_schema` and `error_schema` replace those of the recommended collection.
  auto letters = [](const std::string& document_schema, const std::string& error_schema,
                    const std::string& key = "[/task, /binding, /journal, /offset]") {
    return fmt::format(R"(
  - name: shop/letters
    schema:
      type: object
      properties:
        task: {{type: string}}
        taskKind: {{enum: [derivation, materialization]}}
        binding: {{type: string}}
        collection: {{type: string}}
        journal: {{type: string}}
        offset: {{type: integer}}
        error: {}
        document: {}
      required: [task, taskKind, binding, collection, journal, offset, error, document]
    key: {}
)",
                       error_schema, document_schema, key);
  };
  SUBCASE("the sample document is stored: additionalProperties false on it is refused") {
    auto d = one(Catalog("shop/letters", "",
                         letters("{type: object, additionalProperties: false}", "{type: string}")));
    const std::string prefix =
        "dead-letter collection `shop/letters` does not accept a dead letter: at /document "
        "(value {\"_meta\":{\"uuid\":\"";
    REQUIRE(d.message.find(prefix) == 0);
    // A v1 UUID as flowctl stamps them.
    std::string uuid = d.message.substr(prefix.size(), 36);
    auto parsed = doc::ParseUuid(uuid);
    REQUIRE_MESSAGE(parsed, uuid);
    CHECK(parsed->flags == doc::kFlagOutsideTxn);
    CHECK(d.message.find("[`additionalProperties`]") != std::string::npos);
    CHECK(d.hint.find("a dead letter's `document` is a document as its source collection stores "
                      "it, `_meta` (its UUID) included; a dead-letter collection as") == 0);
  }
  SUBCASE("the sample document is not empty: maxProperties 0 on it is refused") {
    auto d = one(Catalog("shop/letters", "", letters("{maxProperties: 0}", "{type: string}")));
    CHECK(d.message.find("does not accept a dead letter: at /document (value {\"_meta\":") !=
          std::string::npos);
  }
  SUBCASE("the sample error is as long as the runtime's: a short maxLength is refused") {
    auto d = one(Catalog("shop/letters", "", letters("{}", "{type: string, maxLength: 30}")));
    CHECK(d.message ==
          "dead-letter collection `shop/letters` does not accept a dead letter: at /error (value "
          "\"derivation `shop/totals`, transform `fromOrders`: the docum…): string should be no "
          "more "
          "than 30 characters in length [`maxLength`]");
    CHECK(d.hint.find("a dead letter's `error` is the error the task would have halted with") == 0);
  }
  SUBCASE("a binding's sample error has the materialization's shape") {
    auto d = one(Catalog("shop/dead-letters", R"(
materializations:
  shop/views:
    target: db
    bindings: [{source: shop/totals, table: totals, deadLetters: shop/letters}]
)",
                         letters("{}", "{type: string, maxLength: 30}")));
    CHECK(d.message.find("at /error (value \"materialization `shop/views`, table `totals`: "
                         "collection `s…): string should be no more than 30 characters") !=
          std::string::npos);
  }
  SUBCASE("an error and a document of a roomy schema build") {
    auto c = Check(dir, Catalog("shop/letters", "",
                                letters("{type: [object, \"null\"], required: [_meta]}",
                                        "{type: string, minLength: 100, maxLength: 4000}")));
    CHECK_MESSAGE(c->diags.empty(), c->Text());
  }
  SUBCASE("a key inside the document is not in every dead letter") {
    // Even where the collection's schema has it in every document of its own.
    auto d = one(Catalog("shop/letters", "",
                         letters("{type: object, required: [_meta], properties: {_meta: {type: "
                                 "object, required: [uuid], properties: {uuid: {type: string}}}}}",
                                 "{type: string}", "[/task, /document/_meta/uuid]")));
    CHECK(d.message ==
          "key `/document/_meta/uuid` of dead-letter collection `shop/letters` is "
          "not a location of a dead letter");
  }
  SUBCASE("a collection that failed its own checks is not reported again") {
    auto c = Check(dir, Catalog("shop/broken-letters", "", R"(
  - name: shop/broken-letters
    schema: "#/nowhere"
    key: [/task]
)"));
    REQUIRE(c->diags.size() == 1);
    CHECK(c->diags.items()[0].message.find("dead-letter") == std::string::npos);
  }
  SUBCASE("one dead-letter collection serves several transforms and bindings") {
    auto c = Check(dir, Catalog("shop/dead-letters", R"(
materializations:
  shop/views:
    target: db
    bindings:
      - {source: shop/totals, table: totals, deadLetters: shop/dead-letters}
      - {source: shop/orders, table: orders, deadLetters: shop/dead-letters}
)"));
    CHECK_MESSAGE(c->diags.empty(), c->Text());
  }
}

// Captured collections acme/in, acme/dead and acme/other of the recommended dead-letter
// schema, then `more` (derivations and materializations with `deadLetters`).
std::string CycleCatalog(const std::string& more) {
  std::string text = "collections:\n";
  for (const char* name : {"acme/in", "acme/dead", "acme/other"}) {
    text += fmt::format(R"(  - name: {}
    schema:
      type: object
      properties:
        task: {{type: string}}
        taskKind: {{enum: [derivation, materialization]}}
        binding: {{type: string}}
        collection: {{type: string}}
        journal: {{type: string}}
        offset: {{type: integer}}
        error: {{type: string}}
        document: {{}}
      required: [task, taskKind, binding, collection, journal, offset, error, document]
    key: [/task, /binding, /journal, /offset]
)",
                        name);
  }
  return text + more;
}

// A derivation `name` with one transform `transform` of `source`, with `deadLetters` when
// `dead_letters` is not empty.
std::string Derivation(const std::string& name, const std::string& transform,
                       const std::string& source, const std::string& dead_letters = "") {
  return fmt::format(R"(  - name: {}
    schema: {{type: object, properties: {{n: {{type: integer}}}}, required: [n]}}
    key: [/n]
    derivation:
      transform:
        {}:
          source: {}
{}          publish: {{sqlite: SELECT 1 AS n}}
)",
                     name, transform, source,
                     dead_letters.empty() ? "" : "          deadLetters: " + dead_letters + "\n");
}

TEST_CASE("dead letters that would come back to the task that wrote them") {
  TempDir dir;
  SUBCASE("two transforms send each other's source their dead letters: one error, at the first") {
    auto c = Check(dir, CycleCatalog(Derivation("acme/x", "a", "acme/in", "acme/dead") +
                                     Derivation("acme/y", "b", "acme/dead", "acme/in")));
    REQUIRE_MESSAGE(c->diags.size() == 1, c->Text());
    const auto& d = c->diags.items()[0];
    CHECK(d.message ==
          "dead letters of transform `a` of `acme/x` would come back to it: acme/in → acme/dead "
          "(dead letters of `a`) → acme/in (dead letters of `b` of `acme/y`)");
    CHECK(d.scope ==
          "transform `a` of `acme/x` at /collections/3/derivation/transform/a/deadLetters");
    CHECK(d.mark.line == 51);  // after 1 + 3 × 14 lines of collections and 7 of acme/x
    CHECK(d.mark.col == 24);
    CHECK(d.hint.find("send the dead letters of one of them to a collection that no transform "
                      "reads and no binding with `deadLetters` reads") != std::string::npos);
  }
  SUBCASE("through a derivation and a binding") {
    auto c = Check(dir, CycleCatalog(Derivation("acme/x", "a", "acme/in", "acme/dead") +
                                     Derivation("acme/y", "b", "acme/dead") + R"(
materializationTargets:
  db: {sqlite: {path: out/acme.db}}
materializations:
  acme/views:
    target: db
    bindings: [{source: acme/y, table: y, deadLetters: acme/in}]
)"));
    CHECK(Messages(*c) ==
          "dead letters of transform `a` of `acme/x` would come back to it: acme/in → acme/dead "
          "(dead letters of `a`) → acme/y (transform `b`) → acme/in (dead letters of table `y` "
          "of `acme/views`)\n");
  }
  SUBCASE("a binding's dead letters a derivation brings back: them, not one of them") {
    auto c = Check(dir, CycleCatalog(Derivation("acme/y", "b", "acme/dead") + R"(
materializationTargets:
  db: {sqlite: {path: out/acme.db}}
materializations:
  acme/views:
    target: db
    bindings: [{source: acme/y, table: y, deadLetters: acme/dead}]
)"));
    REQUIRE_MESSAGE(c->diags.size() == 1, c->Text());
    const auto& d = c->diags.items()[0];
    CHECK(d.message ==
          "dead letters of table `y` of materialization `acme/views` would come back to it: "
          "acme/y → acme/dead (dead letters of table `y`) → acme/y (transform `b`)");
    CHECK(d.scope ==
          "materialization `acme/views` at /materializations/acme~1views/bindings/0/deadLetters");
    CHECK(d.hint.find("; send them to a collection") != std::string::npos);
  }
  SUBCASE("two cycles through one transform's dead letters: each reported once") {
    auto c = Check(dir, CycleCatalog(Derivation("acme/x", "a", "acme/in", "acme/dead") +
                                     Derivation("acme/y", "b", "acme/dead", "acme/in") +
                                     Derivation("acme/z", "c", "acme/dead", "acme/other") +
                                     Derivation("acme/w", "d", "acme/other", "acme/in")));
    CHECK(Messages(*c) ==
          "dead letters of transform `a` of `acme/x` would come back to it: acme/in → acme/dead "
          "(dead letters of `a`) → acme/in (dead letters of `b` of `acme/y`)\n"
          "dead letters of transform `c` of `acme/z` would come back to it: acme/dead → "
          "acme/other (dead letters of `c`) → acme/in (dead letters of `d` of `acme/w`) → "
          "acme/dead (dead letters of `a` of `acme/x`)\n");
  }
  SUBCASE("dead letters no task with deadLetters reads back are fine") {
    auto c = Check(dir, CycleCatalog(Derivation("acme/x", "a", "acme/in", "acme/dead") +
                                     Derivation("acme/y", "b", "acme/dead") + R"(
materializationTargets:
  db: {sqlite: {path: out/acme.db}}
materializations:
  acme/views:
    target: db
    bindings:
      - {source: acme/y, table: y, deadLetters: acme/other}
      - {source: acme/dead, table: dead}
)"));
    CHECK_MESSAGE(c->diags.empty(), c->Text());
  }
  SUBCASE("a cycle of derivations alone is the derivation cycle check's, reported once") {
    auto c = Check(dir, CycleCatalog(Derivation("acme/x", "a", "acme/y", "acme/dead") +
                                     Derivation("acme/y", "b", "acme/x")));
    REQUIRE_MESSAGE(c->diags.size() == 1, c->Text());
    CHECK(c->diags.items()[0].message.find("derivation cycle: ") == 0);
  }
  SUBCASE("dead letters sent to their own source are reported once, by their own check") {
    auto c = Check(dir, CycleCatalog(Derivation("acme/x", "a", "acme/in", "acme/in")));
    CHECK(Messages(*c) ==
          "dead-letter collection `acme/in` is the source collection of this transform\n");
  }
}

TEST_CASE("json-schema takes deadLetters where the build does") {
  rapidjson::Document s;
  auto text = catalog::CatalogSourceSchema();
  s.Parse(text.data(), text.size());
  REQUIRE_FALSE(s.HasParseError());
  auto v = Must(schema::Validator::Compile(s));
  auto valid = [&](const std::string& source) {
    Diagnostics d;
    auto node = catalog::ReadYaml(source, "t.yaml", &d);
    REQUIRE(node);
    rapidjson::Document doc;
    node->ToJson(&doc, doc.GetAllocator());
    return v->Validate(doc, doc.GetAllocator()).empty();
  };
  CHECK(valid(Catalog("shop/dead-letters", kMaterializations)));
  CHECK(valid(
      "materializations:\n  m: {collection: a/b, postgres: {uri: \"postgresql://h/db\", table: t}, "
      "deadLetters: a/c}\n"));
  CHECK_FALSE(
      valid("materializations:\n  m: {target: db, deadLetters: a/c, bindings: [{source: a/b, "
            "table: t}]}\n"));
  CHECK_FALSE(valid(Catalog("[a/c]")));
}

}  // namespace flow
