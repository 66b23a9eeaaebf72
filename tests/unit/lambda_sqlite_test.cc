// Tests of src/lambda/sqlite: parameter binding ($source, $register, $previous, projections),
// result rows as documents (JSON object columns, JSON subtypes, types), compile and runtime
// errors.
#include <doctest/doctest.h>

#include <chrono>
#include <deque>
#include <thread>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "lambda_harness.h"
#include "doc/parse.h"
#include "doc/pointer.h"
#include "doc/value.h"
#include "lambda/lambda.h"
#include "lambda/sqlite.h"

using namespace flow;
using lambda::Row;
using lambda::SourceField;

namespace {
using lambda::testing::Harness;
using lambda::testing::Json;
using lambda::testing::Run;

SourceField Field(std::string name, const std::string& ptr) {
  std::string why;
  auto p = doc::Pointer::Parse(ptr, &why);
  REQUIRE_MESSAGE(p, why);
  return {std::move(name), *p};
}


// The outputs of each row as a JSON array of documents.
std::unique_ptr<lambda::Lambda> MustCompile(const std::string& sql, std::vector<SourceField> fields = {}) {
  auto r = lambda::SqliteLambda::Compile(sql, std::move(fields));
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return std::move(r.value());
}


Error CompileError(const std::string& sql, std::vector<SourceField> fields = {}) {
  auto r = lambda::SqliteLambda::Compile(sql, std::move(fields));
  REQUIRE_FALSE(r.ok());
  return r.error();
}

}  // namespace

TEST_CASE("lambda: sqlite binds projections as columns") {
  Harness h;
  auto l = MustCompile("SELECT $name AS name, $borough AS borough",
                       {Field("name", "/name"), Field("borough", "/location/borough")});
  auto texts = Run(*l, h,
                   {h.Source(R"({"name":"Ada","location":{"borough":"Queens"}})"),
                    h.Source(R"({"name":"Bob"})")});
  CHECK(texts[0] == R"([{"name":"Ada","borough":"Queens"}])");
  // An absent projection is NULL.
  CHECK(texts[1] == R"([{"name":"Bob","borough":null}])");
}

TEST_CASE("lambda: sqlite keeps types of bound and returned values") {
  Harness h;
  auto l = MustCompile(
      "SELECT $i AS i, typeof($i) AS ti, $f AS f, typeof($f) AS tf, $b AS b, typeof($b) AS tb, "
      "$s AS s, $n AS n, typeof($n) AS tn, $o AS o, typeof($o) AS tobj, $big AS big, typeof($big) AS tbig, "
      "$i + 1 AS next, 1.5 AS real, 2.0 AS two",
      {Field("i", "/i"), Field("f", "/f"), Field("b", "/b"), Field("s", "/s"), Field("n", "/n"),
       Field("o", "/o"), Field("big", "/big")});
  auto texts = Run(*l, h,
                   {h.Source(R"({"i":9007199254740993,"f":0.25,"b":true,"s":"x","n":null,)"
                             R"("o":{"k":[1,2]},"big":18446744073709551615})"),
                    h.Source(R"({"b":false})")});
  CHECK(texts[0] ==
        R"([{"i":9007199254740993,"ti":"integer","f":0.25,"tf":"real","b":1,"tb":"integer","s":"x",)"
        R"("n":null,"tn":"null","o":"{\"k\":[1,2]}","tobj":"text","big":18446744073709553000.0,)"
        R"("tbig":"real","next":9007199254740994,"real":1.5,"two":2.0}])");
  CHECK(texts[1] ==
        R"([{"i":null,"ti":"null","f":null,"tf":"null","b":0,"tb":"integer","s":null,"n":null,"tn":"null",)"
        R"("o":null,"tobj":"null","big":null,"tbig":"null","next":null,"real":1.5,"two":2.0}])");
}

