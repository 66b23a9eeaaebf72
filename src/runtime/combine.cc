#include "runtime/combine.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>
#include <thread>

#include "base/strings.h"
#include "doc/pack.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "runtime/parallel.h"

namespace flow::runtime {

namespace {

// A chunk of input lines and, once processed, its documents by partition, each with its
// line number.
struct CombineChunk : PipelineItem {
  LineChunk lines;
  PartitionedDocs docs;
};

}  // namespace

PartitionedDocs::Doc& PartitionedDocs::Add(doc::Value& value, size_t line,
                                           const std::vector<doc::Pointer>& key) {
  size_t key_begin = keys.size();
  doc::PackKey(value, key, &keys);
  size_t key_size = keys.size() - key_begin;
  uint64_t hash = reduce::Combiner::KeyHash(std::string_view(keys).substr(key_begin, key_size));
  auto& part = parts[PartitionedCombiner::PartitionOfHash(hash)];
  part.push_back(Doc{doc::Value(std::move(value)), line, key_begin, key_size, hash});
  return part.back();
}

PartitionedCombiner::PartitionedCombiner(const Collection& collection, const reduce::CombinerOptions& options) {
  reduce::CombinerOptions each = options;
  each.memory_budget = options.memory_budget / kPartitions;
  for (size_t p = 0; p < kPartitions; ++p) {
    parts_.push_back(std::make_unique<reduce::Combiner>(collection.reducer, collection.key, each));
  }
}

reduce::CombinerStats PartitionedCombiner::stats() const {
  reduce::CombinerStats out;
  for (const auto& c : parts_) {
    const auto& s = c->stats();
    out.added += s.added;
    out.spills += s.spills;
    out.compactions += s.compactions;
    out.spilled_bytes += s.spilled_bytes;
    out.peak_memory += s.peak_memory;
    out.huge_pages += s.huge_pages;
  }
  return out;
}

Result<bool> PartitionedCombiner::Drain(bool full, const reduce::Combiner::Emit& emit) {
  return DrainTagged(full, [&](std::string_view key, doc::Value& d, uint64_t) { return emit(key, d); });
}

namespace {

// Visits the heads of `n` key-ordered streams (the partitions, which hold disjoint keys) in
// one key order. `next(p, &key)` moves stream p to its next head: true with that head's key
// (valid until the next call for p), false when p has no more, an error to stop there.
// `visit(p)` is called for the least head of all, before `next(p)`.
Result<bool> MergeInKeyOrder(size_t n,
                             const std::function<Result<bool>(size_t, std::string_view*)>& next,
                             const std::function<Result<bool>(size_t)>& visit) {
  std::vector<std::pair<std::string_view, size_t>> heap;  // (key, stream), the least on top
  heap.reserve(n);
  auto greater = [](const auto& a, const auto& b) { return a.first > b.first; };
  auto advance = [&](size_t p) -> Result<bool> {
    std::string_view key;
    auto r = next(p, &key);
    if (!r) return r;
    if (*r) {
      heap.emplace_back(key, p);
      std::push_heap(heap.begin(), heap.end(), greater);
    }
    return true;
  };
  for (size_t p = 0; p < n; ++p) {
    if (auto r = advance(p); !r) return r;
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), greater);
    size_t p = heap.back().second;
    heap.pop_back();
    if (auto r = visit(p); !r) return r;
    if (auto r = advance(p); !r) return r;
  }
  return true;
}

}  // namespace

