// Derivation tasks (runtime/derive.h) over a real store with SQLite lambdas: registers
// shared across transforms (a join), atomic commits, failures that commit nothing,
// restarts without gaps or duplicates, read delays and partition selectors.
#include "runtime/derive.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "doc/parse.h"
#include "ingest_docs.h"
#include "lambda/sqlite.h"
#include "runtime/cursor.h"
#include "runtime/ingest.h"
#include "runtime/source_reader.h"
#include "scratch.h"

namespace flow {
namespace {
using testing::Ingest;
using testing::Must;
using testing::TempDir;
namespace fs = std::filesystem;



std::shared_ptr<const runtime::Collection> Collection(const std::string& name, const std::string& schema,
                                                      const std::string& key,
                                                      std::vector<catalog::ProjectionRecord> projections = {}) {
  catalog::CollectionRecord r;
  r.name = name;
  r.bundle = R"({"$ref":"#/$defs/s0","$defs":{"s0":)" + schema + "}}";
  r.key = {key};
  r.projections = std::move(projections);
  return Must(runtime::Collection::Compile(r));
}

std::shared_ptr<lambda::Lambda> Sql(const std::string& sql, const runtime::Collection& source) {
  std::vector<lambda::SourceField> fields;
  for (const auto& f : source.fields) fields.push_back({f.field, f.pointer});
  return std::shared_ptr<lambda::Lambda>(Must(lambda::SqliteLambda::Compile(sql, fields)));
}

// Every committed document of `collection`, as stored, in commit order (one journal).
std::vector<std::string> Lines(store::Store* store, const std::string& journal) {
  std::vector<std::string> out;
  auto head = store->committed().heads.find(journal);
  if (head == store->committed().heads.end()) return out;
  runtime::JournalCursor cursor(store->dir(), journal);
  std::string line;
  while (Must(cursor.Next(head->second, &line))) {
    size_t meta = line.find(",\"_meta\"");
    out.push_back(line.substr(0, meta) + "}");
  }
  return out;
}

const char* kSideSchema = R"({"type":"object","required":["k","v"],"properties":{"k":{"type":"integer"},"v":{"type":"string"}}})";
const char* kJoinSchema = R"({"type":"object","required":["k"],"reduce":{"strategy":"merge"},
  "properties":{"k":{"type":"integer"},"left":{"type":"string"},"right":{"type":"string"}}})";

struct Join {
  std::shared_ptr<const runtime::Collection> left, right, joined;
  std::shared_ptr<runtime::Derivation> derivation;
};

