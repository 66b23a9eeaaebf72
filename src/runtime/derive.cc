#include "runtime/derive.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "base/log.h"
#include "base/strings.h"
#include "doc/pack.h"
#include "doc/parse.h"
#include "reduce/combiner.h"
#include "runtime/cursor.h"
#include "runtime/checkpoint.h"
#include "runtime/appends.h"
#include "runtime/dead_letter.h"

namespace flow::runtime {
namespace {

using Arena = rapidjson::MemoryPoolAllocator<>;

}  // namespace

std::string Derivation::RegisterJournal() const {
  return ".flowctl/registers/" + collection->name + "/pivot=00";
}

std::string Derivation::CheckpointKey() const { return "derive/" + collection->name; }

bool LogicChanged(const Derivation& d, const store::LedgerState& ledger) {
  auto it = ledger.checkpoints.find(d.CheckpointKey());
  Checkpoint cp;
  return it != ledger.checkpoints.end() && DecodeCheckpoint(it->second, &cp) && !cp.logic.empty() &&
         cp.logic != d.logic;
}

void BackfillScope(const Derivation& d, const store::LedgerState& ledger, std::vector<std::string>* journals,
                   std::vector<std::string>* checkpoints) {
  for (auto& j : store::CollectionJournals(ledger, d.collection->name)) journals->push_back(std::move(j));
  if (ledger.heads.count(d.RegisterJournal())) journals->push_back(d.RegisterJournal());
  checkpoints->push_back(d.CheckpointKey());
}

namespace {

// Appends the documents `outputs` combined, stamped by `stamper`, to the derived collection's
// journals in `held`, counting them in `stats`.
Result<bool> AppendCombined(const Derivation& d, reduce::Combiner& outputs, Stamper* stamper, HeldAppends* held,
                            DeriveStats* stats) {
  std::string line, journal;
  return outputs.Drain(false, [&](std::string_view, doc::Value& out) -> Result<bool> {
    auto j = d.collection->JournalOf(out, &journal);
    if (!j) return j;
    line.clear();
    AppendStamped(out, stamper->Next(), &line);
    ++stats->published;
    stats->bytes += line.size();
    held->Add(journal, d.collection->journal, line);
    return true;
  });
}

}  // namespace

// A transaction Compute derived, until Publish commits it: the appends, the checkpoint, what
// it adds to the task's statistics and, for a streamed one until Finish appends them, its
// combined outputs.
struct DeriveTask::Transaction {
  HeldAppends held;
  std::string checkpoint;
  DeriveStats delta;
  std::unique_ptr<reduce::Combiner> outputs;
};

struct DeriveTask::Impl {
  store::Store* store;
  Stamper* stamper;
  std::function<int64_t()> now;

  // Source documents of all transforms; checkpoint keys are the transform's name in lower
  // case, a tab, and the journal.
  std::unique_ptr<SourceReader> reader;
  bool bootstrapped = false;  // the bootstrap lambdas ran

  // Registers by packed shuffle key, in an arena. Reductions replace values and leave the
  // old ones behind, so the arena is compacted (live registers copied to a fresh one) when
  // it has grown to twice its size after the last compaction.
  std::unique_ptr<Arena> arena = std::make_unique<Arena>(1 << 20);
  std::unordered_map<std::string, doc::Value> registers;
  size_t compacted_size = 16 << 20;

  void MaybeCompact() {
    if (arena->Size() < 2 * compacted_size) return;
    auto fresh = std::make_unique<Arena>(1 << 20);
    for (auto& [key, value] : registers) {
      value = doc::Copy(value, *fresh);
    }
    arena = std::move(fresh);
    compacted_size = std::max<size_t>(arena->Size(), 16 << 20);
  }
  rapidjson::Document initial;