TEST_CASE("lambda: sqlite single JSON object column is the document") {
  Harness h;
  auto obj = MustCompile("SELECT json_object('a', 1, 'b', json_array(true, 'x'))");
  CHECK(Run(*obj, h, {h.Source("{}")})[0] == R"([{"a":1,"b":[1,"x"]}])");

  auto source = MustCompile("SELECT $source");
  CHECK(Run(*source, h, {h.Source(R"({"x":{"y":[1,2.5,"z"]},"n":null})")})[0] ==
        R"([{"x":{"y":[1,2.5,"z"]},"n":null}])");

  // Only objects: a single column holding other text is a property.
  auto text = MustCompile("SELECT 'hello' AS greeting");
  CHECK(Run(*text, h, {h.Source("{}")})[0] == R"([{"greeting":"hello"}])");
  auto array = MustCompile("SELECT json_array(1, 2) AS xs");
  CHECK(Run(*array, h, {h.Source("{}")})[0] == R"([{"xs":[1,2]}])");

  // Text that starts like an object but is not JSON is an error, not a silent string.
  Harness h2;
  auto bad = MustCompile("SELECT '{not json' AS x");
  lambda::Outputs out;
  int failed = -5;
  auto r = bad->Invoke({h2.Source("{}")}, h2.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message.find("column `x` holds JSON text that cannot be parsed") != std::string::npos);
  CHECK(failed == 0);
}

TEST_CASE("lambda: sqlite JSON subtype columns are parsed") {
  Harness h;
  auto l = MustCompile(
      "SELECT json_array(1, 2) AS xs, 5 AS n, json_object('k', 'v') AS o, json('[true]') AS j, "
      "'[1,2]' AS plain");
  CHECK(Run(*l, h, {h.Source("{}")})[0] ==
        R"([{"xs":[1,2],"n":5,"o":{"k":"v"},"j":[true],"plain":"[1,2]"}])");
}

TEST_CASE("lambda: sqlite $source, $register and $previous are JSON text") {
  Harness h;
  auto l = MustCompile(
      "SELECT json_extract($source, '$.a.b') AS b, $register AS reg, typeof($register) AS treg, "
      "json_extract($previous, '$.count') AS prev, $source->>'$.a.b' AS arrow");
  auto texts = Run(*l, h,
                   {h.Publish(R"({"a":{"b":"deep"}})", R"({"count":3})", R"({"count":2})"),
                    h.Publish(R"({"a":{"b":7}})", "12", "null")});
  CHECK(texts[0] == R"([{"b":"deep","reg":"{\"count\":3}","treg":"text","prev":2,"arrow":"deep"}])");
  // A scalar register is JSON text too; a null document is NULL.
  CHECK(texts[1] == R"([{"b":7,"reg":"12","treg":"text","prev":null,"arrow":7}])");

  // Update lambdas get no register or previous: NULL.
  auto u = MustCompile("SELECT $register IS NULL AS no_reg, $previous IS NULL AS no_prev, json($source) AS s");
  CHECK(Run(*u, h, {h.Source(R"({"q":1})")})[0] == R"([{"no_reg":1,"no_prev":1,"s":{"q":1}}])");
}

TEST_CASE("lambda: sqlite field names with non-identifier characters") {
  Harness h;
  auto l = MustCompile("SELECT $end_station_id AS id, $_meta_uuid AS uuid",
                       {Field("end station id", "/end station id"), Field("_meta/uuid", "/_meta/uuid")});
  CHECK(Run(*l, h, {h.Source(R"({"end station id":42,"_meta":{"uuid":"u-1"}})")})[0] ==
        R"([{"id":42,"uuid":"u-1"}])");

  // A field named exactly like the parameter wins over one that only maps to it.
  auto exact = MustCompile("SELECT $a_b AS v", {Field("a b", "/x"), Field("a_b", "/y")});
  CHECK(Run(*exact, h, {h.Source(R"({"x":1,"y":2})")})[0] == R"([{"v":2}])");
}

