// Previewing one derivation (`flowctl preview`): its transforms, registers, shuffles and
// lambdas run by a DeriveTask over sample documents, in a temporary data directory that is
// removed afterwards, with nothing else running. The inputs' documents are read into memory
// (validated against their collection's schema), committed to their collections interleaved
// by file order (the first document of each input, then the second, ...; each in its own
// ingest transaction, so none is combined with another), read by the derivation in that
// order with read delays ignored, and its collection's documents come back fully reduced per
// key, in key order. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "runtime/collection.h"
#include "runtime/derive.h"
#include "runtime/plan.h"

namespace flow::runtime {

// One `--input`: a file of documents for a source collection of the derivation, in JSON
// lines, or CSV or TSV by its extension (`.csv`, `.tsv`, under `.gz` or `.zst`), which may
// be compressed (runtime/input.h).
struct PreviewInput {
  std::shared_ptr<const Collection> collection;
  std::string path;
};

struct PreviewOptions {
  std::vector<PreviewInput> inputs;
  // JSON lines of initial registers, `{"key": [<shuffle key values>], "value": <register>}`;
  // empty: every register starts at the derivation's `initial`.
  std::string register_state;
  std::string scratch_dir = "/tmp";     // where the temporary data directory is made
  uint64_t memory_budget = 256u << 20;  // for reducing the derived documents
};

struct PreviewResult {
  uint64_t documents = 0;  // source documents of the inputs
  uint64_t derived = 0;    // documents of the derived collection, reduced
  DeriveStats stats;
};

// Runs `plan`'s one derivation (CompileDerivationPlan) over `o.inputs` and sends each
// derived document (a JSON line, without the `_meta/uuid` preview stamped) to `sink`.
// User errors: a document that is not JSON or not valid against its collection's schema,
// a malformed register state (`*error_where` is then "FILE:LINE"), and a failing derivation:
// the runtime's message, with the input place of the document it names appended after its
// journal offset ("... of journal a/b/pivot=00 (orders.jsonl:3): ..."). Environment errors:
// unreadable files, a data directory that cannot be made.
Result<PreviewResult> RunPreview(const Plan& plan, const PreviewOptions& o,
                                 const std::function<Result<bool>(std::string_view)>& sink,
                                 std::string* error_where);

}  // namespace flow::runtime