  // The transaction Compute is deriving, or derived until TakeComputed.
  std::shared_ptr<Transaction> txn;
};

DeriveTask::DeriveTask(std::shared_ptr<const Derivation> derivation, store::Store* store,
                       Stamper* stamper, Clock clock)
    : derivation_(std::move(derivation)), impl_(std::make_unique<Impl>()) {
  impl_->store = store;
  impl_->stamper = stamper;
  impl_->now = std::move(clock.wall);
}

DeriveTask::~DeriveTask() = default;

const std::string& DeriveTask::name() const { return derivation_->collection->name; }

TaskCounters DeriveTask::counters() const {
  TaskCounters c;
  c.in = stats_.read;
  c.out = stats_.published;
  c.bytes_out = stats_.bytes;
  c.dead_letters = stats_.dead_letters;
  c.transactions = stats_.transactions;
  return c;
}

ReadProgress DeriveTask::progress() const {
  ReadProgress p;
  const auto& heads = impl_->store->committed().heads;
  if (impl_->reader) impl_->reader->AddProgress(heads, &p);
  return p;
}

Result<bool> DeriveTask::Open() {
  Impl& m = *impl_;
  const Derivation& d = *derivation_;
  m.initial.Parse(d.register_initial.c_str());
  if (m.initial.HasParseError()) {
    return Error::Internal(
        fmt::format("derivation `{}` has a malformed register `initial`", d.collection->name));
  }
  const auto& committed = m.store->committed();
  std::map<std::string, uint64_t> offsets;
  auto cp = committed.checkpoints.find(d.CheckpointKey());
  if (cp != committed.checkpoints.end()) {
    runtime::Checkpoint checkpoint;
    if (!DecodeCheckpoint(cp->second, &checkpoint)) {
      return Error::Env(
          fmt::format("the checkpoint of derivation `{}` is malformed", d.collection->name));
    }
    if (std::string why = CheckpointMismatch(checkpoint, committed, true); !why.empty()) {
      return Error::User(fmt::format("derivation `{}`: {}; nothing was derived. Back-fill it to derive its "
                                     "collection again from what its sources hold now: flowctl run --backfill {}",
                                     d.collection->name, why, d.collection->name))
          .About(fmt::format("derivation `{}`", d.collection->name));
    }
    offsets = std::move(checkpoint.offsets);
    // Offsets are keyed by transform name, compared without regard to case (as transform
    // names are within a derivation), so renaming `fromInts` to `FromInts` keeps its place.
    // Checkpoints written before names were lowered are lowered here.
    std::map<std::string, uint64_t> lowered;
    for (const auto& [key, offset] : offsets) {
      size_t tab = key.find('\t');
      lowered[tab == std::string::npos ? key : AsciiLower(key.substr(0, tab)) + key.substr(tab)] =
          offset;
    }
    offsets = std::move(lowered);
  }
  std::vector<SourceReader::Binding> bindings;
  for (const auto& t : d.transforms) {
    bindings.push_back({t.source->name, t.partitions, t.read_delay_seconds, AsciiLower(t.name)});
  }
  m.reader =
      std::make_unique<SourceReader>(m.store->dir(), std::move(bindings), std::move(offsets));
  // Replay the registers.
  std::string journal = d.RegisterJournal();
  auto head = committed.heads.find(journal);
  if (head != committed.heads.end()) {
    JournalCursor cursor(m.store->dir(), journal, store::GenerationOf(committed, journal).begin);
    std::string line;
    for (uint64_t records = 1;; ++records) {
      auto n = cursor.Next(head->second, &line);
      if (!n) return n;
      if (!n.value()) break;
      if ((records & 8191) == 0) m.MaybeCompact();  // replaced registers are garbage
      rapidjson::Document rec(m.arena.get());
      rec.Parse(line.c_str());
      if (rec.HasParseError() || !rec.IsObject() || !rec.HasMember("k") || !rec["k"].IsArray() ||
          !rec.HasMember("r")) {
        return Error::Env(fmt::format("journal {} holds a malformed register record at offset {}",
                                      journal, cursor.offset() - line.size() - 1));
      }
      std::string key;
      for (const auto& k : rec["k"].GetArray()) doc::PackValue(k, &key);
      m.registers[key] = std::move(rec["r"]);
    }
  }
  return true;
}

Result<bool> DeriveTask::Bootstrap() {
  const Derivation& d = *derivation_;
  if (d.sqlite) {
    auto r = d.sqlite->Reset();
    if (!r)
      return Error{r.error().code,
                   fmt::format("derivation `{}`: {}", d.collection->name, r.error().message)};
  }
  for (size_t i = 0; i < d.bootstraps.size(); ++i) {
    const auto& b = d.bootstraps[i];
    rapidjson::MemoryPoolAllocator<> alloc(1024);
    lambda::Outputs out;
    auto r = b.lambda->Invoke({lambda::Row{}}, alloc, &out);
    if (!r) {
      // nodeJS errors name the bootstrap lambda already.
      std::string what =
          b.kind == "nodeJS" ? "" : fmt::format("bootstrap lambda {} ({}) failed: ", i + 1, b.kind);
      return Error{r.error().code, fmt::format("derivation `{}`: {}{}", d.collection->name, what,
                                               r.error().message)};
    }
  }
  return true;
}

// One segment of a transaction (see Step): its documents, parsed, run through the
// transforms' lambdas and registers, and their outputs combined by the derived key.
//
// A document the transform cannot process (its source schema refuses it, a lambda fails
// on it alone, an output of it is invalid or does not reduce) halts the derivation, unless
// the transform has `deadLetters`: then it is left out of the transaction and written
// there with its error. Lambdas and reductions run over the batch, so a failure found in a
// later phase undoes the registers, leaves the document out, drops the documents after it
// from the transaction (they are read again by the next one) and runs the rest again.
struct DeriveTask::Segment {
  struct Item {
    size_t transform;
    // Its journal and checkpoint key (owned by the reader, which outlives the segment).
    const std::string* journal;
    const std::string* key;
    uint64_t offset;   // where the document starts in its journal
    std::string line;  // empty when streamed (see Stream)
  };

