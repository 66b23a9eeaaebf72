// The one reader of a task's sources (derivations, materializations, the test driver's
// verify steps and `flowctl read`): the committed documents of every journal its bindings
// select, merged in read order (a heap of the journals' next documents). That order is the
// documents' UUID clocks plus their binding's read delay, then the binding's order, then the order
// journals were added, so each journal is read in its own order and journals interleave as they
// were committed. With a read delay, a document is ready only once its clock plus the delay has
// passed.
//
// A reader keeps a cursor per journal and knows where each stands, which is what a task
// checkpoints (`<binding key>\t<journal>` → offset, see runtime/checkpoint.h). Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "runtime/cursor.h"
#include "store/journal.h"

namespace flow::runtime {

// `partitions: {include: {...}, exclude: {...}}` on encoded partition values.
struct PartitionFilter {
  std::map<std::string, std::set<std::string>> include, exclude;
  // Whether `journal` (a journal of `collection`) is selected.
  bool Matches(std::string_view collection, std::string_view journal) const;
};

class SourceReader {
 public:
  struct Binding {
    std::string collection;  // Discover opens the journals of it that `partitions` selects
    PartitionFilter partitions;
    int64_t read_delay_seconds = 0;
    std::string key;  // of the checkpoint: `<key>\t<journal>`
  };
  // Reading starts at `offsets` (a checkpoint), else at the start of each journal.
  SourceReader(std::string dir, std::vector<Binding> bindings,
               std::map<std::string, uint64_t> offsets = {});
  ~SourceReader();

  // Adds, for each binding, the journals of `ledger` it selects that it does not read yet,
  // then Advances to `ledger`.
  void Discover(const store::LedgerState& ledger);
  // Adds `journal` to binding `b`, when it does not read it yet (read once Advanced), from
  // its checkpointed offset, else from `begin` (where its generation begins).
  void Add(size_t b, const std::string& journal, uint64_t begin = 0);
  // Reads up to the committed heads of `ledger` from now on.
  void Advance(const store::LedgerState& ledger);
  // From the next Advance on, reads each journal only up to its offset in `limits`
  // (checkpoint keys), and journals not in it not at all: to read a transaction again
  // exactly as before. nullopt: up to the heads again.
  void Limit(std::optional<std::map<std::string, uint64_t>> limits) { limits_ = std::move(limits); }

  // Its journal and checkpoint key stay valid as long as the reader.
  struct Document {
    size_t binding = 0;
    const std::string* journal = nullptr;
    const std::string* key = nullptr;  // its checkpoint key
    uint64_t offset = 0;               // where it starts in its journal
    std::string_view line;             // without its '\n'; valid until Pop
  };
  // Unix nanoseconds that gate nothing: every committed document is ready.
  static constexpr int64_t kNoGate = std::numeric_limits<int64_t>::max();
  // The next document below the heads in read order, when it is ready at `now` (Unix
  // nanoseconds); left in place until Pop. False when none is.
  Result<bool> Peek(int64_t now, Document* out);
  // Consumes the document the last Peek returned (nothing, when it returned false).
  void Pop();
  // Calls `emit(journal, offset, line)` for every document below the heads, in read order
  // (`line` without its '\n', NUL-terminated for doc::ParseStoredDocument).
  using Emit = std::function<Result<bool>(const std::string& journal, uint64_t offset,
                                          const std::string& line)>;
  Result<bool> Drain(const Emit& emit);
  // After a Peek that returned false: the earliest time (Unix nanoseconds) a committed
  // document waiting for its read delay becomes ready; 0 when none waits.
  int64_t next_ready() const { return next_ready_; }

  // Where each journal read stands: the checkpoint.
  std::map<std::string, uint64_t> Offsets() const;
  // Reads the journals of `offsets` (checkpoint keys) again from those offsets.
  void Rewind(const std::map<std::string, uint64_t>& offsets);
  // Adds each journal's offset and committed head to `p`.
  void AddProgress(const std::map<std::string, uint64_t>& heads, ReadProgress* p) const;

 private:
  struct Source;
  std::string dir_;
  std::vector<Binding> bindings_;
  std::map<std::string, uint64_t> initial_;  // the checkpoint it started from
  std::optional<std::map<std::string, uint64_t>> limits_;
  static bool Later(const Source* a, const Source* b);
  // Sets the read order and ready time of `s`'s next line (`line`) from its UUID's clock.
  void Order(Source* s, std::string_view line);
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<Source*> heap_;       // sources with a next line, the first in read order on top
  std::vector<Source*> idle_;       // sources to look at again at the next Peek
  bool peeked_ = false;             // the top of the heap is what Peek returned
  std::set<std::string> known_;     // checkpoint keys of the sources
  std::set<std::string> journals_;  // their journals
  int64_t next_ready_ = 0;
};

}  // namespace flow::runtime
