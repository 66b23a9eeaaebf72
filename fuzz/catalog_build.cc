// Fuzz target: the YAML catalog loader and build checks (src/catalog: yaml_reader, loader,
// parse, check) on an in-memory catalog. The input is `flow.yaml`; it may import or `$ref`
// a fixed `schema.yaml` beside it. Nothing else can be read: `file://` and `http(s)://`
// URLs are mapped to a directory that does not exist, so the fuzzer never reaches the
// disk or the network. Invariants: loading and checking end (with or without diagnostics)
// without a crash; each collection of an error-free catalog compiles for the runtime and
// validates a document (what `ingest` would do next) without a crash.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "base/diagnostics.h"
#include "catalog/built.h"
#include "catalog/check.h"
#include "catalog/fetch.h"
#include "catalog/loader.h"
#include "doc/parse.h"
#include "fuzz.h"
#include "runtime/collection.h"

using flow::fuzz::Check;
namespace catalog = flow::catalog;

namespace {

const char* kRoot = "file:///fuzz/flow.yaml";
const char* kSchema = R"(type: object
required: [id]
properties:
  id: {type: integer}
  name: {type: string, reduce: {strategy: lastWriteWins}}
  total: {type: number, reduce: {strategy: sum}}
reduce: {strategy: merge}
$defs:
  item: {type: object, properties: {sku: {type: string}}}
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string nowhere = "/nonexistent/flowctl-fuzz";
  catalog::Fetcher fetcher({{"file://", nowhere}, {"http://", nowhere}, {"https://", nowhere}});
  fetcher.Preload({{kRoot, std::string(reinterpret_cast<const char*>(data), size)},
                   {"file:///fuzz/schema.yaml", kSchema}});
  flow::Diagnostics diags;
  auto loaded = catalog::LoadCatalog(kRoot, &fetcher, &diags);
  Check(loaded != nullptr, "LoadCatalog returned nothing");
  if (loaded->catalog.files.empty()) return 0;  // as the CLI does: nothing to check
  catalog::Built built;
  catalog::CheckCatalog(*loaded, &built, &diags);
  diags.SortAndDedupe();
  for (const auto& d : diags.items()) Check(!d.Format(false).empty(), "an empty diagnostic");
  if (diags.errors() > 0) return 0;
  for (const auto& c : built.collections) {
    auto record = catalog::MakeCollectionRecord(c);
    auto compiled = flow::runtime::Collection::Compile(record);
    Check(compiled.ok(), "a collection of an error-free catalog does not compile");
    for (const char* text : {R"({"id":1,"name":"a","total":2.5})", R"({"id":"x"})", "[]"}) {
      rapidjson::Document d;
      flow::doc::ParseError e;
      Check(flow::doc::ParseDocument(text, &d, &e), "a fixed document does not parse");
      (void)compiled.value()->Validate(d, d.GetAllocator());
    }
  }
  return 0;
}
