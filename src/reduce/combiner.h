// Combiner: accepts documents for many keys, reduces them per key, and drains one document
// per key in key order (docs/reductions.md, "The combiner"). Memory stays within a budget:
// when the arena holding the documents outgrows it, the entries are sorted and spilled as a
// run to an unlinked temporary file; draining merges the runs, folding each key's entries
// in arrival order, so the result is byte-for-byte what an unbounded combiner produces.
//
// Usage: parse each document with `allocator()` (the arena the entries live in, so a
// document with a new key is kept without a copy), validate it, then `Add` it; or parse it
// with `scratch()` and `AddScratch` it (see there). Reductions
// and rejected documents leave garbage in the arena; at half the budget it is compacted
// (copying the live entries), and spilled instead when the live documents alone take 3/8
// of it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "doc/pointer.h"
#include "doc/value.h"
#include "reduce/reduce.h"

namespace flow::reduce {

struct CombinerOptions {
  uint64_t memory_budget = 256ull << 20;
  std::string spill_dir;  // default: $TMPDIR, else /tmp
  // false: Add never compacts or spills; the caller watches memory() and drains instead.
  bool spill = true;
};

struct CombinerStats {
  uint64_t added = 0;        // documents added
  uint64_t spills = 0;       // runs written
  uint64_t compactions = 0;  // arena compactions (garbage dropped without spilling)
  uint64_t spilled_bytes = 0;
  uint64_t peak_memory = 0;  // highest accounted memory
  uint64_t huge_pages = 0;   // bytes of the arena's region of huge pages (0: it has none)
};


class Combiner {
 public:
  Combiner(std::shared_ptr<const Reducer> reducer, std::vector<doc::Pointer> key,
           CombinerOptions options = {});
  ~Combiner();
  Combiner(const Combiner&) = delete;
  Combiner& operator=(const Combiner&) = delete;

  // The allocator documents must be parsed with before they are added. The same object for
  // the combiner's lifetime; values in it that were not added are garbage after an Add.
  doc::Allocator& allocator();

  // Memory in use (arena, entries and index), as the budget counts it.
  uint64_t memory() const;
  // Keys held in memory (a spill empties it; the same key may then come back).
  size_t keys() const;

  // Adds `doc` (moved from), which lives in `allocator()`. `fully_reduced`: the document is
  // a fully reduced base for its key (e.g. a row loaded from a materialization); later
  // documents are reduced into it. A reduction error names the key; the combiner should
  // then be discarded.
  Result<bool> Add(doc::Value& doc, bool fully_reduced = false);

  // For documents parsed, validated and added one at a time (reading a journal): parse into
  // `scratch()` and `AddScratch`, which copies into the combiner only what it keeps (a
  // document with a new key; the parts of others that a reduction takes) and then clears
  // the scratch allocator, so every value in it is gone. When keys repeat this leaves far
  // less garbage to compact than parsing into `allocator()`, at the price of one copy per
  // new key.
  doc::Allocator& scratch();
  Result<bool> AddScratch(doc::Value& doc, bool fully_reduced = false);

  // For documents parsed on other threads, each in an allocator of the caller's that the
  // combiner never allocates from: copies into the combiner what it keeps (as AddScratch
  // does) and leaves `doc` null; the caller's allocator is not cleared.
  Result<bool> AddCopy(doc::Value& doc, bool fully_reduced = false);
  // The hash the combiner indexes a packed key by (what AddCopy takes with the key).
  static uint64_t KeyHash(std::string_view packed_key) { return std::hash<std::string_view>()(packed_key); }
  // AddCopy of a document whose packed key (doc::PackKey with the combiner's key) and that
  // key's KeyHash the caller has computed already (when it partitions documents by key).
  // `tag` is the caller's, about the document (where it was read, say): DrainNext gives
  // back the tag of each key's latest document, in the order documents were added.
  Result<bool> AddCopy(doc::Value& doc, std::string_view packed_key, uint64_t key_hash,
                       uint64_t tag = 0, bool fully_reduced = false);

  // A hint that a document of the key of `key_hash` is added soon: starts loading the
  // part of the key index it will look at. Callers adding a batch of documents call it
  // kPrefetchAhead documents ahead (4% less time reducing 1M documents over 100k keys:
  // the index is larger than the caches, and its lookups otherwise wait for memory).
  void Prefetch(uint64_t key_hash) const;
  static constexpr size_t kPrefetchAhead = 8;
  // Prefetch's next steps for the same key, each called a few documents after the one
  // before (once what it started has arrived, so that reading it does not wait): step 1
  // starts loading the key's entry, step 2 its packed key and its document's members, step 3
  // the strings those members hold out of line. The document reduced into then waits for
  // memory once per key instead of three or four times in a row.
  void PrefetchStep(uint64_t key_hash, int step) const;
  // Drains every key in key order, calling `emit(key, doc)`; `full` finalizes documents
  // that were never reduced into a fully reduced base. The combiner is empty afterwards.
  using Emit = std::function<Result<bool>(std::string_view packed_key, doc::Value& doc)>;
  Result<bool> Drain(bool full, const Emit& emit);

  // Drain, one key at a time: each call sets the next key and its document (valid until the
  // next call) and returns true, then false once every key was given (the combiner is then
  // empty). Nothing may be added until it returned false. On a reduction error,
  // `*packed_key` is the key it is about (so that errors of several combiners can be put
  // in key order).
  // `tag`, when not null, is set to the tag of the key's latest document (see AddCopy; 0
  // for documents added without one).
  Result<bool> DrainNext(bool full, std::string_view* packed_key, doc::Value** doc,
                         uint64_t* tag = nullptr);

  // Asks the next drain to leave the documents it gives where they are when it ends
  // (instead of freeing them): a caller may then move them out rather than copy them. They
  // stay valid, and count in memory(), until the next Add or allocator() (which free them
  // first) or the combiner's end; a drain in between gives nothing and keeps them. Granted
  // (true) only when every document is in memory (nothing was spilled: merged documents
  // live until the next call) and allocator() was never handed out, for a drain that
  // follows with no Add in between (an Add or allocator() withdraws it). KeepDrained(false)
  // withdraws it too.
  bool KeepDrained(bool keep = true);

  const CombinerStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::reduce
