#include "runtime/read.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <algorithm>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "doc/pack.h"
#include "reduce/combiner.h"
#include "runtime/combine.h"
#include "runtime/parallel.h"
#include "store/journal.h"

namespace flow::runtime {

Result<std::unique_ptr<CollectionReader>> CollectionReader::Open(const std::string& dir,
                                                                 std::shared_ptr<const Collection> collection,
                                                                 const std::vector<std::string>& partitions) {
  // The journal name segment `field=<value encoded>` must be present.
  std::vector<std::string> segments;
  for (const auto& selector : partitions) {
    size_t eq = selector.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Error::User(fmt::format("--partition `{}` is not of the form field=value", selector));
    }
    std::string field = selector.substr(0, eq), value = selector.substr(eq + 1);
    std::vector<std::string> names;
    bool known = false;
    for (const auto& p : collection->partitions) {
      names.push_back(p.field);
      known = known || p.field == field;
    }
    if (!known) {
      std::string hint = DidYouMean(field, names);
      return Error::User(fmt::format(
          "`{}` is not a partition field of collection `{}`{}", field, collection->name,
          names.empty()   ? " (it has none)"
          : !hint.empty() ? "; " + hint
                          : fmt::format(" (its partition fields: {})", fmt::join(names, ", "))));
    }
    std::string seg = field + "=";
    doc::Value v(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
    store::EncodePartitionValue(v, &seg);
    segments.push_back("/" + seg + "/");
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    return Error::User(fmt::format(
        "data directory {} does not exist; ingest into it first, or pass --data-dir", dir));
  }
  return std::unique_ptr<CollectionReader>(
      new CollectionReader(dir, std::move(collection), std::move(segments)));
}

CollectionReader::CollectionReader(std::string dir, std::shared_ptr<const Collection> collection,
                                   std::vector<std::string> segments)
    : dir_(std::move(dir)),
      collection_(std::move(collection)),
      segments_(std::move(segments)),
      reader_(dir_, {{collection_->name, {}, 0, ""}}) {}

CollectionReader::~CollectionReader() = default;

Result<bool> CollectionReader::Refresh() {
  auto s = store::ReadLedger(dir_, /*check_files=*/first_refresh_);
  first_refresh_ = false;
  if (!s) return s.error();
  const store::LedgerState& state = s.value();
  for (const auto& j : store::CollectionJournals(state, collection_->name)) {
    if (journals_.count(j)) continue;
    std::string padded = j.substr(collection_->name.size()) + "/";
    bool selected = std::all_of(segments_.begin(), segments_.end(), [&](const std::string& seg) {
      return padded.find(seg) != std::string::npos;
    });
    if (!selected) continue;
    journals_.insert(j);
    reader_.Add(0, j, store::GenerationOf(state, j).begin);
  }
  reader_.Advance(state);
  return true;
}

Result<bool> CollectionReader::Poll(const Sink& sink) {
  auto r = Refresh();
  if (!r) return r;
  return reader_.Drain(
      [&](const std::string&, uint64_t, const std::string& line) { return sink(line); });
}

namespace {

// Stored documents of `read --reduced` and, once processed, their documents by partition,
// each with the number of its line in the chunk.
struct StoredChunk : PipelineItem {
  std::string text;  // the lines, each followed by a NUL byte
  struct Line {
    size_t begin, size;
    const std::string* journal;
    uint64_t offset;
  };
  std::vector<Line> lines;
  uint64_t first = 0;  // the ordinal of lines[0] in the reading
  PartitionedDocs docs;
};

}  // namespace

Result<bool> CollectionReader::Reduced(uint64_t memory_budget, const Sink& sink, unsigned threads) {
  reduce::CombinerOptions copts;
  copts.memory_budget = memory_budget;
  threads = std::max(1u, threads);
  const Collection& c = *collection_;
  PartitionedCombiner combiner(c, copts);
  FirstError first;  // positions are the documents' ordinals
  auto r = Refresh();
  if (!r) return r;

  auto process = [&](PipelineItem& item) {
    auto& chunk = static_cast<StoredChunk&>(item);
    rapidjson::Document parsed(&chunk.docs.arena);
    for (size_t i = 0; i < chunk.lines.size(); ++i) {
      const auto& line = chunk.lines[i];
      if (first.Before(chunk.first + i)) return;
      doc::ParseError perr;
      if (!doc::ParseStoredDocument(std::string_view(chunk.text).substr(line.begin, line.size), &parsed, &perr)) {
        first.Record(chunk.first + i, Error::Env(fmt::format("journal {} holds a malformed document at offset {}: {}",
                                                             *line.journal, line.offset, perr.message)));
        return;
      }
      chunk.docs.Add(parsed, i, c.key);
    }
  };
  auto consume = [&](size_t p, PipelineItem& item) {
    auto& chunk = static_cast<StoredChunk&>(item);
    reduce::Combiner& part = combiner.partition(p);
    chunk.docs.Consume(
        p, [&](const PartitionedDocs::Doc&) -> const reduce::Combiner& { return part; },
        [&](PartitionedDocs::Doc& d) {
          if (first.Before(chunk.first + d.line)) return false;
          auto a = part.AddCopy(d.value, chunk.docs.Key(d), d.key_hash);
          if (!a) {
            const auto& line = chunk.lines[d.line];
            first.Record(
                chunk.first + d.line,
                Error{a.error().code, fmt::format("the document at offset {} of journal {}: {}",
                                                  line.offset, *line.journal, a.error().message)});
            return false;
          }
          return true;
        });
  };

  PipelineOptions po;
  po.threads = threads;
  po.partitions = PartitionedCombiner::kPartitions;
  po.max_in_flight = 2 * threads;
  size_t target = ChunkTarget(memory_budget, threads);
  {
    OrderedPipeline pipeline(po, process, consume);
    // Each chunk's text is reserved whole (growing it by doubling copied it several times).
    auto chunk = std::make_unique<StoredChunk>();
    chunk->text.reserve(target + target / 8);
    uint64_t ordinal = 0;
    while (!first.any()) {
      SourceReader::Document d;
      auto p = reader_.Peek(SourceReader::kNoGate, &d);
      if (!p) {
        first.Record(ordinal, p.error());
        break;
      }
      if (!*p) break;
      chunk->lines.push_back({chunk->text.size(), d.line.size(), d.journal, d.offset});
      chunk->text.append(d.line);
      chunk->text.push_back('\0');
      reader_.Pop();
      ++ordinal;
      if (chunk->text.size() >= target) {
        size_t lines = chunk->lines.size();
        pipeline.Push(std::move(chunk));
        chunk = std::make_unique<StoredChunk>();
        chunk->first = ordinal;
        chunk->text.reserve(target + target / 8);
        chunk->lines.reserve(lines + lines / 8);
      }
    }
    if (!chunk->lines.empty()) pipeline.Push(std::move(chunk));
    pipeline.Finish();
  }
  if (first.any()) return first.error();
  std::string json;
  return combiner.Drain(true, [&](std::string_view, doc::Value& d) -> Result<bool> {
    json.clear();
    doc::AppendJson(d, &json);
    return sink(json);
  });
}

}  // namespace flow::runtime