Result<bool> PartitionedCombiner::DrainTagged(bool full, const TaggedEmit& emit) {
  // Each partition's next key; a reduction error is put in key order with the others.
  struct Head {
    std::string_view key;
    doc::Value* doc = nullptr;
    uint64_t tag = 0;
    std::optional<Error> error;
  };
  std::vector<Head> heads(parts_.size());
  return MergeInKeyOrder(
      parts_.size(),
      [&](size_t p, std::string_view* key) -> Result<bool> {
        Head& h = heads[p];
        auto r = parts_[p]->DrainNext(full, &h.key, &h.doc, &h.tag);
        if (!r) {
          if (r.error().code != Error::Code::kUser) return r.error();
          h.error = r.error();
        } else if (!*r) {
          return false;
        }
        *key = h.key;
        return true;
      },
      [&](size_t p) -> Result<bool> {
        Head& h = heads[p];
        if (h.error) return *h.error;
        return emit(h.key, *h.doc, h.tag);
      });
}

bool PartitionedCombiner::KeepDrained() {
  bool all = true;
  for (auto& c : parts_) all = c->KeepDrained() && all;
  if (!all) {
    for (auto& c : parts_) c->KeepDrained(false);
  }
  return all;
}

Result<bool> PartitionedCombiner::DrainParallel(bool full, unsigned threads, const Take& take,
                                                const EmitTaken& emit) {
  // Per partition: its keys (copied, for the merge), and how its drain ended.
  struct Drained {
    std::string keys;
    std::vector<size_t> ends;  // of each key in `keys`
    std::optional<Error> error;
    std::string error_key;  // the key a reduction error is about
    std::exception_ptr thrown;
  };
  std::vector<Drained> drained(parts_.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t p; (p = next.fetch_add(1)) < parts_.size();) {
      Drained& d = drained[p];
      try {
        for (;;) {
          std::string_view key;
          doc::Value* doc = nullptr;
          uint64_t tag = 0;
          auto r = parts_[p]->DrainNext(full, &key, &doc, &tag);
          if (!r) {
            d.error = r.error();
            d.error_key = key;
            break;
          }
          if (!*r) break;
          take(p, key, *doc, tag);
          d.keys.append(key);
          d.ends.push_back(d.keys.size());
        }
      } catch (...) {
        d.thrown = std::current_exception();
      }
    }
  };
  // Threads are started for a large drain only: a small transaction (one document, in
  // `develop`) would wait longer for them than for its copies.
  size_t keys = 0;
  bool spilled = false;
  for (const auto& c : parts_) {
    keys += c->keys();
    spilled = spilled || c->stats().spills > 0;
  }
  if (keys < kParallelDrainKeys && !spilled) threads = 1;
  {
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < std::min<size_t>(std::max(1u, threads), parts_.size()); ++t)
      helpers.emplace_back(work);
    work();
    for (auto& h : helpers) h.join();
  }
  for (const Drained& d : drained) {
    if (d.thrown) std::rethrow_exception(d.thrown);
  }
  // An error that is not about a key (reading a spill file, say) stops everything.
  for (const Drained& d : drained) {
    if (d.error && d.error->code != Error::Code::kUser) return *d.error;
  }
  // Merged into one key order, as DrainTagged does; a reduction error in its key's place.
  std::vector<size_t> at(drained.size(), 0);  // per partition: its head (a key's number)
  return MergeInKeyOrder(
      drained.size(),
      [&](size_t p, std::string_view* key) -> Result<bool> {
        const Drained& d = drained[p];
        size_t i = at[p]++;
        if (i < d.ends.size()) {
          size_t begin = i == 0 ? 0 : d.ends[i - 1];
          *key = std::string_view(d.keys).substr(begin, d.ends[i] - begin);
          return true;
        }
        if (i == d.ends.size() && d.error) {
          *key = d.error_key;
          return true;
        }
        return false;
      },
      [&](size_t p) -> Result<bool> {
        const Drained& d = drained[p];
        size_t i = at[p] - 1;
        if (i == d.ends.size()) return *d.error;
        return emit(p, i);
      });
}

