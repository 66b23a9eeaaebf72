// Ingestion transactions (runtime/ingest.h) over a real store in a temporary directory:
// atomic commits across collections, aborts, rounds, stamping and routing.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "scratch.h"
#include "doc/parse.h"
#include "doc/uuid.h"
#include "runtime/ingest.h"
#include "store/journal.h"

namespace flow {
namespace {
using testing::TempDir;
namespace fs = std::filesystem;


// A collection keyed by /id with an integer `n` summed, partitioned by `region` when asked.
std::shared_ptr<const runtime::Collection> Compile(const std::string& name, bool partitioned) {
  catalog::CollectionRecord r;
  r.name = name;
  r.bundle = R"({"$ref":"#/$defs/s0","$defs":{"s0":{"type":"object","required":["id","region"],
    "reduce":{"strategy":"merge"},
    "properties":{"id":{"type":"integer"},"region":{"type":"string"},
                  "n":{"type":"integer","reduce":{"strategy":"sum"}}}}}})";
  r.key = {"/id"};
  r.projections.push_back({"region", "/region", partitioned, 16, true});
  auto c = runtime::Collection::Compile(r);
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  return c.value();
}

Result<bool> AddJson(runtime::IngestTransaction* txn, const std::shared_ptr<const runtime::Collection>& c,
                     const std::string& json) {
  rapidjson::Document d(&txn->allocator(c));
  doc::ParseError e;
  REQUIRE_MESSAGE(doc::ParseDocument(json, &d, &e), e.message);
  return txn->Add(c, d);
}

std::string ReadAll(const std::string& dir, const std::string& journal) {
  auto state = store::ReadLedger(dir);
  REQUIRE(state.ok());
  uint64_t head = state->heads.count(journal) ? state->heads.at(journal) : 0;
  store::JournalReader r(dir, journal);
  std::string out, block;
  for (;;) {
    auto got = r.Read(head, &block);
    REQUIRE(got.ok());
    if (block.empty()) return out;
    out += block;
  }
}

TEST_CASE("ingest: one transaction commits to every collection and journal at once") {
  TempDir t;
  auto store = store::Store::Open(t.path);
  REQUIRE(store.ok());
  runtime::Stamper stamper;
  auto a = Compile("t/a", true), b = Compile("t/b", false);
  runtime::IngestTransaction txn(store->get(), &stamper);
  REQUIRE(AddJson(&txn, a, R"({"id":2,"region":"EU West","n":1})").ok());
  REQUIRE(AddJson(&txn, a, R"({"id":1,"region":"US","n":5})").ok());
  REQUIRE(AddJson(&txn, b, R"({"id":7,"region":"US","n":1})").ok());
  REQUIRE(AddJson(&txn, a, R"({"id":2,"region":"EU West","n":2})").ok());  // combined with the first
  auto heads = txn.Commit();
  REQUIRE(heads.ok());
  CHECK(heads->size() == 3);
  CHECK(txn.stats().documents == 4);
  CHECK(txn.stats().combined == 3);

  // One ledger record (after the one that starts every ledger) carries all three heads.
  std::string ledger;
  {
    std::ifstream in(t.path + "/ledger");
    std::getline(in, ledger);
    CHECK(ledger.find(R"("heads":{}})") != std::string::npos);  // the first names no heads
    std::getline(in, ledger);
  }
  for (const auto& j : {"t/a/region=EU%20West/pivot=00", "t/a/region=US/pivot=00", "t/b/pivot=00"}) {
    CHECK(ledger.find(j) != std::string::npos);
  }
  std::string eu = ReadAll(t.path, "t/a/region=EU%20West/pivot=00");
  INFO(eu);
  CHECK(eu.rfind(R"({"id":2,"n":3,"region":"EU West","_meta":{"uuid":")", 0) == 0);  // merged: by name
  auto uuid = runtime::StampedUuid(std::string_view(eu).substr(0, eu.size() - 1));
  REQUIRE(uuid);
  auto parsed = doc::ParseUuid(*uuid);
  REQUIRE(parsed);
  CHECK((parsed->producer.bytes[0] & 0x01) == 0x01);  // the multicast bit
  CHECK(ReadAll(t.path, "t/b/pivot=00").rfind(R"({"id":7,"region":"US","n":1,"_meta")", 0) == 0);
}

TEST_CASE("ingest: a failed document aborts the transaction in every collection") {
  TempDir t;
  auto store = store::Store::Open(t.path);
  REQUIRE(store.ok());
  runtime::Stamper stamper;
  auto a = Compile("t/a", true), b = Compile("t/b", false);
  {
    runtime::IngestTransaction txn(store->get(), &stamper);
    REQUIRE(AddJson(&txn, a, R"({"id":1,"region":"US","n":5})").ok());
    auto bad = AddJson(&txn, b, R"({"id":"x","region":"US"})");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Error::Code::kUser);
    CHECK(bad.error().message.find("collection `t/b`") != std::string::npos);
    CHECK(bad.error().message.find("/id") != std::string::npos);
    REQUIRE(txn.Abort().ok());
  }
  CHECK(store::ReadLedger(t.path)->heads.empty());
  // The spool the transaction created is gone (no bytes left behind).
  bool left = fs::exists(t.path + "/spool/t/a/region=US/pivot=00") &&
              !fs::is_empty(t.path + "/spool/t/a/region=US/pivot=00");
  CHECK_FALSE(left);
}