TEST_CASE("lambda: sqlite result rows are documents") {
  Harness h;
  auto many = MustCompile(
      "SELECT value AS v, $k AS k FROM json_each(json_extract($source, '$.items'))", {Field("k", "/k")});
  auto texts = Run(*many, h,
                   {h.Source(R"({"k":"a","items":[1,2,3]})"), h.Source(R"({"k":"b","items":[]})"),
                    h.Source(R"({"k":"c","items":["x"]})")});
  CHECK(texts[0] == R"([{"v":1,"k":"a"},{"v":2,"k":"a"},{"v":3,"k":"a"}])");
  CHECK(texts[1] == "[]");  // zero rows: no output
  CHECK(texts[2] == R"([{"v":"x","k":"c"}])");

  auto none = MustCompile("SELECT 1 AS one WHERE $k = 'yes'", {Field("k", "/k")});
  CHECK(Run(*none, h, {h.Source(R"({"k":"no"})"), h.Source(R"({"k":"yes"})")}) ==
        std::vector<std::string>{"[]", R"([{"one":1}])"});

  // An empty batch has no outputs, and the statement is reusable across batches.
  lambda::Outputs out(3);
  REQUIRE(none->Invoke({}, h.out_doc.GetAllocator(), &out).ok());
  CHECK(out.empty());
  CHECK(Run(*none, h, {h.Source(R"({"k":"yes"})")})[0] == R"([{"one":1}])");
}

TEST_CASE("lambda: sqlite compile errors") {
  auto syntax = CompileError("SELEC 1");
  CHECK(syntax.code == Error::Code::kUser);
  CHECK(syntax.message == R"(invalid SQLite query: near "SELEC": syntax error)");

  CHECK(CompileError("SELECT * FROM missing").message == "invalid SQLite query: no such table: missing");
  CHECK(CompileError("SELECT 1 AS x; -- one\n ; SELECT 2").message ==
        "the SQLite query holds more than one statement (the second starts at `SELECT 2`)");
  CHECK(CompileError("  -- nothing\n").message == "the SQLite query is empty");
  CHECK(CompileError("SELECT 1 AS a, 2 AS a").message.find("two columns named `a`") != std::string::npos);
  CHECK(CompileError("CREATE TABLE t (x)").message.find("returns no columns") != std::string::npos);

  // A trailing semicolon and comments are fine.
  CHECK(lambda::SqliteLambda::Compile("SELECT 1 AS x; -- done\n/* end */", {}).ok());
}

TEST_CASE("lambda: sqlite unknown parameters") {
  auto typo = CompileError("SELECT $nmae AS name", {Field("name", "/name"), Field("borough", "/borough")});
  CHECK(typo.code == Error::Code::kUser);
  CHECK(typo.message ==
        "the SQLite query uses parameter `$nmae`, which is neither $source, $register, $previous nor a "
        "projection `$<field>` of the source collection: did you mean `$name`?");
  CHECK(CompileError("SELECT $regsiter AS r").message.find("did you mean `$register`?") != std::string::npos);
  auto far = CompileError("SELECT $zzzzzz AS z", {Field("name", "/name")});
  CHECK(far.message.find("`$zzzzzz`") != std::string::npos);
  CHECK(far.message.find("did you mean") == std::string::npos);
  // Only `$name` parameters: `?`, `:name` and `@name` are refused.
  CHECK(CompileError("SELECT ? AS x").message.find("parameter `?1`") != std::string::npos);
  CHECK(CompileError("SELECT :name AS x", {Field("name", "/name")}).message.find("did you mean `$name`?") !=
        std::string::npos);
}

