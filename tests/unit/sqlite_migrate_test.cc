// Schema evolution in the SQLite materialization driver (SPEC 5): Open migrates compatible
// changes of a table's shape, refuses the others with the expected DDL, the differences and
// the back-fill hint, re-creates tables for a rebuild, refuses a missing table whose
// checkpoint survived; Plan says what Open would run. Checked through sqlite3 as well.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <deque>
#include <string>
#include <vector>

#include "doc/parse.h"
#include "doc/pointer.h"
#include "doc/value.h"
#include "materialize/dialect.h"
#include "materialize/sqlite.h"
#include "scratch.h"

using namespace flow;
using namespace flow::materialize;

namespace {

constexpr uint8_t kNull = 1, kInteger = 4, kNumber = 8, kString = 16, kObject = 32;
const char* kHint = "flowctl run --backfill test/m";

doc::Pointer Ptr(const std::string& s) {
  std::string why;
  auto p = doc::Pointer::Parse(s, &why);
  REQUIRE_MESSAGE(p, why);
  return *p;
}

Column Col(std::string field, uint8_t types, bool must_exist = false, bool key = false) {
  Column c;
  c.location = Ptr("/" + field);
  c.field = std::move(field);
  c.types = types;
  c.must_exist = must_exist;
  c.key = key;
  c.key_position = key ? 1 : 0;
  return c;
}

Column DocumentColumn() {
  Column c;
  c.field = "flow_document";
  c.types = kObject;
  c.must_exist = true;
  c.document = true;
  return c;
}

// Table "t" keyed by integer /id, with `more` columns between the key and the document.
Table T(std::vector<Column> more, bool delta = false) {
  Table t;
  t.name = "t";
  t.columns.push_back(Col("id", kInteger, true, true));
  for (auto& c : more) t.columns.push_back(std::move(c));
  t.columns.push_back(DocumentColumn());
  t.delta_updates = delta;
  return t;
}

OpenOptions Hinted() {
  OpenOptions o;
  o.backfill_hint = kHint;
  return o;
}

struct Docs {
  std::deque<rapidjson::Document> docs;
  const doc::Value* operator()(const std::string& json) {
    auto& d = docs.emplace_back();
    doc::ParseError error;
    REQUIRE_MESSAGE(doc::ParseDocument(json, &d, &error), error.message);
    return &d;
  }
};

// A database file in a scratch directory, with a query helper.
struct Db {
  testing::TempDir dir;
  std::string path = dir.path + "/db.sqlite";

  std::unique_ptr<Driver> Connect() const {
    auto d = ConnectSqlite(path, "local");
    REQUIRE_MESSAGE(d.ok(), d.error().message);
    return std::move(*d);
  }
  // Rows as '|'-separated lines; NULL shows as "NULL".
  std::string Query(const std::string& sql) const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    std::string out;
    char* err = nullptr;
    int rc = sqlite3_exec(
        db, sql.c_str(),
        [](void* o, int n, char** values, char**) {
          auto* s = static_cast<std::string*>(o);
          for (int i = 0; i < n; ++i)
            *s += std::string(i ? "|" : "") + (values[i] ? values[i] : "NULL");
          *s += "\n";
          return 0;
        },
        &out, &err);
    std::string why = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    REQUIRE_MESSAGE(rc == SQLITE_OK, why << "\nSQL: " << sql);
    return out;
  }
};

std::string MustOpen(Driver& d, const std::vector<Table>& tables, const OpenOptions& o = Hinted()) {
  auto r = d.Open("test/m", tables, o);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return *r;
}

void Store(Driver& d, const std::vector<Driver::Row>& rows, const std::string& checkpoint) {
  auto r = d.Store(rows, checkpoint);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
}

std::vector<std::string> MustPlan(Driver& d, const std::vector<Table>& tables,
                                  const OpenOptions& o = Hinted()) {
  auto r = d.Plan("test/m", tables, o);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return *r;
}

