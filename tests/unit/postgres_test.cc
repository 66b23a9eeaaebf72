// Tests of src/materialize/postgres against a real server that scripts/pg.sh starts in a
// temporary directory, once per test process, on the first "postgres:" test (and stops at
// exit). A server that cannot be installed or started fails these tests; it never skips
// them. Results are checked through psql as well as through the driver.
#include "materialize/postgres.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "doc/parse.h"
#include "doc/pointer.h"
#include "doc/value.h"
#include "materialize/dialect.h"

using namespace flow;
using namespace flow::materialize;

namespace {

constexpr uint8_t kNull = 1, kBoolean = 2, kInteger = 4, kNumber = 8, kString = 16, kObject = 32,
                  kArray = 64;
const char* kTarget = "pgtest";

std::string Quote(const std::string& s) {  // for /bin/sh
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `command` with /bin/sh, capturing stdout (and stderr, if the command redirects it).
int Run(const std::string& command, std::string* out) {
  out->clear();
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Script() { return Quote(std::string(FLOWCTL_SOURCE_DIR) + "/scripts/pg.sh"); }

// The server of this test process.
struct Server {
  std::string dir, uri, error;

  Server() {
    char tmpl[] = "/tmp/flowctl-pgtest-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      error = "cannot create a temporary directory";
      return;
    }
    dir = tmpl;
    std::string out;
    int rc = Run(Script() + " start " + Quote(dir) + " 2>&1", &out);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    if (rc != 0) {
      error = "scripts/pg.sh start failed (exit " + std::to_string(rc) + "):\n" + out;
      return;
    }
    uri = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  }
  ~Server() {
    if (dir.empty()) return;
    std::string out;
    Run(Script() + " stop " + Quote(dir) + " 2>&1", &out);
    Run("rm -rf " + Quote(dir), &out);
  }
};

const Server& Pg() {
  static Server server;
  REQUIRE_MESSAGE(server.error.empty(), "PostgreSQL is required for these tests: " << server.error);
  return server;
}

// Runs `sql` with psql against the test database; rows are '|'-separated lines.
std::string Psql(const std::string& sql) {
  const Server& pg = Pg();
  std::string file = pg.dir + "/query.sql";
  std::ofstream(file) << sql;
  std::string out;
  int rc =
      Run(Script() + " psql " + Quote(pg.dir) + " -q -At -F '|' -f " + Quote(file) + " 2>&1", &out);
  REQUIRE_MESSAGE(rc == 0, "psql failed: " << out << "\nSQL: " << sql);
  return out;
}

std::unique_ptr<Driver> Connect() {
  auto d = PostgresDriver::Connect(Pg().uri, kTarget);
  REQUIRE_MESSAGE(d.ok(), d.error().message);
  return std::move(*d);
}

doc::Pointer Ptr(const std::string& s) {
  std::string why;
  auto p = doc::Pointer::Parse(s, &why);
  REQUIRE_MESSAGE(p, why);
  return *p;
}

Column Col(std::string field, const std::string& ptr, uint8_t types, bool must_exist = false,
           bool key = false, std::optional<uint64_t> max_length = {}) {
  Column c;
  c.field = std::move(field);
  c.location = Ptr(ptr);
  c.types = types;
  c.must_exist = must_exist;
  c.key = key;
  c.max_length = max_length;
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

// A table keyed by integer /id with a nullable string /v.
Table Simple(std::string name, bool delta = false) {
  Table t;
  t.name = std::move(name);
  t.columns = {Col("id", "/id", kInteger, true, true), Col("v", "/v", kString | kNull),
               DocumentColumn()};
  t.delta_updates = delta;
  return t;
}

// A table keyed by string /k with a column of each type: integer /i, number /n, boolean /b,
// string /s, a string of at most 8 characters /short, object /obj, and string or integer
// /multi (stored as JSON).
Table ValuesTable(std::string name) {
  Table t;
  t.name = std::move(name);
  t.columns = {
      Col("k", "/k", kString, true, true),
      Col("i", "/i", kInteger | kNull),
      Col("n", "/n", kNumber | kNull),
      Col("b", "/b", kBoolean | kNull),
      Col("s", "/s", kString | kNull),
      Col("short", "/short", kString | kNull, false, false, 8),
      Col("obj", "/obj", kObject | kNull),
      Col("multi", "/multi", kString | kInteger | kNull),
      DocumentColumn(),
  };
  return t;
}

// Owns parsed documents for one test.
struct Docs {
  std::deque<rapidjson::Document> docs;
  const doc::Value* operator()(const std::string& json) {
    auto& d = docs.emplace_back();
    doc::ParseError error;
    REQUIRE_MESSAGE(doc::ParseDocument(json, &d, &error), error.message);
    return &d;
  }
};

std::string Json(const doc::Value& v) {
  std::string out;
  doc::AppendJson(v, &out);
  return out;
}

void Open(Driver& d, const std::string& materialization, const std::vector<Table>& tables,
          const std::string& want_checkpoint = "") {
  auto r = d.Open(materialization, tables, {});
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(*r == want_checkpoint);
}

void Store(Driver& d, const std::vector<Driver::Row>& rows, const std::string& checkpoint) {
  auto r = d.Store(rows, checkpoint);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
}

// Loads `keys` of binding `table` as index → stored document.
std::map<size_t, std::string> Load(Driver& d, size_t table,
                                   const std::vector<std::vector<const doc::Value*>>& keys) {
  std::map<size_t, std::string> out;
  auto r = d.Load(table, keys, [&](size_t i, std::string_view json) {
    CHECK_MESSAGE(out.count(i) == 0, "key " << i << " found twice");
    out[i] = std::string(json);
  });
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return out;
}

}  // namespace

TEST_CASE("postgres: DDL has the dialect's types, NOT NULL, a composite key and quoted odd names") {
  Table t;
  t.name = "rides \"2024\"";
  t.columns = {
      Col("end station id", "/end station id", kInteger, true, true),
      Col("name\"q", "/name", kString, true, true, 32),
      Col("dist", "/dist", kNumber | kInteger | kNull, true),
      Col("ok", "/ok", kBoolean, true),
      Col("note", "/note", kString),
      Col("tags", "/tags", kArray),
      Col("any", "/any", kString | kInteger),
      DocumentColumn(),
  };
  auto d = Connect();
  Open(*d, "test/ddl", {t});
  CHECK(Psql("SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM "
             "pg_attribute a "
             "WHERE a.attrelid = '\"rides \"\"2024\"\"\"'::regclass AND a.attnum > 0 ORDER BY "
             "a.attnum") ==
        "end station id|bigint|t\n"
        "name\"q|character varying(32)|t\n"
        "dist|double precision|f\n"
        "ok|boolean|t\n"
        "note|text|f\n"
        "tags|json|f\n"
        "any|json|f\n"
        "flow_document|json|t\n");
  CHECK(Psql("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
             "WHERE conrelid = '\"rides \"\"2024\"\"\"'::regclass AND contype = 'p'") ==
        "PRIMARY KEY (\"end station id\", \"name\"\"q\")\n");
  CHECK(Psql("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = "
             "'flow_checkpoints' "
             "ORDER BY ordinal_position") ==
        "materialization|text\nfence|bigint\ncheckpoint|text\n");

  // Opening again finds the same shape and changes nothing.
  auto again = Connect();
  Open(*again, "test/ddl", {t});
}

TEST_CASE(
    "postgres: values round trip: quotes, backslashes, control characters, non-ASCII, JSON, "
    "nulls") {
  Table t = ValuesTable("values");
  Docs docs;
  std::vector<std::string> texts = {
      R"({"k":"a'b\"c","i":-9223372036854775808,"n":1.5,"b":true,"s":"it's \"q\" \\ back\\slash\ttab\nline\r\u00e9\u6f22\ud83d\ude00","obj":{"x":[1,{"y":"\\"}],"z":null},"multi":"str"})",
      R"({"k":"\\N","i":9223372036854775807,"n":-2.5e-300,"b":false,"s":"\\N","obj":{},"multi":7})",
      R"({"k":"empty","s":"","n":3,"multi":null,"obj":null})",
      R"({"k":"tab\tkey\nnewline","i":0})",
  };
  std::vector<Driver::Row> rows;
  for (const auto& text : texts) rows.push_back({0, docs(text)});

