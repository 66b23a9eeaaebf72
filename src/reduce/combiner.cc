#include "reduce/combiner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/memory.h"
#include "base/strings.h"
#include "doc/pack.h"

namespace flow::reduce {

namespace {

using Arena = rapidjson::MemoryPoolAllocator<>;
constexpr size_t kChunk = 1 << 20;

struct Entry {
  std::string_view key;  // in the arena
  uint64_t hash = 0;
  doc::Value doc;
  bool front = false;
  uint64_t tag = 0;  // the caller's, of the key's latest document
};

// An open-addressing index from packed keys to entry numbers: 8 bytes a slot (the entry
// number and the high half of its hash, so that probing rarely touches an entry that does
// not match), no per-key allocations.
class KeyIndex {
 public:
  // The entry number of `key`, or -1.
  int64_t Find(const std::vector<Entry>& entries, std::string_view key, uint64_t hash) const {
    if (slots_.empty()) return -1;
    size_t mask = slots_.size() - 1;
    uint32_t tag = Tag(hash);
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      uint64_t s = slots_[i];
      if (s == 0) return -1;
      if (static_cast<uint32_t>(s >> 32) != tag) continue;
      const Entry& e = entries[static_cast<uint32_t>(s) - 1];
      if (e.hash == hash && SameBytes(e.key, key)) return static_cast<uint32_t>(s) - 1;
    }
  }
  // Adds entry `n`, the last of `entries`.
  void Insert(const std::vector<Entry>& entries, uint32_t n) {
    if (entries.size() * 2 > slots_.size()) {
      Rehash(entries, std::max<size_t>(1024, slots_.size() * 2));  // places n too
    } else {
      Place(entries[n].hash, n);
    }
  }
  void Rebuild(const std::vector<Entry>& entries) {
    size_t size = 1024;
    while (size < entries.size() * 2 + 2) size *= 2;
    Rehash(entries, size);
  }
  void Clear() { std::vector<uint64_t>().swap(slots_); }
  // The first slot `hash` probes (null when there are none), for prefetching.
  const uint64_t* FirstSlot(uint64_t hash) const {
    return slots_.empty() ? nullptr : &slots_[hash & (slots_.size() - 1)];
  }
  // The entry of the first slot `hash` probes when that slot's hash half is `hash`'s (most
  // likely the key's entry), else null; for prefetching.
  const Entry* FirstEntry(const std::vector<Entry>& entries, uint64_t hash) const {
    const uint64_t* slot = FirstSlot(hash);
    if (!slot || *slot == 0 || static_cast<uint32_t>(*slot >> 32) != Tag(hash)) return nullptr;
    uint32_t n = static_cast<uint32_t>(*slot) - 1;
    return n < entries.size() ? &entries[n] : nullptr;
  }
  size_t Bytes() const { return slots_.capacity() * sizeof(uint64_t); }

 private:
  static uint32_t Tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }
  void Place(uint64_t hash, uint32_t n) {
    size_t mask = slots_.size() - 1;
    size_t i = hash & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = (static_cast<uint64_t>(Tag(hash)) << 32) | (n + 1);
  }
  void Rehash(const std::vector<Entry>& entries, size_t size) {
    slots_.assign(size, 0);
    for (uint32_t n = 0; n < entries.size(); ++n) Place(entries[n].hash, n);
  }
  std::vector<uint64_t> slots_;
};