// A table with rows 1 and 2 (v "a" and "b") and checkpoint "cp1", opened with `shape`.
void Fill(const Db& db, const Table& shape) {
  Docs docs;
  auto d = db.Connect();
  MustOpen(*d, {shape});
  Store(*d, {{0, docs(R"({"id":1,"v":"a"})")}, {0, docs(R"({"id":2,"v":"b"})")}}, "cp1");
}

}  // namespace

TEST_CASE("sqlite migrate: a new nullable column is added; old rows hold NULL, new rows a value") {
  Db db;
  Fill(db, T({Col("v", kString | kNull)}));
  Table wider = T({Col("v", kString | kNull), Col("n", kInteger | kNull)});
  auto d = db.Connect();
  CHECK(MustPlan(*d, {wider}) ==
        std::vector<std::string>{"ALTER TABLE \"t\" ADD COLUMN \"n\" INTEGER;"});
  CHECK(MustOpen(*d, {wider}) == "cp1");
  Docs docs;
  Store(*d, {{0, docs(R"({"id":3,"v":"c","n":7})")}}, "cp2");
  CHECK(db.Query("SELECT id, v, n FROM t ORDER BY id") == "1|a|NULL\n2|b|NULL\n3|c|7\n");
  CHECK(MustPlan(*d, {wider}).empty());
}

TEST_CASE("sqlite migrate: a new required column is refused, and nothing changes") {
  Db db;
  Fill(db, T({Col("v", kString | kNull)}));
  Table required = T({Col("v", kString | kNull), Col("n", kInteger, true)});
  auto d = db.Connect();
  auto r = d->Open("test/m", {required}, Hinted());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message ==
        "table \"t\" in target `local` (" + db.path +
            ") exists with a different shape that cannot be migrated. Expected:\n" +
            CreateTableSql(Dialect::kSqlite, required) +
            "\nDifferences:\n"
            "  - missing column \"n\", which is NOT NULL: the existing rows have no value for it\n"
            "Nothing was changed; back-fill it to re-create the table: " +
            kHint);
  auto p = d->Plan("test/m", {required}, Hinted());
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message == r.error().message);
  CHECK(db.Query("SELECT name FROM pragma_table_info('t')") == "id\nv\nflow_document\n");
  CHECK(db.Query("SELECT fence, checkpoint FROM flow_checkpoints") == "1|cp1\n");
}

TEST_CASE("sqlite migrate: integer widened to number keeps the declared INTEGER and stores reals") {
  Db db;
  Fill(db, T({Col("v", kString | kNull), Col("x", kInteger | kNull)}));
  Table widened = T({Col("v", kString | kNull), Col("x", kNumber | kInteger | kNull)});
  auto d = db.Connect();
  CHECK(MustPlan(*d, {widened}).empty());
  MustOpen(*d, {widened});
  Docs docs;
  Store(*d, {{0, docs(R"({"id":3,"x":1.5})")}, {0, docs(R"({"id":4,"x":2})")}}, "cp2");
  CHECK(db.Query("SELECT id, x, typeof(x) FROM t WHERE id > 2 ORDER BY id") ==
        "3|1.5|real\n4|2|integer\n");
  CHECK(db.Query("SELECT type FROM pragma_table_info('t') WHERE name = 'x'") == "INTEGER\n");
}

