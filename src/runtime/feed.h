// Documents of one collection from bytes in an ingest format (JSON lines, CSV or TSV; SPEC
// section 7), added to an ingest transaction as they are parsed. Bytes may arrive in blocks
// of any size (a file read in blocks, HTTP bodies, WebSocket frames); a line or row split
// across blocks is joined. A stream may span several transactions (a WebSocket stream
// commits as it goes): each Feed names the transaction its complete documents go to, and a
// CSV header read once applies to every later transaction.
// Not thread-safe; one feed per stream.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "runtime/collection.h"
#include "runtime/csv.h"
#include "runtime/ingest.h"

namespace flow::runtime {

enum class IngestFormat { kJson, kCsv, kTsv };

// "json", "csv", "tsv" (and the WebSocket protocols "json/v1", "csv/v1", "tsv/v1").
std::optional<IngestFormat> ParseIngestFormat(std::string_view name);

// The format a file's name implies: CSV for `.csv`, TSV for `.tsv` (also under a `.gz` or
// `.zst` suffix: `orders.csv.gz`), else JSON lines.
IngestFormat IngestFormatOfName(std::string_view path);

class DocumentFeed {
 public:
  // `origin` names the input in error places (a file name), or is empty (a stream).
  DocumentFeed(IngestFormat format, std::shared_ptr<const Collection> collection, std::string origin = {});
  ~DocumentFeed();
  DocumentFeed(const DocumentFeed&) = delete;
  DocumentFeed& operator=(const DocumentFeed&) = delete;

  // Parses the complete lines (rows) of `bytes` and adds their documents to `txn`. On an
  // error, error_where() is its place: "ORIGIN:LINE:COLUMN" for malformed JSON,
  // "ORIGIN:LINE" for an invalid document (or "line 3, column 7" / "line 3" without an
  // origin); CSV/TSV messages name the row and line themselves, and the place is ORIGIN.
  // After an error the feed must not be used again.
  Result<bool> Feed(std::string_view bytes, IngestTransaction* txn);
  // Ends the input: a last line without a terminator is parsed; an unterminated quoted CSV
  // cell, or a CSV without a header, is an error.
  Result<bool> Finish(IngestTransaction* txn);

  uint64_t documents() const { return documents_; }  // added so far, over all transactions
  uint64_t bytes() const { return bytes_; }          // fed so far
  uint64_t line() const { return line_; }            // JSON lines: complete lines seen
  const std::string& error_where() const { return error_where_; }

 private:
  Result<bool> Line(std::string_view line, IngestTransaction* txn);  // NUL-terminated
  std::string Place(uint64_t line, size_t column) const;
  // Adds each converted CSV/TSV row to `txn`, counting it.
  CsvConverter::Emit EmitTo(IngestTransaction* txn);

  IngestFormat format_;
  std::shared_ptr<const Collection> collection_;
  std::unique_ptr<CsvConverter> csv_;
  std::string origin_, error_where_;
  std::string partial_;  // JSON lines: an incomplete last line
  uint64_t documents_ = 0, bytes_ = 0, line_ = 0;
};

}  // namespace flow::runtime