TEST_CASE("lambda: sqlite parameters checked before the task runs (flowctl build)") {
  auto db = lambda::SqliteDatabase::Open();
  REQUIRE(db.ok());
  using Kind = lambda::ParameterProblem::Kind;
  std::vector<std::string> fields = {"status", "customer/id", "total"};
  // Each parameter that binds nothing, at its first use outside strings and comments, with
  // the closest one that binds.
  std::string sql =
      "SELECT '$staus' AS s, -- $staus\n $customer_id AS c, $staus AS t, $staus || $zzzzzz AS u";
  auto p = db.value()->CheckParameters(sql, fields, false);
  REQUIRE(p.size() == 2);
  CHECK(p[0].kind == Kind::kUnknown);
  CHECK(p[0].name == "$staus");
  CHECK(p[0].offset == sql.find("$staus AS t"));
  CHECK(p[0].suggestion == "$status");
  CHECK(p[1].name == "$zzzzzz");
  CHECK(p[1].suggestion.empty());
  // Parameters not written `$name`.
  p = db.value()->CheckParameters("SELECT :total AS t, ? AS q", fields, false);
  REQUIRE(p.size() == 2);
  CHECK(p[0].kind == Kind::kNotDollar);
  CHECK(p[0].offset == 7);
  CHECK(p[0].suggestion == "$total");
  CHECK(p[1].name == "?2");
  CHECK(p[1].offset == 20);
  // $register and $previous: in publish lambdas only.
  std::string both = "SELECT json($register) AS r, json($previous) AS p, $total AS t";
  CHECK(db.value()->CheckParameters(both, fields, false).empty());
  p = db.value()->CheckParameters(both, fields, true);
  REQUIRE(p.size() == 2);
  CHECK(p[0].kind == Kind::kNotInUpdate);
  CHECK(p[0].name == "$register");
  CHECK(p[1].name == "$previous");
  // A query that does not compile is CheckQuery's to report.
  CHECK(db.value()->CheckParameters("SELEC $nope", fields, false).empty());
}

TEST_CASE("lambda: sqlite runtime errors name the row") {
  Harness h;
  auto l = MustCompile("SELECT json_extract($s, '$') AS v", {Field("s", "/s")});
  lambda::Outputs out;
  int failed = -5;
  auto r = l->Invoke({h.Source(R"({"s":"[1]"})"), h.Source(R"({"s":"not json"})")}, h.out_doc.GetAllocator(),
                     &out, &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message == "SQLite: malformed JSON");
  CHECK(failed == 1);
  // The statement recovers for the next batch.
  CHECK(Run(*l, h, {h.Source(R"({"s":"[2]"})")})[0] == R"([{"v":[2]}])");

  auto literal = MustCompile("SELECT json_extract('not json', '$') AS v");
  r = literal->Invoke({h.Source("{}")}, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "SQLite: malformed JSON");
  CHECK(failed == 0);

  auto blob = MustCompile("SELECT x'00ff' AS b");
  r = blob->Invoke({h.Source("{}")}, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "column `b` holds a BLOB, which has no JSON representation");

  auto inf = MustCompile("SELECT 1e999 AS big");
  r = inf->Invoke({h.Source("{}")}, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("infinite") != std::string::npos);

  auto utf8 = MustCompile("SELECT CAST(x'ff' AS TEXT) AS t");
  r = utf8->Invoke({h.Source("{}")}, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("not valid UTF-8") != std::string::npos);
}

TEST_CASE("lambda: sqlite outputs outlive the lambda") {
  Harness h;
  lambda::Outputs out;
  {
    auto l = MustCompile("SELECT $name AS name", {Field("name", "/name")});
    REQUIRE(l->Invoke({h.Source(R"({"name":"a string long enough not to be inlined by RapidJSON"})")},
                      h.out_doc.GetAllocator(), &out)
                .ok());
  }
  h.docs.clear();  // the sources go too
  REQUIRE(out.size() == 1);
  CHECK(Json(out[0][0]) == R"({"name":"a string long enough not to be inlined by RapidJSON"})");
}

