#include "runtime/parallel.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace flow::runtime {

unsigned DefaultThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

void FirstError::Record(uint64_t position, Error error, std::string where) {
  std::lock_guard<std::mutex> l(mu_);
  // Equal positions: the first recorded stays (one document gives at most one error).
  if (error_ && position_.load(std::memory_order_relaxed) <= position) return;
  error_ = std::move(error);
  where_ = std::move(where);
  position_.store(position, std::memory_order_relaxed);
}

size_t ChunkTarget(uint64_t memory_budget, unsigned threads) {
  return static_cast<size_t>(std::clamp<uint64_t>(memory_budget / 32 / std::max(1u, threads), 64 << 10, 1 << 20));
}

struct OrderedPipeline::State {
  PipelineOptions options;
  Process process;
  Consume consume;

  std::mutex mu;
  std::condition_variable cv;
  struct Slot {
    std::unique_ptr<PipelineItem> item;
    bool processed = false;
    unsigned owner = 0;  // the worker that processed it, which consumes it where it can; or kAnyone
    size_t pending = 0;  // partitions that have not consumed it yet
  };
  std::deque<Slot> slots;           // items in flight, in push order
  uint64_t base = 0;                // the number of slots.front()
  uint64_t next_process = 0;        // the next item to process (they are claimed in order)
  std::vector<uint64_t> next;       // per partition: the next item it consumes
  std::vector<char> busy;           // per partition: a thread is consuming for it
  size_t scan = 0;                  // the partition the search for work starts at
  bool finishing = false;
  std::vector<std::thread> threads;

  // The owner of the items the pushing thread processed: any thread consumes them, since
  // the pusher goes back to reading (waiting for it to consume its own would hold every
  // later item of the partitions it has not done).
  static constexpr unsigned kAnyone = ~0u;
  // Whether item next[p] is processed, by thread `me` or the pusher.
  bool Mine(size_t p, unsigned me) const {
    if (next[p] >= base + slots.size()) return false;
    const Slot& slot = slots[next[p] - base];
    return slot.processed && (slot.owner == me || slot.owner == kAnyone);
  }
  // Whether thread `me` may consume item next[p] for partition p now.
  bool Ready(size_t p, unsigned me) const { return !busy[p] && Mine(p, me); }

  // Does one piece of work for thread `me` (0: the pushing thread), consuming in preference
  // to processing (consuming frees items). An item a worker processed is consumed, for every
  // partition, by that worker when it can: its documents were just made in that core's
  // caches, which another core would read at the cost of a memory access each (see
  // docs/internals/parallelism.md); one the pusher processed, by any thread (kAnyone). A
  // thread with nothing else to do consumes another's item rather than wait. `l` is held on entry
  // and on return. False when there was nothing to do.
  bool Step(std::unique_lock<std::mutex>& l, unsigned me) {
    // The first partition from `scan` on for which `ok(p)`, or busy.size(); it moves `scan`.
    auto find = [&](const auto& ok) {
      size_t n = busy.size();
      for (size_t k = 0; k < n; ++k) {
        size_t p = (scan + k) % n;
        if (!ok(p)) continue;
        scan = p + 1;
        return p;
      }
      return n;
    };
    if (size_t p = find([&](size_t q) { return Ready(q, me); }); p < busy.size()) {
      ConsumeAt(l, p, me, false);
      return true;
    }
    if (next_process < base + slots.size()) {
      uint64_t s = next_process++;
      PipelineItem* item = slots[s - base].item.get();
      l.unlock();
      process(*item);
      l.lock();
      slots[s - base].processed = true;
      slots[s - base].owner = me == 0 ? kAnyone : me;
      cv.notify_all();
      return true;
    }
    // Nothing of its own to do: rather than wait, consume another thread's item (its owner
    // is busy, or not running: more threads than cores).
    auto processed = [&](size_t q) {
      return !busy[q] && next[q] < base + slots.size() && slots[next[q] - base].processed;
    };
    if (size_t p = find(processed); p < busy.size()) {
      ConsumeAt(l, p, me, true);
      return true;
    }
    return false;
  }

  // Consumes item next[p] for partition p, and (unless `once`) the following ones while they
  // are thread `me`'s.
  void ConsumeAt(std::unique_lock<std::mutex>& l, size_t p, unsigned me, bool once) {
    busy[p] = 1;
    std::vector<std::unique_ptr<PipelineItem>> done;
    do {
      uint64_t s = next[p];
      PipelineItem* item = slots[s - base].item.get();
      l.unlock();
      done.clear();  // destroyed outside the lock
      consume(p, *item);
      l.lock();
      ++next[p];
      --slots[s - base].pending;
      // Partitions consume in order, so items are done in order: the front first.
      while (!slots.empty() && slots.front().pending == 0) {
        done.push_back(std::move(slots.front().item));
        slots.pop_front();
        ++base;
      }
      cv.notify_all();
    } while (!once && Mine(p, me));
    busy[p] = 0;
    if (!done.empty()) {
      l.unlock();
      done.clear();
      l.lock();
    }
  }

