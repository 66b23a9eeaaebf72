#include "runtime/ingest_file.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "runtime/csv.h"
#include "runtime/parallel.h"

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
      fmt::format("cannot read {}: {}; nothing was written", input.name(), input.ReadErrorMessage(errno)));
}

// A parse error's `message` about `line`, with a hint when the line looks like a CSV or TSV
// header or row.
std::string WithFormatHint(const std::string& message, std::string_view line) {
  size_t first = line.find_first_not_of(" \t\r");
  if (first == std::string_view::npos || line[first] == '{' || line[first] == '[') return message;
  const char* format = line.find('\t') != std::string_view::npos ? "tsv"
                       : line.find(',') != std::string_view::npos ? "csv"
                                                                  : nullptr;
  if (!format) return message;
  bool sentence = !message.empty() && message.back() == '.';
  return fmt::format("{}{}t looks like {}: pass --format {}{}", message, sentence ? " I" : "; i",
                     format[0] == 't' ? "TSV" : "CSV", format, sentence ? "." : "");
}

// A chunk of JSON lines and, once processed, its documents (in the chunk's arena), each
// with its line number.
struct IngestChunk : PipelineItem {
  LineChunk lines;
  doc::Allocator arena;
  struct Doc {
    doc::Value value;
    uint64_t line;
  };
  std::vector<Doc> docs;
};

// JSON lines into `txn`: chunks are parsed and checked on any of `threads` threads, and their
// documents added in input order. The first error in input order is returned, with its place.
Result<bool> FeedJsonLines(IngestTransaction* txn, const std::shared_ptr<const Collection>& collection,
                           Input& input, const reduce::CombinerOptions& options, unsigned threads,
                           const IngestProgress& progress, uint64_t* bytes_read, std::string* error_where) {
  const Collection& c = *collection;
  const std::string& name = input.name();
  FirstError first;  // positions are line numbers
  auto process = [&](PipelineItem& item) {
    auto& chunk = static_cast<IngestChunk&>(item);
    rapidjson::Document parsed(&chunk.arena);
    chunk.lines.ForEachLine([&](std::string_view line, size_t number) {
      if (first.Before(number)) return false;  // moot
      if (BlankLine(line)) return true;
      doc::ParseError perr;
      if (!doc::ParseTerminatedDocument(line, &parsed, &perr)) {
        first.Record(number, Error::User(WithFormatHint(perr.message, line)),
                     fmt::format("{}:{}:{}", name, number, perr.offset + 1));
        return false;
      }
      auto checked = IngestTransaction::Check(c, parsed, chunk.arena);
      if (!checked) {
        first.Record(number, checked.error(), fmt::format("{}:{}", name, number));
        return false;
      }
      chunk.docs.push_back({doc::Value(std::move(static_cast<doc::Value&>(parsed))), number});
      return true;
    });
  };
  std::atomic<uint64_t> documents{0};  // added (by the consumer, on any thread)
  auto consume = [&](size_t, PipelineItem& item) {
    auto& chunk = static_cast<IngestChunk&>(item);
    for (auto& d : chunk.docs) {
      if (first.Before(d.line)) return;  // moot, or the transaction failed
      auto added = txn->AddChecked(collection, d.value);
      if (!added) {
        first.Record(d.line, added.error(), fmt::format("{}:{}", name, d.line));
        return;
      }
      ++documents;
    }
  };
  PipelineOptions po;
  po.threads = std::max(1u, threads);
  po.partitions = 1;
  po.max_in_flight = 2 * po.threads;
  ChunkReader reader(input.file(), ChunkTarget(options.memory_budget, po.threads));
  {
    OrderedPipeline pipeline(po, process, consume);
    while (!first.any()) {
      auto chunk = std::make_unique<IngestChunk>();
      if (!reader.Next(&chunk->lines)) break;
      *bytes_read = chunk->lines.bytes;
      pipeline.Push(std::move(chunk));
      if (progress) progress(documents.load(std::memory_order_relaxed), *bytes_read);
    }
    RecordReaderStop(reader, input, &first);
    pipeline.Finish();
  }
  *bytes_read = reader.bytes();
  if (first.any()) {
    *error_where = first.where();
    return first.error();
  }
  if (progress) progress(documents.load(), *bytes_read);
  return true;
}

}  // namespace

Result<IngestFileResult> IngestFile(store::Store* store,
                                    const std::shared_ptr<const Collection>& collection,
                                    Input& input, IngestFormat format,
                                    const reduce::CombinerOptions& options,
                                    const IngestProgress& progress, std::string* error_where,
                                    unsigned threads) {
  Stamper stamper;
  IngestTransaction txn(store, &stamper, options);
  txn.set_threads(threads);
  auto fail = [&](const std::string& where, const Error& e) -> Error {
    auto aborted = txn.Abort();
    (void)aborted;  // recovery discards the appends anyway when this fails
    *error_where = where;
    return {e.code, fmt::format("{}{}", e.message,
                                e.code == Error::Code::kUser ? NothingWritten(e.message) : "")};
  };
  IngestFileResult out;
  if (format == IngestFormat::kJson) {
    auto fed = FeedJsonLines(&txn, collection, input, options, threads, progress, &out.bytes_read, error_where);
    if (!fed) return fail(*error_where, fed.error());
    auto heads = txn.Commit();
    if (!heads) return fail(input.name(), heads.error());
    out.heads = std::move(heads.value());
    out.stats = txn.stats();
    return out;
  }
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
        return fail(fmt::format("{}:{}:{}", name, reader.number(), perr.offset + 1), WithFormatHint(perr.message, line));
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