  const Derivation& d;
  Impl& m;
  std::vector<Item> items;
  Arena scratch{1 << 20};
  std::vector<doc::Value> sources;
  std::map<size_t, std::string> dead;  // item → its error
  bool divertable = false;             // some transform has dead letters
  // The state of one run over the batch.
  std::vector<std::vector<size_t>> by_transform;                    // items of each transform
  std::unordered_map<std::string, std::optional<doc::Value>> undo;  // registers before the run
  std::unordered_set<std::string> touched;                          // registers the run changed
  std::unique_ptr<reduce::Combiner> combiner;
  // Per item: the register before and after its update, and its place among its
  // transform's rows.
  std::vector<doc::Value> previous, after;
  std::vector<size_t> position;

  Segment(const Derivation& derivation, Impl& impl, std::vector<Item> batch)
      : d(derivation), m(impl), items(std::move(batch)) {
    for (const auto& tr : d.transforms) divertable = divertable || tr.dead_letters != nullptr;
  }

  const Transform& TransformOf(size_t i) const { return d.transforms[items[i].transform]; }

  std::string Where(size_t i) const {
    return fmt::format("derivation `{}`, transform `{}`: the document at offset {} of journal {}",
                       d.collection->name, TransformOf(i).name, items[i].offset, *items[i].journal);
  }

  // Parses the documents and checks `source.schema`.
  Result<bool> Parse() {
    sources.clear();
    sources.resize(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      rapidjson::Document parsed(&scratch);
      doc::ParseError perr;
      if (!doc::ParseStoredDocument(items[i].line, &parsed, &perr)) {
        return Error::Env(fmt::format("{} is malformed: {} (offset {} within it)", Where(i),
                                      perr.message, perr.offset));
      }
      sources[i] = std::move(static_cast<doc::Value&>(parsed));
      const Transform& tr = TransformOf(i);
      if (!tr.source_schema) continue;
      auto errors = tr.source_schema->Validate(sources[i], scratch);
      if (errors.empty()) continue;
      std::string message = fmt::format(
          "{} does not validate against the transform's source schema: {}", Where(i),
          schema::FormatValidationErrors(errors, sources[i], 3, tr.source_annotations.get()));
      if (!tr.dead_letters) return Error::User(std::move(message));
      dead[i] = std::move(message);
    }
    return true;
  }

  // Runs the batch until it goes through, leaving out the documents that fail (see
  // above). Returns whether it ended early, at a document left out.
  Result<bool> Settle() {
    bool ended_early = false;
    for (;;) {
      size_t failed = items.size();
      undo.clear();
      touched.clear();
      auto r = Run(&failed);
      if (r) return ended_early;
      if (failed >= items.size() || !TransformOf(failed).dead_letters ||
          r.error().code != Error::Code::kUser) {
        return r.error();
      }
      // Undo the run's register changes, leave the document out, and end the transaction
      // with it: the documents after it are read again by the next one.
      for (auto& [k, v] : undo) {
        if (v) {
          m.registers[k] = doc::Copy(*v, *m.arena);
        } else {
          m.registers.erase(k);
        }
      }
      dead[failed] = r.error().message;
      dead.erase(dead.upper_bound(failed), dead.end());
      std::map<std::string, uint64_t> rewind;  // journal → offset of its first document dropped
      for (size_t i = items.size(); i-- > failed + 1;) rewind[*items[i].key] = items[i].offset;
      m.reader->Rewind(rewind);
      items.resize(failed + 1);
      sources.resize(failed + 1);
      ended_early = true;
    }
  }

  // One run over the batch, without the dead items. An error about one item sets
  // `*failed` to it (else it is left at items.size()).
  Result<bool> Run(size_t* failed) {
    by_transform.assign(d.transforms.size(), {});
    for (size_t i = 0; i < items.size(); ++i) {
      if (!dead.count(i)) by_transform[items[i].transform].push_back(i);
    }
    std::vector<lambda::Outputs> updates(d.transforms.size());
    if (auto u = Update(&updates); !u) return u;
    if (auto r = Registers(updates, failed); !r) return r;
    return Publish(failed);
  }

