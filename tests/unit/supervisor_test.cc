// The supervisor (runtime/supervisor.h) over a real store: failures by task kind, retries
// with backoff on the supervisor's clock, and live reload by fingerprint.
#include "runtime/supervisor.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "doc/parse.h"
#include "lambda/sqlite.h"
#include "runtime/derive.h"
#include "runtime/ingest.h"
#include "runtime/materialize.h"
#include "schema/shape.h"
#include "ingest_docs.h"
#include "scratch.h"

namespace flow {
namespace {
using runtime::TaskKind;
using runtime::TaskState;
using testing::Ingest;
using testing::Must;
using testing::TempDir;

const char* kSchema =
    R"({"type":"object","required":["k"],"properties":{"k":{"type":"integer"},"v":{"type":"string"}}})";

std::shared_ptr<const runtime::Collection> Collection(const std::string& name) {
  catalog::CollectionRecord r;
  r.name = name;
  r.bundle = std::string(R"({"$ref":"#/$defs/s0","$defs":{"s0":)") + kSchema + "}}";
  r.key = {"/k"};
  r.projections = {{"k", "/k", false, 4, true}, {"v", "/v", false, 16, true}};
  return Must(runtime::Collection::Compile(r));
}

// A derivation of `name` publishing `sql` for each document of `source`.
std::shared_ptr<const runtime::Derivation> Derivation(
    const std::string& name, const std::shared_ptr<const runtime::Collection>& source,
    const std::string& sql) {
  auto d = std::make_shared<runtime::Derivation>();
  d->collection = Collection(name);
  runtime::Transform t;
  t.name = "from" + source->name;
  t.source = source;
  std::vector<lambda::SourceField> fields;
  for (const auto& f : source->fields) fields.push_back({f.field, f.pointer});
  t.publish = std::shared_ptr<lambda::Lambda>(Must(lambda::SqliteLambda::Compile(sql, fields)));
  d->transforms.push_back(std::move(t));
  return d;
}

const runtime::TaskStatus& StatusOf(const std::vector<runtime::TaskStatus>& all,
                                    const std::string& name) {
  for (const auto& s : all) {
    if (s.name == name) return s;
  }
  FAIL("no task " << name);
  return all.front();
}

// A steady clock the test moves by hand.
struct FakeSteady {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
  runtime::Clock Clock() {
    runtime::Clock c;
    c.steady = [this] { return now; };
    return c;
  }
};

TEST_CASE("supervisor: a failing derivation halts alone; the others run on") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  auto source = Collection("t/source");
  auto plan = std::make_shared<runtime::Plan>();
  plan->collections[source->name] = source;
  plan->derivations.push_back(Derivation("t/copy", source, "SELECT $k AS k, $v AS v"));
  // 'x' is not an integer: the published document fails the collection's schema.
  plan->derivations.push_back(Derivation("t/broken", source, "SELECT 'x' AS k"));
  std::vector<std::string> logged;
  runtime::Supervisor::Options o;
  o.log = [&](const std::string& line) { logged.push_back(line); };
  runtime::Supervisor sup(store.get(), &stamper, o);
  Must(sup.Apply(plan, {}));
  Ingest(store.get(), &stamper, source, {R"({"k":1,"v":"a"})", R"({"k":2,"v":"b"})"});

  for (int i = 0; i < 3; ++i) Must(sup.Step());
  auto status = sup.Status();
  CHECK(StatusOf(status, "t/copy").state == TaskState::kRunning);
  CHECK(StatusOf(status, "t/copy").counters.out == 2);
  const auto& broken = StatusOf(status, "t/broken");
  CHECK(broken.kind == TaskKind::kDerivation);
  CHECK(broken.state == TaskState::kHalted);
  CHECK(broken.error.find("t/broken") != std::string::npos);
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].rfind("error: ", 0) == 0);
  REQUIRE(sup.first_failure());
  CHECK(sup.exit_code() == kExitUserError);

  // More input: the running derivation takes it, the halted one stays halted.
  Ingest(store.get(), &stamper, source, {R"({"k":3,"v":"c"})"});
  Must(sup.Step());
  CHECK(StatusOf(sup.Status(), "t/copy").counters.out == 3);
  CHECK(StatusOf(sup.Status(), "t/broken").state == TaskState::kHalted);
  CHECK(logged.size() == 1);
}

