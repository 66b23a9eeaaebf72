// The appends of one transaction held in memory until they are committed, on the store's
// thread: a derivation computes a transaction on a thread of its own, touching no store,
// while the store commits other tasks' transactions (runtime/supervisor.h).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "store/journal.h"

namespace flow::runtime {

class HeldAppends {
 public:
  // Holds `bytes` for `journal`; its last `spec` is the one appended with.
  void Add(const std::string& journal, const store::JournalSpec& spec, std::string_view bytes);
  // Appends everything held to `store` and commits it with `checkpoints` in one store
  // transaction (none may be open), then holds nothing. An error means the store failed.
  Result<std::map<std::string, uint64_t>> CommitTo(
      store::Store* store, const std::map<std::string, std::string>& checkpoints);
  void Clear();
  size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    std::string journal;
    store::JournalSpec spec;
    std::string bytes;
  };
  std::vector<Entry> entries_;  // in the order of their first append
  std::unordered_map<std::string, size_t> index_;
  size_t bytes_ = 0;
};

}  // namespace flow::runtime