  // Updates see only their source, so a whole batch runs at once.
  Result<bool> Update(std::vector<lambda::Outputs>* updates) {
    for (size_t t = 0; t < d.transforms.size(); ++t) {
      if (!d.transforms[t].update || by_transform[t].empty()) continue;
      std::vector<lambda::Row> rows;
      rows.reserve(by_transform[t].size());
      for (size_t i : by_transform[t]) {
        rows.push_back({&sources[i], nullptr, nullptr, items[i].line});
      }
      size_t unused = items.size();
      auto r = Invoke(t, false, by_transform[t], rows, scratch, &(*updates)[t], true, &unused);
      if (!r) return r;
    }
    return true;
  }

  // Registers, in document order: each update output is validated and reduced in; a
  // publishing transform records `previous` and `register` as they are for its document.
  Result<bool> Registers(std::vector<lambda::Outputs>& updates, size_t* failed) {
    previous.clear();
    previous.resize(items.size());
    after.clear();
    after.resize(items.size());
    position.assign(items.size(), 0);
    for (size_t t = 0; t < by_transform.size(); ++t) {
      for (size_t k = 0; k < by_transform[t].size(); ++k) position[by_transform[t][k]] = k;
    }
    std::string key;
    for (size_t i = 0; i < items.size(); ++i) {
      if (dead.count(i)) continue;
      size_t t = items[i].transform;
      const Transform& tr = d.transforms[t];
      key.clear();
      doc::PackKey(sources[i], tr.shuffle, &key);
      auto it = m.registers.find(key);
      const doc::Value& current =
          it == m.registers.end() ? static_cast<const doc::Value&>(m.initial) : it->second;
      if (tr.publish) previous[i] = doc::Copy(current, scratch);
      if (tr.update && !updates[t][position[i]].empty()) {
        auto reduced = ReduceUpdates(i, key, updates[t][position[i]], &it);
        if (!reduced) {
          *failed = i;
          return reduced.error();
        }
        if (!reduced.value()) continue;  // left out
      }
      if (tr.publish) {
        after[i] = doc::Copy(
            it == m.registers.end() ? static_cast<const doc::Value&>(m.initial) : it->second,
            scratch);
      }
    }
    return true;
  }

  // Reduces item `i`'s update outputs into the register `key` (`*it`, created if missing).
  // False when the item is left out (its register as it was before it); an error when it
  // halts the derivation.
  Result<bool> ReduceUpdates(size_t i, const std::string& key, std::vector<doc::Value>& outs,
                             std::unordered_map<std::string, doc::Value>::iterator* it) {
    const Transform& tr = TransformOf(i);
    bool existed = *it != m.registers.end();
    if (divertable && !undo.count(key)) {
      undo.emplace(key, existed ? std::optional<doc::Value>(doc::Copy((*it)->second, scratch))
                                : std::nullopt);
    }
    // With dead letters, the register as it was before this document: a document left out
    // leaves nothing of it in the register.
    std::optional<doc::Value> before;
    if (tr.dead_letters && existed) before = doc::Copy((*it)->second, scratch);
    if (!existed) {
      *it = m.registers.emplace(key, doc::Value()).first;
      (*it)->second = doc::Copy(m.initial, *m.arena);
    }
    std::optional<std::string> refused;
    for (auto& u : outs) {
      if (d.register_validator) {
        auto errors = d.register_validator->Validate(u, scratch);
        if (!errors.empty()) {
          refused = fmt::format(
              "{}: an update output does not validate against the register schema: {}", Where(i),
              schema::FormatValidationErrors(errors, u, 3, d.register_annotations.get()));
          break;
        }
      }
      auto r = d.register_reducer->Reduce((*it)->second, u, true, *m.arena, true);
      if (!r) {
        refused = fmt::format("{}: cannot reduce an update output into the register: {}", Where(i),
                              r.error().message);
        break;
      }
    }
    if (!refused) {
      touched.insert(key);
      return true;
    }
    if (!tr.dead_letters) return Error::User(std::move(*refused));
    if (existed) {
      (*it)->second = doc::Copy(*before, *m.arena);
    } else {
      m.registers.erase(*it);
      *it = m.registers.end();
    }
    dead[i] = std::move(*refused);
    return false;
  }