TEST_CASE("supervisor: an unreachable target is retried with backoff on the supervisor's clock") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  auto m = std::make_shared<runtime::Materialization>();
  m->name = "t/m";
  m->target = "db";
  m->kind = "sqlite";
  // Its directory is a regular file: it cannot be opened, an environment error.
  {
    std::FILE* f = std::fopen((t.path + "/file").c_str(), "w");
    REQUIRE(f);
    std::fclose(f);
  }
  m->address = t.path + "/file/db.sqlite";
  FakeSteady steady;
  std::vector<std::string> logged;
  runtime::Supervisor::Options o;
  o.clock = steady.Clock();
  o.log = [&](const std::string& line) { logged.push_back(line); };

  SUBCASE("retried while it fails, at growing intervals") {
    runtime::Supervisor sup(store.get(), &stamper, o);
    sup.AddMaterialization(m);
    auto round = Must(sup.Step());
    CHECK(round.waiting);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].rfind("warning: materialization `t/m`: ", 0) == 0);
    CHECK(logged[0].find("materialization `t/m`", 10) == std::string::npos);  // named once
    CHECK(logged[0].find("retrying in 0.5 s") != std::string::npos);
    CHECK(sup.Status()[0].state == TaskState::kRetrying);
    // Not before its time.
    steady.now += std::chrono::milliseconds(400);
    Must(sup.Step());
    CHECK(logged.size() == 1);
    steady.now += std::chrono::milliseconds(200);
    Must(sup.Step());
    REQUIRE(logged.size() == 2);
    CHECK(logged[1].find("retrying in 1.0 s") != std::string::npos);
    CHECK(sup.exit_code() == 0);
  }
  SUBCASE("an error that names the materialization is not named again") {
    // A malformed checkpoint in the target: an environment error, retried.
    m->address = t.path + "/db.sqlite";
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(m->address.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "CREATE TABLE flow_checkpoints (materialization TEXT NOT NULL PRIMARY KEY, "
                         "fence BIGINT NOT NULL, checkpoint TEXT NOT NULL);"
                         "INSERT INTO flow_checkpoints VALUES ('t/m', 1, 'not a checkpoint');",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    runtime::Supervisor sup(store.get(), &stamper, o);
    sup.AddMaterialization(m);
    Must(sup.Step());
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("is malformed") != std::string::npos);
    CHECK(logged[0].rfind("warning: materialization `t/m`: ", 0) == 0);
    CHECK(logged[0].find("materialization `t/m`", 10) == std::string::npos);
  }
  SUBCASE("until idle: halted after 4 attempts") {
    o.until_idle = true;
    runtime::Supervisor sup(store.get(), &stamper, o);
    sup.AddMaterialization(m);
    for (int i = 0; i < 10; ++i) {
      Must(sup.Step());
      steady.now += std::chrono::seconds(60);
    }
    CHECK(logged.size() == 4);
    CHECK(logged.back().rfind("error: ", 0) == 0);
    CHECK(sup.Status()[0].state == TaskState::kHalted);
    CHECK(sup.exit_code() == kExitEnvironment);
  }
  SUBCASE("without retries: halted at once") {
    o.retry_targets = false;
    runtime::Supervisor sup(store.get(), &stamper, o);
    sup.AddMaterialization(m);
    Must(sup.Step());
    CHECK(logged.size() == 1);
    CHECK(sup.Status()[0].state == TaskState::kHalted);
    REQUIRE(sup.first_failure());
    CHECK(sup.first_failure()->code == Error::Code::kEnvironment);
  }
}