  auto d = Connect();
  Open(*d, "test/values", {t});
  Store(*d, rows, "cp");
  CHECK(Psql("SELECT to_json(k), i, n, b, to_json(s), obj, multi FROM \"values\" ORDER BY k "
             "COLLATE \"C\"") ==
        "\"\\\\N\"|9223372036854775807|-2.5e-300|f|\"\\\\N\"|{}|7\n"
        "\"a'b\\\"c\"|-9223372036854775808|1.5|t|\"it's \\\"q\\\" \\\\ "
        "back\\\\slash\\ttab\\nline\\ré漢😀\"|"
        "{\"x\":[1,{\"y\":\"\\\\\"}],\"z\":null}|\"str\"\n"
        "\"empty\"||3||\"\"||\n"
        "\"tab\\tkey\\nnewline\"|0|||||\n");
  // psql prints SQL NULL as nothing; check that the empty string and absent values differ.
  CHECK(Psql("SELECT to_json(k), s IS NULL, obj IS NULL, multi IS NULL, b IS NULL FROM \"values\" "
             "WHERE k IN ('empty', E'tab\\tkey\\nnewline') ORDER BY k COLLATE \"C\"") ==
        "\"empty\"|f|t|t|t\n\"tab\\tkey\\nnewline\"|t|t|t|t\n");
  CHECK(Psql("SELECT count(*) FROM \"values\" WHERE flow_document::jsonb = jsonb_build_object('k', "
             "'tab' || chr(9) || 'key' || chr(10) || 'newline', 'i', 0)") == "1\n");

  // Load returns each document as stored: the same JSON text.
  std::vector<std::vector<const doc::Value*>> keys;
  for (const auto& row : rows) keys.push_back({doc::Lookup(*row.document, Ptr("/k"))});
  auto found = Load(*d, 0, keys);
  REQUIRE(found.size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) CHECK(found[i] == Json(*rows[i].document));
}

