// Watches the local files of a catalog's sources for develop's live reload: a file whose
// modification time or size changed (or that appeared or vanished) calls for a rebuild,
// once the editor has had time to finish writing it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flow::develop {

class SourceWatcher {
 public:
  using Clock = std::chrono::steady_clock;

  // Watches `files` from now on, and keeps watching those watched before (the files of the
  // last good catalog: an edit may fix a broken import).
  void Watch(const std::vector<std::string>& files);

  // Checks the files (at most every 300 ms). True once a change has settled for 200 ms
  // (a save may be several writes): rebuild now.
  bool Poll(Clock::time_point now);

 private:
  // A source file's identity for change detection.
  struct Stamp {
    int64_t mtime_ns = 0;
    int64_t size = -1;
    bool operator==(const Stamp& o) const = default;
  };
  static Stamp StampOf(const std::string& path);

  std::map<std::string, Stamp> watched_;
  Clock::time_point last_check_ = Clock::now();
  bool changed_ = false;
  Clock::time_point changed_at_{};
};

}  // namespace flow::develop