TEST_CASE(
    "supervisor: Apply keeps a task whose fingerprint is unchanged and restarts a changed one") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  auto source = Collection("t/source");
  auto plan = std::make_shared<runtime::Plan>();
  plan->collections[source->name] = source;
  plan->derivations.push_back(Derivation("t/a", source, "SELECT $k AS k"));
  plan->derivations.push_back(Derivation("t/b", source, "SELECT $k AS k"));
  runtime::Supervisor::Options o;
  o.log = [](const std::string&) {};
  runtime::Supervisor sup(store.get(), &stamper, o);
  Must(sup.Apply(plan, {{"derivation:t/a", "1"}, {"derivation:t/b", "1"}}));
  Ingest(store.get(), &stamper, source, {R"({"k":1})", R"({"k":2})"});
  Must(sup.Step());
  CHECK(StatusOf(sup.Status(), "t/a").counters.in == 2);
  CHECK(StatusOf(sup.Status(), "t/b").counters.in == 2);

  // t/b changed: it restarts from its checkpoint (nothing left to read, counters anew);
  // t/a keeps its task.
  Must(sup.Apply(plan, {{"derivation:t/a", "1"}, {"derivation:t/b", "2"}}));
  CHECK(StatusOf(sup.Status(), "t/a").counters.in == 2);
  CHECK(StatusOf(sup.Status(), "t/b").counters.in == 0);
  Must(sup.Step());
  CHECK(StatusOf(sup.Status(), "t/b").counters.in == 0);  // its checkpoint held: no re-read

  // A plan without t/a stops it.
  auto smaller = std::make_shared<runtime::Plan>(*plan);
  smaller->derivations.erase(smaller->derivations.begin());
  Must(sup.Apply(smaller, {{"derivation:t/b", "2"}}));
  REQUIRE(sup.Status().size() == 1);
  CHECK(sup.Status()[0].name == "t/b");
}

// A materialization of `source` into table `t` of the SQLite file `path`: k, v and the document.
std::shared_ptr<runtime::Materialization> Materialization(
    const std::shared_ptr<const runtime::Collection>& source, const std::string& path) {
  auto m = std::make_shared<runtime::Materialization>();
  m->name = "t/m";
  m->target = "db";
  m->kind = "sqlite";
  m->address = path;
  runtime::MaterializationBinding b;
  b.source = source;
  b.table.name = "t";
  materialize::Column k;
  k.field = "k";
  k.location = *doc::Pointer::Parse("/k", nullptr);
  k.types = schema::kInteger;
  k.must_exist = k.key = true;
  k.key_position = 1;
  materialize::Column d;
  d.field = "flow_document";
  d.document = true;
  b.table.columns = {k, d};
  m->bindings.push_back(std::move(b));
  return m;
}

TEST_CASE("supervisor: a materialization waits while a derivation upstream back-fills, at most 30 s") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  auto source = Collection("t/source");
  auto plan = std::make_shared<runtime::Plan>();
  plan->collections[source->name] = source;
  // Two derivations in a chain, so the hold follows the materialization's sources upstream.
  auto a = Derivation("t/a", source, "SELECT $k % 100 AS k");
  auto b = Derivation("t/b", a->collection, "SELECT $k AS k");
  plan->derivations = {a, b};
  plan->materializations.push_back(Materialization(b->collection, t.path + "/db.sqlite"));
  FakeSteady steady;
  runtime::Supervisor::Options o;
  o.clock = steady.Clock();
  o.log = [](const std::string&) {};
  runtime::Supervisor sup(store.get(), &stamper, o);
  Must(sup.Apply(plan, {}));
  // 2.5 transactions' worth of source documents over 100 keys of t/a and t/b.
  std::vector<std::string> docs;
  for (uint64_t i = 0; i < runtime::DeriveTask::kMaxDocs * 5 / 2; ++i) docs.push_back(fmt::format(R"({{"k":{}}})", i));
  Ingest(store.get(), &stamper, source, docs);

  SUBCASE("each row is stored once, after the back-fill") {
    Must(sup.Step());  // t/a takes its first transaction and is behind
    CHECK(StatusOf(sup.Status(), "t/m").counters.out == 0);
    Must(sup.Step());
    CHECK(StatusOf(sup.Status(), "t/m").counters.out == 0);
    for (int i = 0; i < 4; ++i) Must(sup.Step());  // caught up; the pipelined store commits
    CHECK(StatusOf(sup.Status(), "t/a").counters.in == docs.size());
    CHECK(StatusOf(sup.Status(), "t/m").counters.out == 100);
    // Keeping pace afterwards: nothing is held.
    Ingest(store.get(), &stamper, source, {R"({"k":7})"});
    for (int i = 0; i < 3; ++i) Must(sup.Step());
    CHECK(StatusOf(sup.Status(), "t/m").counters.out == 101);
  }
  SUBCASE("a long back-fill still shows progress every 30 s") {
    Must(sup.Step());
    Must(sup.Step());  // opened and held
    steady.now += std::chrono::seconds(31);
    Must(sup.Step());  // held for 30 s: it stores what t/b published so far
    Must(sup.Step());
    CHECK(StatusOf(sup.Status(), "t/m").counters.out > 0);
  }
}


