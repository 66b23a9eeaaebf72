#include "runtime/ingest_file.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "runtime/csv.h"

namespace flow::runtime {
namespace {

// "...; nothing was written", or "... Nothing was written." after a full sentence.
const char* NothingWritten(std::string_view message) {
  char last = message.empty() ? ' ' : message.back();
  return (last == '.' || last == '?' || last == '!') ? " Nothing was written."
                                                     : "; nothing was written";
}

Error ReadError(const Input& input) {
  return Error::User(
      fmt::format("cannot read {}: {}; nothing was written", input.name(), std::strerror(errno)));
}

}  // namespace

Result<IngestFileResult> IngestFile(store::Store* store,
                                    const std::shared_ptr<const Collection>& collection,
                                    Input& input, IngestFormat format,
                                    const reduce::CombinerOptions& options,
                                    const IngestProgress& progress, std::string* error_where) {
  Stamper stamper;
  IngestTransaction txn(store, &stamper, options);
  auto fail = [&](const std::string& where, const Error& e) -> Error {
    auto aborted = txn.Abort();
    (void)aborted;  // recovery discards the appends anyway when this fails
    *error_where = where;
    return {e.code, fmt::format("{}{}", e.message,
                                e.code == Error::Code::kUser ? NothingWritten(e.message) : "")};
  };
  IngestFileResult out;
  DocumentFeed feed(format, collection, input.name());
  std::string block(4 << 20, '\0');
  for (;;) {
    size_t n = std::fread(block.data(), 1, block.size(), input.file());
    out.bytes_read += n;
    if (n == 0) break;
    auto fed = feed.Feed(std::string_view(block.data(), n), &txn);
    if (!fed) return fail(feed.error_where(), fed.error());
    if (progress) progress(txn.stats().documents, out.bytes_read);
  }
  if (std::ferror(input.file())) {
    Error e = ReadError(input);
    auto aborted = txn.Abort();
    (void)aborted;
    error_where->clear();
    return e;
  }
  auto fin = feed.Finish(&txn);
  if (!fin) return fail(feed.error_where(), fin.error());
  auto heads = txn.Commit();
  if (!heads) return fail(input.name(), heads.error());
  out.heads = std::move(heads.value());
  out.stats = txn.stats();
  return out;
}

Result<IngestRequest> EncodeIngestRequest(Input& input, const std::string& collection,
                                          IngestFormat format,
                                          const std::shared_ptr<const Collection>& csv_collection,
                                          std::string* error_where) {
  const std::string& name = input.name();
  IngestRequest out;
  out.body = "{" + JsonQuote(collection) + ":[";
  auto fail = [&](std::string where, const std::string& message) {
    *error_where = std::move(where);
    return Error::User(fmt::format("{}; nothing was written", message));
  };
  if (format == IngestFormat::kJson) {
    // Each line must be one JSON document (checked here, so that errors have the line).
    LineReader reader(input.file());
    std::string_view line;
    rapidjson::Document parsed;
    while (reader.Next(&line)) {
      if (BlankLine(line)) continue;
      doc::ParseError perr;
      if (!doc::ParseTerminatedDocument(line, &parsed, &perr)) {
        return fail(fmt::format("{}:{}:{}", name, reader.number(), perr.offset + 1), perr.message);
      }
      if (out.documents++) out.body += ',';
      out.body += line;
      out.places.push_back(fmt::format("{}:{}", name, reader.number()));
    }
    if (reader.too_long())
      return fail(fmt::format("{}:{}", name, reader.number()), reader.TooLongMessage());
  } else {
    CsvConverter conv(format == IngestFormat::kCsv ? CsvDialect::kCsv : CsvDialect::kTsv,
                      csv_collection->name, csv_collection->fields);
    rapidjson::MemoryPoolAllocator<> alloc;
    auto emit = [&](uint64_t, doc::Value& d) -> Result<bool> {
      if (out.documents++) out.body += ',';
      doc::AppendJson(d, &out.body);
      out.places.push_back(conv.place());
      return true;
    };
    std::string block(1 << 20, '\0');
    Result<bool> fed = true;
    for (size_t n; fed && (n = std::fread(block.data(), 1, block.size(), input.file())) > 0;) {
      fed = conv.Feed(std::string_view(block.data(), n), alloc, emit);
    }
    if (fed) fed = conv.Finish(alloc, emit);
    if (!fed) return fail(name, fed.error().message);
  }
  if (std::ferror(input.file())) {
    error_where->clear();
    return ReadError(input);
  }
  out.body += "]}";
  return out;
}

}  // namespace flow::runtime