Result<CombineResult> CombineInput(const std::shared_ptr<const Collection>& collection,
                                   Input& input, const reduce::CombinerOptions& options,
                                   bool combined_only, const CombineProgress& progress,
                                   const std::function<Result<bool>(std::string_view line)>& sink,
                                   std::string* error_where, unsigned threads) {
  const Collection& c = *collection;
  const std::string& name = input.name();
  error_where->clear();
  threads = std::max(1u, threads);
  PartitionedCombiner combiner(c, options);
  FirstError first;  // positions are line numbers
  std::atomic<uint64_t> documents{0};

  // Parses and validates a chunk's lines (any thread), sorting the documents by partition.
  auto process = [&](PipelineItem& item) {
    auto& chunk = static_cast<CombineChunk&>(item);
    rapidjson::Document parsed(&chunk.docs.arena);
    uint64_t n = 0;
    chunk.lines.ForEachLine([&](std::string_view line, size_t number) {
      if (first.Before(number)) return false;  // moot
      if (BlankLine(line)) return true;
      doc::ParseError perr;
      if (!doc::ParseTerminatedDocument(line, &parsed, &perr)) {
        first.Record(number, Error::User(perr.message), fmt::format("{}:{}:{}", name, number, perr.offset + 1));
        return false;
      }
      auto valid = c.Validate(parsed, chunk.docs.arena);
      if (!valid) {
        first.Record(number, Error::User(valid.error().message), fmt::format("{}:{}", name, number));
        return false;
      }
      chunk.docs.Add(parsed, number, c.key);
      ++n;
      return true;
    });
    documents += n;
  };
  // Combines a chunk's documents of one partition: chunks come in input order.
  auto consume = [&](size_t p, PipelineItem& item) {
    auto& chunk = static_cast<CombineChunk&>(item);
    reduce::Combiner& part = combiner.partition(p);
    chunk.docs.Consume(
        p, [&](const PartitionedDocs::Doc&) -> const reduce::Combiner& { return part; },
        [&](PartitionedDocs::Doc& d) {
          if (first.Before(d.line)) return false;  // moot, or this combiner failed
          auto added = part.AddCopy(d.value, chunk.docs.Key(d), d.key_hash);
          if (!added) {
            if (added.error().code != Error::Code::kUser) {
              first.Record(d.line, added.error());
            } else {
              first.Record(d.line,
                           Error::User(fmt::format("cannot reduce into collection `{}`: {}", c.name,
                                                   added.error().message)),
                           fmt::format("{}:{}", name, d.line));
            }
            return false;
          }
          return true;
        });
  };

  PipelineOptions po;
  po.threads = threads;
  po.partitions = PartitionedCombiner::kPartitions;
  po.max_in_flight = 2 * threads;
  // Chunks of about 1 MiB, smaller under a small budget or many threads, so that the chunks
  // in flight (each parsed too) take a small part of the budget; the output does not depend
  // on their size.
  ChunkReader reader(input.file(), ChunkTarget(options.memory_budget, threads));
  {
    OrderedPipeline pipeline(po, process, consume);
    uint64_t reported = 0;
    while (!first.any()) {
      auto chunk = std::make_unique<CombineChunk>();
      if (!reader.Next(&chunk->lines)) break;
      uint64_t bytes = chunk->lines.bytes;
      pipeline.Push(std::move(chunk));
      uint64_t docs = documents.load();
      if (progress && (docs >> 16) > (reported >> 16)) {
        reported = docs;
        progress(docs, bytes, false);
      }
    }
    RecordReaderStop(reader, input, &first);
    pipeline.Finish();
  }
  if (first.any()) {
    *error_where = first.where();
    return first.error();
  }
  CombineResult out;
  out.documents = documents.load();
  if (progress) progress(out.documents, reader.bytes(), true);

  std::string json;
  auto drained = combiner.Drain(!combined_only, [&](std::string_view, doc::Value& d) -> Result<bool> {
    json.clear();
    doc::AppendJson(d, &json);
    ++out.keys;
    return sink(json);
  });
  if (!drained)
    return Error{drained.error().code, fmt::format("collection `{}`: {}", c.name, drained.error().message)};
  out.combiner = combiner.stats();
  return out;
}

}  // namespace flow::runtime