// A copy of a packed key in `arena`.
std::string_view CopyKey(std::string_view key, Arena& arena) {
  char* copy = static_cast<char*>(arena.Malloc(key.size()));
  std::memcpy(copy, key.data(), key.size());
  return {copy, key.size()};
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A sorted run in the spill file, read back through a buffer.
class RunReader {
 public:
  RunReader(int fd, uint64_t begin, uint64_t end, size_t buffer) : fd_(fd), pos_(begin), end_(end), cap_(buffer) {}

  // Reads the next entry; false at the end of the run.
  Result<bool> Next() {
    if (pos_ + (buf_.size() - off_) == end_ && off_ == buf_.size()) return false;
    uint64_t key_len, doc_len;
    if (!Varint(&key_len)) return Corrupt();
    if (!Bytes(key_len, &key)) return Corrupt();
    std::string flag;
    if (!Bytes(1, &flag)) return Corrupt();
    front = flag[0] != 0;
    if (!Varint(&tag)) return Corrupt();
    if (!Varint(&doc_len)) return Corrupt();
    if (!Bytes(doc_len, &json)) return Corrupt();
    return true;
  }

  std::string key, json;
  bool front = false;
  uint64_t tag = 0;

 private:
  Result<bool> Corrupt() { return Error::Internal("the combiner's spill file is corrupt or truncated"); }
  bool Fill() {
    if (pos_ >= end_) return false;
    buf_.erase(0, off_);
    off_ = 0;
    size_t want = static_cast<size_t>(std::min<uint64_t>(cap_, end_ - pos_));
    size_t have = buf_.size();
    buf_.resize(have + want);
    ssize_t n = ::pread(fd_, buf_.data() + have, want, static_cast<off_t>(pos_));
    if (n <= 0) {
      buf_.resize(have);
      return false;
    }
    buf_.resize(have + static_cast<size_t>(n));
    pos_ += static_cast<uint64_t>(n);
    return true;
  }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (off_ == buf_.size() && !Fill()) return false;
      uint8_t b = static_cast<uint8_t>(buf_[off_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Bytes(uint64_t n, std::string* out) {
    while (buf_.size() - off_ < n) {
      if (!Fill()) return false;
    }
    out->assign(buf_, off_, n);
    off_ += n;
    return true;
  }

  int fd_;
  uint64_t pos_, end_;
  size_t cap_;
  std::string buf_;
  size_t off_ = 0;
};

}  // namespace

struct Combiner::Impl {
  std::shared_ptr<const Reducer> reducer;
  std::vector<doc::Pointer> key;
  CombinerOptions options;
  CombinerStats stats;

  // Entries live here, and callers of allocator() parse into it: a document whose key is new
  // is kept where it was parsed, without a copy. Once handed out the object is never
  // replaced (callers hold references to it), only cleared.
  size_t chunk = kChunk;  // arena chunk size: smaller under small budgets (see the constructor)
  // Once the arena outgrows kRegionAfter, its first chunk: huge pages (MoveToRegion).
  // Declared before `arena`, which points into it, so that it outlives it.
  std::unique_ptr<HugePages> region;
  bool region_tried = false;
  std::unique_ptr<Arena> arena;
  bool arena_exposed = false;  // allocator() handed it out: it must stay the same object
  // Where AddScratch's documents are parsed: a fixed buffer (so clearing it frees nothing)
  // and overflow chunks for larger documents.
  static constexpr size_t kScratchBuffer = 64 << 10;
  std::unique_ptr<char[]> scratch_buffer;
  std::unique_ptr<Arena> scratch;
  std::vector<Entry> entries;
  KeyIndex index;
  std::string scratch_key;  // packed key of the document being added

  int spill_fd = -1;
  uint64_t spill_end = 0;
  std::vector<std::pair<uint64_t, uint64_t>> runs;  // [begin, end) in the spill file

  ~Impl() {
    if (spill_fd >= 0) ::close(spill_fd);
  }

  uint64_t Memory() const {
    uint64_t capacity = arena->Capacity();
    // The region counts as far as it is used (it is filled first; Size() adds up what
    // every chunk used). Pages of it beyond that are given back (ReleaseRegion) whenever
    // the arena is cleared, so they are not resident either.
    if (region) {
      uint64_t unused = region->size() - std::min<uint64_t>(region->size(), arena->Size());
      capacity -= std::min(capacity, unused);
    }
    return capacity + entries.capacity() * sizeof(Entry) + index.Bytes();
  }

  // After the arena was cleared (and maybe refilled): the region's pages past what it uses
  // go back to the kernel, so that resident memory is what Memory() counts.
  void ReleaseRegion() {
    if (region)
      region->Release(static_cast<size_t>(std::min<uint64_t>(region->size(), arena->Size())));
  }

  // An arena that grows past kRegionAfter (a large transaction, a back-fill) moves into a
  // region of huge pages as large as half the budget (at most kRegionMax), where it then
  // grows and is compacted. Filling an arena of ordinary pages cost a page fault per 4 KiB:
  // on a virtual machine, 6-8% of `read --reduced`'s time over 1M documents. Small
  // transactions (develop's) never get one, so they do not fault in 2 MiB pages each.
  static constexpr uint64_t kRegionAfter = 2u << 20;
  static constexpr uint64_t kRegionMax = 256u << 20;
  void MoveToRegion() {
    region_tried = true;
    uint64_t size = std::min(options.memory_budget / 2, kRegionMax);
    if (size < 2 * kRegionAfter) return;
    auto r = HugePages::Map(static_cast<size_t>(size));
    if (!r) return;
    auto fresh = std::make_unique<Arena>(r->data(), r->size(), chunk);
    for (Entry& e : entries) {
      e.doc = doc::Copy(e.doc, *fresh);
      e.key = CopyKey(e.key, *fresh);
    }
    arena = std::move(fresh);
    region = std::move(r);
    stats.huge_pages = region->size();
  }

  // Drops the garbage that reductions and rejected documents leave in the arena (replaced
  // values, outgrown arrays, right-hand leftovers): the live entries are copied out to a
  // temporary arena and back into the cleared one, which callers hold on to.
  void Compact() {
    auto move_all = [&](Arena& to) {
      for (Entry& e : entries) {
        e.doc = doc::Copy(e.doc, to);
        e.key = CopyKey(e.key, to);
      }
    };
    if (arena_exposed || region) {
      // (A region stays the arena's first chunk: Clear keeps it.)
      Arena temp(chunk);
      move_all(temp);
      arena->Clear();
      move_all(*arena);
      ReleaseRegion();
    } else {
      // No caller holds the arena: one copy into a fresh one.
      auto fresh = std::make_unique<Arena>(chunk);
      move_all(*fresh);
      arena = std::move(fresh);
    }
    index.Rebuild(entries);
    stats.compactions++;
  }

  // Folds `next` into `acc` (both in `alloc`): a fully reduced one becomes the base.
  // `copy`: `next` lives in another allocator (see Reducer::Reduce).
  Result<bool> Fold(doc::Value& acc, bool* acc_front, doc::Value& next, bool next_front, std::string_view packed,
                    doc::Allocator& alloc, bool copy) {
    if (next_front && !*acc_front) {
      std::swap(acc, next);
      *acc_front = true;
    }
    auto r = reducer->Reduce(acc, next, *acc_front, alloc, copy);
    if (!r) return Error::User(fmt::format("key {}: {}", doc::KeyToJson(packed), r.error().message));
    return true;
  }

  // `packed`: the document's packed key and its hash, when the caller computed them.
  Result<bool> Insert(doc::Value& doc, bool fully_reduced, bool copy,
                      const std::pair<std::string_view, uint64_t>* packed = nullptr, uint64_t tag = 0);

  Result<bool> OpenSpill() {
    std::string dir = options.spill_dir;
    if (dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      dir = tmp && *tmp ? tmp : "/tmp";
    }
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::string path = dir + "/flowctl-spill-XXXXXX";
      fd = ::mkstemp(path.data());
      if (fd >= 0) ::unlink(path.c_str());
    }
    if (fd < 0) {
      return Error::Env(fmt::format("cannot create a spill file in {}: {}", dir, std::strerror(errno)));
    }
    spill_fd = fd;
    return true;
  }

  // Appends entries to the spill file as one run.
  class RunWriter {
   public:
    // The buffer grows to 1 MiB as it is filled, not reserved up front: a tiny memory
    // budget spills a run per document, and a megabyte for each (mapped and unmapped for
    // each by the sanitizers' allocator) made such a combiner crawl.
    explicit RunWriter(Impl* m) : m_(m), begin_(m->spill_end) {}
    Result<bool> Add(std::string_view key, const doc::Value& doc, bool front, uint64_t tag) {
      PutVarint(key.size(), &buf_);
      buf_.append(key);
      buf_.push_back(front ? 1 : 0);
      PutVarint(tag, &buf_);
      json_.clear();
      doc::AppendJson(doc, &json_);
      PutVarint(json_.size(), &buf_);
      buf_.append(json_);
      return buf_.size() >= (1 << 20) ? Flush() : Result<bool>(true);
    }
    // Flushes and returns the run's [begin, end).
    Result<std::pair<uint64_t, uint64_t>> Finish() {
      if (auto r = Flush(); !r) return r.error();
      m_->stats.spills++;
      m_->stats.spilled_bytes += m_->spill_end - begin_;
      return std::make_pair(begin_, m_->spill_end);
    }

   private:
    Result<bool> Flush() {
      size_t done = 0;
      while (done < buf_.size()) {
        ssize_t n = ::pwrite(m_->spill_fd, buf_.data() + done, buf_.size() - done,
                             static_cast<off_t>(m_->spill_end));
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error::Env(fmt::format("cannot write the combiner's spill file: {}", std::strerror(errno)));
        }
        done += static_cast<size_t>(n);
        m_->spill_end += static_cast<uint64_t>(n);
      }
      buf_.clear();
      return true;
    }
    Impl* m_;
    uint64_t begin_;
    std::string buf_, json_;
  };

  Result<bool> Spill() {
    if (entries.empty()) return true;
    if (spill_fd < 0) {
      if (auto r = OpenSpill(); !r) return r;
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
    RunWriter w(this);
    for (const Entry& e : entries) {
      if (auto r = w.Add(e.key, e.doc, e.front, e.tag); !r) return r;
    }
    auto run = w.Finish();
    if (!run) return run.error();
    runs.push_back(*run);
    std::vector<Entry>().swap(entries);
    index.Clear();
    arena->Clear();
    ReleaseRegion();
    return true;
  }

  // Merges runs [0, count) by key, folding each key's entries in run order: each Next()
  // gives the next key, its document (in `arena`, valid until the next call) and whether it
  // is fully reduced, in key order.
  class Merge {
   public:
    Merge(Impl* m, size_t count);
    Result<bool> Init();
    Result<bool> Next();
    std::string key;
    doc::Value acc;
    bool front = false;
    uint64_t tag = 0;  // of the key's last entry in run order
    // Cleared for every key: its first chunk is a buffer of its own, which clearing keeps
    // (a chunk from the heap was freed and allocated again per key, a megabyte each time).
    std::unique_ptr<char[]> arena_buffer = std::make_unique<char[]>(kChunk);
    Arena arena{arena_buffer.get(), kChunk, kChunk};

   private:
    Result<bool> Parse(const std::string& json, doc::Value* v);
    // Orders heap_ (std::push_heap makes a max-heap): the least key, and among equal keys
    // the earliest run, on top.
    bool Greater(size_t a, size_t b) const {
      int c = readers_[a]->key.compare(readers_[b]->key);
      return c != 0 ? c > 0 : a > b;
    }
    Impl* m_;
    std::vector<std::unique_ptr<RunReader>> readers_;
    std::vector<size_t> heap_;  // reader numbers, a min-heap by (key, reader number)
    rapidjson::GenericDocument<rapidjson::UTF8<>, Arena> parser_{&arena};
  };
  // Calls `out(key, doc, front, tag)` per key of Merge(count), in key order.
  using MergeOut = std::function<Result<bool>(const std::string&, doc::Value&, bool, uint64_t)>;
  Result<bool> MergeRuns(size_t count, const MergeOut& out);

  // The state of a pull-style drain (Combiner::DrainNext).
  bool draining = false;
  bool keep_drained = false;     // KeepDrained granted: the drain leaves the arena as it is
  bool holding_drained = false;  // the arena holds a kept drain's documents: cleared by Insert
  // Frees what a kept drain left in the arena, before it is added to or handed out.
  void FreeKept() {
    if (!holding_drained) return;
    holding_drained = false;
    arena->Clear();
    ReleaseRegion();
  }
  size_t drain_pos = 0;  // the next entry, without runs
  std::unique_ptr<Merge> drain_merge;
  Result<bool> StartDrain();
  Result<bool> Finalize(bool full, std::string_view key, doc::Value& d, bool front, doc::Allocator& alloc) {
    if (full && !front) {
      if (auto r = reducer->Finalize(d, alloc); !r) {
        return Error::User(fmt::format("key {}: {}", doc::KeyToJson(key), r.error().message));
      }
    }
    return true;
  }
};

Combiner::Combiner(std::shared_ptr<const Reducer> reducer, std::vector<doc::Pointer> key, CombinerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->reducer = std::move(reducer);
  impl_->key = std::move(key);
  impl_->options = std::move(options);
  // A 1 MiB chunk under a budget of a few MiB would fill the budget with one document.
  impl_->chunk = std::clamp<size_t>(static_cast<size_t>(impl_->options.memory_budget / 16), 4096, kChunk);
  impl_->arena = std::make_unique<Arena>(impl_->chunk);
}

Combiner::~Combiner() = default;

doc::Allocator& Combiner::allocator() {
  Impl& m = *impl_;
  // Whatever is parsed into it must survive the next Add, which would clear a kept drain's
  // documents: they are freed now, and a grant for the next drain is withdrawn.
  m.FreeKept();
  m.keep_drained = false;
  m.arena_exposed = true;
  return *m.arena;
}

const CombinerStats& Combiner::stats() const { return impl_->stats; }

uint64_t Combiner::memory() const { return impl_->Memory(); }

size_t Combiner::keys() const { return impl_->entries.size(); }

void Combiner::Prefetch(uint64_t key_hash) const {
  if (const uint64_t* slot = impl_->index.FirstSlot(key_hash)) __builtin_prefetch(slot);
}

void Combiner::PrefetchStep(uint64_t key_hash, int step) const {
  const Entry* e = impl_->index.FirstEntry(impl_->entries, key_hash);
  if (!e) return;
  if (step == 1) {
    __builtin_prefetch(e);
    return;
  }
  const doc::Value& v = e->doc;
  if (!v.IsObject() || v.MemberCount() == 0) return;
  const doc::Value::Member* m = &*v.MemberBegin();
  if (step == 2) {
    __builtin_prefetch(e->key.data());
    size_t bytes = std::min<size_t>(v.MemberCount() * sizeof(doc::Value::Member), 512);
    for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(reinterpret_cast<const char*>(m) + b);
    return;
  }
  // Step 3: the strings its top-level members hold out of line (a timestamp, a name).
  for (size_t i = 0, n = std::min<size_t>(v.MemberCount(), 16); i < n; ++i) {
    const doc::Value& x = m[i].value;
    if (x.IsString() && x.GetStringLength() > 13) __builtin_prefetch(x.GetString());
  }
}

Result<bool> Combiner::Add(doc::Value& doc, bool fully_reduced) { return impl_->Insert(doc, fully_reduced, false); }

doc::Allocator& Combiner::scratch() {
  Impl& m = *impl_;
  if (!m.scratch) {
    m.scratch_buffer = std::make_unique<char[]>(Impl::kScratchBuffer);
    m.scratch = std::make_unique<Arena>(m.scratch_buffer.get(), Impl::kScratchBuffer, Impl::kScratchBuffer);
  }
  return *m.scratch;
}

Result<bool> Combiner::AddScratch(doc::Value& doc, bool fully_reduced) {
  auto r = impl_->Insert(doc, fully_reduced, true);
  if (impl_->scratch) impl_->scratch->Clear();
  return r;
}

// Adds `doc`; `copy`: it lives in another allocator (the scratch one), so what is kept of
// it is copied into the arena.
Result<bool> Combiner::Impl::Insert(doc::Value& doc, bool fully_reduced, bool copy,
                                    const std::pair<std::string_view, uint64_t>* packed, uint64_t tag) {
  Impl& m = *this;
  m.FreeKept();
  m.keep_drained = false;  // granted for a drain that follows with no Add between
  m.stats.added++;
  std::string_view key;
  uint64_t hash;
  if (packed) {
    key = packed->first;
    hash = packed->second;
  } else {
    m.scratch_key.clear();
    doc::PackKey(doc, m.key, &m.scratch_key);
    key = m.scratch_key;
    hash = Combiner::KeyHash(key);
  }
  int64_t found = m.index.Find(m.entries, key, hash);
  Result<bool> result = true;
  if (found < 0) {
    std::string_view k = CopyKey(key, *m.arena);
    m.entries.push_back(Entry{k, hash, copy ? doc::Copy(doc, *m.arena) : std::move(doc), fully_reduced, tag});
    m.index.Insert(m.entries, static_cast<uint32_t>(m.entries.size() - 1));
  } else {
    Entry& e = m.entries[static_cast<size_t>(found)];
    e.tag = tag;
    if (fully_reduced && !e.front) {
      // A fully reduced document is the base: what was combined so far reduces into it.
      doc::Value deltas = std::move(e.doc);
      e.doc = copy ? doc::Copy(doc, *m.arena) : std::move(doc);
      e.front = true;
      result = m.Fold(e.doc, &e.front, deltas, false, e.key, *m.arena, false);
    } else {
      // Fold swaps only when `doc` is fully reduced and the entry is not: handled above.
      result = m.Fold(e.doc, &e.front, doc, fully_reduced, e.key, *m.arena, copy);
    }
  }
  doc.SetNull();
  if (!result) return result;
  if (!m.options.spill) return true;
  // Measuring walks the arena's chunk list, so under a large budget it is done every 64
  // documents (small budgets, as in tests, measure every time).
  if (m.options.memory_budget >= (16u << 20) && (m.stats.added & 63) != 0) return true;
  uint64_t used = m.Memory();
  if (!m.region_tried && !m.arena_exposed && used > Impl::kRegionAfter) {
    m.MoveToRegion();
    used = m.Memory();
  }
  m.stats.peak_memory = std::max(m.stats.peak_memory, used);
  // Compacting copies the live entries, so it starts at half the budget to stay within it;
  // when the live entries alone take 3/8 of it, they are spilled instead.
  if (used > m.options.memory_budget / 2) {
    m.Compact();
    if (m.Memory() > m.options.memory_budget / 8 * 3) return m.Spill();
  }
  return true;
}

Result<bool> Combiner::AddCopy(doc::Value& doc, bool fully_reduced) { return impl_->Insert(doc, fully_reduced, true); }

Result<bool> Combiner::AddCopy(doc::Value& doc, std::string_view packed_key, uint64_t key_hash,
                               uint64_t tag, bool fully_reduced) {
  std::pair<std::string_view, uint64_t> packed{packed_key, key_hash};
  return impl_->Insert(doc, fully_reduced, true, &packed, tag);
}

// Sorts the entries, or spills them and merges the runs down to at most kFanIn.
Result<bool> Combiner::Impl::StartDrain() {
  Impl& m = *this;
  m.draining = true;
  m.drain_pos = 0;
  if (m.runs.empty()) {
    std::sort(m.entries.begin(), m.entries.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
    return true;
  }
  if (auto r = m.Spill(); !r) return r;
  // At most kFanIn runs are merged at once: earlier runs are first merged into one (which
  // takes their place at the front, keeping arrival order) until few enough remain.
  constexpr size_t kFanIn = 64;
  while (m.runs.size() > kFanIn) {
    Impl::RunWriter w(&m);
    auto merged = m.MergeRuns(kFanIn, [&](const std::string& key, doc::Value& d, bool front, uint64_t tag) {
      return w.Add(key, d, front, tag);
    });
    if (!merged) return merged;
    auto run = w.Finish();
    if (!run) return run.error();
    m.runs.erase(m.runs.begin(), m.runs.begin() + kFanIn);
    m.runs.insert(m.runs.begin(), *run);
  }
  m.drain_merge = std::make_unique<Merge>(&m, m.runs.size());
  return m.drain_merge->Init();
}

Result<bool> Combiner::DrainNext(bool full, std::string_view* packed_key, doc::Value** doc,
                                 uint64_t* tag) {
  Impl& m = *impl_;
  if (!m.draining) {
    if (auto r = m.StartDrain(); !r) {
      m.draining = false;
      return r;
    }
  }
  if (!m.drain_merge) {
    if (m.drain_pos < m.entries.size()) {
      Entry& e = m.entries[m.drain_pos++];
      *packed_key = e.key;
      *doc = &e.doc;
      if (tag) *tag = e.tag;
      return m.Finalize(full, e.key, e.doc, e.front, *m.arena);
    }
    std::vector<Entry>().swap(m.entries);
    m.index.Clear();
    if (m.keep_drained) {
      m.holding_drained = true;  // the documents given stay where they are
    } else if (!m.holding_drained) {
      // (When an earlier drain's documents are held, nothing was added since: they stay.)
      m.arena->Clear();
      m.ReleaseRegion();
    }
    m.keep_drained = false;
    m.draining = false;
    return false;
  }
  m.keep_drained = false;  // (not granted with runs; set only between drains)
  Impl::Merge& mg = *m.drain_merge;
  auto next = mg.Next();
  *packed_key = mg.key;
  *doc = &mg.acc;
  if (tag) *tag = mg.tag;
  if (!next) return next;
  if (*next) return m.Finalize(full, mg.key, mg.acc, mg.front, mg.arena);
  m.drain_merge.reset();
  m.draining = false;
  m.runs.clear();
  m.spill_end = 0;
  if (::ftruncate(m.spill_fd, 0) != 0) {
    // Nothing depends on the file's size; the space is freed when it is closed.
  }
  return false;
}

bool Combiner::KeepDrained(bool keep) {
  Impl& m = *impl_;
  m.keep_drained = keep && !m.draining && m.runs.empty() && !m.arena_exposed;
  return m.keep_drained;
}

Result<bool> Combiner::Drain(bool full, const Emit& emit) {
  for (;;) {
    std::string_view key;
    doc::Value* d = nullptr;
    auto r = DrainNext(full, &key, &d);
    if (!r || !*r) return r ? Result<bool>(true) : r;
    if (auto e = emit(key, *d); !e) return e;
  }
}

Combiner::Impl::Merge::Merge(Impl* m, size_t count) : m_(m) {
  size_t buffer = std::clamp<size_t>(static_cast<size_t>(m->options.memory_budget / 4 / count), 4096, 1 << 20);
  for (size_t i = 0; i < count; ++i) {
    readers_.push_back(std::make_unique<RunReader>(m->spill_fd, m->runs[i].first, m->runs[i].second, buffer));
  }
}

Result<bool> Combiner::Impl::Merge::Init() {
  for (size_t i = 0; i < readers_.size(); ++i) {
    auto r = readers_[i]->Next();
    if (!r) return r.error();
    if (*r) {
      heap_.push_back(i);
      std::push_heap(heap_.begin(), heap_.end(), [this](size_t a, size_t b) { return Greater(a, b); });
    }
  }
  return true;
}

Result<bool> Combiner::Impl::Merge::Parse(const std::string& json, doc::Value* v) {
  parser_.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
  if (parser_.HasParseError()) return Error::Internal("the combiner's spill file holds a malformed document");
  *v = std::move(static_cast<doc::Value&>(parser_));
  return true;
}

Result<bool> Combiner::Impl::Merge::Next() {
  auto greater = [this](size_t a, size_t b) { return Greater(a, b); };
  auto pop = [&] {
    std::pop_heap(heap_.begin(), heap_.end(), greater);
    size_t i = heap_.back();
    heap_.pop_back();
    return i;
  };
  acc.SetNull();
  arena.Clear();
  if (heap_.empty()) return false;
  size_t i = pop();
  key = readers_[i]->key;
  front = readers_[i]->front;
  tag = readers_[i]->tag;
  if (auto r = Parse(readers_[i]->json, &acc); !r) return r;
  for (;;) {
    auto r = readers_[i]->Next();
    if (!r) return r.error();
    if (*r) {
      heap_.push_back(i);
      std::push_heap(heap_.begin(), heap_.end(), greater);
    }
    if (heap_.empty() || readers_[heap_.front()]->key != key) break;
    i = pop();
    tag = readers_[i]->tag;
    doc::Value next;
    if (auto p = Parse(readers_[i]->json, &next); !p) return p;
    if (auto f = m_->Fold(acc, &front, next, readers_[i]->front, key, arena, false); !f) return f;
  }
  return true;
}

Result<bool> Combiner::Impl::MergeRuns(size_t count, const MergeOut& out) {
  Merge merge(this, count);
  if (auto r = merge.Init(); !r) return r;
  for (;;) {
    auto r = merge.Next();
    if (!r || !*r) return r ? Result<bool>(true) : r;
    if (auto o = out(merge.key, merge.acc, merge.front, merge.tag); !o) return o;
  }
}

}  // namespace flow::reduce
