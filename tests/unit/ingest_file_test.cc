// The work of `flowctl ingest`, `read` and `combine` as library calls (runtime/ingest_file.h,
// runtime/read.h, runtime/combine.h): an input file into a store, read back (all, by
// partition, reduced), combined; errors carry their place in the input.
#include "runtime/ingest_file.h"

#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "runtime/combine.h"
#include "runtime/feed.h"
#include "runtime/input.h"
#include "runtime/read.h"
#include "scratch.h"
#include "store/journal.h"

namespace flow {
namespace {
using testing::Must;
using testing::TempDir;

// Keyed by /id, `n` summed, partitioned by `region`.
std::shared_ptr<const runtime::Collection> Compile() {
  catalog::CollectionRecord r;
  r.name = "t/a";
  r.bundle = R"({"$ref":"#/$defs/s0","$defs":{"s0":{"type":"object","required":["id","region"],
    "reduce":{"strategy":"merge"},
    "properties":{"id":{"type":"integer"},"region":{"type":"string"},
                  "n":{"type":"integer","reduce":{"strategy":"sum"}}}}}})";
  r.key = {"/id"};
  r.projections.push_back({"id", "/id", false, 4, true});
  r.projections.push_back({"region", "/region", true, 16, true});
  r.projections.push_back({"n", "/n", false, 4, false});
  return Must(runtime::Collection::Compile(r));
}

