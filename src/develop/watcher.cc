#include "develop/watcher.h"

#include <sys/stat.h>

namespace flow::develop {

SourceWatcher::Stamp SourceWatcher::StampOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<int64_t>(st.st_size)};
}

void SourceWatcher::Watch(const std::vector<std::string>& files) {
  std::map<std::string, Stamp> next;
  for (const auto& f : files) next[f] = StampOf(f);
  for (const auto& [f, s] : watched_) next.emplace(f, StampOf(f));
  watched_ = std::move(next);
}

bool SourceWatcher::Poll(Clock::time_point now) {
  if (now - last_check_ < std::chrono::milliseconds(300)) return false;
  last_check_ = now;
  bool differs = false;
  for (const auto& [f, s] : watched_) differs = differs || !(StampOf(f) == s);
  if (differs && !changed_) {
    changed_ = true;
    changed_at_ = now;
  }
  if (!changed_ || now - changed_at_ < std::chrono::milliseconds(200)) return false;
  changed_ = false;
  for (auto& [f, s] : watched_) s = StampOf(f);
  return true;
}

}  // namespace flow::develop
