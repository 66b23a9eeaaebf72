// Reading sample files for schema inference (`flowctl infer-schema`, `flowctl init`): CSV,
// TSV or JSON lines, with the readers and CSV conversion of `flowctl ingest`, streamed so
// that a sample of any size is read in bounded memory.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "doc/value.h"
#include "runtime/csv.h"
#include "runtime/feed.h"

namespace flow::cli {

// The format of `path`: `format` when given ("json", "csv", "tsv"), else from the extension
// (.csv, .tsv; anything else is JSON lines). Nullopt for an unknown `format`.
std::optional<runtime::IngestFormat> SampleFormat(const std::string& path,
                                                  const std::string& format);

// Calls `each` with every document of `path` ("-" for stdin). CSV and TSV header columns
// name `fields` (a collection's projections) or, when they name none, the top-level
// property of their name; cells become null, integers, numbers, booleans or strings. A JSON
// line must hold an object. On failure the error's place ("orders.jsonl:3:7") is in `*where`.
Result<bool> ReadSample(const std::string& path, runtime::IngestFormat format,
                        std::vector<runtime::CsvField> fields,
                        const std::function<void(const doc::Value&)>& each, std::string* where);

}  // namespace flow::cli