// An inner join of `left` and `right` on /k through a register {left, right}.
Join MakeJoin() {
  Join j;
  j.left = Collection("t/left", kSideSchema, "/k", {{"k", "/k", false, 4, true}, {"v", "/v", false, 16, true}});
  j.right = Collection("t/right", kSideSchema, "/k", {{"k", "/k", false, 4, true}, {"v", "/v", false, 16, true}});
  j.joined = Collection("t/joined", kJoinSchema, "/k");
  auto d = std::make_shared<runtime::Derivation>();
  d->collection = j.joined;
  rapidjson::Document reg;
  reg.Parse(R"({"$ref":"#/$defs/s0","$defs":{"s0":{"type":"object","reduce":{"strategy":"merge"}}}})");
  d->register_validator = Must(schema::Validator::Compile(reg));
  d->register_annotations = Must(schema::Annotations::Compile(reg));
  d->register_reducer = std::make_shared<reduce::Reducer>(d->register_annotations);
  d->register_initial = "{}";
  for (auto [side, source] : {std::pair{"left", j.left}, std::pair{"right", j.right}}) {
    runtime::Transform t;
    t.name = std::string("from") + side;
    t.source = source;
    t.shuffle = {*doc::Pointer::Parse("/k", nullptr)};
    t.update = Sql(std::string("SELECT $v AS ") + side, *source);
    // Publish only once both sides are known.
    t.publish = Sql(R"(SELECT $k AS k, json_extract($register, '$.left') AS left,
                              json_extract($register, '$.right') AS right
                       WHERE json_extract($register, '$.left') IS NOT NULL
                         AND json_extract($register, '$.right') IS NOT NULL)",
                    *source);
    d->transforms.push_back(std::move(t));
  }
  j.derivation = d;
  return j;
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_CASE("derive: transforms sharing a shuffle key share the register (an inner join)") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Join j = MakeJoin();
  Ingest(store.get(), &stamper, j.left, {R"({"k":1,"v":"a"})", R"({"k":2,"v":"b"})"});
  runtime::DeriveTask task(j.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  CHECK(Must(task.Step()) == 2);
  CHECK(Lines(store.get(), "t/joined/pivot=00").empty());  // no right side yet
  Ingest(store.get(), &stamper, j.right, {R"({"k":2,"v":"B"})", R"({"k":3,"v":"C"})"});
  CHECK(Must(task.Step()) == 2);
  CHECK(Must(task.Step()) == 0);
  CHECK(Lines(store.get(), "t/joined/pivot=00") == std::vector<std::string>{R"({"k":2,"left":"b","right":"B"})"});
}

TEST_CASE("derive: a restarted task resumes from its checkpoint with its registers") {
  TempDir t;
  runtime::Stamper stamper;
  Join j = MakeJoin();
  {
    auto store = Must(store::Store::Open(t.path));
    Ingest(store.get(), &stamper, j.left, {R"({"k":1,"v":"a"})"});
    runtime::DeriveTask task(j.derivation, store.get(), &stamper, runtime::Clock(Now));
    Must(task.Open());
    CHECK(Must(task.Step()) == 1);
  }
  auto store = Must(store::Store::Open(t.path));
  Ingest(store.get(), &stamper, j.right, {R"({"k":1,"v":"A"})"});
  runtime::DeriveTask task(j.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  CHECK(Must(task.Step()) == 1);  // only the new document: the left one was checkpointed
  CHECK(Lines(store.get(), "t/joined/pivot=00") == std::vector<std::string>{R"({"k":1,"left":"a","right":"A"})"});
}

TEST_CASE("derive: a failing publish halts the transaction and commits nothing of it") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Join j = MakeJoin();
  auto d = std::make_shared<runtime::Derivation>(*j.derivation);
  // The right side publishes a document without the required key.
  d->transforms[1].publish = Sql("SELECT 'x' AS left", *j.right);
  Ingest(store.get(), &stamper, j.left, {R"({"k":1,"v":"a"})"});
  Ingest(store.get(), &stamper, j.right, {R"({"k":1,"v":"A"})"});
  auto before = store->committed();
  runtime::DeriveTask task(d, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  auto r = task.Step();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Error::Code::kUser);
  const std::string& m = r.error().message;
  CHECK(m.find("transform `fromright`") != std::string::npos);
  CHECK(m.find("offset 0 of journal t/right/pivot=00") != std::string::npos);
  CHECK(m.find("required") != std::string::npos);
  // Nothing committed: no outputs, no register record, no checkpoint.
  CHECK(store->committed().heads == before.heads);
  CHECK(store->committed().checkpoints == before.checkpoints);
  // A new task fails the same way: the documents were not skipped.
  runtime::DeriveTask again(d, store.get(), &stamper, runtime::Clock(Now));
  Must(again.Open());
  CHECK_FALSE(again.Step().ok());
}

// A derivation summing /n per /k in its register, publishing {k, n}; `dead` (when given)
// receives what its one transform cannot process.
struct Summer {
  std::shared_ptr<const runtime::Collection> in, out, dead;
  std::shared_ptr<runtime::Derivation> derivation;
};

Summer MakeSummer(bool dead_letters, const char* source_schema = nullptr) {
  Summer s;
  const char* in_schema =
      R"({"type":"object","required":["id","k","n"],"properties":{"id":{"type":"integer"},"k":{"type":"integer"},"n":{"type":"integer"}}})";
  s.in = Collection("t/in", in_schema, "/id",
                    {{"k", "/k", false, 4, true}, {"n", "/n", false, 4, true}});
  s.out = Collection("t/out", R"({"type":"object","required":["k"]})", "/k");
  s.dead = Collection(
      "t/dead",
      R"({"type":"object","required":["task","binding","journal","offset","error","document"]})",
      "/offset");
  auto d = std::make_shared<runtime::Derivation>();
  d->collection = s.out;
  rapidjson::Document reg;
  reg.Parse(R"({"$ref":"#/$defs/s0","$defs":{"s0":{"type":"object","reduce":{"strategy":"merge"},
               "properties":{"n":{"type":"integer","reduce":{"strategy":"sum"}}}}}})");
  d->register_validator = Must(schema::Validator::Compile(reg));
  d->register_annotations = Must(schema::Annotations::Compile(reg));
  d->register_reducer = std::make_shared<reduce::Reducer>(d->register_annotations);
  d->register_initial = "{}";
  runtime::Transform t;
  t.name = "fromIn";
  t.source = s.in;
  t.shuffle = {*doc::Pointer::Parse("/k", nullptr)};
  t.update = Sql("SELECT $n AS n", *s.in);
  t.publish = Sql("SELECT $k AS k, json_extract($register, '$.n') AS n", *s.in);
  if (source_schema) {
    rapidjson::Document ss;
    ss.Parse(
        (std::string(R"({"$ref":"#/$defs/s0","$defs":{"s0":)") + source_schema + "}}").c_str());
    t.source_schema = Must(schema::Validator::Compile(ss));
    t.source_annotations = Must(schema::Annotations::Compile(ss));
  }
  if (dead_letters) t.dead_letters = s.dead;
  d->transforms.push_back(std::move(t));
  s.derivation = d;
  return s;
}

// Steps `task` until it is caught up; returns the documents it processed.
uint64_t StepAll(runtime::DeriveTask& task) {
  uint64_t total = 0;
  for (uint64_t n; (n = Must(task.Step())) > 0;) total += n;
  return total;
}

const char* kBig = "9223372036854775807";  // two of them and 5 overflow a 64-bit sum

TEST_CASE(
    "derive: without deadLetters, an overflowing register halts the derivation and commits "
    "nothing") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Summer s = MakeSummer(false);
  Ingest(store.get(), &stamper, s.in,
         {R"({"id":1,"k":1,"n":5})", std::string(R"({"id":2,"k":1,"n":)") + kBig + "}",
          R"({"id":3,"k":2,"n":7})", std::string(R"({"id":4,"k":1,"n":)") + kBig + "}"});
  runtime::DeriveTask task(s.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  auto r = task.Step();
  REQUIRE(!r);
  CHECK(r.error().message.find("the document at offset") != std::string::npos);
  CHECK(r.error().message.find("cannot reduce an update output into the register") !=
        std::string::npos);
  CHECK(Lines(store.get(), "t/out/pivot=00").empty());
  CHECK(store->committed().checkpoints.count(s.derivation->CheckpointKey()) == 0);
}

TEST_CASE(
    "derive: deadLetters takes a document whose update does not reduce; the rest goes on as if it "
    "was never "
    "read") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Summer s = MakeSummer(true);
  Ingest(store.get(), &stamper, s.in,
         {R"({"id":4,"k":1,"n":5})", std::string(R"({"id":5,"k":1,"n":)") + kBig + "}",
          R"({"id":6,"k":2,"n":7})", std::string(R"({"id":7,"k":1,"n":)") + kBig + "}",
          R"({"id":8,"k":1,"n":1})", std::string(R"({"id":9,"k":1,"n":)") + kBig + "}"});
  uint64_t fourth = 0;  // the offset of the fourth document
  {
    runtime::JournalCursor c(store->dir(), "t/in/pivot=00");
    std::string line;
    for (int i = 0; i < 3; ++i) Must(c.Next(1u << 30, &line));
    fourth = c.offset();
  }
  runtime::DeriveTask task(s.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  CHECK(StepAll(task) == 6);
  CHECK(task.stats().dead_letters == 2);
  // Key 1's register is 5 + max + 1: the two overflowing documents are left out.
  auto registers = Lines(store.get(), s.derivation->RegisterJournal());
  std::string last;  // key 1's last register record (Lines adds a '}')
  for (const auto& r : registers) {
    if (r.rfind(R"({"k":[1],)", 0) == 0) last = r;
  }
  CHECK(last.rfind(R"({"k":[1],"r":{"n":9223372036854775813}})", 0) == 0);
  // Left out in place: one transaction.
  CHECK(task.stats().transactions == 1);
  auto out = Lines(store.get(), "t/out/pivot=00");
  CHECK(std::find(out.begin(), out.end(), R"({"k":2,"n":7})") != out.end());
  auto dead = Lines(store.get(), "t/dead/pivot=00");
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].find(
            R"("task":"t/out","taskKind":"derivation","binding":"fromIn","collection":"t/in",)"
            R"("journal":"t/in/pivot=00","offset":)" +
            std::to_string(fourth) + ",") != std::string::npos);
  CHECK(dead[0].find("cannot reduce an update output into the register") != std::string::npos);
  CHECK(dead[0].find(std::string(R"("document":{"id":7,"k":1,"n":)") + kBig) != std::string::npos);
  CHECK(dead[1].find(std::string(R"("document":{"id":9,"k":1,"n":)") + kBig) != std::string::npos);
  // A restarted task neither reads them again nor writes their dead letters again.
  runtime::DeriveTask again(s.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(again.Open());
  CHECK(Must(again.Step()) == 0);
  CHECK(Lines(store.get(), "t/dead/pivot=00").size() == 2);
}

TEST_CASE(
    "derive: deadLetters takes documents the source schema refuses, in the transaction of the "
    "others") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Summer s = MakeSummer(true, R"({"type":"object","properties":{"n":{"maximum":100}}})");
  Ingest(store.get(), &stamper, s.in,
         {R"({"id":11,"k":1,"n":5})", R"({"id":12,"k":1,"n":500})", R"({"id":13,"k":1,"n":6})"});
  runtime::DeriveTask task(s.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  CHECK(Must(task.Step()) == 3);
  CHECK(task.stats().transactions == 1);
  CHECK(Lines(store.get(), "t/out/pivot=00").back() == R"({"k":1,"n":11})");
  auto dead = Lines(store.get(), "t/dead/pivot=00");
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].find("does not validate against the transform's source schema") !=
        std::string::npos);
  CHECK(dead[0].find(R"("document":{"id":12,"k":1,"n":500)") != std::string::npos);
}

