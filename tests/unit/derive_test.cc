// Derivation tasks (runtime/derive.h) over a real store with SQLite lambdas: registers
// shared across transforms (a join), atomic commits, failures that commit nothing,
// restarts without gaps or duplicates, read delays and partition selectors.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "scratch.h"
#include "doc/parse.h"
#include "lambda/sqlite.h"
#include "runtime/cursor.h"
#include "runtime/derive.h"
#include "runtime/ingest.h"

namespace flow {
namespace {
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

void Ingest(store::Store* store, runtime::Stamper* stamper, const std::shared_ptr<const runtime::Collection>& c,
            const std::vector<std::string>& docs) {
  runtime::IngestTransaction txn(store, stamper);
  for (const auto& json : docs) {
    rapidjson::Document d(&txn.allocator(c));
    doc::ParseError e;
    REQUIRE(doc::ParseDocument(json, &d, &e));
    Must(txn.Add(c, d));
  }
  Must(txn.Commit());
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
  runtime::DeriveTask task(j.derivation, store.get(), &stamper, Now);
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
    runtime::DeriveTask task(j.derivation, store.get(), &stamper, Now);
    Must(task.Open());
    CHECK(Must(task.Step()) == 1);
  }
  auto store = Must(store::Store::Open(t.path));
  Ingest(store.get(), &stamper, j.right, {R"({"k":1,"v":"A"})"});
  runtime::DeriveTask task(j.derivation, store.get(), &stamper, Now);
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
  runtime::DeriveTask task(d, store.get(), &stamper, Now);
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
  runtime::DeriveTask again(d, store.get(), &stamper, Now);
  Must(again.Open());
  CHECK_FALSE(again.Step().ok());
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
  runtime::DeriveTask task(d, store.get(), &stamper, [&] { return now; });
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

}  // namespace
}  // namespace flow
