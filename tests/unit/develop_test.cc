// The develop module's seams (develop/): the /metrics text, the control API's request,
// the reload summary; and runtime::CommitGroup, through which develop's ingest service
// commits a group of requests with one sync.
#include <doctest/doctest.h>

#include <string>

#include "develop/build.h"
#include "develop/control.h"
#include "develop/metrics.h"
#include "doc/parse.h"
#include "runtime/ingest.h"
#include "scratch.h"
#include "store/journal.h"

namespace flow {
namespace {
using testing::TempDir;

TEST_CASE(
    "develop: the metrics text lists ingest counters, collections, tasks and the commit "
    "histogram") {
  std::map<std::string, develop::IngestCounters> ingested;
  ingested["acme/\"orders\""].documents = 3;
  develop::CommitHistogram latencies;
  latencies.Add(1000);     // 1 ms: in the le="0.001" bucket (bounds are inclusive)
  latencies.Add(30000);    // 30 ms
  latencies.Add(9000000);  // 9 s: only +Inf
  develop::MetricsInput in;
  in.ingested = &ingested;
  in.collection_bytes["acme/orders"] = 120;
  runtime::TaskStatus capture;
  capture.kind = runtime::TaskKind::kCapture;
  capture.name = "acme/drop";
  capture.state = runtime::TaskState::kRunning;
  capture.counters.in = 2;
  runtime::TaskStatus derivation;
  derivation.kind = runtime::TaskKind::kDerivation;
  derivation.name = "acme/totals";
  derivation.state = runtime::TaskState::kHalted;
  derivation.counters.in = 5;
  derivation.counters.out = 4;
  derivation.counters.bytes_out = 99;
  derivation.progress.read = 10;
  derivation.progress.total = 25;
  in.tasks = {capture, derivation};
  in.latencies = &latencies;
  in.requests = 7;
  std::string m = develop::RenderMetrics(in);

  CHECK(m.find("flowctl_ingested_documents_total{collection=\"acme/\\\"orders\\\"\"} 3\n") !=
        std::string::npos);
  CHECK(m.find("flowctl_collection_bytes{collection=\"acme/orders\"} 120\n") != std::string::npos);
  CHECK(m.find("flowctl_task_documents_in_total{kind=\"capture\",task=\"acme/drop\"} 2\n") !=
        std::string::npos);
  // Captures have no dead letters; only derivations publish bytes.
  CHECK(m.find("flowctl_task_dead_letters_total{kind=\"capture\"") == std::string::npos);
  CHECK(m.find("flowctl_task_dead_letters_total{kind=\"derivation\",task=\"acme/totals\"} 0\n") !=
        std::string::npos);
  CHECK(m.find("flowctl_task_bytes_out_total{kind=\"derivation\",task=\"acme/totals\"} 99\n") !=
        std::string::npos);
  CHECK(m.find("flowctl_task_bytes_out_total{kind=\"capture\"") == std::string::npos);
  CHECK(m.find("flowctl_task_lag_bytes{kind=\"derivation\",task=\"acme/totals\"} 15\n") !=
        std::string::npos);
  CHECK(m.find("flowctl_task_up{kind=\"capture\",task=\"acme/drop\"} 1\n") != std::string::npos);
  CHECK(m.find("flowctl_task_up{kind=\"derivation\",task=\"acme/totals\"} 0\n") !=
        std::string::npos);
  // The histogram's buckets are cumulative.
  CHECK(m.find("flowctl_ingest_commit_seconds_bucket{le=\"0.001\"} 1\n") != std::string::npos);
  CHECK(m.find("flowctl_ingest_commit_seconds_bucket{le=\"0.025\"} 1\n") != std::string::npos);
  CHECK(m.find("flowctl_ingest_commit_seconds_bucket{le=\"0.05\"} 2\n") != std::string::npos);
  CHECK(m.find("flowctl_ingest_commit_seconds_bucket{le=\"2.5\"} 2\n") != std::string::npos);
  CHECK(m.find("flowctl_ingest_commit_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(m.find("flowctl_ingest_commit_seconds_count 3\n") != std::string::npos);
  CHECK(m.find("flowctl_ingest_commit_seconds_sum 9.031\n") != std::string::npos);
  CHECK(m.ends_with(
      "# TYPE flowctl_ingest_requests_total counter\nflowctl_ingest_requests_total 7\n"));
  // Every family is declared before its samples.
  CHECK(m.find("# TYPE flowctl_task_up gauge\n") < m.find("flowctl_task_up{"));
}

TEST_CASE("develop: a control request is a JSON object of target, collection, table and fields") {
  CHECK_FALSE(develop::ParseMaterializationRequest("[1]").has_value());
  CHECK_FALSE(develop::ParseMaterializationRequest("{").has_value());
  auto r = develop::ParseMaterializationRequest(
      R"({"target":"db","collection":"acme/orders","table":"orders","fields":["a",1,"b"],"allFields":true})");
  REQUIRE(r.has_value());
  CHECK(r->target == "db");
  CHECK(r->collection == "acme/orders");
  CHECK(r->table == "orders");
  CHECK(r->fields == std::vector<std::string>{"a", "b"});
  CHECK(r->all_fields);
  auto empty = develop::ParseMaterializationRequest(R"({"target":7})");
  REQUIRE(empty.has_value());
  CHECK(empty->target.empty());
  CHECK_FALSE(empty->all_fields);
}

TEST_CASE("develop: a reload's summary counts unchanged, restarted, new and removed tasks") {
  std::map<std::string, std::string> before = {{"d:a", "1"}, {"d:b", "2"}, {"m:c", "3"}};
  std::map<std::string, std::string> after = {
      {"d:a", "1"}, {"d:b", "9"}, {"m:e", "4"}, {"m:f", "5"}};
  CHECK(develop::ReloadSummary(before, after) ==
        "applied the new catalog: 1 task unchanged, 1 restarted from its checkpoint, 2 new, 1 "
        "removed");
  CHECK(develop::ReloadSummary(after, after) ==
        "applied the new catalog: 4 tasks unchanged, 0 restarted from their checkpoints, 0 new, 0 "
        "removed");
}

TEST_CASE("develop: a reload's summary counts the tasks it back-filled as back-filled") {
  // A derivation whose lambda changed is back-filled with what reads it: a derivation and a
  // materialization whose own fingerprints did not change. A new task stays new.
  std::map<std::string, std::string> before = {
      {"derivation:a/scaled", "1"}, {"derivation:a/spent", "2"}, {"materialization:a/views", "3"},
      {"materialization:a/other", "4"}};
  std::map<std::string, std::string> after = before;
  after["derivation:a/scaled"] = "9";
  after["materialization:a/new"] = "5";
  runtime::Backfill b;
  b.derivations = {"a/scaled", "a/spent"};
  b.materializations = {"a/views", "a/new"};
  CHECK(develop::ReloadSummary(before, after, b) ==
        "applied the new catalog: 1 task unchanged, 0 restarted from their checkpoints, 3 "
        "back-filled, 1 new, 0 removed");
  CHECK(develop::ReloadSummary(before, after) ==
        "applied the new catalog: 3 tasks unchanged, 1 restarted from its checkpoint, 1 new, 0 "
        "removed");
}

TEST_CASE("develop: the status lines show a back-fill's progress and a halted task") {
  // More than 1 MiB behind is back-filling; the percentage is of the source bytes read.
  runtime::ReadProgress behind{1 << 20, 4 << 20};
  CHECK(runtime::MovingState(behind) == runtime::TaskState::kBackFilling);
  CHECK(runtime::MovingState({(3 << 20) + 1, 4 << 20}) == runtime::TaskState::kRunning);
  develop::Status s;
  s.url = "http://127.0.0.1:8081";
  runtime::TaskStatus d;
  d.name = "a/scaled";
  d.state = runtime::TaskState::kBackFilling;
  d.counters.in = d.counters.out = 8192;
  d.progress = behind;
  runtime::TaskStatus m;
  m.kind = runtime::TaskKind::kMaterialization;
  m.name = "a/views";
  m.state = runtime::TaskState::kHalted;
  s.tasks = {d, m};
  CHECK(develop::StatusLines(s, false) ==
        std::vector<std::string>{
            "status: derivation `a/scaled` back-filling in=8192 out=8192 lag=3.0 MiB (25%)",
            "status: materialization `a/views` halted in=0 out=0 lag=0 B",
            "status: ingest requests=0 documents=0"});
  auto table = develop::StatusLines(s, true);
  REQUIRE(table.size() == 4);
  CHECK(table[2].find("back-filling") != std::string::npos);
  CHECK(table[2].find("3.0 MiB (25%)") != std::string::npos);
  CHECK(table[3].find("halted") != std::string::npos);
}

std::shared_ptr<const runtime::Collection> Keyed(const std::string& name) {
  catalog::CollectionRecord r;
  r.name = name;
  r.bundle = R"({"$ref":"#/$defs/s0","$defs":{"s0":{"type":"object","required":["id"],
    "properties":{"id":{"type":"integer"}}}}})";
  r.key = {"/id"};
  return testing::Must(runtime::Collection::Compile(r));
}