  void Work(unsigned me) {
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      if (Step(l, me)) continue;
      if (finishing && slots.empty()) return;
      cv.wait(l);
    }
  }
};

OrderedPipeline::OrderedPipeline(const PipelineOptions& options, Process process, Consume consume)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = options;
  s.options.threads = std::max(1u, options.threads);
  s.options.partitions = std::max<size_t>(1, options.partitions);
  s.options.max_in_flight = std::max<size_t>(1, options.max_in_flight);
  s.process = std::move(process);
  s.consume = std::move(consume);
  s.next.assign(s.options.partitions, 0);
  s.busy.assign(s.options.partitions, 0);
  for (unsigned i = 1; i < s.options.threads; ++i) s.threads.emplace_back([&s, i] { s.Work(i); });
}

OrderedPipeline::~OrderedPipeline() { Finish(); }

void OrderedPipeline::Push(std::unique_ptr<PipelineItem> item) {
  State& s = *state_;
  if (s.options.threads == 1) {
    s.process(*item);
    for (size_t p = 0; p < s.options.partitions; ++p) s.consume(p, *item);
    return;
  }
  std::unique_lock<std::mutex> l(s.mu);
  while (s.slots.size() >= s.options.max_in_flight) {
    if (!s.Step(l, 0)) s.cv.wait(l);
  }
  s.slots.push_back(State::Slot{std::move(item), false, 0, s.options.partitions});
  s.cv.notify_all();
}

void OrderedPipeline::Finish() {
  State& s = *state_;
  if (s.threads.empty()) return;
  {
    std::unique_lock<std::mutex> l(s.mu);
    s.finishing = true;
    s.cv.notify_all();
    while (!s.slots.empty()) {
      if (!s.Step(l, 0)) s.cv.wait(l);
    }
  }
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

bool ChunkReader::Next(LineChunk* out) {
  if (too_long_) return false;
  // Never more than a line may hold before a line end must have been seen (see below).
  size_t target = std::clamp<size_t>(target_, 1, max_line_);
  constexpr size_t kBlock = 4 << 20;
  std::string& buf = out->text;
  buf = std::move(carry_);
  carry_ = std::string();
  for (;;) {
    if (buf.size() >= target || eof_) {
      size_t nl = buf.rfind('\n');
      if (nl != std::string::npos) {
        carry_.assign(buf, nl + 1);
        buf.resize(nl + 1);
        break;
      }
      if (eof_) {
        // After a read error, the bytes after the last line end are not a line: the input
        // was cut there (a truncated compressed stream, say), and the error is what counts.
        if (buf.empty() || failed()) return false;
        break;
      }
      // `buf` is the start of one line, without its end.
      if (buf.size() > max_line_) {
        too_long_ = true;
        held_ = buf.size();
        ++lines_;
        return false;
      }
    }
    // Up to the target, then (a line longer than it) in blocks, never more than the limit
    // and one byte: a line without an end stops there.
    size_t have = buf.size();
    size_t want = have < target ? target - have : std::min(kBlock, max_line_ + 1 - have);
    buf.resize(have + want);
    size_t n = std::fread(buf.data() + have, 1, want, f_);
    buf.resize(have + n);
    bytes_ += n;
    if (n == 0) {
      eof_ = true;
      if (std::ferror(f_)) errno_ = errno;
    }
  }
  out->first_line = lines_ + 1;
  out->bytes = bytes_;
  // memchr is vectorized, std::count at -O2 is not.
  for (const char *p = buf.data(), *end = p + buf.size(); p < end; ++lines_) {
    const void* nl = std::memchr(p, '\n', static_cast<size_t>(end - p));
    p = nl ? static_cast<const char*>(nl) + 1 : end;
  }
  return true;
}

std::string ChunkReader::TooLongMessage() const { return LineReader::TooLongMessage(lines_, max_line_, held_); }

void RecordReaderStop(const ChunkReader& reader, const Input& input, FirstError* first) {
  if (reader.too_long()) {
    first->Record(reader.number(), Error::User(reader.TooLongMessage()),
                  fmt::format("{}:{}", input.name(), reader.number()));
  } else if (reader.failed()) {
    first->Record(UINT64_MAX - 1, Error::User(fmt::format("cannot read {}: {}", input.name(),
                                                          input.ReadErrorMessage(reader.read_errno()))));
  }
}

}  // namespace flow::runtime