TEST_CASE("ingest: a transaction bigger than the budget is appended in rounds and commits whole") {
  TempDir t;
  auto store = store::Store::Open(t.path);
  REQUIRE(store.ok());
  runtime::Stamper stamper;
  auto a = Compile("t/a", false);
  reduce::CombinerOptions opts;
  opts.memory_budget = 64 << 10;
  runtime::IngestTransaction txn(store->get(), &stamper, opts);
  int64_t total = 0;
  for (int i = 0; i < 5000; ++i) {
    REQUIRE(AddJson(&txn, a, R"({"id":)" + std::to_string(i % 100) + R"(,"region":"US","n":1})").ok());
    ++total;
  }
  CHECK(txn.stats().rounds > 0);
  // Nothing is visible before the commit, although rounds were appended.
  CHECK(store::ReadLedger(t.path)->heads.empty());
  REQUIRE(txn.Commit().ok());
  // Every id's counts add up to what was added, across rounds.
  std::string all = ReadAll(t.path, "t/a/pivot=00");
  int64_t sum = 0;
  std::set<std::string> uuids;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    std::string_view line(all.data() + pos, nl - pos);
    rapidjson::Document d;
    d.Parse(line.data(), line.size());
    REQUIRE(d.IsObject());
    sum += d["n"].GetInt64();
    uuids.insert(std::string(*runtime::StampedUuid(line)));
    pos = nl + 1;
  }
  CHECK(sum == total);
  CHECK(uuids.size() == txn.stats().combined);  // every stored document has its own UUID
}

TEST_CASE("ingest: _meta is written last with the uuid last in it") {
  rapidjson::Document d;
  d.Parse(R"({"_meta":{"uuid":"old","src":"x"},"a":1,"z":{"uuid":"inner"}})");
  std::string out;
  runtime::AppendStamped(d, "00000000-0000-1000-8000-000000000000", &out);
  CHECK(out == R"({"a":1,"z":{"uuid":"inner"},"_meta":{"src":"x","uuid":"00000000-0000-1000-8000-000000000000"}})" "\n");
  CHECK(runtime::StampedUuid(std::string_view(out).substr(0, out.size() - 1)) ==
        std::string_view("00000000-0000-1000-8000-000000000000"));
  CHECK_FALSE(runtime::StampedUuid(R"({"a":1})"));
}

}  // namespace
}  // namespace flow