TEST_CASE("supervisor: with threads, a derivation catching up computes off the calling thread to the same result") {
  std::map<int, runtime::TaskCounters> got;
  std::map<int, std::string> journal;
  for (int threads : {0, 2}) {
    CAPTURE(threads);
    TempDir t;
    auto store = Must(store::Store::Open(t.path));
    runtime::Stamper stamper;
    auto source = Collection("t/source");
    auto plan = std::make_shared<runtime::Plan>();
    plan->collections[source->name] = source;
    plan->derivations.push_back(Derivation("t/a", source, "SELECT $k % 1000 AS k, 'x' || $k AS v"));
    runtime::Supervisor::Options o;
    o.threads = threads;
    o.log = [](const std::string&) {};
    runtime::Supervisor sup(store.get(), &stamper, o);
    Must(sup.Apply(plan, {}));
    std::vector<std::string> docs;
    for (uint64_t i = 0; i < 3 * runtime::DeriveTask::kMaxDocs + 5; ++i) docs.push_back(fmt::format(R"({{"k":{}}})", i));
    Ingest(store.get(), &stamper, source, docs);
    for (int round = 0; round < 100000; ++round) {
      auto r = Must(sup.Step());
      CHECK(sup.Status().size() == 1);  // safe while it computes
      if (!r.progress && !r.busy) break;
      if (r.busy) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    got[threads] = StatusOf(sup.Status(), "t/a").counters;
    // The derived collection reduced by key (the last document of each wins): larger
    // transactions publish fewer documents, combined, to the same result.
    std::string all, chunk;
    const std::string j = "t/a/pivot=00";
    store::JournalReader reader(t.path, j);
    for (uint64_t head = store->committed().heads.at(j); reader.offset() < head;) {
      Must(reader.Read(head, &chunk));
      all += chunk;
    }
    std::map<std::string, std::string> last;
    std::istringstream lines(all);
    for (std::string line; std::getline(lines, line);) {
      last[line.substr(0, line.find(','))] = std::regex_replace(line, std::regex(R"("uuid":"[^"]*")"), "");
    }
    for (const auto& [k, doc] : last) journal[threads] += doc + "\n";
  }
  CHECK(got[0].in == 3 * runtime::DeriveTask::kMaxDocs + 5);
  CHECK(got[2].in == got[0].in);
  CHECK(got[2].out <= got[0].out);
  CHECK(got[2].transactions < got[0].transactions);  // larger transactions off the thread
  CHECK(journal[2] == journal[0]);
}

// Collection(name), its spools persisted into fragments of about 64 KiB.
std::shared_ptr<const runtime::Collection> SmallFragments(const std::string& name) {
  auto c = std::make_shared<runtime::Collection>(*Collection(name));
  c->journal.fragment_size = 64 << 10;
  return c;
}

TEST_CASE(
    "supervisor: with threads, derivations catching up compute beside ingestion, persists and "
    "Status") {
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  auto source = SmallFragments("t/source");
  auto plan = std::make_shared<runtime::Plan>();
  plan->collections[source->name] = source;
  auto a = Derivation("t/a", source, "SELECT $k % 100 AS k");
  auto b = Derivation("t/b", source, "SELECT $k AS k");
  plan->derivations = {a, b};
  plan->materializations.push_back(Materialization(a->collection, t.path + "/db.sqlite"));
  runtime::Supervisor::Options o;
  o.log = [](const std::string&) {};
  o.threads = 2;
  const std::map<std::string, std::string> fingerprints{
      {"derivation:t/a", "1"}, {"derivation:t/b", "1"}, {"materialization:t/m", "1"}};
  auto sup = std::make_unique<runtime::Supervisor>(store.get(), &stamper, o);
  Must(sup->Apply(plan, fingerprints));
  uint64_t total = 0;
  auto ingest = [&](uint64_t n) {
    std::vector<std::string> docs;
    for (uint64_t i = 0; i < n; ++i, ++total)
      docs.push_back(fmt::format(R"({{"k":{},"v":"{:0>200}"}})", total, total));
    Ingest(store.get(), &stamper, source, docs);
  };
  ingest(runtime::DeriveTask::kMaxDocs * 3);

  SUBCASE("everything is derived and stored once") {
    bool busy_seen = false;
    for (int round = 0; round < 100000; ++round) {
      auto r = Must(sup->Step());
      busy_seen = busy_seen || r.busy;
      // Meanwhile: ingestion, background persists, the status view.
      if (round < 40) ingest(100);
      Must(store->PersistDue(std::time(nullptr)));
      for (const auto& s : sup->Status()) CHECK(s.state != TaskState::kHalted);
      (void)sup->NextReady();
      if (round == 20)
        Must(sup->Apply(plan, fingerprints));  // waits for what computes, publishes it
      if (!r.busy && !r.progress && round > 40) break;
      if (r.busy) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    CHECK(busy_seen);
    CHECK(StatusOf(sup->Status(), "t/a").counters.in == total);
    CHECK(StatusOf(sup->Status(), "t/b").counters.in == total);
    CHECK(StatusOf(sup->Status(), "t/b").counters.out == total);
    // Stored once per key: 100 rows (the hold ends once t/a caught up).
    for (int i = 0; i < 4; ++i) Must(sup->Step());
    CHECK(StatusOf(sup->Status(), "t/m").counters.out >= 100);
    Must(store->WaitPersisting());
    Must(store->PersistAll());
    CHECK(store->stats().fragments > 0);
  }
  SUBCASE("stopping while a derivation computes commits nothing of it; the next run goes on") {
    Must(sup->Step());  // the first transaction, on this thread: then t/a and t/b are behind
    CHECK(Must(sup->Step()).busy);
    Must(store->PersistDue(std::time(nullptr)));
    uint64_t committed = StatusOf(sup->Status(), "t/b").counters.in;
    CHECK(committed < total);
    sup.reset();  // waits for the computing threads
    Must(store->PersistAll());
    runtime::Supervisor::Options o2 = o;
    runtime::Supervisor again(store.get(), &stamper, o2);
    Must(again.Apply(plan, fingerprints));
    for (int round = 0; round < 100000; ++round) {
      auto r2 = Must(again.Step());
      if (!r2.busy && !r2.progress) break;
      if (r2.busy) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // Nothing skipped, nothing read twice: the computed transaction was not committed.
    CHECK(StatusOf(again.Status(), "t/b").counters.in == total - committed);
  }
}

TEST_CASE("derive: large published documents, in transactions bounded by bytes") {
  // The lambdas' outputs once lived in the combiner's arena, which a compaction or spill
  // replaces while outputs not yet added still point into it: garbage documents, or a crash,
  // in one transaction of 20000 such documents (94 MB). Transactions now end at
  // kMaxTransactionBytes of sources, below where the combiner compacts, and the outputs live
  // in an arena of their own anyway.
  TempDir t;
  auto store = Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  auto source = Collection("t/source");
  auto d = Derivation("t/b", source, "SELECT $k AS k, $v AS v");
  std::vector<std::string> docs;
  std::string body(8000, 'y');
  for (int i = 0; i < 20000; ++i) docs.push_back(fmt::format(R"({{"k":{},"v":"{}"}})", i, body));
  Ingest(store.get(), &stamper, source, docs);
  runtime::DeriveTask task(d, store.get(), &stamper, runtime::Clock());
  Must(task.Open());
  uint64_t read = 0;
  for (int i = 0; i < 100 && read < docs.size(); ++i) {
    auto n = task.Step(4 * runtime::DeriveTask::kMaxDocs);
    if (!n) MESSAGE(n.error().message.substr(0, 300));
    REQUIRE(n.ok());
    REQUIRE(n.value() > 0);
    read += n.value();
  }
  CHECK(read == docs.size());
  CHECK(task.stats().published == docs.size());
  CHECK(task.stats().transactions >= 3);  // bounded by bytes, not by documents
}

}  // namespace
}  // namespace flow