TEST_CASE("sqlite migrate: a NOT NULL column no longer selected is kept and becomes nullable") {
  Db db;
  Table before = T({Col("v", kString, true)});
  Fill(db, before);
  db.Query(
      "CREATE INDEX t_v ON t (v); CREATE TABLE log (id INTEGER); CREATE TRIGGER t_log AFTER "
      "INSERT ON t BEGIN INSERT INTO log VALUES (new.id); END; CREATE VIEW t_view AS SELECT id, "
      "v FROM t;");
  Table after = T({Col("w", kString | kNull)});
  auto d = db.Connect();
  auto plan = MustPlan(*d, {after});
  CHECK(plan == std::vector<std::string>{
                    "CREATE TEMP TABLE temp.\"flowctl_migrate\" AS SELECT * FROM \"t\";",
                    "DROP TABLE \"t\";",
                    "CREATE TABLE \"t\" (\n  \"id\" INTEGER NOT NULL,\n  \"v\" TEXT,\n"
                    "  \"flow_document\" TEXT NOT NULL,\n  \"w\" TEXT,\n  PRIMARY KEY (\"id\")\n);",
                    "INSERT INTO \"t\" (\"id\", \"v\", \"flow_document\") SELECT \"id\", \"v\", "
                    "\"flow_document\" FROM temp.\"flowctl_migrate\";",
                    "DROP TABLE temp.\"flowctl_migrate\";", "CREATE INDEX t_v ON t (v);",
                    "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES "
                    "(new.id); END;"});
  CHECK(MustOpen(*d, {after}) == "cp1");
  Docs docs;
  Store(*d, {{0, docs(R"({"id":3,"w":"z"})")}}, "cp2");
  CHECK(db.Query("SELECT id, v, w FROM t ORDER BY id") == "1|a|NULL\n2|b|NULL\n3|NULL|z\n");
  CHECK(db.Query("SELECT \"notnull\" FROM pragma_table_info('t') WHERE name = 'v'") == "0\n");
  CHECK(db.Query("SELECT count(*) FROM sqlite_master WHERE name IN ('t_v', 't_log')") == "2\n");
  CHECK(db.Query("SELECT id FROM log") == "3\n");
  CHECK(db.Query("SELECT count(*) FROM t_view") == "3\n");
  CHECK(MustPlan(*d, {after}).empty());
}

TEST_CASE("sqlite migrate: a kept NOT NULL column expected nullable becomes nullable") {
  Db db;
  Fill(db, T({Col("v", kString, true)}));
  auto d = db.Connect();
  MustOpen(*d, {T({Col("v", kString | kNull)})});
  CHECK(db.Query("SELECT \"notnull\" FROM pragma_table_info('t') WHERE name = 'v'") == "0\n");
  Docs docs;
  Store(*d, {{0, docs(R"({"id":3})")}}, "cp2");
  CHECK(db.Query("SELECT id, v FROM t ORDER BY id") == "1|a\n2|b\n3|NULL\n");
}

TEST_CASE("sqlite migrate: a changed key, a narrowed type or a new NOT NULL are refused") {
  Db db;
  Fill(db, T({Col("v", kString | kNull), Col("x", kNumber | kNull)}));
  Table changed = T({Col("v", kString, true), Col("x", kInteger | kNull)});
  changed.columns[1].key = true;  // key (id, v)
  changed.columns[1].key_position = 2;
  auto d = db.Connect();
  auto r = d->Open("test/m", {changed}, Hinted());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message ==
        "table \"t\" in target `local` (" + db.path +
            ") exists with a different shape that cannot be migrated. Expected:\n" +
            CreateTableSql(Dialect::kSqlite, changed) +
            "\nDifferences:\n"
            "  - column \"v\" may be NULL, expected NOT NULL: the existing rows may hold NULL\n"
            "  - column \"x\" is REAL, expected INTEGER\n"
            "  - the primary key is (\"id\"), expected (\"id\", \"v\")\n"
            "Nothing was changed; back-fill it to re-create the table: " +
            kHint);
  Table delta = T({Col("v", kString | kNull), Col("x", kNumber | kNull)}, true);
  r = d->Open("test/m", {delta}, Hinted());
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(r.error().message.find("  - the primary key is (\"id\"), expected none (delta "
                                       "updates)\n") != std::string::npos,
                r.error().message);
  Table required = T({Col("v", kString, true), Col("x", kNumber | kNull)});
  r = d->Open("test/m", {required}, Hinted());
  REQUIRE_FALSE(r.ok());
  CHECK_MESSAGE(r.error().message.find("  - column \"v\" may be NULL, expected NOT NULL: the "
                                       "existing rows may hold NULL\n") != std::string::npos,
                r.error().message);
  CHECK(db.Query("SELECT fence, checkpoint FROM flow_checkpoints") == "1|cp1\n");
}

