// Reading a journal's committed documents as JSON lines, with their byte offsets and UUID
// clocks. One cursor per journal (runtime/source_reader.h merges them for tasks); not
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "doc/uuid.h"
#include "store/journal.h"

namespace flow::runtime {

// How far a task has read its committed sources, in bytes (lag = total - read).
struct ReadProgress {
  uint64_t read = 0;
  uint64_t total = 0;
};

class JournalCursor {
 public:
  JournalCursor(const std::string& dir, const std::string& journal, uint64_t offset = 0);

  // The next complete line below `head` (without its '\n'), left in place: Peek again
  // returns it again until Pop. False when there is none yet.
  Result<bool> Peek(uint64_t head, std::string_view* line);
  // Consumes the line Peek returned.
  void Pop();
  // Peek and Pop.
  Result<bool> Next(uint64_t head, std::string* line);

  // The offset of the next line not yet popped (what a checkpoint records).
  uint64_t offset() const { return offset_; }
  const std::string& journal() const { return reader_.journal(); }
  // Adds this cursor's offset and its journal's head in `heads` to `p`.
  void AddProgress(const std::map<std::string, uint64_t>& heads, ReadProgress* p) const {
    auto it = heads.find(journal());
    p->read += offset_;
    p->total += it == heads.end() || it->second < offset_ ? offset_ : it->second;
  }

 private:
  store::JournalReader reader_;
  std::string buf_;
  size_t pos_ = 0;       // start of the next line in buf_
  size_t peeked_ = 0;    // length of the peeked line plus its '\n', 0 when none
  uint64_t offset_;
};

// The clock of a stored document's `/_meta/uuid`, taken from the end of the line where
// flowctl writes it (see AppendStamped), else by parsing; 0 when it has none.
doc::Clock ClockOfLine(std::string_view line);

}  // namespace flow::runtime
