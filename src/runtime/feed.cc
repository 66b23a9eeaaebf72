#include "runtime/feed.h"

#include <fmt/format.h>

#include "base/strings.h"
#include "doc/parse.h"

namespace flow::runtime {

std::optional<IngestFormat> ParseIngestFormat(std::string_view name) {
  if (name == "json" || name == "json/v1") return IngestFormat::kJson;
  if (name == "csv" || name == "csv/v1") return IngestFormat::kCsv;
  if (name == "tsv" || name == "tsv/v1") return IngestFormat::kTsv;
  return std::nullopt;
}

IngestFormat IngestFormatOfName(std::string_view path) {
  for (std::string_view suffix : {".gz", ".zst"}) {
    if (path.ends_with(suffix)) path.remove_suffix(suffix.size());
  }
  if (path.ends_with(".csv")) return IngestFormat::kCsv;
  if (path.ends_with(".tsv")) return IngestFormat::kTsv;
  return IngestFormat::kJson;
}

DocumentFeed::DocumentFeed(IngestFormat format, std::shared_ptr<const Collection> collection, std::string origin)
    : format_(format), collection_(std::move(collection)), origin_(std::move(origin)) {
  if (format_ != IngestFormat::kJson) {
    csv_ = std::make_unique<CsvConverter>(format_ == IngestFormat::kCsv ? CsvDialect::kCsv : CsvDialect::kTsv,
                                          collection_->name, collection_->fields);
  }
}

DocumentFeed::~DocumentFeed() = default;

CsvConverter::Emit DocumentFeed::EmitTo(IngestTransaction* txn) {
  return [this, txn](uint64_t, doc::Value& d) -> Result<bool> {
    auto added = txn->Add(collection_, d);
    if (added) ++documents_;
    return added;
  };
}

std::string DocumentFeed::Place(uint64_t line, size_t column) const {
  if (origin_.empty()) {
    return column ? fmt::format("line {}, column {}", line, column) : fmt::format("line {}", line);
  }
  return column ? fmt::format("{}:{}:{}", origin_, line, column) : fmt::format("{}:{}", origin_, line);
}

Result<bool> DocumentFeed::Feed(std::string_view bytes, IngestTransaction* txn) {
  bytes_ += bytes.size();
  if (csv_) {
    auto fed = csv_->Feed(bytes, txn->allocator(collection_), EmitTo(txn));
    if (!fed) error_where_ = origin_;
    return fed;
  }
  // Complete lines are parsed in place in one owned buffer, each NUL-terminated for the
  // parser's fast path; an incomplete last line is kept for the next block.
  size_t last_nl = bytes.rfind('\n');
  if (last_nl == std::string_view::npos) {
    partial_.append(bytes);
    if (partial_.size() > doc::ParseLimits{}.max_bytes + 1) {
      error_where_ = Place(line_ + 1, 0);
      return Error::User(fmt::format("a document longer than {} MiB (no line end in the first {} bytes)",
                                     doc::ParseLimits{}.max_bytes >> 20, partial_.size()));
    }
    return true;
  }
  partial_.append(bytes.substr(0, last_nl + 1));
  std::string buffer;
  buffer.swap(partial_);
  partial_.assign(bytes.substr(last_nl + 1));
  size_t off = 0;
  while (off < buffer.size()) {
    size_t nl = buffer.find('\n', off);
    buffer[nl] = '\0';
    auto added = Line(std::string_view(buffer).substr(off, nl - off), txn);
    if (!added) return added;
    off = nl + 1;
  }
  return true;
}

Result<bool> DocumentFeed::Line(std::string_view line, IngestTransaction* txn) {
  if (++line_ == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // a UTF-8 byte order mark
  if (BlankLine(line)) return true;
  rapidjson::Document parsed(&txn->allocator(collection_));
  doc::ParseError perr;
  if (!doc::ParseTerminatedDocument(line, &parsed, &perr)) {
    error_where_ = Place(line_, perr.offset + 1);
    return Error::User(perr.message);
  }
  auto added = txn->Add(collection_, parsed);
  if (!added) {
    error_where_ = Place(line_, 0);
    return added;
  }
  ++documents_;
  return true;
}

Result<bool> DocumentFeed::Finish(IngestTransaction* txn) {
  if (csv_) {
    auto fin = csv_->Finish(txn->allocator(collection_), EmitTo(txn));
    if (!fin) error_where_ = origin_;
    return fin;
  }
  if (partial_.empty()) return true;
  std::string last;
  last.swap(partial_);
  return Line(last, txn);  // std::string keeps a NUL after its last byte
}

}  // namespace flow::runtime