std::string Write(const TempDir& t, const std::string& name, const std::string& text) {
  std::string path = t.path + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Every line `reader` sends, reduced or as stored (without the stored `_meta`).
std::vector<std::string> Lines(runtime::CollectionReader& reader, bool reduced) {
  std::vector<std::string> out;
  auto sink = [&](std::string_view line) -> Result<bool> {
    std::string s(line);
    size_t meta = s.find(",\"_meta\"");
    out.push_back(meta == std::string::npos ? s : s.substr(0, meta) + "}");
    return true;
  };
  REQUIRE(reduced ? reader.Reduced(1 << 20, sink).ok() : reader.Poll(sink).ok());
  return out;
}

TEST_CASE("ingest file: JSON lines are committed, then read back whole, by partition and reduced") {
  TempDir t;
  std::string data = t.path + "/data";
  auto c = Compile();
  {
    auto store = Must(store::Store::Open(data));
    auto input = Must(runtime::Input::Open(Write(t, "in.json",
                                                 "{\"id\":1,\"region\":\"EU\",\"n\":1}\n\n"
                                                 "{\"id\":2,\"region\":\"US\",\"n\":5}\n"
                                                 "{\"id\":1,\"region\":\"EU\",\"n\":2}")));
    uint64_t calls = 0, last_docs = 0, last_bytes = 0;
    std::string where;
    auto r = runtime::IngestFile(
        store.get(), c, input, runtime::IngestFormat::kJson, {},
        [&](uint64_t docs, uint64_t bytes) {
          ++calls;
          last_docs = docs;
          last_bytes = bytes;
        },
        &where);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(r->stats.documents == 3);
    CHECK(r->stats.combined == 2);  // combined by key within the transaction
    CHECK(r->heads.size() == 2);
    CHECK(calls >= 1);
    CHECK(last_docs == 3);  // the last report has every document and byte
    CHECK(last_bytes == r->bytes_read);
    CHECK(r->bytes_read == 87);
    CHECK(Must(store->PersistAll()));
  }
  auto all = Must(runtime::CollectionReader::Open(data, c, {}));
  CHECK(Lines(*all, false).size() == 2);
  CHECK(Lines(*all, false).empty());  // nothing new since
  auto us = Must(runtime::CollectionReader::Open(data, c, {"region=US"}));
  CHECK(Lines(*us, false) == std::vector<std::string>{R"({"id":2,"region":"US","n":5})"});
  auto reduced = Must(runtime::CollectionReader::Open(data, c, {}));
  CHECK(Lines(*reduced, true) == std::vector<std::string>{R"({"id":1,"n":3,"region":"EU"})",
                                                          R"({"id":2,"region":"US","n":5})"});
}

TEST_CASE("ingest file: an invalid document writes nothing and names its line") {
  TempDir t;
  auto c = Compile();
  auto store = Must(store::Store::Open(t.path + "/data"));
  std::string path =
      Write(t, "in.json", "{\"id\":1,\"region\":\"EU\"}\n{\"id\":\"x\",\"region\":\"EU\"}\n");
  auto input = Must(runtime::Input::Open(path));
  std::string where;
  auto r =
      runtime::IngestFile(store.get(), c, input, runtime::IngestFormat::kJson, {}, nullptr, &where);
  REQUIRE_FALSE(r.ok());
  CHECK(where == path + ":2");
  CHECK(r.error().code == Error::Code::kUser);
  CHECK(r.error().message.ends_with("; nothing was written"));
  CHECK(Must(store::ReadLedger(t.path + "/data")).heads.empty());
}

TEST_CASE("ingest file: any number of threads commits the same documents and reports the first error") {
  // 30,000 lines over 3,000 keys, with a memory budget small enough for several rounds.
  std::string text;
  for (int i = 0; i < 30000; ++i) {
    text += "{\"id\":" + std::to_string(i * 7 % 3000) + ",\"region\":\"r" + std::to_string(i % 5) +
            "\",\"n\":" + std::to_string(i) + "}\n";
  }
  auto ingest = [&](const std::string& input_text, unsigned threads, std::string* where,
                    std::vector<std::string>* stored) -> Result<runtime::IngestFileResult> {
    TempDir t;
    auto c = Compile();
    auto store = Must(store::Store::Open(t.path + "/data"));
    auto input = Must(runtime::Input::Open(Write(t, "in.json", input_text)));
    reduce::CombinerOptions o;
    o.memory_budget = 1 << 20;
    auto r = runtime::IngestFile(store.get(), c, input, runtime::IngestFormat::kJson, o, nullptr, where, threads);
    if (r && stored) {
      REQUIRE(Must(store->PersistAll()));
      auto all = Must(runtime::CollectionReader::Open(t.path + "/data", c, {}));
      *stored = Lines(*all, false);
    }
    return r;
  };
  std::string where;
  std::vector<std::string> one;
  auto r1 = ingest(text, 1, &where, &one);
  REQUIRE(r1.ok());
  CHECK(r1->stats.documents == 30000);
  CHECK(r1->stats.rounds > 1);  // the budget made rounds
  for (unsigned threads : {2u, 4u}) {
    std::vector<std::string> many;
    auto r = ingest(text, threads, &where, &many);
    REQUIRE(r.ok());
    CHECK(r->stats.documents == r1->stats.documents);
    CHECK(r->stats.combined == r1->stats.combined);
    CHECK(r->stats.rounds == r1->stats.rounds);
    CHECK(many == one);  // the same documents, in the same journals and order
  }
  // 20,000 keys in one round: stamped and serialised in slices on several threads.
  std::string unique;
  for (int i = 0; i < 20000; ++i) {
    unique += "{\"id\":" + std::to_string(i) + ",\"region\":\"r" + std::to_string(i % 7) + "\",\"n\":1}\n";
  }
  auto ingest_big = [&](unsigned threads, std::vector<std::string>* stored) {
    TempDir t;
    auto c = Compile();
    auto store = Must(store::Store::Open(t.path + "/data"));
    auto input = Must(runtime::Input::Open(Write(t, "in.json", unique)));
    auto r = Must(runtime::IngestFile(store.get(), c, input, runtime::IngestFormat::kJson, {}, nullptr, &where, threads));
    CHECK(r.stats.combined == 20000);
    CHECK(r.heads.size() == 7);
    REQUIRE(Must(store->PersistAll()));
    auto all = Must(runtime::CollectionReader::Open(t.path + "/data", c, {}));
    *stored = Lines(*all, false);
  };
  std::vector<std::string> big_one, big_many;
  ingest_big(1, &big_one);
  ingest_big(3, &big_many);
  CHECK(big_one.size() == 20000);
  CHECK(big_many == big_one);

  // Two bad lines: an invalid document (line 12,001) and malformed JSON (line 25,001). The
  // first in input order is reported whatever the threads found first.
  std::string bad = text;
  auto line_start = [&](size_t n) {
    size_t at = 0;
    for (size_t i = 1; i < n; ++i) at = bad.find('\n', at) + 1;
    return at;
  };
  bad.replace(line_start(25001), 1, "[");
  size_t at = line_start(12001);
  bad.replace(bad.find("\"region\"", at), 8, "\"regiox\"");
  for (unsigned threads : {1u, 2u, 4u}) {
    auto r = ingest(bad, threads, &where, nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(where.ends_with("in.json:12001"));
    CHECK_MESSAGE(r.error().message.find("nothing was written") != std::string::npos, r.error().message);
  }
}

TEST_CASE("read: an unknown partition field or a missing directory is a user error") {
  TempDir t;
  auto c = Compile();
  auto bad = runtime::CollectionReader::Open(t.path, c, {"regoin=EU"});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message ==
        "`regoin` is not a partition field of collection `t/a`; did you mean `region`?");
  auto missing = runtime::CollectionReader::Open(t.path + "/none", c, {});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Error::Code::kUser);
}

