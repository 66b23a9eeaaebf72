#include "runtime/ingest.h"

#include <fmt/format.h>

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
  if (meta == d.MemberEnd() || !meta->value.IsObject()) {
    // The common case: serialize and add `_meta` as the last property.
    size_t start = out->size();
    if (meta == d.MemberEnd()) {
      doc::AppendJson(d, out);
    } else {  // `_meta` that is not an object is replaced
      doc::Value copy(rapidjson::kObjectType);
      rapidjson::MemoryPoolAllocator<> scratch;
      for (const auto& m : d.GetObject()) {
        if (m.name != "_meta") copy.AddMember(doc::Value(m.name, scratch), doc::Value(m.value, scratch), scratch);
      }
      doc::AppendJson(copy, out);
    }
    out->pop_back();  // '}'
    if (out->size() - start > 1) out->push_back(',');
    out->append("\"_meta\":{\"uuid\":\"");
    out->append(uuid);
    out->append("\"}}\n");
    return;
  }
  rapidjson::Document copy;
  copy.CopyFrom(d, copy.GetAllocator());
  auto& m = copy["_meta"];
  doc::Value u(uuid.data(), static_cast<rapidjson::SizeType>(uuid.size()), copy.GetAllocator());
  if (m.HasMember("uuid")) {
    m["uuid"] = u;
  } else {
    m.AddMember("uuid", u, copy.GetAllocator());
  }
  doc::AppendJson(copy, out);
  out->push_back('\n');
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
    p->combiner = std::make_unique<reduce::Combiner>(c->reducer, c->key, options_);
  }
  return p.get();
}

doc::Allocator& IngestTransaction::allocator(const std::shared_ptr<const Collection>& c) {
  return PartOf(c)->combiner->allocator();
}

Result<bool> IngestTransaction::Add(const std::shared_ptr<const Collection>& c, doc::Value& d) {
  Part* p = PartOf(c);
  if (!d.IsObject()) {
    return Error::User(fmt::format("a document of collection `{}` must be a JSON object, not {}", c->name,
                                   doc::KindName(d)));
  }
  auto v = c->Validate(d, p->combiner->allocator());
  if (!v) return v;
  auto a = p->combiner->Add(d);
  if (!a) {
    if (a.error().code == Error::Code::kUser) {
      return Error::User(fmt::format("cannot reduce into collection `{}`: {}", c->name, a.error().message));
    }
    return a;
  }
  ++stats_.documents;
  // A transaction larger than the memory budget is combined in budget-sized rounds, each
  // appended (uncommitted) when it fills, instead of spilling sorted runs to disk only to
  // read them back: a key may then appear once per round, which readers reduce as they
  // reduce across transactions. Measured every 64 documents (the walk is not free).
  if ((++p->since_check & 63) == 0 && p->combiner->memory() > options_.memory_budget / 16 * 5) {
    ++stats_.rounds;
    return Flush(p);
  }
  return true;
}

Result<bool> IngestTransaction::Flush(Part* p) {
  const Collection& c = *p->collection;
  std::string line, journal;
  auto drained = p->combiner->Drain(false, [&](std::string_view, doc::Value& d) -> Result<bool> {
    if (journal.empty() || !c.partitions.empty()) {
      auto j = c.JournalOf(d, &journal);
      if (!j) return j;
    }
    line.clear();
    AppendStamped(d, stamper_->Next(), &line);
    ++stats_.combined;
    stats_.bytes += line.size();
    return store_->Append(journal, c.journal, line);
  });
  if (!drained) {
    auto aborted = store_->Abort();
    (void)aborted;  // the drain's error is the one to report
    return drained.error();
  }
  return true;
}

Result<std::map<std::string, uint64_t>> IngestTransaction::Commit() {
  for (auto& [name, p] : parts_) {
    auto f = Flush(p.get());
    if (!f) return f.error();
  }
  auto heads = store_->Commit();
  if (!heads) return heads.error();
  committed_stats_ = combiner_stats();
  parts_.clear();
  return heads;
}

Result<bool> IngestTransaction::Abort() {
  parts_.clear();
  return store_->Abort();
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