TEST_CASE("postgres: COPY's binary format stores exactly what its text format stores") {
  Docs docs;
  std::vector<std::string> texts = {
      R"({"k":"a","i":-9223372036854775808,"n":0.1,"b":true,"s":"tab\tnl\nback\\slash \"q\" é漢😀","short":"12345678","obj":{"x":[1,{"y":"\\"}],"z":null},"multi":"str"})",
      R"({"k":"b","i":9223372036854775807,"n":-0.0,"b":false,"s":"nul\u0000inside\u0000","short":"","obj":{"nul":"\u0000"},"multi":7})",
      R"({"k":"c","i":0,"n":1e300,"s":"\\N","obj":[],"multi":null})",
      R"({"k":"d","n":5e-324,"s":""})",
      R"({"k":"e","n":9007199254740993})",
      R"({"k":"f","n":1.7976931348623157e308,"i":42})",
      R"({"k":"g","n":18446744073709551615})",
      R"({"k":"h\tkey","n":123456789012345678})",
  };
  std::vector<Driver::Row> rows;
  for (const auto& text : texts) rows.push_back({0, docs(text)});

  auto as_text = Connect();
  dynamic_cast<PostgresDriver&>(*as_text).set_binary_copy(false);
  Open(*as_text, "test/format-text", {ValuesTable("format_text")});
  CHECK_FALSE(dynamic_cast<PostgresDriver&>(*as_text).binary_copy(0));
  Store(*as_text, rows, "1");
  auto as_binary = Connect();
  Open(*as_binary, "test/format-binary", {ValuesTable("format_binary")});
  CHECK(dynamic_cast<PostgresDriver&>(*as_binary).binary_copy(0));
  Store(*as_binary, rows, "1");

  // Every column's value, its type and its NULLness, row by row (float8 to its exact bits).
  auto dump = [](const std::string& name) {
    return Psql(
        fmt::format("SELECT to_json(k), i, float8send(n), n, b, to_json(s), s IS NULL, "
                    "to_json(short), obj::text, "
                    "multi::text, flow_document::text FROM {} ORDER BY k COLLATE \"C\"",
                    name));
  };
  std::string text_rows = dump("format_text");
  CHECK(std::count(text_rows.begin(), text_rows.end(), '\n') == 8);
  CHECK(dump("format_binary") == text_rows);
  // The document's text is stored as written; NULs are dropped from text columns only.
  CHECK(Psql("SELECT to_json(s), obj::text FROM format_binary WHERE k = 'b'") ==
        "\"nulinside\"|{\"nul\":\"\\u0000\"}\n");
  CHECK(Psql("SELECT float8send(n) = float8send('-0'::float8), n = 9007199254740992 FROM "
             "format_binary WHERE k IN ('b', 'e') ORDER BY k") == "t|f\nf|t\n");

  // Upserts (through the staging table) too.
  std::vector<std::vector<const doc::Value*>> keys;
  for (const auto& row : rows) keys.push_back({doc::Lookup(*row.document, Ptr("/k"))});
  CHECK(Load(*as_text, 0, keys).size() == rows.size());
  CHECK(Load(*as_binary, 0, keys).size() == rows.size());
  std::vector<Driver::Row> again;
  for (const auto& text : texts) {
    again.push_back({0, docs(text.substr(0, text.size() - 1) + R"(,"again":[1]})")});
  }
  Store(*as_text, again, "2");
  Store(*as_binary, again, "2");
  CHECK(dump("format_binary") == dump("format_text"));
  CHECK(
      Psql(
          "SELECT count(*) FROM format_binary WHERE flow_document::text LIKE '%,\"again\":[1]}'") ==
      "8\n");

  // A value the server refuses: the same error in both formats, naming the row and column.
  std::string refused[2];
  size_t failed[2] = {9, 9};
  Driver* drivers[2] = {as_text.get(), as_binary.get()};
  for (int f = 0; f < 2; ++f) {
    auto r = drivers[f]->Store(
        {{0, docs(R"({"k":"fine"})")}, {0, docs(R"({"k":"long","short":"123456789"})")}}, "3",
        &failed[f]);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::kUser);
    refused[f] = r.error().message;
  }
  for (size_t at; (at = refused[0].find("format_text")) != std::string::npos;)
    refused[0].replace(at, 11, "format_binary");
  CHECK(refused[1] == refused[0]);
  CHECK_MESSAGE(
      refused[1].find("value too long for type character varying(8)") != std::string::npos,
      refused[1]);
  CHECK_MESSAGE(refused[1].find("column `short`") != std::string::npos, refused[1]);
  CHECK(failed[0] == 1);
  CHECK(failed[1] == 1);
  CHECK(Psql("SELECT count(*) FROM format_binary WHERE k IN ('fine', 'long')") == "0\n");
}

