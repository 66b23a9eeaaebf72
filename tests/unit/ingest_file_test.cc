// The work of `flowctl ingest`, `read` and `combine` as library calls (runtime/ingest_file.h,
// runtime/read.h, runtime/combine.h): an input file into a store, read back (all, by
// partition, reduced), combined; errors carry their place in the input.
#include "runtime/ingest_file.h"

#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "runtime/combine.h"
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
    uint64_t calls = 0;
    std::string where;
    auto r = runtime::IngestFile(
        store.get(), c, input, runtime::IngestFormat::kJson, {},
        [&](uint64_t, uint64_t) { ++calls; }, &where);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    CHECK(r->stats.documents == 3);
    CHECK(r->stats.combined == 2);  // combined by key within the transaction
    CHECK(r->heads.size() == 2);
    CHECK(calls == 1);
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

}  // namespace
}  // namespace flow
