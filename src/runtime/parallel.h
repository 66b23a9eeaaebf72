// Parallel stages over an ordered input (`flowctl combine`, `read --reduced`): the input is
// cut into chunks of whole lines, each chunk is processed (parsed, validated) on any thread,
// and then consumed per partition strictly in input order, so that whatever the number of
// threads each partition sees exactly the sequence of documents one thread would have given
// it. See docs/internals/parallelism.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "runtime/input.h"

namespace flow::runtime {

// The default of --threads: the cores the machine has (std::thread::hardware_concurrency),
// at least 1.
unsigned DefaultThreads();

// The error earliest in input order among those that several threads find: each is recorded
// with its position in the input (a line number, a document's ordinal).
class FirstError {
 public:
  // Keeps `error` (and `where`, its location for the user) unless one before `position`
  // was recorded. Thread-safe.
  void Record(uint64_t position, Error error, std::string where = {});
  // Whether an error was recorded before `position` (work from there on is moot).
  bool Before(uint64_t position) const { return position_.load(std::memory_order_relaxed) < position; }
  bool any() const { return Before(UINT64_MAX); }
  // The error kept; valid once the threads recording are done.
  const Error& error() const { return *error_; }
  const std::string& where() const { return where_; }

 private:
  std::mutex mu_;
  std::atomic<uint64_t> position_{UINT64_MAX};
  std::optional<Error> error_;
  std::string where_;
};

// The size of the chunks to cut for `threads` threads under a memory budget: 1 MiB, less
// when 2 × threads chunks in flight would take more than 1/16 of the budget, at least 64 KiB.
size_t ChunkTarget(uint64_t memory_budget, unsigned threads);

// One item of an OrderedPipeline: a chunk of the input and what processing made of it.
struct PipelineItem {
  virtual ~PipelineItem() = default;
};

struct PipelineOptions {
  unsigned threads = 1;       // the pushing thread included; 1 runs everything in Push
  size_t partitions = 1;      // consumers, each seeing every item in order
  size_t max_in_flight = 4;   // items pushed and not yet consumed by every partition
};

// Items pushed in input order are processed on any of `threads` threads, in any order and
// concurrently; then each partition consumes them strictly in the order they were pushed,
// one item at a time, while different partitions consume concurrently. An item a worker
// processed is consumed (for every partition) by that worker where it can, since what
// processing made is still in its core's caches; a thread with nothing else to do consumes
// another's. An item is destroyed
// once every partition consumed it. When `max_in_flight` items are held, Push works on them
// (processes or consumes) until one is done, so memory stays bounded.
//
// The callbacks report errors through their own state: the pipeline always runs every
// pushed item through both stages (a callback that knows the work is moot returns early).
class OrderedPipeline {
 public:
  using Process = std::function<void(PipelineItem& item)>;
  using Consume = std::function<void(size_t partition, PipelineItem& item)>;
  OrderedPipeline(const PipelineOptions& options, Process process, Consume consume);
  ~OrderedPipeline();  // Finish()
  OrderedPipeline(const OrderedPipeline&) = delete;
  OrderedPipeline& operator=(const OrderedPipeline&) = delete;

  void Push(std::unique_ptr<PipelineItem> item);
  // Waits (working too) until every item pushed was consumed, and stops the threads.
  void Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A run of whole lines of an input, as ChunkReader cuts it.
struct LineChunk {
  size_t first_line = 0;  // the number of its first line, 1-based
  uint64_t bytes = 0;     // bytes of the input read when it was cut
  std::string text;       // whole lines, each with its '\n' (the input's last may lack it)

  // Calls `f(line, number)` for each line until it returns false: the line without its
  // '\n' and followed in memory by a NUL byte (the '\n' is overwritten), as LineReader::Next
  // gives them (a UTF-8 byte order mark at the start of the input, line 1, is skipped).
  template <class F>
  void ForEachLine(F&& f) {
    char* p = text.data();
    char* end = p + text.size();
    size_t number = first_line;
    while (p < end) {
      char* nl = static_cast<char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      char* stop = nl ? nl : end;
      *stop = '\0';  // at `end`, std::string's own terminator
      std::string_view line(p, static_cast<size_t>(stop - p));
      if (number == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
      if (!f(line, number)) return;
      ++number;
      p = stop + 1;
    }
  }
};

// Reads a file as chunks of whole lines of about `target` bytes each (a longer line makes a
// longer chunk), with LineReader's rules: a line longer than `max_line` ends the reading
// with too_long() set, after at most that many bytes of it are held.
class ChunkReader {
 public:
  explicit ChunkReader(FILE* f, size_t target = 1 << 20, size_t max_line = LineReader::kMaxLine)
      : f_(f), target_(target), max_line_(max_line) {}
  // Replaces `*out` with the next chunk. False at the end, on a read error (failed()), and
  // at a line longer than the limit (too_long(), number() is then that line's).
  bool Next(LineChunk* out);
  size_t number() const { return lines_; }  // lines given so far (the too-long one's, then)
  uint64_t bytes() const { return bytes_; }  // read so far
  bool failed() const { return std::ferror(f_) != 0; }
  int read_errno() const { return errno_; }  // errno of the failed read
  bool too_long() const { return too_long_; }
  std::string TooLongMessage() const;  // as LineReader's

 private:
  FILE* f_;
  size_t target_, max_line_;
  std::string carry_;  // the start of a line whose end was not read yet
  size_t lines_ = 0;
  size_t held_ = 0;  // of the too-long line
  int errno_ = 0;
  uint64_t bytes_ = 0;
  bool eof_ = false, too_long_ = false;
};

// Once `reader` stopped: records in `first` why, if it was not the end of `input` (a line
// longer than the limit, at its line; a read error, after every line).
void RecordReaderStop(const ChunkReader& reader, const Input& input, FirstError* first);

}  // namespace flow::runtime
