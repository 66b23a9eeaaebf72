#include "runtime/source_reader.h"

#include <algorithm>

#include "doc/uuid.h"

namespace flow::runtime {
namespace {

// `<field>=<value>` segments of a journal name, after the collection's name.
std::map<std::string, std::string> PartitionValues(std::string_view collection,
                                                   std::string_view journal) {
  std::map<std::string, std::string> out;
  std::string_view rest = journal.substr(std::min(journal.size(), collection.size() + 1));
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    size_t eq = seg.find('=');
    if (eq != std::string_view::npos && seg != "pivot=00") {
      out.emplace(std::string(seg.substr(0, eq)), std::string(seg.substr(eq + 1)));
    }
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return out;
}

}  // namespace

bool PartitionFilter::Matches(std::string_view collection, std::string_view journal) const {
  if (include.empty() && exclude.empty()) return true;
  auto values = PartitionValues(collection, journal);
  for (const auto& [field, allowed] : include) {
    auto v = values.find(field);
    if (v == values.end() || !allowed.count(v->second)) return false;
  }
  for (const auto& [field, denied] : exclude) {
    auto v = values.find(field);
    if (v != values.end() && denied.count(v->second)) return false;
  }
  return true;
}

struct SourceReader::Source {
  size_t index;  // in sources_: breaks ties of the read order
  size_t binding;
  const std::string* key;      // in known_
  const std::string* journal;  // in journals_
  JournalCursor cursor;
  uint64_t head = 0;  // read up to here (the committed head at the last Advance)
  // Its next line's place in the read order and ready time, while it is in the heap.
  doc::Clock order = 0;
  int64_t ready_at = 0;
  bool ordered = false;  // order and ready_at are those of its next line
};

SourceReader::SourceReader(std::string dir, std::vector<Binding> bindings,
                           std::map<std::string, uint64_t> offsets)
    : dir_(std::move(dir)), bindings_(std::move(bindings)), initial_(std::move(offsets)) {}

SourceReader::~SourceReader() = default;

void SourceReader::Discover(const store::LedgerState& ledger) {
  for (size_t b = 0; b < bindings_.size(); ++b) {
    const Binding& binding = bindings_[b];
    for (const auto& j : store::CollectionJournals(ledger, binding.collection)) {
      if (binding.partitions.Matches(binding.collection, j)) Add(b, j, store::GenerationOf(ledger, j).begin);
    }
  }
  Advance(ledger);
}

void SourceReader::Add(size_t b, const std::string& journal, uint64_t begin) {
  auto [key, added] = known_.insert(bindings_[b].key + "\t" + journal);
  if (!added) return;
  const std::string* name = &*journals_.insert(journal).first;
  auto off = initial_.find(*key);
  sources_.push_back(std::make_unique<Source>(
      Source{sources_.size(), b, &*key, name,
             JournalCursor(dir_, journal, off == initial_.end() ? begin : off->second)}));
  idle_.push_back(sources_.back().get());
}

void SourceReader::Advance(const store::LedgerState& ledger) {
  for (auto& s : sources_) {
    auto head = ledger.heads.find(*s->journal);
    s->head = head == ledger.heads.end() ? 0 : head->second;
    if (limits_) {
      auto limit = limits_->find(*s->key);
      s->head = limit == limits_->end() ? s->cursor.offset() : std::min(s->head, limit->second);
    }
  }
  // Sources that had nothing more may have now (those in the heap have a line already).
  peeked_ = false;
  idle_.clear();
  std::vector<bool> queued(sources_.size(), false);
  for (const Source* s : heap_) queued[s->index] = true;
  for (auto& s : sources_) {
    if (!queued[s->index]) idle_.push_back(s.get());
  }
}

// The heap's order: the earliest (order, index) on top.
bool SourceReader::Later(const Source* a, const Source* b) {
  return a->order != b->order ? a->order > b->order : a->index > b->index;
}

void SourceReader::Order(Source* s, std::string_view line) {
  doc::Clock clock = ClockOfLine(line);
  int64_t delay = bindings_[s->binding].read_delay_seconds;
  // A delay in clock units: ticks of 100 ns, above the 4 bits of the sequence counter.
  s->order = clock + (static_cast<doc::Clock>(delay) * 10000000u << 4);
  s->ready_at = doc::ClockToUnixNanos(clock) + delay * int64_t{1000000000};
  s->ordered = true;
}

Result<bool> SourceReader::Peek(int64_t now, Document* out) {
  peeked_ = false;
  // One source read without a gate needs no order: its lines' UUIDs are not parsed (a
  // tenth of the reading thread's work on small documents). Should a gate or a second
  // source come, the lines in the heap are ordered first.
  bool lone = now == kNoGate && sources_.size() == 1;
  if (!lone) {
    bool reordered = false;
    for (Source* s : heap_) {
      if (s->ordered) continue;
      std::string_view line;
      auto p = s->cursor.Peek(s->head, &line);  // the line it was pushed with
      if (!p) return p.error();
      Order(s, line);
      reordered = true;
    }
    if (reordered) std::make_heap(heap_.begin(), heap_.end(), Later);
  }
  // Sources without a line in the heap: look at their next line.
  for (size_t i = 0; i < idle_.size(); ++i) {
    Source* s = idle_[i];
    std::string_view line;
    auto p = s->cursor.Peek(s->head, &line);
    if (!p) {
      // Those looked at are in the heap or had nothing: a retry must not push them twice.
      idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(i));
      return p.error();
    }
    if (!p.value()) continue;  // nothing more below its head
    if (lone) {
      s->ordered = false;
    } else {
      Order(s, line);
    }
    heap_.push_back(s);
    std::push_heap(heap_.begin(), heap_.end(), Later);
  }
  idle_.clear();
  next_ready_ = 0;
  if (heap_.empty()) return false;
  Source* top = heap_.front();
  // Ready times follow the read order, so the first is the earliest to become ready.
  if (top->ordered && top->ready_at > now) {
    next_ready_ = top->ready_at;
    return false;
  }
  std::string_view line;
  auto p = top->cursor.Peek(top->head, &line);  // the line peeked before
  if (!p) return p.error();
  *out = Document{top->binding, top->journal, top->key, top->cursor.offset(), line};
  peeked_ = true;
  return true;
}