TEST_CASE(
    "sqlite migrate: a rebuild drops and re-creates every table, sets the checkpoint and "
    "takes the fence, in one transaction") {
  Db db;
  Fill(db, T({Col("v", kString | kNull)}));
  Table other = T({Col("v", kInteger, true)});  // an incompatible shape
  Table second = T({});
  second.name = "second";
  OpenOptions rebuild = Hinted();
  rebuild.rebuild = true;
  rebuild.reset_checkpoint = "cp0";
  auto d = db.Connect();
  CHECK(MustPlan(*d, {other, second}, rebuild) ==
        std::vector<std::string>{
            "DROP TABLE IF EXISTS \"t\";", CreateTableSql(Dialect::kSqlite, other),
            "DROP TABLE IF EXISTS \"second\";", CreateTableSql(Dialect::kSqlite, second)});
  // A failure after the tables were dropped (here: a trigger refuses to take the fence)
  // changes nothing.
  db.Query(
      "CREATE TRIGGER no_fence BEFORE UPDATE OF fence ON flow_checkpoints BEGIN SELECT "
      "RAISE(ABORT, 'no fence'); END;");
  auto failed = d->Open("test/m", {other, second}, rebuild);
  REQUIRE_FALSE(failed.ok());
  CHECK(db.Query("SELECT id, v FROM t ORDER BY id") == "1|a\n2|b\n");
  CHECK(db.Query("SELECT count(*) FROM sqlite_master WHERE name = 'second'") == "0\n");
  CHECK(db.Query("SELECT fence, checkpoint FROM flow_checkpoints") == "1|cp1\n");
  db.Query("DROP TRIGGER no_fence");

  CHECK(MustOpen(*d, {other, second}, rebuild) == "cp0");
  CHECK(db.Query("SELECT count(*) FROM t") == "0\n");
  CHECK(db.Query("SELECT type FROM pragma_table_info('t') WHERE name = 'v'") == "INTEGER\n");
  CHECK(db.Query("SELECT fence, checkpoint FROM flow_checkpoints") == "2|cp0\n");
  Docs docs;
  Store(*d, {{0, docs(R"({"id":1,"v":5})")}}, "cp1");
  CHECK(db.Query("SELECT id, v FROM t") == "1|5\n");
  // A rebuild of a materialization that never ran registers it with its checkpoint.
  rebuild.reset_checkpoint = "";
  auto fresh = db.Connect();
  auto r = fresh->Open("test/fresh", {second}, rebuild);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(*r == "");
  CHECK(db.Query("SELECT fence, checkpoint FROM flow_checkpoints WHERE materialization = "
                 "'test/fresh'") == "1|\n");
}

TEST_CASE(
    "sqlite migrate: a missing table is created on first start, refused once a checkpoint "
    "is stored") {
  Db db;
  auto d = db.Connect();
  Table t = T({Col("v", kString | kNull)});
  CHECK(MustPlan(*d, {t}) == std::vector<std::string>{CreateCheckpointsSql(Dialect::kSqlite),
                                                      CreateTableSql(Dialect::kSqlite, t)});
  CHECK(db.Query("SELECT count(*) FROM sqlite_master") == "0\n");  // Plan created nothing
  CHECK(MustOpen(*d, {t}) == "");
  CHECK(MustPlan(*d, {t}).empty());
  Docs docs;
  Store(*d, {{0, docs(R"({"id":1})")}}, "");  // an empty checkpoint is no checkpoint
  db.Query("DROP TABLE t");
  CHECK(MustOpen(*d, {t}) == "");
  Store(*d, {{0, docs(R"({"id":1})")}}, "cp1");
  db.Query("DROP TABLE t");
  auto r = d->Open("test/m", {t}, Hinted());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message ==
        "table \"t\" is missing from target `local` (" + db.path +
            "), although flow_checkpoints holds a checkpoint for materialization `test/m`: "
            "creating it empty would silently miss every document before that checkpoint. "
            "Nothing was changed; back-fill it: " +
            kHint);
  auto p = d->Plan("test/m", {t}, Hinted());
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message == r.error().message);
  CHECK(db.Query("SELECT count(*) FROM sqlite_master WHERE name = 't'") == "0\n");
  OpenOptions rebuild = Hinted();
  rebuild.rebuild = true;
  CHECK(MustOpen(*d, {t}, rebuild) == "");
  CHECK(db.Query("SELECT count(*) FROM t") == "0\n");
}
