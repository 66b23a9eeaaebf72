// A unit-test helper: commits JSON documents to a collection in one ingest transaction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "doc/parse.h"
#include "runtime/ingest.h"
#include "scratch.h"

namespace flow::testing {

// Commits `docs` (JSON texts) to `c` in one transaction, failing the test on any error.
inline void Ingest(store::Store* store, runtime::Stamper* stamper,
                   const std::shared_ptr<const runtime::Collection>& c,
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

}  // namespace flow::testing