  // Publishes, batched per transform, combined by the derived key in document order.
  Result<bool> Publish(size_t* failed) {
    reduce::CombinerOptions copts;
    copts.spill = true;
    combiner = std::make_unique<reduce::Combiner>(d.collection->reducer, d.collection->key, copts);
    // The documents each transform publishes for (not those left out above), and where
    // each is among them.
    std::vector<std::vector<size_t>> publishing(d.transforms.size());
    for (size_t t = 0; t < d.transforms.size(); ++t) {
      if (!d.transforms[t].publish) continue;
      for (size_t i : by_transform[t]) {
        if (dead.count(i)) continue;
        position[i] = publishing[t].size();
        publishing[t].push_back(i);
      }
    }
    std::vector<lambda::Outputs> published(d.transforms.size());
    // The outputs live apart from the combiner's arena, which a compaction or a spill
    // replaces while outputs not yet added still point into it; each is copied in.
    doc::Allocator outputs(1 << 20);
    for (size_t t = 0; t < d.transforms.size(); ++t) {
      if (publishing[t].empty()) continue;
      std::vector<lambda::Row> rows;
      rows.reserve(publishing[t].size());
      for (size_t i : publishing[t]) {
        rows.push_back({&sources[i], &after[i], &previous[i], items[i].line});
      }
      // A document whose update reached its register is left out by running again.
      auto r = Invoke(t, true, publishing[t], rows, outputs, &published[t], !d.transforms[t].update,
                      failed);
      if (!r) return r;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (dead.count(i)) continue;
      size_t t = items[i].transform;
      const Transform& tr = d.transforms[t];
      if (!tr.publish) continue;
      auto& outs = published[t][position[i]];
      // All of a document's outputs are checked before any is combined, so that one left
      // out leaves nothing of it behind (a failed reduction below ends the run).
      if (auto refused = CheckPublished(i, outs)) {
        // In place, unless its update reached its register: then by running again.
        if (!tr.dead_letters || tr.update) {
          *failed = i;
          return Error::User(std::move(*refused));
        }
        dead[i] = std::move(*refused);
        continue;
      }
      for (auto& out : outs) {
        auto a = combiner->AddCopy(out);
        if (!a) {
          *failed = i;
          return Error{
              a.error().code,
              fmt::format("{}: cannot reduce a published document into collection `{}`: {}",
                          Where(i), d.collection->name, a.error().message)};
        }
      }
    }
    return true;
  }

  // Why item `i`'s published documents cannot be kept, if they cannot.
  std::optional<std::string> CheckPublished(size_t i, std::vector<doc::Value>& outs) {
    for (auto& out : outs) {
      if (!out.IsObject()) {
        return fmt::format("{}: the publish lambda returned {}, not an object", Where(i),
                           doc::KindName(out));
      }
      size_t size = 0;
      if (size_t limit = doc::ParseLimits{}.max_bytes; !doc::FitsJsonLimit(out, limit, &size)) {
        return fmt::format(
            "{}: the publish lambda returned a document of {} bytes as JSON, over the limit of {} "
            "MiB",
            Where(i), size, limit >> 20);
      }
      auto v = d.collection->Validate(out, combiner->allocator());
      if (!v) return fmt::format("{}: a published {}", Where(i), v.error().message);
    }
    return std::nullopt;
  }

  // Lambda error `e` about item `i`.
  Error LambdaFailed(const Error& e, const char* which, size_t i) const {
    return Error{e.code, fmt::format("{}: the {} lambda failed: {}", Where(i), which, e.message)};
  }

  // Lambda error `e` about a batch of `count` documents from item `first` on, without
  // saying on which document: it names where the batch starts.
  Error BatchFailed(const Error& e, const Transform& tr, const char* which, size_t first,
                    size_t count) const {
    return Error{
        e.code,
        fmt::format("derivation `{}`, transform `{}`: the batch of {} document{} starting at "
                    "offset {} of journal {}: the {} lambda failed: {}",
                    d.collection->name, tr.name, count, count == 1 ? "" : "s", items[first].offset,
                    *items[first].journal, which, e.message)};
  }

  // Whether a segment of `derivation` can be streamed (see Stream): it has one transform,
  // which only publishes, with a lambda that streams and reads only the source's text, and
  // neither a source schema nor dead letters.
  static bool Streams(const Derivation& derivation) {
    if (derivation.transforms.size() != 1) return false;
    const Transform& tr = derivation.transforms[0];
    if (!tr.publish || tr.update || tr.source_schema || tr.dead_letters) return false;
    auto reads = tr.publish->reads();
    return reads.streams && !reads.source_value && !reads.register_value && !reads.previous;
  }