TEST_CASE(
    "derive: deadLetters takes the documents a publish lambda fails on, in place, in one "
    "transaction") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Summer s = MakeSummer(true);
  auto& tr = s.derivation->transforms[0];
  tr.update = nullptr;  // publish only: a document left out has touched no register
  // json() of text that is not JSON fails the row.
  tr.publish = Sql("SELECT $k AS k, CASE WHEN $n < 0 THEN json('{bad') ELSE $n END AS n", *s.in);
  Ingest(store.get(), &stamper, s.in,
         {R"({"id":1,"k":1,"n":1})", R"({"id":2,"k":2,"n":-1})", R"({"id":3,"k":3,"n":2})",
          R"({"id":4,"k":4,"n":-2})", R"({"id":5,"k":5,"n":3})"});
  runtime::DeriveTask task(s.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  CHECK(StepAll(task) == 5);
  CHECK(task.stats().transactions == 1);
  CHECK(task.stats().dead_letters == 2);
  CHECK(Lines(store.get(), "t/out/pivot=00") ==
        std::vector<std::string>{R"({"k":1,"n":1})", R"({"k":3,"n":2})", R"({"k":5,"n":3})"});
  auto dead = Lines(store.get(), "t/dead/pivot=00");
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].find("the publish lambda failed") != std::string::npos);
  CHECK(dead[0].find(R"("document":{"id":2,)") != std::string::npos);
  CHECK(dead[1].find(R"("document":{"id":4,)") != std::string::npos);
}

