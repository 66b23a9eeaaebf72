// Fuzz target: the ingest feed (src/runtime/feed.h) in its three formats, CSV and TSV
// through the converter (src/runtime/csv.h), into an ingest transaction of a real store
// (aborted, never committed). The first byte picks the format and the second a block size;
// the rest is the input. Invariant: the input fed in one block and fed in blocks of that
// size gives the same documents or the same error (a row or line split across blocks is
// joined).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz.h"
#include "runtime/collection.h"
#include "runtime/feed.h"
#include "runtime/ingest.h"
#include "store/journal.h"

using flow::fuzz::Check;
namespace runtime = flow::runtime;
namespace catalog = flow::catalog;

namespace {

// acme/orders: a key, every JSON type, nested locations, a reduction, a partition field.
std::shared_ptr<const runtime::Collection> Orders() {
  catalog::CollectionRecord r;
  r.name = "acme/orders";
  r.bundle = R"({"$ref":"#/$defs/s0","$defs":{"s0":{
    "type":"object","required":["id","region"],"reduce":{"strategy":"merge"},
    "properties":{
      "id":{"type":"integer"},
      "region":{"type":"string","maxLength":40},
      "amount":{"type":"number","maximum":100,"reduce":{"strategy":"sum"}},
      "paid":{"type":["boolean","null"]},
      "note":{"type":"string"},
      "tags":{"type":"array","items":{"type":"string"}},
      "address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":["integer","string"]}}},
      "any":{}
    }}}})";
  r.key = {"/id"};
  r.projections = {
      {"address", "/address", false, 32, false},
      {"amount", "/amount", false, 8 | 4, false},
      {"any", "/any", false, 127, false},
      {"city", "/address/city", false, 16, false},
      {"flow_document", "", false, 32, true},
      {"id", "/id", false, 4, true},
      {"note", "/note", false, 16, false},
      {"paid", "/paid", false, 2 | 1, false},
      {"region", "/region", true, 16, true},
      {"tags", "/tags", false, 64, false},
      {"zip", "/address/zip", false, 4 | 16, false},
  };
  auto c = runtime::Collection::Compile(r);
  Check(c.ok(), "the fuzz collection does not compile");
  return c.value();
}

struct Outcome {
  bool ok = true;
  uint64_t documents = 0;
  std::string error, where;
};

Outcome Feed(runtime::IngestFormat format, std::string_view input, size_t block,
             flow::store::Store* store, const std::shared_ptr<const runtime::Collection>& c) {
  static runtime::Stamper stamper;
  runtime::IngestTransaction txn(store, &stamper);
  runtime::DocumentFeed feed(format, c);
  Outcome out;
  auto fail = [&](const flow::Error& e) {
    out.ok = false;
    out.error = e.message;
    out.where = feed.error_where();
  };
  bool failed = false;
  for (size_t off = 0; off < input.size() && !failed; off += block) {
    auto r = feed.Feed(input.substr(off, block), &txn);
    if (!r) {
      fail(r.error());
      failed = true;
    }
  }
  if (!failed) {
    auto r = feed.Finish(&txn);
    if (!r) fail(r.error());
  }
  out.documents = feed.documents();
  Check(feed.bytes() <= input.size(), "the feed counted more bytes than it was given");
  auto a = txn.Abort();
  Check(a.ok(), "aborting the transaction failed");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static flow::fuzz::ScratchDir dir;
  static auto store = [] {
    auto s = flow::store::Store::Open(dir.path());
    Check(s.ok(), "cannot open the scratch store");
    return std::move(s.value());
  }();
  static auto orders = Orders();
  if (size < 2) return 0;
  static const runtime::IngestFormat kFormats[] = {
      runtime::IngestFormat::kCsv, runtime::IngestFormat::kTsv, runtime::IngestFormat::kJson};
  runtime::IngestFormat format = kFormats[data[0] % 3];
  size_t block = 1 + data[1] % 16;
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

  Outcome whole = Feed(format, input, input.size() + 1, store.get(), orders);
  Outcome split = Feed(format, input, block, store.get(), orders);
  Check(whole.ok == split.ok, "feeding in blocks changes whether the input is accepted");
  Check(whole.error == split.error, "feeding in blocks changes the error");
  Check(whole.where == split.where, "feeding in blocks changes the error's place");
  if (whole.ok)
    Check(whole.documents == split.documents, "feeding in blocks changes the documents");
  return 0;
}
