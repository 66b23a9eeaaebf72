// `flowctl ingest`'s work apart from its flags and printing: an input (a file or stdin) in an
// ingest format into a collection as one transaction, or encoded as the body of one
// `PUT /ingest` request for a running develop. Errors name where in the input they were found
// through `*error_where` ("FILE:LINE:COLUMN", "FILE:LINE", "FILE"; empty when there is no
// place), and say that nothing was written.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "reduce/combiner.h"
#include "runtime/collection.h"
#include "runtime/feed.h"
#include "runtime/ingest.h"
#include "runtime/input.h"
#include "store/journal.h"

namespace flow::runtime {

struct IngestFileResult {
  std::map<std::string, uint64_t> heads;  // the committed heads of the journals written
  TransactionStats stats;
  uint64_t bytes_read = 0;
};

// Called after each block read (documents added and bytes read so far), and once at the end.
using IngestProgress = std::function<void(uint64_t documents, uint64_t bytes)>;

// Reads `input` in blocks, adds its documents to one ingest transaction (combined in rounds
// under `options.memory_budget`) and commits it to `store`. On failure the transaction is
// aborted: nothing is written. JSON lines are parsed and validated on `threads` threads (the
// caller's included) in chunks, and combined in input order (OrderedPipeline): what is
// committed, and the error reported (the first in input order), are the same for any number.
Result<IngestFileResult> IngestFile(store::Store* store,
                                    const std::shared_ptr<const Collection>& collection,
                                    Input& input, IngestFormat format,
                                    const reduce::CombinerOptions& options,
                                    const IngestProgress& progress, std::string* error_where,
                                    unsigned threads = 1);

// The body of a develop's `PUT /ingest` for `input`: `{"<collection>": [documents...]}`.
struct IngestRequest {
  std::string body;
  // Where each document came from, for the develop's errors (which give its index):
  // "FILE:LINE" (JSON lines) or "row N (line L)" (CSV/TSV).
  std::vector<std::string> places;
  size_t documents = 0;
};

// JSON lines are checked to be one document each and sent as they are; CSV/TSV rows are
// converted with the projections of `csv_collection` (unused, and may be null, for JSON).
Result<IngestRequest> EncodeIngestRequest(Input& input, const std::string& collection,
                                          IngestFormat format,
                                          const std::shared_ptr<const Collection>& csv_collection,
                                          std::string* error_where);

}  // namespace flow::runtime