TEST_CASE(
    "derive: a published document refused after its update reached the register is left out by "
    "running "
    "again") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Summer s = MakeSummer(true);
  // The derived collection refuses n over 100: the document that makes a sum pass it.
  s.derivation->collection = Collection(
      "t/out", R"({"type":"object","required":["k"],"properties":{"n":{"maximum":100}}})", "/k");
  s.out = s.derivation->collection;
  Ingest(store.get(), &stamper, s.in,
         {R"({"id":1,"k":1,"n":50})", R"({"id":2,"k":1,"n":60})", R"({"id":3,"k":1,"n":40})"});
  runtime::DeriveTask task(s.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  CHECK(StepAll(task) == 3);
  CHECK(task.stats().dead_letters == 1);
  // 50 + 40: the second document's 60 is in neither the register nor the output.
  CHECK(Lines(store.get(), "t/out/pivot=00").back() == R"({"k":1,"n":90})");
  auto dead = Lines(store.get(), "t/dead/pivot=00");
  REQUIRE(dead.size() == 1);
  CHECK(dead[0].find(R"("document":{"id":2,)") != std::string::npos);
}

TEST_CASE("derive: a dead letter its collection refuses halts the derivation, naming both errors") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Summer s = MakeSummer(true, R"({"type":"object","properties":{"n":{"maximum":100}}})");
  auto& tr = s.derivation->transforms[0];
  tr.dead_letters = Collection("t/strict", R"({"type":"object","required":["nope"]})", "/offset");
  Ingest(store.get(), &stamper, s.in, {R"({"id":15,"k":1,"n":5})", R"({"id":16,"k":1,"n":500})"});
  runtime::DeriveTask task(s.derivation, store.get(), &stamper, runtime::Clock(Now));
  Must(task.Open());
  auto r = task.Step();
  REQUIRE(!r);
  CHECK(r.error().message.find("does not validate against the transform's source schema") !=
        std::string::npos);
  CHECK(r.error().message.find("its dead letter could not be written to collection `t/strict`") !=
        std::string::npos);
  CHECK(Lines(store.get(), "t/out/pivot=00").empty());
}