TEST_CASE(
    "postgres: a value without a binary form sends the whole transaction in COPY's text format, "
    "with the text format's results and errors") {
  Docs docs;
  auto d = Connect();
  Open(*d, "test/fallback", {Simple("fallback")});
  REQUIRE(dynamic_cast<PostgresDriver&>(*d).binary_copy(0));
  // 3.0 is a double, which the text format stores as the bigint 3; so many rows that they are
  // formatted on a thread of their own, the odd one late among them.
  std::vector<Driver::Row> rows;
  for (int i = 1; i <= 6000; ++i) {
    rows.push_back({0, i == 5000 ? docs(R"({"id":3.0e3,"v":"from a double"})")
                                 : docs(fmt::format(R"({{"id":{},"v":"row"}})", i + 10000))});
  }
  Store(*d, rows, "1");
  CHECK(Psql("SELECT count(*), count(*) FILTER (WHERE id = 3000 AND v = 'from a double') FROM "
             "fallback") == "6000|1\n");
  // An integer beyond bigint: refused by the server as in the text format, the row named.
  size_t failed = 9;
  auto r = d->Store({{0, docs(R"({"id":1,"v":"fine"})")},
                     {0, docs(R"({"id":18446744073709551615,"v":"too big"})")}},
                    "2", &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK_MESSAGE(r.error().message.find("out of range for type bigint") != std::string::npos,
                r.error().message);
  CHECK_MESSAGE(r.error().message.find("column `id`") != std::string::npos, r.error().message);
  CHECK(failed == 1);
  CHECK(Psql("SELECT count(*) FROM fallback WHERE id = 1") == "0\n");
  // Back in binary: nulls, and NUL characters dropped from a text column.
  r = d->Store({{0, docs(R"({"id":2,"v":"fine"})")},
                {0, docs(R"({"id":4,"v":null})")},
                {0, docs(R"({"id":5,"v":"\u0000"})")}},
               "3", &failed);
  CHECK_MESSAGE(r.ok(), r.error().message);
  CHECK(Psql("SELECT id, v IS NULL, length(v) FROM fallback WHERE id IN (2, 4, 5) ORDER BY id") ==
        "2|f|4\n4|t|\n5|f|0\n");
}

// The server reads binary data by the type a column has when the COPY runs, which may not
// be the one Open saw: another materialization widened it, or someone altered the table.
TEST_CASE("postgres: a column whose type changed after Open is stored right: its rows go as text") {
  Docs docs;
  auto d = Connect();
  Table t;
  t.name = "retyped";
  t.columns = {Col("id", "/id", kInteger, true, true), Col("x", "/x", kInteger | kNull),
               DocumentColumn()};
  Open(*d, "test/retyped", {t});
  REQUIRE(dynamic_cast<PostgresDriver&>(*d).binary_copy(0));
  Psql("ALTER TABLE retyped ALTER COLUMN x TYPE double precision");
  Store(*d, {{0, docs(R"({"id":1,"x":42})")}, {0, docs(R"({"id":2,"x":-7})")}}, "1");
  CHECK(Psql("SELECT id, x FROM retyped ORDER BY id") == "1|42\n2|-7\n");
  Psql("ALTER TABLE retyped ALTER COLUMN x TYPE numeric");
  CHECK(Load(*d, 0, {{docs("3")}}).empty());  // absent: copied straight into the table
  Store(*d, {{0, docs(R"({"id":3,"x":9223372036854775807})")}}, "2");
  CHECK(Psql("SELECT x FROM retyped WHERE id = 3") == "9223372036854775807\n");
  // Rows of keys that exist go through the staging table, of the types Open saw.
  Store(*d, {{0, docs(R"({"id":1,"x":43})")}}, "3");
  CHECK(Psql("SELECT x FROM retyped WHERE id = 1") == "43\n");
}

TEST_CASE("postgres: Load returns the stored documents of existing keys only, in batches") {
  Table t;
  t.name = "load composite";
  t.columns = {Col("region", "/r", kString, true, true), Col("n", "/n", kInteger, true, true),
               DocumentColumn()};
  Docs docs;
  auto d = Connect();
  Open(*d, "test/load", {t});
  std::vector<Driver::Row> rows;
  for (int i = 0; i < 5000; ++i) {
    rows.push_back({0, docs(fmt::format(R"({{"r":"{}","n":{},"payload":"p{}"}})",
                                        i % 2 ? "east" : "west \\\"w\\\"", i, i))});
  }
  Store(*d, rows, "cp");

  // 10000 keys: those of the stored rows at even positions, misses at odd ones.
  std::vector<std::vector<const doc::Value*>> keys;
  for (int i = 0; i < 5000; ++i) {
    keys.push_back(
        {doc::Lookup(*rows[i].document, Ptr("/r")), doc::Lookup(*rows[i].document, Ptr("/n"))});
    keys.push_back({doc::Lookup(*rows[i].document, Ptr("/r")), docs(std::to_string(100000 + i))});
  }
  // The same key twice, and a key whose region differs from the stored one.
  keys.push_back(keys[0]);
  keys.push_back({docs(R"("east")"), docs("0")});
  auto found = Load(*d, 0, keys);
  CHECK(found.size() == 5001);
  for (int i = 0; i < 5000; ++i) {
    REQUIRE(found.count(2 * i) == 1);
    CHECK(found[2 * i] == Json(*rows[i].document));
  }
  CHECK(found[10000] == Json(*rows[0].document));
  CHECK(Load(*d, 0, {}).empty());
}

TEST_CASE("postgres: upserts replace rows; delta updates append them") {
  Docs docs;
  auto d = Connect();
  Open(*d, "test/upsert", {Simple("upserted"), Simple("appended", true)});
  Store(*d,
        {{0, docs(R"({"id":1,"v":"a"})")},
         {0, docs(R"({"id":2,"v":"b"})")},
         {1, docs(R"({"id":1,"v":"a"})")}},
        "1");
  // The same key twice in one transaction: the last row wins (upsert) or both are kept.
  Store(*d,
        {{0, docs(R"({"id":1,"v":"c"})")},
         {0, docs(R"({"id":1})")},
         {1, docs(R"({"id":1,"v":"c"})")},
         {1, docs(R"({"id":1,"v":"d"})")}},
        "2");
  CHECK(Psql("SELECT id, v, flow_document FROM upserted ORDER BY id") ==
        "1||{\"id\":1}\n2|b|{\"id\":2,\"v\":\"b\"}\n");
  CHECK(Psql("SELECT id, v FROM appended ORDER BY v") == "1|a\n1|c\n1|d\n");
  // Delta-updates tables have no primary key and load nothing.
  CHECK(Psql("SELECT count(*) FROM pg_constraint WHERE conrelid = 'appended'::regclass") == "0\n");
  CHECK(Load(*d, 1, {{docs("1")}}).empty());
}

TEST_CASE(
    "postgres: rows of keys Load found absent are inserted, and upserted if someone wrote them "
    "meanwhile") {
  Docs docs;
  auto d = Connect();
  Open(*d, "test/absent", {Simple("absent")});
  Store(*d, {{0, docs(R"({"id":1,"v":"old"})")}}, "1");
  // Key 1 exists; 2 and 3 are absent; 3 appears twice in the transaction (the last wins).
  CHECK(Load(*d, 0, {{docs("1")}, {docs("2")}, {docs("3")}}).size() == 1);
  Store(*d,
        {{0, docs(R"({"id":1,"v":"new"})")},
         {0, docs(R"({"id":2,"v":"new"})")},
         {0, docs(R"({"id":3,"v":"first"})")},
         {0, docs(R"({"id":3,"v":"last"})")}},
        "2");
  CHECK(Psql("SELECT id, v FROM absent ORDER BY id") == "1|new\n2|new\n3|last\n");

  // Another writer inserts key 4 between Load and Store: the insert conflicts, and the
  // driver upserts instead.
  CHECK(Load(*d, 0, {{docs("4")}, {docs("5")}}).empty());
  Psql("INSERT INTO absent VALUES (4, 'sneaked in', '{}')");
  Store(*d, {{0, docs(R"({"id":4,"v":"ours"})")}, {0, docs(R"({"id":5,"v":"ours"})")}}, "3");
  CHECK(Psql("SELECT id, v FROM absent WHERE id > 3 ORDER BY id") == "4|ours\n5|ours\n");
  CHECK(Psql("SELECT checkpoint FROM flow_checkpoints WHERE materialization = 'test/absent'") ==
        "3\n");

  // What Load saw holds until the next Store only: key 6, absent before the last Store,
  // now goes through the upsert path and still lands.
  CHECK(Load(*d, 0, {{docs("6")}}).empty());
  Store(*d, {}, "4");
  Psql("INSERT INTO absent VALUES (6, 'sneaked in', '{}')");
  Store(*d, {{0, docs(R"({"id":6,"v":"ours"})")}}, "5");
  CHECK(Psql("SELECT v FROM absent WHERE id = 6") == "ours\n");
}

TEST_CASE(
    "postgres: of a table empty at Open, Load asks only about keys this instance stored since") {
  Docs docs;
  auto d = Connect();
  Open(*d, "test/fresh", {Simple("fresh")});
  CHECK(Load(*d, 0, {{docs("1")}, {docs("2")}}).empty());
  Store(*d, {{0, docs(R"({"id":1,"v":"ours"})")}}, "1");
  // A row written behind the fence's back is not seen (nobody else writes the table: the
  // same premise as inserting the rows of keys Load found absent); the row stored is.
  Psql("INSERT INTO fresh VALUES (2, 'sneaked in', '{\"id\":2}')");
  auto found = Load(*d, 0, {{docs("1")}, {docs("2")}});
  CHECK(found.size() == 1);
  CHECK(found[0] == R"({"id":1,"v":"ours"})");
  // Storing over it conflicts, and the driver upserts instead, then asks about every key.
  Store(*d, {{0, docs(R"({"id":2,"v":"ours"})")}}, "2");
  CHECK(Psql("SELECT id, v FROM fresh ORDER BY id") == "1|ours\n2|ours\n");
  Psql("INSERT INTO fresh VALUES (3, 'sneaked in', '{\"id\":3}')");
  CHECK(Load(*d, 0, {{docs("3")}}).size() == 1);
  // A table with rows at Open is asked about every key.
  auto e = Connect();
  Open(*e, "test/fresh", {Simple("fresh")}, "2");
  CHECK(Load(*e, 0, {{docs("1")}, {docs("2")}, {docs("3")}, {docs("4")}}).size() == 3);
}

TEST_CASE(
    "postgres: of a table empty at Open, the first transaction inserts every key unasked; a row "
    "written behind the fence's back is upserted") {
  Docs docs;
  auto d = Connect();
  Open(*d, "test/first", {Simple("first")});
  CHECK(Load(*d, 0, {{docs("1")}, {docs("2")}, {docs("3")}}).empty());
  Psql("INSERT INTO first VALUES (2, 'sneaked in', '{\"id\":2}')");
  // Key 3 twice: the last row wins, as on the other paths.
  Store(*d,
        {{0, docs(R"({"id":1,"v":"ours"})")},
         {0, docs(R"({"id":2,"v":"ours"})")},
         {0, docs(R"({"id":3,"v":"first"})")},
         {0, docs(R"({"id":3,"v":"last"})")}},
        "1");
  CHECK(Psql("SELECT id, v FROM first ORDER BY id") == "1|ours\n2|ours\n3|last\n");
  // After the conflict every key is asked about.
  CHECK(Load(*d, 0, {{docs("1")}, {docs("4")}}).size() == 1);
}

TEST_CASE(
    "postgres: the checkpoint round-trips across connections and each Open takes a new fence") {
  Docs docs;
  auto a = Connect();
  Open(*a, "test/checkpoint", {Simple("checkpointed")}, "");
  Store(*a, {{0, docs(R"({"id":1})")}}, "offsets: {\"journal\": 12}\n'quoted' \\ é");
  Store(*a, {}, "offsets: {\"journal\": 34}\n'quoted' \\ é");  // a transaction of no rows still
                                                               // commits its checkpoint
  int64_t first = dynamic_cast<PostgresDriver&>(*a).fence();
  a.reset();
  auto b = Connect();
  Open(*b, "test/checkpoint", {Simple("checkpointed")},
       "offsets: {\"journal\": 34}\n'quoted' \\ é");
  CHECK(dynamic_cast<PostgresDriver&>(*b).fence() == first + 1);
  // Another materialization into the same database has its own row.
  auto c = Connect();
  Open(*c, "test/checkpoint-other", {Simple("checkpointed-other")}, "");
}

TEST_CASE("postgres: a newer instance fences off the older one, which then writes nothing") {
  Docs docs;
  auto a = Connect();
  Open(*a, "test/fence", {Simple("fenced")});
  Store(*a, {{0, docs(R"({"id":1,"v":"a1"})")}}, "a1");
  auto b = Connect();
  Open(*b, "test/fence", {Simple("fenced")}, "a1");

  auto r = a->Store({{0, docs(R"({"id":1,"v":"a2"})")}, {0, docs(R"({"id":2,"v":"a2"})")}}, "a2");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kFenced);
  CHECK(r.error().message ==
        "materialization `test/fence` was fenced off: another flowctl instance took over target "
        "`pgtest`");
  CHECK(Psql("SELECT id, v FROM fenced ORDER BY id") == "1|a1\n");
  CHECK(Psql("SELECT checkpoint FROM flow_checkpoints WHERE materialization = 'test/fence'") ==
        "a1\n");

  // The fenced-off connection is still usable (its transaction was rolled back), and B writes.
  CHECK(a->Store({}, "a3").error().code == Error::Code::kFenced);
  Store(*b, {{0, docs(R"({"id":2,"v":"b"})")}}, "b1");
  CHECK(Psql("SELECT id, v FROM fenced ORDER BY id") == "1|a1\n2|b\n");
}

