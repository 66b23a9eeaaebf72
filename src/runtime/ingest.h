// An ingestion transaction (SPEC 3.4): documents of any number of collections are
// validated and combined per key as they are added; Commit drains each combiner in key
// order, stamps every document's `/_meta/uuid`, appends it as a JSON line to its
// partition's journal and commits the store once, atomically across all of them. A
// transaction bigger than the memory budget is combined in rounds, each appended to the
// store (uncommitted) when memory fills. A failed transaction is dropped, and the store
// aborted (`Store::Abort`), so nothing of it is ever committed.
// Single-threaded, like the Store it writes to.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "doc/uuid.h"
#include "reduce/combiner.h"
#include "runtime/collection.h"
#include "store/journal.h"

namespace flow::runtime {

// Stamps documents with UUIDs of one producer.
class Stamper {
 public:
  Stamper() : producer_(doc::ProducerId::Random()) {}
  // The canonical text of the next UUID (flags: outside a Gazette transaction, since
  // transactions are recorded by the ledger rather than by acknowledgement documents).
  std::string Next();
  doc::ClockSource& clock() { return clock_; }

 private:
  doc::ProducerId producer_;
  doc::ClockSource clock_;
};

// Appends `doc` as one JSON line to `out`, with `/_meta/uuid` set to `uuid` (replacing
// any previous one; other `_meta` properties are kept). `doc` must be an object. `_meta`
// is always the last property and `uuid` the last in it, so a stored line always ends
// with `"uuid":"<uuid>"}}` (see StampedUuid).
void AppendStamped(const doc::Value& doc, std::string_view uuid, std::string* out);

// The UUID text at the end of a line written by AppendStamped (without its '\n'); nullopt
// when the line does not end that way.
std::optional<std::string_view> StampedUuid(std::string_view line);

struct TransactionStats {
  uint64_t documents = 0;  // added
  uint64_t combined = 0;   // appended after combining by key
  uint64_t bytes = 0;      // appended
  uint64_t rounds = 0;     // combining rounds appended early because memory filled up
};

class IngestTransaction {
 public:
  IngestTransaction(store::Store* store, Stamper* stamper, reduce::CombinerOptions options = {});
  ~IngestTransaction();

  // The scratch allocator documents of `c` must be parsed with before `Add`.
  doc::Allocator& allocator(const std::shared_ptr<const Collection>& c);

  // Validates `doc` and combines it into the transaction. User errors describe the
  // document's problem (the caller adds where it came from); the transaction should then
  // be dropped.
  Result<bool> Add(const std::shared_ptr<const Collection>& c, doc::Value& doc);

  // Add's two halves, for documents parsed and checked on other threads (IngestFile):
  // Check is what Add checks (an object, valid against `c`; `doc` owned by `alloc`) and is
  // thread-safe; AddChecked combines a document Check passed, copying it out of its own
  // allocator (Combiner::AddCopy), and must be called in input order like Add.
  static Result<bool> Check(const Collection& c, doc::Value& doc, doc::Allocator& alloc);
  Result<bool> AddChecked(const std::shared_ptr<const Collection>& c, doc::Value& doc);

  // Appends and commits everything added, with `checkpoints` (task checkpoints merged into
  // the ledger by the same commit, see Store::Commit); returns the new heads of the
  // journals written. On failure the store's transaction is aborted. (CommitGroup of this
  // one transaction.)
  Result<std::map<std::string, uint64_t>> Commit(
      const std::map<std::string, std::string>& checkpoints = {});

  // Appends everything added to the store without committing it, for CommitGroup, which
  // commits several transactions at once. Returns the journals this
  // transaction has written. A transaction whose rounds must not reach the store before
  // it is known to be valid needs a memory budget larger than its documents.
  Result<std::set<std::string>> Append();

  // Drops everything added and discards what was appended to the store.
  Result<bool> Abort();

  // Threads that stamp and serialise large rounds (1: the caller's only). The lines
  // appended are the same for any number.
  void set_threads(unsigned threads) { threads_ = std::max(1u, threads); }

  const TransactionStats& stats() const { return stats_; }
  // Spill and memory figures of the combiners, summed.
  reduce::CombinerStats combiner_stats() const;

 private:
  struct Part;
  Part* PartOf(const std::shared_ptr<const Collection>& c);
  Result<bool> Combine(Part* p, doc::Value& doc, bool copy);
  Result<bool> Flush(Part* p);
  store::Store* store_;
  Stamper* stamper_;
  reduce::CombinerOptions options_;
  std::map<std::string, std::unique_ptr<Part>> parts_;
  TransactionStats stats_;
  unsigned threads_ = 1;
  reduce::CombinerStats committed_stats_;
  std::set<std::string> journals_;  // written by Flush
};

// What a group commit committed.
struct GroupCommit {
  std::map<std::string, uint64_t> heads;  // the new heads of every journal written
  // Per transaction of the group, in order: the new heads of the journals it wrote.
  std::vector<std::map<std::string, uint64_t>> written;
};

// The one way ingested documents reach the store (`flowctl ingest`, develop's ingestion
// API, file-drop captures, the test driver): appends each transaction of `group` (Append)
// and commits them together, with one sync and `checkpoints`. On failure nothing of any of
// them is committed: the store's transaction is aborted.
Result<GroupCommit> CommitGroup(store::Store* store, const std::vector<IngestTransaction*>& group,
                                const std::map<std::string, std::string>& checkpoints = {});

// `{"<journal>": <head>, ...}`: the committed heads an ingest reports as its `Offsets`.
std::string HeadsJson(const std::map<std::string, uint64_t>& heads);

}  // namespace flow::runtime
