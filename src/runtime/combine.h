// `flowctl combine`'s work apart from its flags and printing: JSON lines validated against a
// collection's schema and combined by its key (spilling past the memory budget), then one
// document per key in key order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "reduce/combiner.h"
#include "runtime/collection.h"
#include "runtime/input.h"

namespace flow::runtime {

struct CombineResult {
  uint64_t documents = 0;  // read
  uint64_t keys = 0;       // written
  reduce::CombinerStats combiner;
};

// Called every 65,536 documents while reading (`done` false) and once when the input is read
// (`done` true, before the first document is sent): documents and bytes read so far.
using CombineProgress = std::function<void(uint64_t documents, uint64_t bytes, bool done)>;

// Reads `input` as JSON lines, validates and combines them, and sends the result to `sink`
// as JSON lines (without '\n'), fully reduced unless `combined_only`. Errors in the input
// set `*error_where` ("FILE:LINE:COLUMN" for malformed JSON, else "FILE:LINE"); other errors
// clear it. An error of `sink` or of combining the result is prefixed with the collection.
Result<CombineResult> CombineInput(const std::shared_ptr<const Collection>& collection,
                                   Input& input, const reduce::CombinerOptions& options,
                                   bool combined_only, const CombineProgress& progress,
                                   const std::function<Result<bool>(std::string_view line)>& sink,
                                   std::string* error_where);

}  // namespace flow::runtime
