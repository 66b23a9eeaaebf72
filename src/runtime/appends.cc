#include "runtime/appends.h"

namespace flow::runtime {

void HeldAppends::Add(const std::string& journal, const store::JournalSpec& spec,
                      std::string_view bytes) {
  auto [it, inserted] = index_.try_emplace(journal, entries_.size());
  if (inserted) entries_.push_back({journal, spec, {}});
  Entry& e = entries_[it->second];
  e.spec = spec;
  e.bytes.append(bytes);
  bytes_ += bytes.size();
}

Result<std::map<std::string, uint64_t>> HeldAppends::CommitTo(
    store::Store* store, const std::map<std::string, std::string>& checkpoints) {
  for (const auto& e : entries_) {
    auto a = store->Append(e.journal, e.spec, e.bytes);
    if (!a) {
      Clear();
      auto aborted = store->Abort();
      (void)aborted;  // the error at hand is the one to report
      return a.error();
    }
  }
  Clear();
  return store->Commit(checkpoints);
}

void HeldAppends::Clear() {
  entries_.clear();
  index_.clear();
  bytes_ = 0;
}

}  // namespace flow::runtime