TEST_CASE("lambda: sqlite bootstraps share a database with the derivation's lambdas") {
  Harness h;
  auto db = lambda::SqliteDatabase::Open();
  REQUIRE(db.ok());
  auto bootstrap = lambda::SqliteDatabase::Bootstrap(
      *db, "CREATE TABLE rates (sku TEXT PRIMARY KEY, rate REAL); INSERT INTO rates VALUES ('a', 2.5);");
  lambda::Outputs out;
  auto r = bootstrap->Invoke({Row{}}, h.out_doc.GetAllocator(), &out);
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  REQUIRE(out.size() == 1);
  CHECK(out[0].empty());

  auto l = lambda::SqliteLambda::Compile("SELECT $sku AS sku, (SELECT rate FROM rates WHERE sku = $sku) AS rate",
                                         {Field("sku", "/sku")}, *db);
  REQUIRE_MESSAGE(l.ok(), l.error().message);
  CHECK(Run(**l, h, {h.Source(R"({"sku":"a"})")})[0] == R"([{"sku":"a","rate":2.5}])");

  // Reset empties it (temporary tables too); the lambda stays prepared, and works again
  // once the bootstrap, which would fail on a table that exists, has run again.
  REQUIRE((*db)->Exec("CREATE TEMP TABLE scratch (x); CREATE VIEW v AS SELECT 1;").ok());
  REQUIRE((*db)->Reset().ok());
  int failed = 7;
  CHECK_FALSE((*l)->Invoke({h.Source(R"({"sku":"a"})")}, h.out_doc.GetAllocator(), &out, &failed).ok());
  REQUIRE_MESSAGE(bootstrap->Invoke({Row{}}, h.out_doc.GetAllocator(), &out).ok(), "bootstrap after reset");
  REQUIRE((*db)->Exec("CREATE TEMP TABLE scratch (x); CREATE VIEW v AS SELECT 1;").ok());
  CHECK(Run(**l, h, {h.Source(R"({"sku":"a"})")})[0] == R"([{"sku":"a","rate":2.5}])");

  // A failing script is a user error with SQLite's message.
  auto bad = lambda::SqliteDatabase::Bootstrap(*db, "INSERT INTO nowhere VALUES (1)");
  r = bad->Invoke({Row{}}, h.out_doc.GetAllocator(), &out, &failed);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message == "SQLite: no such table: nowhere");
  CHECK(failed == 0);
}

// Issue 16: a query that never ends (an unbounded recursive CTE) is interrupted.
TEST_CASE("lambda: sqlite queries that never end time out") {
  Harness h;
  const std::string forever =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) AS m FROM n";
  auto compiled = lambda::SqliteLambda::Compile(forever, {}, nullptr, std::chrono::milliseconds(300));
  REQUIRE_MESSAGE(compiled.ok(), compiled.error().message);
  auto& l = *compiled.value();
  lambda::Outputs out;
  int failed = -5;
  auto started = std::chrono::steady_clock::now();
  auto r = l.Invoke({h.Source("{}"), h.Source("{}")}, h.out_doc.GetAllocator(), &out, &failed);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message ==
        "the SQLite query did not finish within 0.3 s and was interrupted (the lambda timeout; set "
        "`lambdaTimeout` to allow longer)");
  CHECK(failed == 0);
  CHECK(secs < 2);

  // A bootstrap, and the statements a plan runs when it is compiled.
  auto db = lambda::SqliteDatabase::Open();
  REQUIRE(db.ok());
  auto exec = db.value()->Exec("CREATE TABLE t(x); " + forever, std::chrono::milliseconds(200));
  REQUIRE_FALSE(exec.ok());
  CHECK(exec.error().code == Error::Code::kUser);
  CHECK(exec.error().message.rfind("the SQLite statements did not finish within 0.2 s", 0) == 0);
  auto boot = lambda::SqliteDatabase::Bootstrap(db.value(), forever, std::chrono::milliseconds(200));
  auto b = boot->Invoke({Row{}}, h.out_doc.GetAllocator(), &out);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message.find("did not finish within 0.2 s") != std::string::npos);
  // The connection is usable afterwards, within its own time.
  CHECK(db.value()->Exec("INSERT INTO t VALUES (1)", std::chrono::milliseconds(200)).ok());

  // A stop request interrupts a query whatever its timeout.
  auto slow = lambda::SqliteLambda::Compile(forever, {}, nullptr, std::chrono::seconds(60));
  REQUIRE(slow.ok());
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    lambda::RequestStop();
  });
  started = std::chrono::steady_clock::now();
  r = slow.value()->Invoke({h.Source("{}")}, h.out_doc.GetAllocator(), &out);
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stopper.join();
  lambda::ResetStop();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kEnvironment);
  CHECK(r.error().message == "the lambda was interrupted: flowctl is stopping");
  CHECK(secs < 2);
}