TEST_CASE("postgres: instances opening at once get distinct fences") {
  // Concurrent Opens of a new materialization whose tables do not exist yet.
  std::vector<int64_t> fences(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  const std::string uri = Pg().uri;
  for (size_t i = 0; i < fences.size(); ++i) {
    threads.emplace_back([&, i] {
      auto d = PostgresDriver::Connect(uri, kTarget);
      if (!d.ok()) {
        errors[i] = d.error().message;
        return;
      }
      auto r = (*d)->Open("test/race", {Simple("raced"), Simple("raced-delta", true)}, {});
      if (!r.ok()) errors[i] = r.error().message;
      fences[i] = dynamic_cast<PostgresDriver&>(**d).fence();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) CHECK_MESSAGE(e.empty(), e);
  std::sort(fences.begin(), fences.end());
  CHECK(fences == std::vector<int64_t>{1, 2, 3, 4});
}

TEST_CASE(
    "postgres: a table with a shape that cannot be migrated is an error showing the expected DDL, "
    "the differences and the back-fill; nothing changes") {
  Psql(
      "CREATE TABLE shaped (id TEXT PRIMARY KEY, extra INTEGER); INSERT INTO shaped VALUES ('x', "
      "1);");
  auto d = Connect();
  OpenOptions options;
  options.backfill_hint = "flowctl run --backfill test/shape";
  auto r = d->Open("test/shape", {Simple("shape-sibling"), Simple("shaped")}, options);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  // "v" could be added, and "extra" left in place: only what cannot be migrated is listed.
  CHECK(r.error().message ==
        "table `shaped` in target `pgtest` exists with a different shape that cannot be "
        "migrated. Expected:\n" +
            CreateTableSql(Dialect::kPostgres, Simple("shaped")) +
            "\nDifferences:\n"
            "  - column \"id\" is text, expected BIGINT\n"
            "  - missing column \"flow_document\", which is NOT NULL: the existing rows have no "
            "value for it\n"
            "Nothing was changed; back-fill it to re-create the table: flowctl run --backfill "
            "test/shape");
  CHECK(Psql("SELECT * FROM shaped") == "x|1\n");
  CHECK(Psql("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = "
             "'shaped'::regclass AND attnum > 0") == "id,extra\n");
  // The sibling table that did not exist was not created either, nor the checkpoint row.
  CHECK(Psql("SELECT to_regclass('\"shape-sibling\"') IS NULL") == "t\n");
  CHECK(Psql("SELECT count(*) FROM flow_checkpoints WHERE materialization = 'test/shape'") ==
        "0\n");
}

TEST_CASE(
    "postgres: a data error is a user error, and neither rows nor the checkpoint are stored") {
  Docs docs;
  auto d = Connect();
  Open(*d, "test/data-error", {Simple("data-error")});
  Store(*d, {{0, docs(R"({"id":1,"v":"ok"})")}}, "good");
  auto r = d->Store({{0, docs(R"({"id":2,"v":"fine"})")}, {0, docs(R"({"id":"three"})")}}, "bad");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK_MESSAGE(
      r.error().message.find("PostgreSQL target `pgtest`: storing rows into table `data-error` "
                             "failed: invalid input syntax for type bigint") == 0,
      r.error().message);
  CHECK(Psql("SELECT id, v FROM \"data-error\"") == "1|ok\n");
  CHECK(Psql("SELECT checkpoint FROM flow_checkpoints WHERE materialization = 'test/data-error'") ==
        "good\n");
  // NOT NULL: a document without its key.
  r = d->Store({{0, docs(R"({"v":"no id"})")}}, "bad");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  Store(*d, {{0, docs(R"({"id":2})")}}, "good again");
  CHECK(Psql("SELECT checkpoint FROM flow_checkpoints WHERE materialization = 'test/data-error'") ==
        "good again\n");
}

// A COPY of many rows formats them on a thread of its own (kCopyThreadRows) while the
// rows already formatted are sent: every row lands, and a refused row deep in it names its
// line and stores nothing of the transaction.
TEST_CASE("postgres: a transaction of many rows stores them all; a bad one among them stores none") {
  Docs docs;
  auto d = Connect();
  Open(*d, "test/many", {Simple("many")});
  const int n = 30000;  // about 1.2 MB of COPY data: several chunks
  std::vector<Driver::Row> rows;
  for (int i = 1; i <= n; ++i) {
    rows.push_back({0, docs(fmt::format(R"({{"id":{},"v":"row {} {}"}})", i, i, std::string(20, 'x')))});
  }
  Store(*d, rows, "all");
  CHECK(Psql("SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'row ' || id || ' ' || "
             "repeat('x', 20) AND flow_document::jsonb = jsonb_build_object('id', id, 'v', v)) "
             "FROM many") == fmt::format("{}|{}|{}\n", n, int64_t{n} * (n + 1) / 2, n));
  // The same keys again, one of them (the 25,000th) with an id that is not a bigint.
  std::vector<Driver::Row> again;
  for (int i = 1; i <= n; ++i) {
    again.push_back({0, i == 25000 ? docs(R"({"id":"x25000","v":"bad"})")
                                   : docs(fmt::format(R"({{"id":{},"v":"again"}})", i + n))});
  }
  size_t failed = again.size();
  auto r = d->Store(again, "bad", &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK_MESSAGE(r.error().message.find("invalid input syntax for type bigint") != std::string::npos,
                r.error().message);
  CHECK(failed == 24999);
  CHECK(Psql("SELECT count(*), count(*) FILTER (WHERE v = 'again') FROM many") ==
        fmt::format("{}|0\n", n));
  CHECK(Psql("SELECT checkpoint FROM flow_checkpoints WHERE materialization = 'test/many'") ==
        "all\n");
}

TEST_CASE(
    "postgres: connection failures are environment errors naming the target, without the "
    "password") {
  const Server& pg = Pg();
  auto expect = [](const std::string& uri, const std::string& secret,
                   const std::string& libpq_says) {
    auto r = PostgresDriver::Connect(uri, kTarget);
    REQUIRE_FALSE(r.ok());
    const Error& e = r.error();
    CHECK(e.code == Error::Code::kEnvironment);
    CHECK_MESSAGE(e.message.find("cannot connect to PostgreSQL target `pgtest`: ") == 0, e.message);
    CHECK_MESSAGE(e.message.find(libpq_says) != std::string::npos, e.message);
    if (!secret.empty()) CHECK_MESSAGE(e.message.find(secret) == std::string::npos, e.message);
  };
  std::string host = pg.uri.substr(pg.uri.find("?"));
  expect("postgresql://flow:Wr0ng-S3cret@/flow" + host, "Wr0ng-S3cret",
         "password authentication failed for user \"flow\"");
  expect("postgresql://flow:flow@/no_such_db" + host, "", "database \"no_such_db\" does not exist");
  expect("postgresql://flow:Down-S3cret@/flow?host=" + pg.dir + "/nowhere&port=5432", "Down-S3cret",
         "No such file or directory");
  auto bad = PostgresDriver::Connect("postgresql://flow:Bad-S3cret@/flow?nonsense=%zz", kTarget);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Error::Code::kUser);
  CHECK_MESSAGE(bad.error().message.find("PostgreSQL target `pgtest`: invalid connection URI") == 0,
                bad.error().message);
  CHECK(bad.error().message.find("Bad-S3cret") == std::string::npos);
}

TEST_CASE("postgres: a server that goes away mid-session is an environment error") {
  // A private server, so the shared one keeps serving the other tests.
  char tmpl[] = "/tmp/flowctl-pgdown-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl, out;
  REQUIRE_MESSAGE(Run(Script() + " start " + Quote(dir) + " 2>&1", &out) == 0, out);
  std::string uri = out.substr(out.rfind('\n', out.size() - 2) + 1);
  uri.pop_back();
  Docs docs;
  {
    auto d = PostgresDriver::Connect(uri, kTarget);
    REQUIRE_MESSAGE(d.ok(), d.error().message);
    Open(**d, "test/down", {Simple("down")});
    Store(**d, {{0, docs(R"({"id":1})")}}, "1");
    Run(Script() + " stop " + Quote(dir) + " 2>&1", &out);
    auto r = (*d)->Store({{0, docs(R"({"id":2})")}}, "2");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Error::Code::kEnvironment);
    CHECK_MESSAGE(r.error().message.find("PostgreSQL target `pgtest`: ") == 0, r.error().message);
    CHECK(r.error().message.find(":flow@") == std::string::npos);
  }
  Run(Script() + " stop " + Quote(dir) + " 2>&1", &out);  // idempotent
  Run("rm -rf " + Quote(dir), &out);
}

TEST_CASE("postgres: compatible shape changes are migrated in Open's transaction, as Plan says") {
  Docs docs;
  Table before;
  before.name = "evolving";
  before.columns = {Col("id", "/id", kInteger, true, true), Col("s", "/s", kString, true, false, 8),
                    Col("n", "/n", kInteger | kNull), Col("gone", "/gone", kBoolean, true),
                    DocumentColumn()};
  {
    auto d = Connect();
    Open(*d, "test/evolve", {before});
    Store(*d, {{0, docs(R"({"id":1,"s":"short","n":2,"gone":true})")}}, "cp1");
  }
  // s: VARCHAR(8) → VARCHAR(20) and no longer required; n: integer → number; gone: no
  // longer selected; added: new and nullable.
  Table after;
  after.name = "evolving";
  after.columns = {Col("id", "/id", kInteger, true, true),
                   Col("s", "/s", kString | kNull, false, false, 20),
                   Col("n", "/n", kInteger | kNumber | kNull), Col("added", "/added", kString),
                   DocumentColumn()};
  auto d = Connect();
  auto plan = d->Plan("test/evolve", {after}, {});
  REQUIRE_MESSAGE(plan.ok(), plan.error().message);
  CHECK(*plan == std::vector<std::string>{
                     "ALTER TABLE \"evolving\" ALTER COLUMN \"s\" TYPE VARCHAR(20);",
                     "ALTER TABLE \"evolving\" ALTER COLUMN \"s\" DROP NOT NULL;",
                     "ALTER TABLE \"evolving\" ALTER COLUMN \"n\" TYPE DOUBLE PRECISION;",
                     "ALTER TABLE \"evolving\" ADD COLUMN \"added\" TEXT;",
                     "ALTER TABLE \"evolving\" ALTER COLUMN \"gone\" DROP NOT NULL;"});
  Open(*d, "test/evolve", {after}, "cp1");
  Store(*d, {{0, docs(R"({"id":2,"s":"a longer string","n":2.5,"added":"new"})")}}, "cp2");
  CHECK(Psql("SELECT id, s, n, gone, added FROM evolving ORDER BY id") ==
        "1|short|2|t|\n2|a longer string|2.5||new\n");
  CHECK(Psql("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || ' ' || "
             "attnotnull, ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = "
             "'evolving'::regclass AND attnum > 0") ==
        "id bigint true, s character varying(20) false, n double precision false, gone boolean "
        "false, flow_document json true, added text false\n");
  auto again = d->Plan("test/evolve", {after}, {});
  REQUIRE_MESSAGE(again.ok(), again.error().message);
  CHECK(again->empty());
  // Narrowing back is refused.
  auto narrowed = d->Open("test/evolve", {before}, {});
  REQUIRE_FALSE(narrowed.ok());
  CHECK_MESSAGE(narrowed.error().message.find("  - column \"s\" is character varying(20), "
                                              "expected VARCHAR(8)\n") != std::string::npos,
                narrowed.error().message);
}

TEST_CASE("postgres: a rebuild re-creates the tables and resets the checkpoint atomically") {
  Docs docs;
  {
    auto d = Connect();
    Open(*d, "test/rebuild", {Simple("rebuilt")});
    Store(*d, {{0, docs(R"({"id":1,"v":"a"})")}}, "cp1");
  }
  Table other = Simple("rebuilt");
  other.columns[1] = Col("v", "/v", kInteger, true);  // incompatible: TEXT → BIGINT NOT NULL
  OpenOptions rebuild;
  rebuild.rebuild = true;
  rebuild.reset_checkpoint = "cp0";
  auto d = Connect();
  auto plan = d->Plan("test/rebuild", {other}, rebuild);
  REQUIRE_MESSAGE(plan.ok(), plan.error().message);
  CHECK(*plan == std::vector<std::string>{"DROP TABLE IF EXISTS \"rebuilt\";",
                                          CreateTableSql(Dialect::kPostgres, other)});
  // A view on the table makes the DROP fail: nothing changes.
  Psql("CREATE VIEW rebuilt_view AS SELECT * FROM rebuilt;");
  auto failed = d->Open("test/rebuild", {other}, rebuild);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == Error::Code::kUser);  // not retried: the view must go first
  CHECK(failed.error().message.find("depend") != std::string::npos);
  CHECK(Psql("SELECT id, v FROM rebuilt") == "1|a\n");
  CHECK(Psql("SELECT fence, checkpoint FROM flow_checkpoints WHERE materialization = "
             "'test/rebuild'") == "1|cp1\n");
  Psql("DROP VIEW rebuilt_view;");
  d = Connect();
  auto opened = d->Open("test/rebuild", {other}, rebuild);
  REQUIRE_MESSAGE(opened.ok(), opened.error().message);
  CHECK(*opened == "cp0");
  CHECK(Psql("SELECT count(*) FROM rebuilt") == "0\n");
  CHECK(Psql("SELECT fence, checkpoint FROM flow_checkpoints WHERE materialization = "
             "'test/rebuild'") == "2|cp0\n");
  Store(*d, {{0, docs(R"({"id":1,"v":5})")}}, "cp1");
  CHECK(Psql("SELECT id, v FROM rebuilt") == "1|5\n");
  // Dropped by hand, with its checkpoint stored: refused, naming the back-fill.
  Psql("DROP TABLE rebuilt;");
  OpenOptions hinted;
  hinted.backfill_hint = "flowctl run --backfill test/rebuild";
  auto r = Connect()->Open("test/rebuild", {other}, hinted);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message ==
        "table `rebuilt` is missing from target `pgtest`, although flow_checkpoints holds a "
        "checkpoint for materialization `test/rebuild`: creating it empty would silently miss "
        "every document before that checkpoint. Nothing was changed; back-fill it: flowctl run "
        "--backfill test/rebuild");
  CHECK(Psql("SELECT to_regclass('rebuilt') IS NULL") == "t\n");
}
