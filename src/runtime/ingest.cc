#include "runtime/ingest.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "base/strings.h"
#include "doc/value.h"

namespace flow::runtime {

std::string Stamper::Next() {
  doc::Uuid u;
  u.producer = producer_;
  u.clock = clock_.Next();
  u.flags = doc::kFlagOutsideTxn;
  return doc::FormatUuid(u);
}

void AppendStamped(const doc::Value& d, std::string_view uuid, std::string* out) {
  auto meta = d.FindMember("_meta");
  size_t start = out->size();
  if (meta == d.MemberEnd()) {
    doc::AppendJson(d, out);  // the common case
  } else {
    // Write the document without `_meta`, then `_meta` last (copies: a rare case).
    rapidjson::MemoryPoolAllocator<> scratch;
    doc::Value shallow(rapidjson::kObjectType);
    for (const auto& m : d.GetObject()) {
      if (&m == &*meta) continue;
      shallow.AddMember(doc::Value(m.name, scratch), doc::Value(m.value, scratch), scratch);
    }
    doc::AppendJson(shallow, out);
  }
  out->pop_back();  // '}'
  if (out->size() - start > 1) out->push_back(',');
  out->append("\"_meta\":{");
  if (meta != d.MemberEnd() && meta->value.IsObject()) {
    // Other `_meta` properties are kept; `uuid` is always the last one.
    size_t at = out->size();
    for (const auto& m : meta->value.GetObject()) {
      if (m.name == "uuid") continue;
      if (out->size() > at) out->push_back(',');
      rapidjson::MemoryPoolAllocator<> scratch;
      doc::Value pair(rapidjson::kObjectType);
      pair.AddMember(doc::Value(m.name, scratch), doc::Value(m.value, scratch), scratch);
      std::string one;
      doc::AppendJson(pair, &one);
      out->append(one, 1, one.size() - 2);  // without the braces
    }
    if (out->size() > at) out->push_back(',');
  }
  out->append("\"uuid\":\"");
  out->append(uuid);
  out->append("\"}}\n");
}

std::optional<std::string_view> StampedUuid(std::string_view line) {
  constexpr std::string_view kTail = "\"}}";
  constexpr std::string_view kUuid = "\"uuid\":\"";
  constexpr size_t kLen = 36;
  if (line.size() < kTail.size() + kLen + kUuid.size()) return std::nullopt;
  if (line.substr(line.size() - kTail.size()) != kTail) return std::nullopt;
  size_t at = line.size() - kTail.size() - kLen;
  if (line.substr(at - kUuid.size(), kUuid.size()) != kUuid) return std::nullopt;
  return line.substr(at, kLen);
}

struct IngestTransaction::Part {
  std::shared_ptr<const Collection> collection;
  std::unique_ptr<reduce::Combiner> combiner;
  uint64_t since_check = 0;
};

IngestTransaction::IngestTransaction(store::Store* store, Stamper* stamper, reduce::CombinerOptions options)
    : store_(store), stamper_(stamper), options_(std::move(options)) {}
IngestTransaction::~IngestTransaction() = default;

IngestTransaction::Part* IngestTransaction::PartOf(const std::shared_ptr<const Collection>& c) {
  auto& p = parts_[c->name];
  if (!p) {
    p = std::make_unique<Part>();
    p->collection = c;
    reduce::CombinerOptions o = options_;
    o.spill = false;  // rounds are appended instead (see Add)
    p->combiner = std::make_unique<reduce::Combiner>(c->reducer, c->key, o);
  }
  return p.get();
}

doc::Allocator& IngestTransaction::allocator(const std::shared_ptr<const Collection>& c) {
  return PartOf(c)->combiner->allocator();
}

Result<bool> IngestTransaction::Check(const Collection& c, doc::Value& d, doc::Allocator& alloc) {
  if (!d.IsObject()) {
    return Error::User(fmt::format("a document of collection `{}` must be a JSON object, not {}", c.name,
                                   doc::KindName(d)));
  }
  return c.Validate(d, alloc);
}

Result<bool> IngestTransaction::Add(const std::shared_ptr<const Collection>& c, doc::Value& d) {
  Part* p = PartOf(c);
  auto v = Check(*c, d, p->combiner->allocator());
  if (!v) return v;
  return Combine(p, d, false);
}

Result<bool> IngestTransaction::AddChecked(const std::shared_ptr<const Collection>& c, doc::Value& d) {
  return Combine(PartOf(c), d, true);
}

Result<bool> IngestTransaction::Combine(Part* p, doc::Value& d, bool copy) {
  auto a = copy ? p->combiner->AddCopy(d) : p->combiner->Add(d);
  if (!a) {
    if (a.error().code == Error::Code::kUser) {
      return Error::User(
          fmt::format("cannot reduce into collection `{}`: {}", p->collection->name, a.error().message));
    }
    return a;
  }
  ++stats_.documents;
  // A transaction larger than the memory budget is combined in budget-sized rounds, each
  // appended (uncommitted) when it fills, instead of spilling sorted runs to disk only to
  // read them back: a key may then appear once per round, which readers reduce as they
  // reduce across transactions. Measured every 64 documents (the walk is not free).
  bool measure = options_.memory_budget < (16u << 20) || (++p->since_check & 63) == 0;
  if (measure && p->combiner->memory() > options_.memory_budget / 16 * 5) {
    ++stats_.rounds;
    return Flush(p);
  }
  return true;
}

namespace {

// A run of drained documents as stamped lines, and the journal of each.
struct StampedSlice {
  std::string text;
  std::vector<size_t> ends;               // of each line in `text`
  std::vector<uint32_t> journal;          // of each line, into `journals`
  std::vector<std::string> journals;
  std::optional<Error> error;
};

void StampSlice(const Collection& c, doc::Value* const* docs, const std::string* uuids, size_t n,
                StampedSlice* out) {
  std::string journal;
  uint32_t last = 0;  // the index of `journal` in out->journals
  for (size_t i = 0; i < n; ++i) {
    if (journal.empty() || !c.partitions.empty()) {
      auto j = c.JournalOf(*docs[i], &journal);
      if (!j) {
        out->error = j.error();
        return;
      }
    }
    if (out->journals.empty() || out->journals[last] != journal) {
      auto found = std::find(out->journals.begin(), out->journals.end(), journal);
      if (found == out->journals.end()) found = out->journals.insert(found, journal);
      last = static_cast<uint32_t>(found - out->journals.begin());
    }
    AppendStamped(*docs[i], uuids[i], &out->text);
    out->ends.push_back(out->text.size());
    out->journal.push_back(last);
  }
}

}  // namespace

Result<bool> IngestTransaction::Flush(Part* p) {
  const Collection& c = *p->collection;
  // A large round is stamped and serialised on threads_ threads, in slices appended in key
  // order: the same lines as below (ingest's combiners never spill, so every entry is in
  // memory and stays put until the drain ends).
  size_t n = p->combiner->keys();
  if (threads_ > 1 && n >= 8192) {
    std::vector<doc::Value*> docs(n);
    std::vector<std::string> uuids(n);
    for (size_t i = 0; i < n; ++i) {
      std::string_view key;
      auto next = p->combiner->DrainNext(false, &key, &docs[i]);
      if (!next || !*next) return next ? Error::Internal("the combiner drained fewer keys than it held") : next.error();
      uuids[i] = stamper_->Next();
    }
    // In waves of one slice per thread, each appended before the next wave is serialised:
    // at most threads_ slices of text are held at once.
    size_t slices = std::min<size_t>(threads_ * 4, n / 2048);
    Result<bool> appended = true;
    for (size_t wave = 0; appended && wave < slices; wave += threads_) {
      size_t count = std::min<size_t>(threads_, slices - wave);
      std::vector<StampedSlice> out(count);
      std::vector<std::thread> workers;
      auto work = [&](size_t k) {
        size_t s = wave + k, begin = n * s / slices, end = n * (s + 1) / slices;
        StampSlice(c, docs.data() + begin, uuids.data() + begin, end - begin, &out[k]);
      };
      for (size_t k = 1; k < count; ++k) workers.emplace_back(work, k);
      work(0);
      for (auto& w : workers) w.join();
      for (size_t k = 0; appended && k < count; ++k) {
        const StampedSlice& slice = out[k];
        if (slice.error) {
          appended = *slice.error;
          break;
        }
        for (const auto& j : slice.journals) journals_.insert(j);
        size_t at = 0;
        for (size_t i = 0; appended && i < slice.ends.size(); ++i) {
          std::string_view line(slice.text.data() + at, slice.ends[i] - at);
          appended = store_->Append(slice.journals[slice.journal[i]], c.journal, line);
          at = slice.ends[i];
        }
        stats_.combined += slice.ends.size();
        stats_.bytes += slice.text.size();
      }
    }
    std::string_view key;
    doc::Value* rest = nullptr;
    auto end = p->combiner->DrainNext(false, &key, &rest);  // ends the drain
    if (appended && (!end || *end)) {
      appended = end ? Result<bool>(Error::Internal("the combiner drained more keys than it held")) : end;
    }
    if (!appended) {
      auto aborted = store_->Abort();
      (void)aborted;  // the drain's error is the one to report
      return appended.error();
    }
    return true;
  }
  std::string line, journal, last;
  auto drained = p->combiner->Drain(false, [&](std::string_view, doc::Value& d) -> Result<bool> {
    if (journal.empty() || !c.partitions.empty()) {
      auto j = c.JournalOf(d, &journal);
      if (!j) return j;
    }
    line.clear();
    AppendStamped(d, stamper_->Next(), &line);
    ++stats_.combined;
    stats_.bytes += line.size();
    if (journal != last) {
      journals_.insert(journal);
      last = journal;
    }
    return store_->Append(journal, c.journal, line);
  });
  if (!drained) {
    auto aborted = store_->Abort();
    (void)aborted;  // the drain's error is the one to report
    return drained.error();
  }
  return true;
}

Result<std::map<std::string, uint64_t>> IngestTransaction::Commit(
    const std::map<std::string, std::string>& checkpoints) {
  auto committed = CommitGroup(store_, {this}, checkpoints);
  if (!committed) return committed.error();
  return std::move(committed->heads);
}

Result<std::set<std::string>> IngestTransaction::Append() {
  for (auto& [name, p] : parts_) {
    auto f = Flush(p.get());
    if (!f) return f.error();
  }
  committed_stats_ = combiner_stats();
  parts_.clear();
  return journals_;
}

Result<bool> IngestTransaction::Abort() {
  parts_.clear();
  return store_->Abort();
}

Result<GroupCommit> CommitGroup(store::Store* store, const std::vector<IngestTransaction*>& group,
                                const std::map<std::string, std::string>& checkpoints) {
  std::vector<std::set<std::string>> journals;
  Result<std::map<std::string, uint64_t>> heads = std::map<std::string, uint64_t>{};
  for (IngestTransaction* txn : group) {
    auto appended = txn->Append();
    if (!appended) {
      heads = appended.error();
      break;
    }
    journals.push_back(std::move(appended.value()));
  }
  if (heads) heads = store->Commit(checkpoints);
  if (!heads) {
    auto aborted = store->Abort();
    (void)aborted;  // the append's or the commit's error is the one to report
    return heads.error();
  }
  GroupCommit out;
  for (const auto& written : journals) {
    auto& mine = out.written.emplace_back();
    for (const auto& j : written) mine[j] = heads->at(j);
  }
  out.heads = std::move(heads.value());
  return out;
}

std::string HeadsJson(const std::map<std::string, uint64_t>& heads) {
  std::string out = "{";
  for (const auto& [journal, head] : heads) {
    if (out.size() > 1) out += ",";
    out += fmt::format("{}:{}", JsonQuote(journal), head);
  }
  return out + "}";
}

reduce::CombinerStats IngestTransaction::combiner_stats() const {
  reduce::CombinerStats s = committed_stats_;
  for (const auto& [name, p] : parts_) {
    const auto& c = p->combiner->stats();
    s.added += c.added;
    s.spills += c.spills;
    s.compactions += c.compactions;
    s.spilled_bytes += c.spilled_bytes;
    s.peak_memory = std::max(s.peak_memory, c.peak_memory);
  }
  return s;
}

}  // namespace flow::runtime