void Add(runtime::IngestTransaction* txn, const std::shared_ptr<const runtime::Collection>& c,
         const std::string& json) {
  rapidjson::Document d(&txn->allocator(c));
  doc::ParseError e;
  REQUIRE(doc::ParseDocument(json, &d, &e));
  REQUIRE(txn->Add(c, d).ok());
}

TEST_CASE(
    "ingest: a group of transactions commits at once, each told the heads of its own journals") {
  TempDir t;
  auto store = testing::Must(store::Store::Open(t.path));
  runtime::Stamper stamper;
  auto a = Keyed("t/a"), b = Keyed("t/b");
  runtime::IngestTransaction one(store.get(), &stamper), two(store.get(), &stamper),
      three(store.get(), &stamper);
  Add(&one, a, R"({"id":1})");
  Add(&two, b, R"({"id":2})");
  Add(&three, a, R"({"id":3})");
  uint64_t commits = store->stats().commits;
  auto group = testing::Must(runtime::CommitGroup(store.get(), {&one, &two, &three}));
  CHECK(store->stats().commits == commits + 1);
  REQUIRE(group.heads.size() == 2);
  REQUIRE(group.written.size() == 3);
  const std::string ja = group.written[0].begin()->first;
  CHECK(group.written[0].size() == 1);
  CHECK(group.written[1].size() == 1);
  CHECK(group.written[1].begin()->first != ja);
  // The first and the third wrote the same journal: both are told its head after both.
  CHECK(group.written[2] == group.written[0]);
  CHECK(group.written[0].at(ja) == group.heads.at(ja));
  CHECK(store->committed().heads.at(ja) == group.heads.at(ja));
  CHECK(runtime::HeadsJson(group.written[1]) ==
        "{\"" + group.written[1].begin()->first +
            "\":" + std::to_string(group.written[1].begin()->second) + "}");
}

}  // namespace
}  // namespace flow