void SourceReader::Pop() {
  if (!peeked_) return;
  peeked_ = false;
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  Source* s = heap_.back();
  heap_.pop_back();
  s->cursor.Pop();
  idle_.push_back(s);
}

std::map<std::string, uint64_t> SourceReader::Offsets() const {
  std::map<std::string, uint64_t> out;
  for (const auto& s : sources_) out[*s->key] = s->cursor.offset();
  return out;
}

void SourceReader::Rewind(const std::map<std::string, uint64_t>& offsets) {
  peeked_ = false;
  heap_.clear();
  idle_.clear();
  for (auto& s : sources_) {
    auto it = offsets.find(*s->key);
    if (it != offsets.end()) {
      uint64_t head = s->head;
      s = std::make_unique<Source>(Source{s->index, s->binding, s->key, s->journal,
                                          JournalCursor(dir_, *s->journal, it->second)});
      s->head = head;
    }
    idle_.push_back(s.get());
  }
}

void SourceReader::AddProgress(const std::map<std::string, uint64_t>& heads,
                               ReadProgress* p) const {
  for (const auto& s : sources_) s->cursor.AddProgress(heads, p);
}

Result<bool> SourceReader::Drain(const Emit& emit) {
  std::string line;
  for (;;) {
    Document d;
    auto p = Peek(kNoGate, &d);
    if (!p || !p.value()) return p;
    line.assign(d.line);
    auto e = emit(*d.journal, d.offset, line);
    if (!e) return e;
    Pop();
  }
}

}  // namespace flow::runtime
