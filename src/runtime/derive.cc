#include "runtime/derive.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "base/log.h"
#include "base/strings.h"
#include "doc/pack.h"
#include "doc/parse.h"
#include "reduce/combiner.h"
#include "runtime/cursor.h"
#include "runtime/dead_letter.h"

namespace flow::runtime {
namespace {

using Arena = rapidjson::MemoryPoolAllocator<>;

// `<field>=<value>` segments of a journal name, after the collection's name.
std::map<std::string, std::string> PartitionValues(std::string_view collection, std::string_view journal) {
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

std::string Derivation::RegisterJournal() const {
  return ".flowctl/registers/" + collection->name + "/pivot=00";
}

std::string Derivation::CheckpointKey() const { return "derive/" + collection->name; }

struct DeriveTask::Impl {
  store::Store* store;
  Stamper* stamper;
  std::function<int64_t()> now;

  struct Source {
    size_t transform;
    std::string key;  // transform name + '\t' + journal: the checkpoint's key
    JournalCursor cursor;
    // The peeked line's readiness, cached until it is popped.
    bool peeked = false;
    int64_t ready_at = 0;
  };
  std::vector<std::unique_ptr<Source>> sources;
  std::map<std::string, uint64_t> offsets;  // from the checkpoint
  std::set<std::string> known;              // source keys with a cursor
  bool bootstrapped = false;                // the bootstrap lambdas ran

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
};

DeriveTask::DeriveTask(std::shared_ptr<const Derivation> derivation, store::Store* store, Stamper* stamper,
                       std::function<int64_t()> now)
    : derivation_(std::move(derivation)), impl_(std::make_unique<Impl>()) {
  impl_->store = store;
  impl_->stamper = stamper;
  impl_->now = std::move(now);
}

DeriveTask::~DeriveTask() = default;

ReadProgress DeriveTask::progress() const {
  ReadProgress p;
  const auto& heads = impl_->store->committed().heads;
  for (const auto& s : impl_->sources) s->cursor.AddProgress(heads, &p);
  return p;
}

Result<bool> DeriveTask::Open() {
  Impl& m = *impl_;
  const Derivation& d = *derivation_;
  m.initial.Parse(d.register_initial.c_str());
  if (m.initial.HasParseError()) {
    return Error::Internal(fmt::format("derivation `{}` has a malformed register `initial`", d.collection->name));
  }
  const auto& committed = m.store->committed();
  auto cp = committed.checkpoints.find(d.CheckpointKey());
  if (cp != committed.checkpoints.end()) {
    if (!DecodeOffsets(cp->second, &m.offsets)) {
      return Error::Env(fmt::format("the checkpoint of derivation `{}` is malformed", d.collection->name));
    }
    // Offsets are keyed by transform name, compared without regard to case (as transform
    // names are within a derivation), so renaming `fromInts` to `FromInts` keeps its place.
    // Checkpoints written before names were lowered are lowered here.
    std::map<std::string, uint64_t> lowered;
    for (const auto& [key, offset] : m.offsets) {
      size_t tab = key.find('\t');
      lowered[tab == std::string::npos ? key : AsciiLower(key.substr(0, tab)) + key.substr(tab)] = offset;
    }
    m.offsets = std::move(lowered);
  }
  // Replay the registers.
  std::string journal = d.RegisterJournal();
  auto head = committed.heads.find(journal);
  if (head != committed.heads.end()) {
    JournalCursor cursor(m.store->dir(), journal);
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
        return Error::Env(fmt::format("journal {} holds a malformed register record at offset {}", journal,
                                      cursor.offset() - line.size() - 1));
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
    if (!r) return Error{r.error().code, fmt::format("derivation `{}`: {}", d.collection->name, r.error().message)};
  }
  for (size_t i = 0; i < d.bootstraps.size(); ++i) {
    const auto& b = d.bootstraps[i];
    rapidjson::MemoryPoolAllocator<> alloc(1024);
    lambda::Outputs out;
    auto r = b.lambda->Invoke({lambda::Row{}}, alloc, &out);
    if (!r) {
      // nodeJS errors name the bootstrap lambda already.
      std::string what = b.kind == "nodeJS" ? "" : fmt::format("bootstrap lambda {} ({}) failed: ", i + 1, b.kind);
      return Error{r.error().code, fmt::format("derivation `{}`: {}{}", d.collection->name, what, r.error().message)};
    }
  }
  return true;
}

Result<uint64_t> DeriveTask::Step(uint64_t max_docs) {
  Impl& m = *impl_;
  const Derivation& d = *derivation_;
  if (!m.bootstrapped) {
    auto b = Bootstrap();
    if (!b) return b.error();
    m.bootstrapped = true;
  }
  const auto& committed = m.store->committed();

  // Cursors for every selected source journal, new ones included.
  for (size_t t = 0; t < d.transforms.size(); ++t) {
    const Transform& tr = d.transforms[t];
    for (const auto& j : store::CollectionJournals(committed, tr.source->name)) {
      std::string key = AsciiLower(tr.name) + "\t" + j;
      if (m.known.count(key) || !tr.partitions.Matches(tr.source->name, j)) continue;
      m.known.insert(key);
      auto off = m.offsets.find(key);
      m.sources.push_back(std::make_unique<Impl::Source>(
          Impl::Source{t, key, JournalCursor(m.store->dir(), j, off == m.offsets.end() ? 0 : off->second)}));
    }
  }

  // The batch: ready documents in order of (timestamp + delay).
  struct Item {
    size_t source;
    uint64_t offset;  // where the document starts in its journal
    std::string line;
  };
  std::vector<Item> items;
  int64_t now = m.now();
  next_ready_ = 0;
  while (items.size() < max_docs) {
    Impl::Source* best = nullptr;
    size_t best_index = 0;
    for (size_t i = 0; i < m.sources.size(); ++i) {
      Impl::Source& s = *m.sources[i];
      auto head = committed.heads.find(s.cursor.journal());
      if (head == committed.heads.end()) continue;
      if (!s.peeked) {
        std::string_view line;
        auto p = s.cursor.Peek(head->second, &line);
        if (!p) return p.error();
        if (!p.value()) continue;
        s.peeked = true;
        s.ready_at = doc::ClockToUnixNanos(ClockOfLine(line)) +
                     d.transforms[s.transform].read_delay_seconds * int64_t{1000000000};
      }
      if (s.ready_at > now) {
        if (next_ready_ == 0 || s.ready_at < next_ready_) next_ready_ = s.ready_at;
        continue;
      }
      if (!best || s.ready_at < best->ready_at) {
        best = &s;
        best_index = i;
      }
    }
    if (!best) break;
    std::string_view line;
    auto head = committed.heads.find(best->cursor.journal());
    auto p = best->cursor.Peek(head->second, &line);
    if (!p) return p.error();
    items.push_back({best_index, best->cursor.offset(), std::string(line)});
    best->cursor.Pop();
    best->peeked = false;
  }
  if (items.empty()) return uint64_t{0};

  auto where = [&](size_t i) {
    const Impl::Source& s = *m.sources[items[i].source];
    return fmt::format("derivation `{}`, transform `{}`: the document at offset {} of journal {}",
                       d.collection->name, d.transforms[s.transform].name, items[i].offset, s.cursor.journal());
  };
  auto fail = [&](Error e) -> Result<uint64_t> {
    auto aborted = m.store->Abort();
    (void)aborted;  // the error at hand is the one to report
    return e;
  };

  // A document the transform cannot process (its source schema refuses it, a lambda fails
  // on it alone, an output of it is invalid or does not reduce) halts the derivation,
  // unless the transform has `deadLetters`: then it is left out of the transaction and
  // written there with its error. Lambdas and reductions run over the batch, so a failure
  // found in a later phase undoes the registers, leaves the document out, drops the
  // documents after it from the transaction (they are read again by the next one) and runs
  // the rest again.
  bool divertable = false;
  for (const auto& tr : d.transforms) divertable = divertable || tr.dead_letters != nullptr;
  std::map<size_t, std::string> dead;  // item → its error
  auto transform_of = [&](size_t i) -> const Transform& {
    return d.transforms[m.sources[items[i].source]->transform];
  };

  // Parse the sources; check `source.schema`.
  Arena scratch(1 << 20);
  std::vector<doc::Value> sources(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    rapidjson::Document parsed(&scratch);
    doc::ParseError perr;
    if (!doc::ParseStoredDocument(items[i].line, &parsed, &perr)) {
      return fail(Error::Env(fmt::format("{} is malformed: {} (offset {} within it)", where(i), perr.message, perr.offset)));
    }
    sources[i] = std::move(static_cast<doc::Value&>(parsed));
    const Transform& tr = transform_of(i);
    if (tr.source_schema) {
      auto errors = tr.source_schema->Validate(sources[i], scratch);
      if (!errors.empty()) {
        std::string message = fmt::format(
            "{} does not validate against the transform's source schema: {}", where(i),
            schema::FormatValidationErrors(errors, sources[i], 3, tr.source_annotations.get()));
        if (!tr.dead_letters) return fail(Error::User(std::move(message)));
        dead[i] = std::move(message);
      }
    }
  }

  // One run over the batch, without the dead items. An error about one item sets
  // `*failed` to it (else it is left at items.size()).
  std::vector<std::vector<size_t>> by_transform;
  std::unordered_map<std::string, std::optional<doc::Value>> undo;  // registers before the run
  std::unordered_set<std::string> touched;
  std::unique_ptr<reduce::Combiner> combiner;
  auto run = [&](size_t* failed) -> Result<bool> {
    by_transform.assign(d.transforms.size(), {});
    for (size_t i = 0; i < items.size(); ++i) {
      if (!dead.count(i)) by_transform[m.sources[items[i].source]->transform].push_back(i);
    }
    // Lambda calls are batched per transform; `rows` of a transform are its items, in order.
    auto invoke = [&](size_t t, bool publish, const std::vector<lambda::Row>& rows,
                      doc::Allocator& alloc, lambda::Outputs* out) -> Result<bool> {
      const Transform& tr = d.transforms[t];
      const char* which = publish ? "publish" : "update";
      int row = -1;
      auto r = (publish ? tr.publish : tr.update)->Invoke(rows, alloc, out, &row);
      if (!r) {
        if (row >= 0 && static_cast<size_t>(row) < by_transform[t].size()) {
          size_t i = by_transform[t][static_cast<size_t>(row)];
          // A lambda's error names the row it failed on, but a timeout only the first row of
          // the chunk that was running: before a document is left out for it, the lambda
          // must fail on that document alone.
          if (tr.dead_letters && r.error().code == Error::Code::kUser) {
            lambda::Outputs alone;
            int alone_row = -1;
            auto again = (publish ? tr.publish : tr.update)
                             ->Invoke({rows[static_cast<size_t>(row)]}, alloc, &alone, &alone_row);
            if (!again && again.error().code == Error::Code::kUser) {
              *failed = i;
              return Error::User(fmt::format("{}: the {} lambda failed: {}", where(i), which,
                                             again.error().message));
            }
          }
          return Error{r.error().code, fmt::format("{}: the {} lambda failed: {}", where(i), which,
                                                   r.error().message)};
        }
        // The whole batch failed: name where it starts.
        size_t first = by_transform[t].front();
        const Impl::Source& s = *m.sources[items[first].source];
        return Error{r.error().code, fmt::format("derivation `{}`, transform `{}`: the batch of {} "
                                                 "document{} starting at offset {} of "
                                                 "journal {}: the {} lambda failed: {}",
                                                 d.collection->name, tr.name, rows.size(),
                                                 rows.size() == 1 ? "" : "s", items[first].offset,
                                                 s.cursor.journal(), which, r.error().message)};
      }
      if (out->size() != rows.size()) {
        return Error::Internal(
            fmt::format("derivation `{}`, transform `{}`: {} outputs for {} rows",
                        d.collection->name, tr.name, out->size(), rows.size()));
      }
      return true;
    };

    // Updates see only their source, so a whole batch runs at once.
    std::vector<lambda::Outputs> updates(d.transforms.size());
    for (size_t t = 0; t < d.transforms.size(); ++t) {
      if (!d.transforms[t].update || by_transform[t].empty()) continue;
      std::vector<lambda::Row> rows;
      rows.reserve(by_transform[t].size());
      for (size_t i : by_transform[t]) rows.push_back({&sources[i], nullptr, nullptr});
      auto r = invoke(t, false, rows, scratch, &updates[t]);
      if (!r) return r;
    }

    // Registers, in document order: each update output is validated and reduced in; a
    // publishing transform records `previous` and `register` as they are for its document.
    std::vector<doc::Value> previous(items.size()), after(items.size());
    std::vector<size_t> position(items.size());  // index of item i within its transform's rows
    for (size_t t = 0; t < by_transform.size(); ++t) {
      for (size_t k = 0; k < by_transform[t].size(); ++k) position[by_transform[t][k]] = k;
    }
    std::string key;
    for (size_t i = 0; i < items.size(); ++i) {
      if (dead.count(i)) continue;
      size_t t = m.sources[items[i].source]->transform;
      const Transform& tr = d.transforms[t];
      key.clear();
      doc::PackKey(sources[i], tr.shuffle, &key);
      auto it = m.registers.find(key);
      const doc::Value& current =
          it == m.registers.end() ? static_cast<const doc::Value&>(m.initial) : it->second;
      if (tr.publish) previous[i] = doc::Copy(current, scratch);
      if (tr.update) {
        auto& outs = updates[t][position[i]];
        if (!outs.empty()) {
          if (divertable && !undo.count(key)) {
            undo.emplace(key, it == m.registers.end()
                                  ? std::nullopt
                                  : std::optional<doc::Value>(doc::Copy(it->second, scratch)));
          }
          if (it == m.registers.end()) {
            it = m.registers.emplace(key, doc::Value()).first;
            it->second = doc::Copy(m.initial, *m.arena);
          }
          for (auto& u : outs) {
            if (d.register_validator) {
              auto errors = d.register_validator->Validate(u, scratch);
              if (!errors.empty()) {
                *failed = i;
                return Error::User(fmt::format(
                    "{}: an update output does not validate against the register schema: {}",
                    where(i),
                    schema::FormatValidationErrors(errors, u, 3, d.register_annotations.get())));
              }
            }
            auto r = d.register_reducer->Reduce(it->second, u, true, *m.arena, true);
            if (!r) {
              *failed = i;
              return Error::User(
                  fmt::format("{}: cannot reduce an update output into the register: {}", where(i),
                              r.error().message));
            }
          }
          touched.insert(key);
        }
      }
      if (tr.publish) {
        after[i] = doc::Copy(
            it == m.registers.end() ? static_cast<const doc::Value&>(m.initial) : it->second,
            scratch);
      }
    }

    // Publishes, batched per transform, combined by the derived key in document order.
    reduce::CombinerOptions copts;
    copts.spill = true;
    combiner = std::make_unique<reduce::Combiner>(d.collection->reducer, d.collection->key, copts);
    std::vector<lambda::Outputs> published(d.transforms.size());
    for (size_t t = 0; t < d.transforms.size(); ++t) {
      if (!d.transforms[t].publish || by_transform[t].empty()) continue;
      std::vector<lambda::Row> rows;
      rows.reserve(by_transform[t].size());
      for (size_t i : by_transform[t]) rows.push_back({&sources[i], &after[i], &previous[i]});
      auto r = invoke(t, true, rows, combiner->allocator(), &published[t]);
      if (!r) return r;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (dead.count(i)) continue;
      size_t t = m.sources[items[i].source]->transform;
      if (!d.transforms[t].publish) continue;
      auto& outs = published[t][position[i]];
      // All of a document's outputs are checked before any is combined, so that one left
      // out leaves nothing of it behind (a failed reduction below ends the run).
      for (auto& out : outs) {
        if (!out.IsObject()) {
          *failed = i;
          return Error::User(fmt::format("{}: the publish lambda returned {}, not an object",
                                         where(i), doc::KindName(out)));
        }
        size_t size = 0;
        if (size_t limit = doc::ParseLimits{}.max_bytes; !doc::FitsJsonLimit(out, limit, &size)) {
          *failed = i;
          return Error::User(fmt::format(
              "{}: the publish lambda returned a document of {} bytes as JSON, over the "
              "limit of {} MiB",
              where(i), size, limit >> 20));
        }
        auto v = d.collection->Validate(out, combiner->allocator());
        if (!v) {
          *failed = i;
          return Error::User(fmt::format("{}: a published {}", where(i), v.error().message));
        }
      }
      for (auto& out : outs) {
        auto a = combiner->Add(out);
        if (!a) {
          *failed = i;
          return Error{
              a.error().code,
              fmt::format("{}: cannot reduce a published document into collection `{}`: {}",
                          where(i), d.collection->name, a.error().message)};
        }
      }
    }
    return true;
  };

  for (;;) {
    size_t failed = items.size();
    undo.clear();
    touched.clear();
    auto r = run(&failed);
    if (r) break;
    if (failed >= items.size() || !transform_of(failed).dead_letters ||
        r.error().code != Error::Code::kUser) {
      return fail(r.error());
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
    std::map<size_t, uint64_t> rewind;  // source → offset of its first document dropped
    for (size_t i = items.size(); i-- > failed + 1;) rewind[items[i].source] = items[i].offset;
    for (const auto& [s, offset] : rewind) {
      const Impl::Source& src = *m.sources[s];
      m.sources[s] = std::make_unique<Impl::Source>(Impl::Source{
          src.transform, src.key, JournalCursor(m.store->dir(), src.cursor.journal(), offset)});
    }
    items.resize(failed + 1);
    sources.resize(failed + 1);
  }

  // The dead letters, in the same transaction as the rest.
  for (const auto& [i, error] : dead) {
    const Transform& tr = transform_of(i);
    const Impl::Source& s = *m.sources[items[i].source];
    DeadLetter letter{d.collection->name, "derivation",    tr.name, tr.source->name,
                      s.cursor.journal(), items[i].offset, error,   &sources[i]};
    auto a = AppendDeadLetter(*tr.dead_letters, letter, m.stamper, m.store);
    if (!a) return fail(Error{a.error().code, fmt::format("{}: {}", where(i), a.error().message)});
    ++stats_.dead_letters;
    Log(LogLevel::kWarn,
        fmt::format("{}: sent to dead letters `{}`", where(i), tr.dead_letters->name),
        {{"error", error}});
  }

  // Append outputs, register changes and the checkpoint; commit them together.
  std::string line, journal;
  auto drained = combiner->Drain(false, [&](std::string_view, doc::Value& out) -> Result<bool> {
    auto j = d.collection->JournalOf(out, &journal);
    if (!j) return j;
    line.clear();
    AppendStamped(out, m.stamper->Next(), &line);
    ++stats_.published;
    stats_.bytes += line.size();
    return m.store->Append(journal, d.collection->journal, line);
  });
  if (!drained) return fail(drained.error());
  if (!touched.empty()) {
    std::string records;
    std::vector<std::string> keys(touched.begin(), touched.end());
    std::sort(keys.begin(), keys.end());
    for (const auto& k : keys) {
      records += "{\"k\":";
      records += doc::KeyToJson(k);
      records += ",\"r\":";
      doc::AppendJson(m.registers[k], &records);
      records += "}\n";
    }
    store::JournalSpec spec;
    auto a = m.store->Append(d.RegisterJournal(), spec, records);
    if (!a) return fail(a.error());
  }
  std::map<std::string, uint64_t> offsets;
  for (const auto& src : m.sources) offsets[src->key] = src->cursor.offset();
  auto committed_now = m.store->Commit({{d.CheckpointKey(), EncodeOffsets(offsets)}});
  if (!committed_now) return committed_now.error();
  for (const auto& s : m.sources) m.offsets[s->key] = s->cursor.offset();
  m.MaybeCompact();
  stats_.read += items.size();
  ++stats_.transactions;
  return static_cast<uint64_t>(items.size());
}

}  // namespace flow::runtime