  // The segment of a derivation that Streams, instead of Parse and Settle: the documents
  // are read as the lambda takes them (up to `limit` and kMaxTransactionBytes), are not
  // parsed, and their outputs are checked and combined as they come back, so that reading
  // and combining overlap the lambda's work. Sets `*exhausted` when no more documents were
  // ready. Errors as Settle's (with no dead letters, every failure ends the transaction).
  Result<bool> Stream(uint64_t limit, int64_t now, bool* exhausted) {
    const Transform& tr = d.transforms[0];
    reduce::CombinerOptions copts;
    copts.spill = true;
    combiner = std::make_unique<reduce::Combiner>(d.collection->reducer, d.collection->key, copts);
    Result<bool> read = true;
    size_t bytes = 0;
    *exhausted = false;
    // A row's text is the reader's (valid until Pop, and needed only until the next call):
    // the document is popped when the next row is asked for, or once the stream ended, so
    // that no document is copied.
    bool peeked = false;
    auto next = [&](lambda::Row* row) {
      if (peeked) {
        m.reader->Pop();
        peeked = false;
      }
      if (items.size() >= limit || bytes >= kMaxTransactionBytes) return false;
      SourceReader::Document doc;
      auto p = m.reader->Peek(now, &doc);
      if (!p || !p.value()) {
        if (!p) read = p.error();
        *exhausted = p.ok();
        return false;
      }
      bytes += doc.line.size();
      items.push_back({doc.binding, doc.journal, doc.key, doc.offset, std::string()});
      peeked = true;
      *row = {nullptr, nullptr, nullptr, doc.line};
      return true;
    };
    bool refused = false;  // an output was refused (its error is the invocation's)
    auto take = [&](size_t i, std::vector<doc::Value>& outs) -> Result<bool> {
      if (auto why = CheckPublished(i, outs)) {
        refused = true;
        return Error::User(std::move(*why));
      }
      for (auto& out : outs) {
        auto a = combiner->AddCopy(out);
        if (!a) {
          refused = true;
          return Error{
              a.error().code,
              fmt::format("{}: cannot reduce a published document into collection `{}`: {}",
                          Where(i), d.collection->name, a.error().message)};
        }
      }
      return true;
    };
    // The outputs live apart from the combiner's arena (see Publish).
    doc::Allocator outputs(1 << 20);
    int row = -1;
    auto r = tr.publish->Stream(next, outputs, take, &row);
    if (peeked) m.reader->Pop();  // the stream failed after taking it
    if (!read) return read.error();
    if (r || refused) return r;
    if (row >= 0 && static_cast<size_t>(row) < items.size()) {
      return LambdaFailed(r.error(), "publish", static_cast<size_t>(row));
    }
    if (items.empty()) return r.error();
    return BatchFailed(r.error(), tr, "publish", 0, items.size());
  }