TEST_CASE("derive: read delays gate documents by UUID time plus delay") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Join j = MakeJoin();
  auto d = std::make_shared<runtime::Derivation>(*j.derivation);
  d->transforms[0].read_delay_seconds = 3600;
  Ingest(store.get(), &stamper, j.left, {R"({"k":1,"v":"a"})"});
  Ingest(store.get(), &stamper, j.right, {R"({"k":1,"v":"A"})"});
  int64_t now = Now();
  runtime::DeriveTask task(d, store.get(), &stamper, runtime::Clock([&] { return now; }));
  Must(task.Open());
  CHECK(Must(task.Step()) == 1);  // the right side only
  CHECK(Must(task.Step()) == 0);
  CHECK(task.next_ready() > now + int64_t{3599} * 1000000000);
  now = task.next_ready();
  CHECK(Must(task.Step()) == 1);
  CHECK(Lines(store.get(), "t/joined/pivot=00") == std::vector<std::string>{R"({"k":1,"left":"a","right":"A"})"});
}

TEST_CASE("derive: partition selectors skip journals") {
  runtime::PartitionFilter f;
  f.include["region"] = {"EU%20West", "US"};
  f.exclude["tier"] = {"3"};
  CHECK(f.Matches("a/b", "a/b/region=US/tier=1/pivot=00"));
  CHECK(f.Matches("a/b", "a/b/region=EU%20West/tier=2/pivot=00"));
  CHECK_FALSE(f.Matches("a/b", "a/b/region=APAC/tier=1/pivot=00"));
  CHECK_FALSE(f.Matches("a/b", "a/b/region=US/tier=3/pivot=00"));
  runtime::PartitionFilter none;
  CHECK(none.Matches("a/b", "a/b/pivot=00"));
}

// A reader of one source without a gate skips ordering its lines (their UUIDs are not
// parsed); a line it left unordered is ordered once a second source or a gate comes.
TEST_CASE("source reader: a line read unordered is ordered when a second source or a gate comes") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  Join j = MakeJoin();
  Ingest(store.get(), &stamper, j.right, {R"({"k":1,"v":"R"})"});  // stamped first
  Ingest(store.get(), &stamper, j.left, {R"({"k":2,"v":"L"})"});
  auto value = [](const runtime::SourceReader::Document& d) {
    return std::string(d.line.substr(0, d.line.find(",\"_meta\""))) + "}";
  };

  SUBCASE("a second source") {
    runtime::SourceReader reader(t.path, {{"t/left", {}, 0, "left"}, {"t/right", {}, 0, "right"}});
    reader.Add(0, "t/left/pivot=00");
    reader.Advance(store->committed());
    runtime::SourceReader::Document d;
    REQUIRE(Must(reader.Peek(runtime::SourceReader::kNoGate, &d)));  // alone: left, unordered
    CHECK(value(d) == R"({"k":2,"v":"L"})");
    reader.Add(1, "t/right/pivot=00");
    reader.Advance(store->committed());
    REQUIRE(Must(reader.Peek(runtime::SourceReader::kNoGate, &d)));
    CHECK(value(d) == R"({"k":1,"v":"R"})");  // stamped before the left one
    reader.Pop();
    REQUIRE(Must(reader.Peek(runtime::SourceReader::kNoGate, &d)));
    CHECK(value(d) == R"({"k":2,"v":"L"})");
    reader.Pop();
    CHECK_FALSE(Must(reader.Peek(runtime::SourceReader::kNoGate, &d)));
  }
  SUBCASE("a gate") {
    runtime::SourceReader reader(t.path, {{"t/left", {}, 3600, "left"}});
    reader.Discover(store->committed());
    runtime::SourceReader::Document d;
    REQUIRE(Must(reader.Peek(runtime::SourceReader::kNoGate, &d)));
    // At the present time the hour's read delay holds the document back.
    CHECK_FALSE(Must(reader.Peek(Now(), &d)));
    CHECK(reader.next_ready() > Now() + int64_t{3500} * 1000000000);
    REQUIRE(Must(reader.Peek(runtime::SourceReader::kNoGate, &d)));
    CHECK(value(d) == R"({"k":2,"v":"L"})");
  }
}

}  // namespace
}  // namespace flow
