// `flowctl combine`'s work apart from its flags and printing: JSON lines validated against a
// collection's schema and combined by its key (spilling past the memory budget), then one
// document per key in key order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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
// Reading, parsing, validating and combining run on `threads` threads (the caller's
// included); the output and the error reported (the first in input order) are the same
// for any number (see PartitionedCombiner).
Result<CombineResult> CombineInput(const std::shared_ptr<const Collection>& collection,
                                   Input& input, const reduce::CombinerOptions& options,
                                   bool combined_only, const CombineProgress& progress,
                                   const std::function<Result<bool>(std::string_view line)>& sink,
                                   std::string* error_where, unsigned threads = 1);

// A combiner made of kPartitions combiners, each of the keys that PartitionOf assigns it and
// with an equal share of the memory budget. Each partition is fed its documents in input
// order (OrderedPipeline's consumers), so every combiner sees the same documents in the same
// order, and spills at the same points, whatever the number of threads: the output is
// byte-identical for any thread count (floats included). Partitions may be fed concurrently.
class PartitionedCombiner {
 public:
  static constexpr size_t kPartitions = 16;
  PartitionedCombiner(const Collection& collection, const reduce::CombinerOptions& options);
  // The partition of a packed key (doc::PackKey), given its reduce::Combiner::KeyHash.
  static size_t PartitionOfHash(uint64_t key_hash) {
    // The high half of the hash (the combiners use its low bits).
    return static_cast<size_t>(((key_hash >> 32) * kPartitions) >> 32);
  }
  reduce::Combiner& partition(size_t p) { return *parts_[p]; }
  // The partitions' stats, added up.
  reduce::CombinerStats stats() const;
  // Drains every partition, merged into one key order (the keys are disjoint), as
  // reduce::Combiner::Drain does; the first error in key order stops it.
  Result<bool> Drain(bool full, const reduce::Combiner::Emit& emit);
  // Drain, giving each key's tag too (reduce::Combiner::AddCopy).
  using TaggedEmit = std::function<Result<bool>(std::string_view packed_key, doc::Value& doc, uint64_t tag)>;
  Result<bool> DrainTagged(bool full, const TaggedEmit& emit);
  // DrainTagged with the work per key spread over `threads` threads (the caller's included):
  // each partition is drained on one of them, which calls `take(partition, key, doc, tag)`
  // for each of its keys in key order (the document is valid during the call only: `take`
  // keeps what it needs, in state of its own per partition); then, on the calling thread,
  // `emit(partition, i)` is called for the i-th key taken of each partition, every key in
  // key order, and the first error in key order stops it, as DrainTagged's would.
  using Take = std::function<void(size_t partition, std::string_view packed_key, doc::Value& doc,
                                  uint64_t tag)>;
  // (Below kParallelDrainKeys keys, none spilled, it drains on the calling thread alone.)
  static constexpr size_t kParallelDrainKeys = 4096;
  using EmitTaken = std::function<Result<bool>(size_t partition, size_t i)>;
  Result<bool> DrainParallel(bool full, unsigned threads, const Take& take, const EmitTaken& emit);
  // reduce::Combiner::KeepDrained of every partition: true when all of them keep the
  // documents of the next drain, which `take` may then move out (they live as long as this
  // object, unless it is added to again). When one of them cannot, none keeps them (each
  // partition's arena is freed as its drain ends, as without asking).
  bool KeepDrained();

 private:
  std::vector<std::unique_ptr<reduce::Combiner>> parts_;
};

// The documents of a chunk of lines once parsed (on any thread of an OrderedPipeline), sorted
// by partition, each with its packed key and the key's hash, for the partitions' consumers
// to add to their combiners. The documents live in `arena`.
struct PartitionedDocs {
  doc::Allocator arena;
  std::string keys;  // the documents' packed keys, one after another
  struct Doc {
    doc::Value value;
    size_t line;                 // the number of its line (in the chunk or the input)
    size_t key_begin, key_size;  // in `keys`
    uint64_t key_hash;
    bool left_out = false;  // for the caller (a dead letter, not to be combined)
    // For the caller too: what consuming needs of the document's line, kept here so that
    // consuming does not reach for per-line state (a cache miss per document, as a
    // partition takes every few lines).
    uint32_t binding = 0;
    uint64_t tag = 0;
  };
  std::vector<Doc> parts[PartitionedCombiner::kPartitions];

  // Adds `value` (moved from, null afterwards; parsed in `arena`), of line `line`, with its
  // key at `key`.
  Doc& Add(doc::Value& value, size_t line, const std::vector<doc::Pointer>& key);
  std::string_view Key(const Doc& d) const {
    return std::string_view(keys).substr(d.key_begin, d.key_size);
  }
  // Calls `f(doc)` for partition `p`'s documents in order until it returns false.
  // `combiner_of(doc)` is the combiner `f` adds it to, whose key index, entry and document
  // for the key are prefetched in steps, starting 16 documents ahead (Combiner::Prefetch,
  // Combiner::PrefetchStep: `read --reduced` 1.04 -> 1.00 s, CPU 1.87 -> 1.81 s, medians of
  // 11 interleaved runs).
  template <class CombinerOf, class F>
  void Consume(size_t p, const CombinerOf& combiner_of, const F& f) {
    std::vector<Doc>& docs = parts[p];
    // The key index slot, then the entry, then the document and key, then its strings, each
    // `kStep` documents after the step before (reduce::Combiner::PrefetchStep).
    constexpr size_t kStep = 4, ahead = 4 * kStep, kMembersAhead = 4;
    static_assert(ahead >= reduce::Combiner::kPrefetchAhead);
    for (size_t i = 0; i < docs.size(); ++i) {
      if (i + ahead < docs.size()) {
        const Doc& next = docs[i + ahead];
        combiner_of(next).Prefetch(next.key_hash);
      }
      for (int step = 1; step <= 3; ++step) {
        if (i + ahead - step * kStep < docs.size()) {
          const Doc& next = docs[i + ahead - step * kStep];
          combiner_of(next).PrefetchStep(next.key_hash, step);
        }
      }
      // And the members of the document reduced a few places later: the chunk was parsed
      // in input order, partitions take its documents out of it (2-3% less time).
      if (i + kMembersAhead < docs.size()) {
        const doc::Value& v = docs[i + kMembersAhead].value;
        if (v.IsObject() && v.MemberCount() > 0) {
          const char* m = reinterpret_cast<const char*>(&*v.MemberBegin());
          size_t bytes = std::min<size_t>(v.MemberCount() * sizeof(doc::Value::Member), 512);
          for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(m + b);
        }
      }
      if (!f(docs[i])) return;
    }
  }
};

}  // namespace flow::runtime