  // Calls transform `t`'s update or publish lambda over `rows`, batched; `of` is the item
  // of each row. With `deadLetters`, a document the lambda fails on is left out in place
  // (its outputs are empty) and the lambda goes on with the documents after it, unless
  // `in_place` is false (the document's update already reached its register): then the run
  // fails with `*failed` set to it.
  Result<bool> Invoke(size_t t, bool publish, const std::vector<size_t>& of,
                      const std::vector<lambda::Row>& rows, doc::Allocator& alloc,
                      lambda::Outputs* out, bool in_place, size_t* failed) {
    const Transform& tr = d.transforms[t];
    lambda::Lambda& fn = *(publish ? tr.publish : tr.update);
    const char* which = publish ? "publish" : "update";
    auto error_at = [&](const Error& e, int row, size_t start, size_t count) {
      if (row >= 0 && start + static_cast<size_t>(row) < of.size()) {
        return LambdaFailed(e, which, of[start + static_cast<size_t>(row)]);
      }
      return BatchFailed(e, tr, which, of[start], count);
    };
    // Rows [start, end) into `part`, which must then hold one output list per row.
    auto call = [&](size_t start, size_t end, lambda::Outputs* part, int* row) -> Result<bool> {
      Result<bool> r = true;
      if (start == 0 && end == rows.size()) {
        r = fn.Invoke(rows, alloc, part, row);
      } else {
        std::vector<lambda::Row> slice(rows.begin() + static_cast<std::ptrdiff_t>(start),
                                       rows.begin() + static_cast<std::ptrdiff_t>(end));
        r = fn.Invoke(slice, alloc, part, row);
      }
      if (r && part->size() != end - start) {
        return Error::Internal(
            fmt::format("derivation `{}`, transform `{}`: {} outputs for {} rows",
                        d.collection->name, tr.name, part->size(), end - start));
      }
      return r;
    };
    out->clear();
    out->resize(rows.size());
    for (size_t start = 0; start < rows.size();) {
      lambda::Outputs part;
      int row = -1;
      auto r = call(start, rows.size(), &part, &row);
      if (r) {
        std::move(part.begin(), part.end(), out->begin() + static_cast<std::ptrdiff_t>(start));
        return true;
      }
      if (!tr.dead_letters || r.error().code != Error::Code::kUser) {
        return error_at(r.error(), row, start, rows.size() - start);
      }
      // Which document fails alone: the one named (a lambda error), else one after it (a
      // timeout names the first of the chunk that was running; an HTTP error none). A
      // document is never left out for a failure it does not cause alone.
      size_t culprit = rows.size();
      std::optional<Error> alone_error;
      for (size_t k = start + static_cast<size_t>(std::max(row, 0)); k < rows.size(); ++k) {
        lambda::Outputs alone;
        int alone_row = -1;
        auto a = call(k, k + 1, &alone, &alone_row);
        if (a) continue;
        if (a.error().code != Error::Code::kUser) return error_at(a.error(), 0, k, 1);
        culprit = k;
        alone_error = a.error();
        break;
      }
      if (culprit == rows.size()) return error_at(r.error(), row, start, rows.size() - start);
      size_t i = of[culprit];
      std::string message =
          fmt::format("{}: the {} lambda failed: {}", Where(i), which, alone_error->message);
      if (!in_place) {
        *failed = i;
        return Error::User(std::move(message));
      }
      // The documents before it, again (their outputs were not kept).
      if (culprit > start) {
        lambda::Outputs prefix;
        int prefix_row = -1;
        auto p = call(start, culprit, &prefix, &prefix_row);
        if (!p) return error_at(p.error(), prefix_row, start, culprit - start);
        std::move(prefix.begin(), prefix.end(), out->begin() + static_cast<std::ptrdiff_t>(start));
      }
      dead[i] = std::move(message);
      start = culprit + 1;
    }
    return true;
  }

  // The dead letters, in the same transaction as the rest.
  Result<bool> AppendDeadLetters(DeriveStats* stats) {
    for (const auto& [i, error] : dead) {
      const Transform& tr = TransformOf(i);
      DeadLetter letter{d.collection->name, "derivation",    tr.name, tr.source->name,
                        *items[i].journal,  items[i].offset, error,   &sources[i]};
      auto a = AppendDeadLetter(*tr.dead_letters, letter, m.stamper, &m.txn->held);
      if (!a) return a.error();  // its message starts with Where(i)
      ++stats->dead_letters;
      Log(LogLevel::kWarn,
          fmt::format("{}: sent to dead letters `{}`", Where(i), tr.dead_letters->name),
          {{"error", error}});
    }
    return true;
  }