// The rules `flowctl build` checks (catalog/check.cc) are the ones Compile applies.
TEST_CASE("lambda: sqlite a query's rules, checked without running it") {
  auto db = lambda::SqliteDatabase::Open();
  REQUIRE(db.ok());
  using Kind = lambda::QueryProblem::Kind;
  auto check = [&](const std::string& sql) { return (*db)->CheckQuery(sql); };
  CHECK(check("SELECT 1 AS x; -- done\n/* end */").kind == Kind::kNone);
  auto syntax = check("SELECT 1 +");
  CHECK(syntax.kind == Kind::kDoesNotCompile);
  CHECK(syntax.detail == "incomplete input");
  auto near = check("SELECT 1 FROM WHERE");
  CHECK(near.kind == Kind::kDoesNotCompile);
  CHECK(near.detail == R"(near "WHERE": syntax error)");
  CHECK(near.offset == 14);
  auto missing = check("SELECT x FROM missing");
  CHECK(missing.kind == Kind::kDoesNotCompile);
  CHECK(missing.detail == "no such table: missing");
  CHECK(check("  -- nothing\n").kind == Kind::kEmpty);
  auto two = check("SELECT 1 AS x; -- one\n ; SELECT 2");
  CHECK(two.kind == Kind::kMoreThanOneStatement);
  CHECK(two.detail == "SELECT 2");
  CHECK(check("CREATE TABLE t (x)").kind == Kind::kNoColumns);
  auto dup = check("SELECT 1 AS a, 2 AS a");
  CHECK(dup.kind == Kind::kDuplicateColumn);
  CHECK(dup.detail == "a");
  // Against the database's tables, which are not changed.
  REQUIRE((*db)->Exec("CREATE TABLE t (x)").ok());
  CHECK(check("SELECT x FROM t").kind == Kind::kNone);
  CHECK(check("DROP TABLE t").kind == Kind::kNoColumns);
  CHECK(check("SELECT x FROM t").kind == Kind::kNone);
}

TEST_CASE("lambda: sqlite Exec says where a script fails, and whether it timed out") {
  auto db = lambda::SqliteDatabase::Open();
  REQUIRE(db.ok());
  lambda::ExecFailure failure;
  const std::string script = "CREATE TABLE a (x);\n  SELEC 1;";
  CHECK_FALSE((*db)->Exec(script, lambda::kDefaultTimeout, &failure).ok());
  CHECK(failure.message == R"(near "SELEC": syntax error)");
  CHECK(failure.offset == script.find("SELEC"));  // where SQLite points
  CHECK_FALSE(failure.timed_out);
  const std::string missing = "CREATE TABLE c (x);\n  INSERT INTO nowhere VALUES (1);";
  CHECK_FALSE((*db)->Exec(missing, lambda::kDefaultTimeout, &failure).ok());
  CHECK(failure.message == "no such table: nowhere");
  CHECK(failure.offset == missing.find("INSERT"));  // SQLite does not say: the statement
  const std::string step = "CREATE TABLE b (x PRIMARY KEY);\n INSERT INTO b VALUES (1), (1);";
  CHECK_FALSE((*db)->Exec(step, lambda::kDefaultTimeout, &failure).ok());
  CHECK(failure.message.find("UNIQUE constraint failed") != std::string::npos);
  CHECK(failure.offset == step.find("INSERT"));  // the failing statement
  const std::string forever =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n";
  CHECK_FALSE((*db)->Exec(forever, std::chrono::milliseconds(100), &failure).ok());
  CHECK(failure.timed_out);
}