TEST_CASE("ingest request: JSON lines keep their places; CSV rows are converted") {
  TempDir t;
  auto c = Compile();
  std::string path = Write(t, "in.json", "{\"id\":1}\n\n{\"id\":2}\n");
  auto json = Must(runtime::Input::Open(path));
  std::string where;
  auto r = Must(
      runtime::EncodeIngestRequest(json, "t/a", runtime::IngestFormat::kJson, nullptr, &where));
  CHECK(r.body == R"({"t/a":[{"id":1},{"id":2}]})");
  CHECK(r.places == std::vector<std::string>{path + ":1", path + ":3"});
  CHECK(r.documents == 2);

  auto csv = Must(runtime::Input::Open(Write(t, "in.csv", "id,region,n\n3,EU,4\n")));
  auto rows =
      Must(runtime::EncodeIngestRequest(csv, "t/a", runtime::IngestFormat::kCsv, c, &where));
  CHECK(rows.documents == 1);
  CHECK(rows.body.find("\"region\":\"EU\"") != std::string::npos);

  std::string bad = Write(t, "bad.json", "{\"id\":1}\n{\"id\":\n");
  auto malformed = Must(runtime::Input::Open(bad));
  auto e =
      runtime::EncodeIngestRequest(malformed, "t/a", runtime::IngestFormat::kJson, nullptr, &where);
  REQUIRE_FALSE(e.ok());
  CHECK(where.starts_with(bad + ":2:"));
}

TEST_CASE("combine: documents are validated and reduced by key; errors name their line") {
  TempDir t;
  auto c = Compile();
  auto input = Must(runtime::Input::Open(
      Write(t, "in.json",
            "{\"id\":2,\"region\":\"US\",\"n\":1}\n{\"id\":1,\"region\":\"EU\",\"n\":1}\n"
            "{\"id\":2,\"region\":\"US\",\"n\":2}\n")));
  std::vector<std::string> out;
  bool done = false;
  std::string where;
  auto r = runtime::CombineInput(
      c, input, {}, false, [&](uint64_t, uint64_t, bool d) { done = done || d; },
      [&](std::string_view line) -> Result<bool> {
        out.emplace_back(line);
        return true;
      },
      &where);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK(done);
  CHECK(r->documents == 3);
  CHECK(r->keys == 2);
  CHECK(out == std::vector<std::string>{R"({"id":1,"region":"EU","n":1})",
                                        R"({"id":2,"n":3,"region":"US"})"});

  std::string path = Write(t, "bad.json", "{\"id\":1,\"region\":\"EU\"}\n{\"region\":\"EU\"}\n");
  auto bad = Must(runtime::Input::Open(path));
  auto e = runtime::CombineInput(
      c, bad, {}, false, nullptr, [](std::string_view) -> Result<bool> { return true; }, &where);
  REQUIRE_FALSE(e.ok());
  CHECK(where == path + ":2");
}

TEST_CASE("a file's name implies its format, also under a compression suffix") {
  using runtime::IngestFormat;
  CHECK(runtime::IngestFormatOfName("orders.csv") == IngestFormat::kCsv);
  CHECK(runtime::IngestFormatOfName("dir/orders.csv.gz") == IngestFormat::kCsv);
  CHECK(runtime::IngestFormatOfName("orders.tsv.zst") == IngestFormat::kTsv);
  CHECK(runtime::IngestFormatOfName("orders.jsonl.gz") == IngestFormat::kJson);
  CHECK(runtime::IngestFormatOfName("orders.gz") == IngestFormat::kJson);
  CHECK(runtime::IngestFormatOfName("csv") == IngestFormat::kJson);
}

}  // namespace
}  // namespace flow