  // The combined outputs, stamped, to the derived collection's journals.
  Result<bool> AppendOutputs(DeriveStats* stats) {
    return AppendCombined(d, *combiner, m.stamper, &m.txn->held, stats);
  }
};

Result<uint64_t> DeriveTask::Step(uint64_t max_docs) {
  auto n = Compute(impl_->store->committed(), max_docs);
  if (!n || n.value() == 0) return n;
  if (auto p = Publish(); !p) return p.error();
  return n;
}

Result<uint64_t> DeriveTask::Compute(const store::LedgerState& ledger, uint64_t max_docs) {
  Impl& m = *impl_;
  const Derivation& d = *derivation_;
  // Replaced registers are garbage: compacted here, where nothing else uses them (a Finish
  // of the previous transaction may be running).
  m.MaybeCompact();
  m.txn = std::make_shared<Transaction>();
  Transaction& txn = *m.txn;
  if (!m.bootstrapped) {
    auto b = Bootstrap();
    if (!b) return b.error();
    m.bootstrapped = true;
  }
  auto fail = [&](Error e) -> Result<uint64_t> {
    m.txn.reset();
    return e;
  };

  // The batch: ready documents in read order (UUID clock + delay). A transaction is one
  // segment of them, or several when one ends early at a document left out (see Segment):
  // the next segment starts after it, twice its size, so that a run of such documents costs
  // little each and one commit.
  m.reader->Discover(ledger);
  int64_t now = m.now();
  next_ready_ = 0;
  behind_ = false;
  std::unordered_set<std::string> all_touched;  // registers the segments changed
  uint64_t total = 0, limit = std::min<uint64_t>(max_docs, batch_cap_), last_size = 0;
  bool any_early = false;
  const bool streams = Segment::Streams(d);
  for (;;) {
    std::vector<Segment::Item> items;
    if (!streams) {
      size_t item_bytes = 0;
      while (items.size() < limit && item_bytes < kMaxTransactionBytes) {
        SourceReader::Document doc;
        auto p = m.reader->Peek(now, &doc);
        if (!p) return fail(p.error());
        if (!p.value()) {
          next_ready_ = m.reader->next_ready();
          break;
        }
        item_bytes += doc.line.size();
        items.push_back({doc.binding, doc.journal, doc.key, doc.offset, std::string(doc.line)});
        m.reader->Pop();
      }
      if (items.empty()) break;
    }
    Segment segment(d, m, std::move(items));
    Result<bool> ended_early = false;
    if (streams) {
      bool exhausted = false;
      auto streamed = segment.Stream(limit, now, &exhausted);
      if (exhausted) next_ready_ = m.reader->next_ready();
      if (!streamed) return fail(streamed.error());
      if (segment.items.empty()) break;
    } else {
      if (auto parsed = segment.Parse(); !parsed) return fail(parsed.error());
      ended_early = segment.Settle();
      if (!ended_early) return fail(ended_early.error());
    }
    if (auto a = segment.AppendDeadLetters(&txn.delta); !a) return fail(a.error());
    if (streams) {
      // A streamed transaction is one segment, and its Compute stamps nothing: its outputs
      // are appended by Finish, which may run while the next transaction is computed.
      txn.outputs = std::move(segment.combiner);
    } else if (auto a = segment.AppendOutputs(&txn.delta); !a) {
      return fail(a.error());
    }
    all_touched.insert(segment.touched.begin(), segment.touched.end());
    total += segment.items.size();
    last_size = segment.items.size();
    txn.delta.read += segment.items.size();
    if (!ended_early.value()) break;
    // The outputs are held in memory until Publish: a transaction holding much ends here.
    if (txn.held.bytes() >= kMaxTransactionBytes) break;
    any_early = true;
    limit = std::min<uint64_t>(max_docs - total, 2 * segment.items.size());
    if (limit == 0) break;
  }
  if (total == 0) {
    m.txn.reset();
    return uint64_t{0};
  }

  // The registers the transaction changed, as they are now, then the checkpoint; Publish
  // commits them with the outputs.
  if (!all_touched.empty()) {
    std::string records;
    std::vector<std::string> keys(all_touched.begin(), all_touched.end());
    std::sort(keys.begin(), keys.end());
    for (const auto& k : keys) {
      records += "{\"k\":";
      records += doc::KeyToJson(k);
      records += ",\"r\":";
      doc::AppendJson(m.registers[k], &records);
      records += "}\n";
    }
    txn.held.Add(d.RegisterJournal(), store::JournalSpec{}, records);
  }
  txn.checkpoint = EncodeCheckpoint(CheckpointOf(m.reader->Offsets(), ledger, d.logic));
  // After a transaction that ended early, the next starts small and grows back.
  batch_cap_ = any_early ? 2 * last_size : std::min<uint64_t>(batch_cap_, uint64_t{1} << 61) * 2;
  // More ready input than the transaction took: a back-fill (see Task::behind).
  SourceReader::Document next;
  auto more = m.reader->Peek(now, &next);
  behind_ = more && more.value();
  return total;
}

std::shared_ptr<DeriveTask::Transaction> DeriveTask::TakeComputed() { return std::move(impl_->txn); }

Result<bool> DeriveTask::Finish(Transaction& txn) {
  if (!txn.outputs) return true;
  auto outputs = std::move(txn.outputs);
  return AppendCombined(*derivation_, *outputs, impl_->stamper, &txn.held, &txn.delta);
}

Result<bool> DeriveTask::Publish(Transaction& txn) {
  Impl& m = *impl_;
  const Derivation& d = *derivation_;
  if (txn.checkpoint.empty() || txn.outputs) {
    return Error::Internal(fmt::format("derivation `{}`: Publish of a transaction not computed and finished", d.collection->name));
  }
  auto committed = txn.held.CommitTo(m.store, {{d.CheckpointKey(), txn.checkpoint}});
  txn.checkpoint.clear();
  if (!committed) return committed.error();
  stats_.read += txn.delta.read;
  stats_.published += txn.delta.published;
  stats_.bytes += txn.delta.bytes;
  stats_.dead_letters += txn.delta.dead_letters;
  ++stats_.transactions;
  return true;
}

Result<bool> DeriveTask::Publish() {
  auto txn = TakeComputed();
  if (!txn) return Error::Internal(fmt::format("derivation `{}`: Publish without Compute", derivation_->collection->name));
  if (auto f = Finish(*txn); !f) return f;
  return Publish(*txn);
}

}  // namespace flow::runtime
