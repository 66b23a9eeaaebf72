#include "runtime/materialize.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "doc/pack.h"
#include "doc/parse.h"
#include "materialize/postgres.h"
#include "materialize/sqlite.h"
#include "reduce/combiner.h"
#include "runtime/checkpoint.h"
#include "runtime/combine.h"
#include "runtime/cursor.h"
#include "runtime/dead_letter.h"
#include "runtime/parallel.h"
#include "runtime/source_reader.h"

namespace flow::runtime {

Result<std::unique_ptr<materialize::Driver>> ConnectTarget(const Materialization& m) {
  if (m.kind == "sqlite") return materialize::ConnectSqlite(m.address, m.target);
  if (m.kind == "postgres") return materialize::ConnectPostgres(m.address, m.target);
  return Error::User(fmt::format("target `{}` has an unknown kind `{}`", m.target, m.kind));
}

namespace {

// Where documents of a transaction were read, as the tags its combiners keep of each key's
// latest document (reduce::Combiner::AddCopy): the journal's number in `journals` plus one,
// above the offset's 48 bits; 0 when unknown.
struct ReadAt {
  static constexpr int kOffsetBits = 48;
  std::vector<std::string> journals;
  std::map<const std::string*, uint64_t> numbers;  // journal → its number plus one

  uint64_t Tag(const std::string* journal, uint64_t offset) {
    if (offset >> kOffsetBits) return 0;
    auto [it, added] = numbers.try_emplace(journal, journals.size() + 1);
    if (added) journals.push_back(*journal);
    if (it->second >> (64 - kOffsetBits)) return 0;
    return (it->second << kOffsetBits) | offset;
  }
  // The journal and offset of `tag`, or null.
  const std::string* Find(uint64_t tag, uint64_t* offset) const {
    uint64_t n = tag >> kOffsetBits;
    if (n == 0 || n > journals.size()) return nullptr;
    *offset = tag & ((uint64_t{1} << kOffsetBits) - 1);
    return &journals[n - 1];
  }
};

// Where an error about the key `packed` of binding `b` happened, for messages (SPEC 9).
// `tag` is where its last document was read (ReadAt).
std::string Where(const Materialization& m, size_t b, std::string_view packed, const ReadAt& at,
                  uint64_t tag) {
  const auto& binding = m.bindings[b];
  std::string out = fmt::format("materialization `{}`, table `{}`: collection `{}`, key {}", m.name,
                                binding.table.name, binding.source->name, doc::KeyToJson(packed));
  uint64_t offset = 0;
  if (const std::string* journal = at.Find(tag, &offset)) {
    out += fmt::format(" (its last document read: offset {} of journal {})", offset, *journal);
  }
  return out;
}

// Documents of a materialization's transaction, as its reader gives them, and once
// processed their parsed documents by partition of their keys.
struct SourceChunk : PipelineItem {
  std::string text;  // the lines, each followed by a NUL byte
  struct Line {
    size_t begin, size;
    size_t binding;
    const std::string* journal;
    uint64_t offset;
    uint64_t tag;  // ReadAt
  };
  std::vector<Line> lines;
  uint64_t first = 0;  // the ordinal of lines[0] in the transaction
  PartitionedDocs docs;  // a document left out is a dead letter, not combined
};

// `e`, whose message names materialization `m` as written: so recorded in its context, so
// that no caller names it again.
Error Named(const Materialization& m, Error e) {
  return std::move(e).About(fmt::format("materialization `{}`", m.name));
}

}  // namespace

struct MaterializeTask::Impl {
  store::Store* store;
  Stamper* stamper = nullptr;
  std::unique_ptr<materialize::Driver> driver;
  // The bound collections' documents; checkpoint keys are the table, a tab, and the
  // journal. Created by Open.
  std::unique_ptr<SourceReader> reader;

  // A transaction whose Store runs on its own thread while the next one reads (the
  // driver is only touched by that thread until it is joined). Its rows point into `arena`.
  struct Pending {
    rapidjson::Document arena;
    // Where the documents drained on several threads are: copies (one allocator per
    // partition), or the combiners they were drained from, which keep them.
    std::vector<std::unique_ptr<doc::Allocator>> drained;
    std::vector<std::unique_ptr<PartitionedCombiner>> kept;
    std::vector<doc::Value> docs;  // owned by `arena`, `drained` and `kept`
    std::vector<materialize::Driver::Row> rows;
    std::map<std::string, uint64_t> offsets;  // the checkpoint it stores
    std::string checkpoint;                   // that, encoded with the data's identity
    ReadAt read_at;                           // for messages: where
    std::vector<uint64_t> tags;               // parallel to `rows`: ReadAt tags
    uint64_t read = 0;
    std::thread thread;
    std::atomic<bool> stored{false};  // set by `thread` once Store returned
    Result<bool> result = true;
    size_t failed = 0;  // when `result` is an error about one row: its index into `rows`
    uint64_t dead_letters = 0;
  };
  std::unique_ptr<Pending> pending;

  // Stores `p` (on the store thread, or after a refused row was left out).
  static void StorePending(Pending* p, materialize::Driver* driver, const Materialization& spec) {
    try {
      p->failed = p->rows.size();
      p->result = driver->Store(p->rows, p->checkpoint, &p->failed);
      if (!p->result && p->failed < p->rows.size()) {
        // Name the collection and the last document read of the key.
        const auto& row = p->rows[p->failed];
        std::string packed;
        doc::PackKey(*row.document, spec.bindings[row.table].source->key, &packed);
        p->result = Named(spec, Error{p->result.error().code,
                                      fmt::format("{}: {}",
                                                  Where(spec, row.table, packed, p->read_at,
                                                        p->tags[p->failed]),
                                                  p->result.error().message)});
      }
    } catch (const std::exception& e) {  // (out of memory): not committed
      p->result = Error::Internal(fmt::format("storing a transaction: {}", e.what()));
      p->failed = p->rows.size();
    }
  }

  // What the target holds as its checkpoint: read by Open, then each transaction's.
  std::string target_checkpoint;
  // Set by Open when the target's last transaction was not committed after its dead letters
  // were: the offsets the next transaction must read up to, so that it is that transaction
  // again, with the same documents and so the same dead letters.
  std::optional<std::map<std::string, uint64_t>> replay;

  // The store checkpoint under which the dead letters of a target transaction record it:
  // `{"from": <the target's checkpoint before it>, "offsets": {...its end}}`.
  static std::string IntentKey(const Materialization& spec) { return "dead-letters/" + spec.name; }

  // Commits `letters` (each with its binding) to the store, before the target transaction
  // that leaves their keys out and ends at `offsets`. With them goes the intent to commit
  // that transaction: a crash or an environment error before it does makes the next
  // transaction read exactly the same documents (see `replay`), so its dead letters are the
  // same, with the same keys, and the collection holds each once.
  Result<bool> CommitDeadLetters(const Materialization& spec,
                                 const std::vector<std::pair<size_t, DeadLetter>>& letters,
                                 const std::map<std::string, uint64_t>& offsets) {
    if (letters.empty()) return true;
    if (!stamper) return Error::Internal("a materialization task with dead letters has no stamper");
    for (const auto& [b, letter] : letters) {
      auto a = AppendDeadLetter(*spec.bindings[b].dead_letters, letter, stamper, store);
      if (!a) {
        static_cast<void>(store->Abort());
        return a.error();
      }
      Log(LogLevel::kWarn,
          fmt::format("materialization `{}`, table `{}`: sent to dead letters `{}`", spec.name,
                      letter.binding, spec.bindings[b].dead_letters->name),
          {{"error", letter.error}});
    }
    rapidjson::Document intent;
    intent.Parse(EncodeCheckpoint(runtime::Checkpoint{offsets, {}, {}, {}}).c_str());
    intent.AddMember("from", rapidjson::Value(target_checkpoint.c_str(), intent.GetAllocator()),
                     intent.GetAllocator());
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    intent.Accept(w);
    auto c = store->Commit({{IntentKey(spec), std::string(sb.GetString(), sb.GetSize())}});
    if (!c) return c.error();
    return true;
  }

  // The transaction to read again, when the store's intent follows the target's checkpoint.
  void FindReplay(const Materialization& spec) {
    replay.reset();
    const auto& checkpoints = store->committed().checkpoints;
    auto it = checkpoints.find(IntentKey(spec));
    if (it == checkpoints.end()) return;
    rapidjson::Document intent;
    intent.Parse(it->second.c_str());
    runtime::Checkpoint offsets;
    if (intent.HasParseError() || !intent.IsObject() || !intent.HasMember("from") ||
        !intent["from"].IsString() || intent["from"].GetString() != target_checkpoint ||
        !DecodeCheckpoint(it->second, &offsets)) {
      return;
    }
    replay = std::move(offsets.offsets);
  }

  // A dead letter of `document`, a document of binding `b` whose key is `packed`.
  // `tag`: where its last document was read (ReadAt).
  static DeadLetter KeyLetter(const Materialization& spec, size_t b, const ReadAt& at, uint64_t tag,
                              std::string error, const doc::Value* document) {
    const auto& binding = spec.bindings[b];
    DeadLetter letter{
        spec.name,        "materialization", binding.table.name, binding.source->name, "", 0,
        std::move(error), document};
    if (const std::string* journal = at.Find(tag, &letter.offset)) letter.journal = *journal;
    return letter;
  }

  // Waits for the pending Store; once committed, the checkpoint and stats move on. A row
  // refused by the database whose binding has dead letters goes there, and the rest is
  // stored again without it.
  Result<bool> Finish(const Materialization& spec, MaterializeStats* stats) {
    if (!pending) return true;
    if (pending->thread.joinable()) pending->thread.join();
    std::unique_ptr<Pending> p = std::move(pending);
    while (!p->result && p->failed < p->rows.size() &&
           p->result.error().code == Error::Code::kUser &&
           spec.bindings[p->rows[p->failed].table].dead_letters) {
      const auto& row = p->rows[p->failed];
      auto c = CommitDeadLetters(spec,
                                 {{row.table, KeyLetter(spec, row.table, p->read_at, p->tags[p->failed],
                                                        p->result.error().message, row.document)}},
                                 p->offsets);
      if (!c) return c.error();
      ++p->dead_letters;
      p->rows.erase(p->rows.begin() + static_cast<std::ptrdiff_t>(p->failed));
      p->tags.erase(p->tags.begin() + static_cast<std::ptrdiff_t>(p->failed));
      StorePending(p.get(), driver.get(), spec);
    }
    if (!p->result) return p->result.error();
    target_checkpoint = p->checkpoint;
    stats->dead_letters += p->dead_letters;
    stats->read += p->read;
    stats->stored += p->rows.size();
    ++stats->transactions;
    return true;
  }
};

MaterializeTask::MaterializeTask(std::shared_ptr<const Materialization> m, store::Store* store,
                                 std::unique_ptr<materialize::Driver> driver, Stamper* stamper, Clock clock)
    : m_(std::move(m)), impl_(std::make_unique<Impl>()), clock_(std::move(clock)) {
  impl_->store = store;
  impl_->stamper = stamper;
  impl_->driver = std::move(driver);
}

MaterializeTask::~MaterializeTask() { Close(); }

const std::string& MaterializeTask::name() const { return m_->name; }

void MaterializeTask::Close() {
  if (impl_->pending && impl_->pending->thread.joinable()) impl_->pending->thread.join();
}

Result<bool> MaterializeTask::Checkpoint() { return impl_->Finish(*m_, &stats_); }

TaskCounters MaterializeTask::counters() const {
  TaskCounters c;
  c.in = stats_.read;
  c.out = stats_.stored;
  c.dead_letters = stats_.dead_letters;
  c.transactions = stats_.transactions;
  return c;
}

ReadProgress MaterializeTask::progress() const {
  ReadProgress p;
  const auto& heads = impl_->store->committed().heads;
  if (impl_->reader) impl_->reader->AddProgress(heads, &p);
  return p;
}

std::string BackfillCommand(const Materialization& m) {
  if (m.name.starts_with("materialize/") && m.bindings.size() == 1) {
    return fmt::format("flowctl materialize --target {} --collection {} --table-name {} --backfill", m.target,
                       m.bindings[0].source->name, m.bindings[0].table.name);
  }
  return "flowctl run --backfill " + m.name;
}

namespace {

// How a task opens `m` over `ledger`: a checkpoint of other data is refused before the
// target is touched; a missing table counts as filled when the checkpoint read into it.
materialize::OpenOptions OpenOptionsOf(const Materialization& m, const store::LedgerState& ledger, bool rebuild) {
  materialize::OpenOptions options;
  options.rebuild = rebuild;
  options.reset_checkpoint = EncodeCheckpoint(CheckpointOf({}, ledger));
  options.backfill_hint = BackfillCommand(m);
  options.accept = [&m, &ledger](const std::string& stored) -> Result<bool> {
    runtime::Checkpoint cp;
    if (stored.empty()) return true;
    if (!DecodeCheckpoint(stored, &cp)) {
      return Named(m, Error::Env(fmt::format("materialization `{}`: the checkpoint in target `{}` is malformed",
                                             m.name, m.target)));
    }
    if (std::string why = CheckpointMismatch(cp, ledger, false); !why.empty()) {
      return Named(m, Error::User(fmt::format(
                          "materialization `{}`: {}; its tables hold what was read there, so nothing was changed. "
                          "Back-fill it to rebuild its tables from this data directory: {}",
                          m.name, why, BackfillCommand(m))));
    }
    return true;
  };
  options.filled = [&ledger](const std::string& stored, const std::string& table) {
    runtime::Checkpoint cp;
    if (!DecodeCheckpoint(stored, &cp)) return true;
    for (const auto& [key, offset] : cp.offsets) {
      if (key.starts_with(table + "\t") && offset > store::GenerationOf(ledger, key.substr(table.size() + 1)).begin) {
        return true;
      }
    }
    return false;
  };
  return options;
}

}  // namespace

Result<std::vector<std::string>> PlanTables(const Materialization& m, const store::LedgerState& ledger, bool rebuild) {
  auto driver = ConnectTarget(m);
  if (!driver) return driver.error();
  std::vector<materialize::Table> tables;
  for (const auto& b : m.bindings) tables.push_back(b.table);
  return (*driver)->Plan(m.name, tables, OpenOptionsOf(m, ledger, rebuild || ledger.checkpoints.count(RebuildKey(m.name)) > 0));
}

std::string RebuildKey(const std::string& name) { return "rebuild/" + name; }

Result<bool> MaterializeTask::Open() {
  std::vector<materialize::Table> tables;
  for (const auto& b : m_->bindings) tables.push_back(b.table);
  const store::LedgerState& ledger = impl_->store->committed();
  bool requested = ledger.checkpoints.count(RebuildKey(m_->name)) > 0;
  materialize::OpenOptions options = OpenOptionsOf(*m_, ledger, rebuild_ || requested);
  auto checkpoint = impl_->driver->Open(m_->name, tables, options);
  if (!checkpoint) return checkpoint.error();
  if (requested) {  // rebuilt: the request is done (dying before this only rebuilds again)
    if (auto done = impl_->store->Commit({{RebuildKey(m_->name), ""}}); !done) return done.error();
  }
  runtime::Checkpoint cp;
  if (!checkpoint->empty() && !DecodeCheckpoint(*checkpoint, &cp)) {
    return Named(*m_, Error::Env(fmt::format("materialization `{}`: the checkpoint in target `{}` is malformed",
                                             m_->name, m_->target)));
  }
  impl_->target_checkpoint = *checkpoint;
  impl_->FindReplay(*m_);
  std::vector<SourceReader::Binding> bindings;
  for (const auto& b : m_->bindings) bindings.push_back({b.source->name, {}, 0, b.table.name});
  impl_->reader = std::make_unique<SourceReader>(impl_->store->dir(), std::move(bindings), std::move(cp.offsets));
  return true;
}

Result<uint64_t> MaterializeTask::Step(uint64_t max_docs) {
  auto n = RunTransaction(max_docs);
  // After an error the task is dropped: the previous transaction's Store still ends (and
  // counts in the stats when it committed).
  if (!n) static_cast<void>(impl_->Finish(*m_, &stats_));
  return n;
}

// One transaction, phase by phase: Read combines what is committed (see TransactionBounds),
// then, once the previous transaction has committed, Reduce loads the stored document of
// every key and reduces into it, CommitDeadLetters commits the keys and documents left out
// with the intent to commit the rest, and Hand gives the rows to the store thread.
//
// A document that does not combine with the key's others of the transaction, in a binding
// with dead letters, is left out: the combined documents may hold part of it, so the
// transaction is read again from its start without it. A key that fails later (loading,
// reducing into the stored document, finalizing), in a binding with dead letters, is left
// out of the transaction (its row keeps what it held) and goes to dead letters with its
// combined document.
struct MaterializeTask::Transaction {
  const Materialization& spec;
  Impl& impl;
  const Clock& clock;
  MaterializeStats* stats;  // `loaded` counts as keys are loaded
  uint64_t max_docs;
  // A transaction to read again exactly (see Impl::replay) reads up to its end, whatever
  // its size or time.
  bool replaying = false;

  // Dead letters of this transaction, with their bindings; their documents live in
  // `letters_arena`.
  rapidjson::Document letters_arena;
  std::vector<std::pair<size_t, DeadLetter>> letters;
  std::map<std::pair<std::string, uint64_t>, std::string> left_out;  // (journal, offset) → error
  std::map<std::string, uint64_t> start;  // the reader's offsets at the transaction's start

  // Per binding, its documents combined by key, in partitions fed in read order by the
  // threads of the reading (see ReadOnce).
  std::vector<std::unique_ptr<PartitionedCombiner>> combiners;
  // Where the documents were read: the combiners keep, per key, the tag of its last document
  // read, so that an error found later in the transaction (reducing into the stored
  // document, storing the row) names a document of the key (SPEC 9).
  ReadAt read_at;
  std::string packed;  // scratch: a packed key
  uint64_t read = 0;
  unsigned threads = 1;

  // What Reduce makes of the combined documents, handed to the store thread by Hand.
  std::unique_ptr<Impl::Pending> next;
  std::vector<size_t> doc_binding;  // per document: its binding
  std::vector<bool> dropped;        // per document: left out
  std::vector<uint64_t> doc_tags;   // per document: where its key's last document was read

  Transaction(const Materialization& m, Impl& i, const Clock& c, MaterializeStats* s, uint64_t max,
              unsigned n)
      : spec(m),
        impl(i),
        clock(c),
        stats(s),
        max_docs(max),
        threads(std::max(1u, n)) {
    const auto& committed = impl.store->committed();
    replaying = impl.replay.has_value();
    impl.reader->Limit(impl.replay);
    impl.replay.reset();
    impl.reader->Discover(committed);
    impl.reader->Limit(std::nullopt);  // from the next Discover on
    start = impl.reader->Offsets();
  }

  // A copy of `v` that lives as long as the transaction's dead letters.
  const doc::Value* Keep(const doc::Value& v) {
    return new (letters_arena.GetAllocator().Malloc(sizeof(doc::Value)))
        doc::Value(v, letters_arena.GetAllocator());
  }

  // Combines what is committed, reading again from the start while a document is left out.
  Result<bool> Read() {
    for (;;) {
      auto r = ReadOnce();
      if (!r) return r.error();
      if (r.value()) return true;
      impl.reader->Rewind(start);  // read again from the start of the transaction
    }
  }

  // Combines what is committed, in commit order across journals (UUID clocks). Returns
  // false to read the transaction again (documents were left out).
  //
  // The calling thread reads the documents into chunks; the chunks are parsed on any of
  // `threads` threads, each document's key assigned a partition; each partition of each
  // binding's combiner is fed its documents strictly in read order (OrderedPipeline), so
  // that every key is combined exactly as one thread would have combined it. A document
  // that does not combine, in a binding with dead letters, is left out: a reduction error
  // is about one key, so each partition's first such document is one the single-threaded
  // reading would also have left out, and all of them are left out at once.
  Result<bool> ReadOnce() {
    constexpr size_t kParts = PartitionedCombiner::kPartitions;
    combiners.clear();
    for (const auto& b : spec.bindings) {
      combiners.push_back(
          std::make_unique<PartitionedCombiner>(*b.source, reduce::CombinerOptions{}));
    }
    letters.clear();
    read_at = ReadAt();
    read = 0;

    FirstError first;  // positions are the documents' ordinals in the transaction
    std::mutex mu;     // guards the three below
    struct Found {
      uint64_t ordinal;
      size_t binding;
      DeadLetter letter;
    };
    std::vector<Found> found;  // dead letters of documents left out before
    struct Refused {
      std::pair<std::string, uint64_t> at;  // (journal, offset)
      std::string message;
    };
    std::vector<Refused> refused;  // documents to leave out now
    std::atomic<bool> leaving_out{false};
    std::array<bool, kParts> stopped{};  // a partition that refused a document
    // Per partition, its combiners' memory and keys after the last chunk it consumed.
    std::array<std::atomic<size_t>, kParts> memory{}, keys{};

    auto process = [&](PipelineItem& item) {
      auto& chunk = static_cast<SourceChunk&>(item);
      rapidjson::Document parsed(&chunk.docs.arena);
      for (size_t i = 0; i < chunk.lines.size(); ++i) {
        const auto& line = chunk.lines[i];
        if (first.Before(chunk.first + i)) return;
        doc::ParseError perr;
        if (!doc::ParseStoredDocument(std::string_view(chunk.text).substr(line.begin, line.size),
                                      &parsed, &perr)) {
          first.Record(chunk.first + i,
                       Named(spec, Error::Env(fmt::format(
                                       "materialization `{}`: the document at offset {} of journal "
                                       "{} is malformed: {}",
                                       spec.name, line.offset, *line.journal, perr.message))));
          return;
        }
        auto& d = chunk.docs.Add(parsed, i, spec.bindings[line.binding].source->key);
        d.left_out = !left_out.empty() && left_out.count({*line.journal, line.offset}) > 0;
        d.binding = static_cast<uint32_t>(line.binding);
        d.tag = line.tag;
      }
    };
    auto consume = [&](size_t p, PipelineItem& item) {
      auto& chunk = static_cast<SourceChunk&>(item);
      auto combiner_of = [&](const PartitionedDocs::Doc& d) -> reduce::Combiner& {
        return combiners[d.binding]->partition(p);
      };
      chunk.docs.Consume(
          p, combiner_of,
          [&](PartitionedDocs::Doc& d) {
            uint64_t ordinal = chunk.first + d.line;
            if (stopped[p] || first.Before(ordinal)) return false;
            const auto& line = chunk.lines[d.line];  // (read only for a dead letter or an error)
            const auto& binding = spec.bindings[d.binding];
            if (d.left_out) {
              std::lock_guard<std::mutex> l(mu);
              found.push_back(
                  {ordinal, line.binding,
                   DeadLetter{spec.name, "materialization", binding.table.name,
                              binding.source->name, *line.journal, line.offset,
                              left_out.at({*line.journal, line.offset}), Keep(d.value)}});
              return true;
            }
            auto a = combiner_of(d).AddCopy(d.value, chunk.docs.Key(d), d.key_hash, d.tag);
            if (!a) {
              std::string message = fmt::format(
                  "materialization `{}`, table `{}`: collection `{}`: the document at offset {} of "
                  "journal {}: {}",
                  spec.name, binding.table.name, binding.source->name, line.offset, *line.journal,
                  a.error().message);
              stopped[p] = true;  // its combiner is not used again
              if (!binding.dead_letters || a.error().code != Error::Code::kUser) {
                first.Record(ordinal, Named(spec, Error{a.error().code, std::move(message)}));
                return false;
              }
              std::lock_guard<std::mutex> l(mu);
              refused.push_back({{*line.journal, line.offset}, std::move(message)});
              leaving_out = true;
              return false;
            }
            return true;
          });
      size_t m = 0, k = 0;
      for (const auto& c : combiners) {
        m += c->partition(p).memory();
        k += c->partition(p).keys();
      }
      memory[p].store(m, std::memory_order_relaxed);
      keys[p].store(k, std::memory_order_relaxed);
    };

    PipelineOptions po;
    po.threads = threads;
    po.partitions = kParts;
    po.max_in_flight = 2 * threads;
    size_t target = ChunkTarget(reduce::CombinerOptions{}.memory_budget, threads);
    {
      OrderedPipeline pipeline(po, process, consume);
      // How much one transaction reads: see TransactionBounds. The combiners' figures lag
      // the reading by the chunks in flight.
      TransactionBounds bounds;
      auto reading_since = clock.steady();
      // Each chunk's text is reserved whole (growing it by doubling copied it several times).
      auto chunk = std::make_unique<SourceChunk>();
      chunk->text.reserve(target + target / 8);
      while ((replaying || read < max_docs) && !first.any() && !leaving_out) {
        if (!replaying && read % TransactionBounds::kWindow == TransactionBounds::kWindow - 1) {
          size_t m = 0, k = 0;
          for (size_t p = 0; p < kParts; ++p) {
            m += memory[p].load(std::memory_order_relaxed);
            k += keys[p].load(std::memory_order_relaxed);
          }
          bool storing = impl.pending && !impl.pending->stored.load(std::memory_order_acquire);
          if (bounds.Done(clock.steady() - reading_since, m, k, storing)) break;
        }
        SourceReader::Document d;
        auto p = impl.reader->Peek(SourceReader::kNoGate, &d);
        if (!p) {
          first.Record(read, p.error());
          break;
        }
        if (!p.value()) break;
        chunk->lines.push_back({chunk->text.size(), d.line.size(), d.binding, d.journal, d.offset,
                                read_at.Tag(d.journal, d.offset)});
        chunk->text.append(d.line);
        chunk->text.push_back('\0');
        impl.reader->Pop();
        ++read;
        if (chunk->text.size() >= target) {
          size_t lines = chunk->lines.size();
          pipeline.Push(std::move(chunk));
          chunk = std::make_unique<SourceChunk>();
          chunk->first = read;
          chunk->text.reserve(target + target / 8);
          chunk->lines.reserve(lines + lines / 8);
        }
      }
      if (!chunk->lines.empty()) pipeline.Push(std::move(chunk));
      pipeline.Finish();
    }
    if (first.any()) return first.error();
    if (!refused.empty()) {
      for (auto& r : refused) left_out[std::move(r.at)] = std::move(r.message);
      return false;
    }
    // The dead letters of documents left out, in read order.
    std::sort(found.begin(), found.end(),
              [](const Found& x, const Found& y) { return x.ordinal < y.ordinal; });
    for (auto& f : found) letters.push_back({f.binding, std::move(f.letter)});
    return true;
  }

  // Per binding: drains the combined documents, loads what is stored for their keys and
  // reduces into it, and finalizes the keys none was stored for; then the rows.
  Result<bool> Reduce() {
    next = std::make_unique<Impl::Pending>();
    next->read = read;
    std::vector<doc::Value>& docs = next->docs;
    for (size_t b = 0; b < spec.bindings.size(); ++b) {
      size_t first = docs.size();
      // Each partition's documents taken out on a thread of its own, then put in key order:
      // moved out of a combiner that keeps them (which the transaction then holds on to),
      // else copied (documents merged from spilled runs).
      constexpr size_t kParts = PartitionedCombiner::kPartitions;
      struct Taken {
        doc::Allocator* arena = nullptr;
        std::vector<std::pair<doc::Value, uint64_t>> docs;  // with their tags
      };
      std::array<Taken, kParts> taken;
      bool keep = combiners[b]->KeepDrained();
      for (auto& t : taken) {
        if (keep) break;
        next->drained.push_back(std::make_unique<doc::Allocator>());
        t.arena = next->drained.back().get();
      }
      auto drained = combiners[b]->DrainParallel(
          false, threads,
          [&](size_t p, std::string_view, doc::Value& d, uint64_t tag) {
            if (keep) {
              taken[p].docs.emplace_back(std::move(d), tag);
            } else {
              taken[p].docs.emplace_back(doc::Copy(d, *taken[p].arena), tag);
            }
          },
          [&](size_t p, size_t i) -> Result<bool> {
            docs.push_back(std::move(taken[p].docs[i].first));
            doc_binding.push_back(b);
            dropped.push_back(false);
            doc_tags.push_back(taken[p].docs[i].second);
            return true;
          });
      if (!drained) return drained.error();
      if (keep) next->kept.push_back(std::move(combiners[b]));
      if (docs.size() == first) continue;
      if (spec.bindings[b].table.delta_updates) continue;  // deltas are written as they are
      std::vector<bool> loaded(docs.size() - first, false);
      if (auto l = Load(b, first, &loaded); !l) return l.error();
      if (auto f = Finalize(b, first, loaded); !f) return f.error();
    }
    next->rows.reserve(docs.size());
    for (size_t i = 0; i < docs.size(); ++i) {
      if (dropped[i]) continue;
      next->rows.push_back({doc_binding[i], &docs[i]});
      next->tags.push_back(doc_tags[i]);
    }
    return true;
  }

  // Leaves document `i` of binding `b` out, a dead letter of it with error `e`, or returns
  // `e` when the binding has no dead letters.
  Result<bool> LeaveOut(size_t b, size_t i, Error e) {
    if (!spec.bindings[b].dead_letters || e.code != Error::Code::kUser) return e;
    doc::Value& d = next->docs[i];
    letters.push_back({b, Impl::KeyLetter(spec, b, read_at, doc_tags[i], e.message, Keep(d))});
    dropped[i] = true;
    return true;
  }

  // Loads the stored documents of binding `b`'s keys (its documents from `first` on) and
  // reduces each key's combined document into its stored one; `loaded` (indexed from
  // `first`) marks the keys loaded. A key the driver cannot load is left out, and the rest
  // loaded again.
  Result<bool> Load(size_t b, size_t first, std::vector<bool>* loaded) {
    std::vector<doc::Value>& docs = next->docs;
    const Collection& col = *spec.bindings[b].source;
    std::vector<const materialize::Column*> key_columns = spec.bindings[b].table.KeyColumns();
    std::vector<std::vector<const doc::Value*>> keys;
    std::vector<size_t> key_doc;  // per key: its document's index
    Result<bool> reduce_error = true;
    for (;;) {
      keys.clear();
      key_doc.clear();
      keys.reserve(docs.size() - first);
      key_doc.reserve(docs.size() - first);
      for (size_t i = first; i < docs.size(); ++i) {
        if (dropped[i] || (*loaded)[i - first]) continue;
        // The documents are out of the caches since they were combined: the members of
        // one a few places on start loading meanwhile.
        if (i + 4 < docs.size() && docs[i + 4].IsObject() && docs[i + 4].MemberCount() > 0)
          __builtin_prefetch(&*docs[i + 4].MemberBegin());
        std::vector<const doc::Value*> k;
        k.reserve(key_columns.size());
        for (const auto* kc : key_columns) k.push_back(doc::Lookup(docs[i], kc->location));
        keys.push_back(std::move(k));
        key_doc.push_back(i);
      }
      size_t failed_key = keys.size();
      auto l = impl.driver->Load(
          b, keys,
          [&](size_t k, std::string_view json) {
            if (!reduce_error) return;
            size_t i = key_doc[k];
            auto r = ReduceStored(b, i, json);
            if (!r) {
              reduce_error = r.error();
            } else if (r.value()) {
              (*loaded)[i - first] = true;
              ++stats->loaded;
            }
          },
          &failed_key);
      if (!reduce_error) return reduce_error.error();
      if (l) return true;
      if (failed_key >= keys.size()) return l.error();
      size_t i = key_doc[failed_key];
      packed.clear();
      doc::PackKey(docs[i], col.key, &packed);
      auto left = LeaveOut(
          b, i,
          Named(spec, Error{l.error().code,
                            fmt::format("{}: {}", Where(spec, b, packed, read_at, doc_tags[i]), l.error().message)}));
      if (!left) return left.error();
      // Load again without it, and without the keys already loaded and reduced.
    }
  }

  // Reduces document `i` of binding `b` into `json`, its key's stored document. Returns
  // false when the key is left out.
  Result<bool> ReduceStored(size_t b, size_t i, std::string_view json) {
    const auto& binding = spec.bindings[b];
    const Collection& col = *binding.source;
    doc::Value& d = next->docs[i];
    auto& allocator = next->arena.GetAllocator();
    rapidjson::Document stored(&allocator);
    stored.Parse<rapidjson::kParseFullPrecisionFlag>(json.data(), json.size());
    if (stored.HasParseError()) {
      return Named(spec, Error::Env(fmt::format("materialization `{}`: table `{}` holds a malformed flow_document",
                                                spec.name, binding.table.name)));
    }
    doc::Value base(std::move(static_cast<doc::Value&>(stored)));
    packed.clear();
    doc::PackKey(d, col.key, &packed);  // before Reduce consumes the document
    // Reducing consumes the document: keep it for a dead letter.
    doc::Value original;
    if (binding.dead_letters) original = doc::Copy(d, allocator);
    auto r = col.reducer->Reduce(base, d, true, allocator);
    if (!r) {
      if (binding.dead_letters) d = std::move(original);
      auto left =
          LeaveOut(b, i,
                   Named(spec, Error::User(fmt::format("{}: cannot reduce into the stored document: {}",
                                                       Where(spec, b, packed, read_at, doc_tags[i]), r.error().message))));
      if (!left) return left.error();
      return false;
    }
    d = std::move(base);
    return true;
  }

  // Finalizes binding `b`'s keys that were not loaded (nothing was stored for them).
  Result<bool> Finalize(size_t b, size_t first, const std::vector<bool>& loaded) {
    const auto& binding = spec.bindings[b];
    const Collection& col = *binding.source;
    if (!col.reducer->Finalizes()) return true;
    std::vector<doc::Value>& docs = next->docs;
    auto& allocator = next->arena.GetAllocator();
    for (size_t i = first; i < docs.size(); ++i) {
      if (loaded[i - first] || dropped[i]) continue;
      packed.clear();
      doc::PackKey(docs[i], col.key, &packed);
      doc::Value original;
      if (binding.dead_letters) original = doc::Copy(docs[i], allocator);
      auto f = col.reducer->Finalize(docs[i], allocator);
      if (!f) {
        if (binding.dead_letters) docs[i] = std::move(original);
        auto left = LeaveOut(b, i,
                             Named(spec, Error::User(fmt::format("{}: {}", Where(spec, b, packed, read_at, doc_tags[i]),
                                                                 f.error().message))));
        if (!left) return left.error();
      }
    }
    return true;
  }

  // Commits the dead letters before the target's transaction.
  Result<bool> CommitDeadLetters() {
    next->offsets = impl.reader->Offsets();
    next->checkpoint = EncodeCheckpoint(CheckpointOf(next->offsets, impl.store->committed()));
    if (auto c = impl.CommitDeadLetters(spec, letters, next->offsets); !c) return c.error();
    next->dead_letters = letters.size();
    return true;
  }

  // Stores the rows on a thread, so that the next transaction reads while the database
  // writes.
  void Hand(std::shared_ptr<const Materialization> shared_spec) {
    next->read_at = std::move(read_at);
    Impl::Pending* p = next.get();
    materialize::Driver* driver = impl.driver.get();
    impl.pending = std::move(next);
    auto store = [p, driver, spec = std::move(shared_spec)] {
      Impl::StorePending(p, driver, *spec);
      p->stored.store(true, std::memory_order_release);
    };
    try {
      p->thread = std::thread(store);
    } catch (const std::system_error&) {
      store();  // no thread to be had: store it here
    }
  }
};

Result<uint64_t> MaterializeTask::RunTransaction(uint64_t max_docs) {
  Transaction t(*m_, *impl_, clock_, &stats_, max_docs, threads_);
  if (auto r = t.Read(); !r) return r.error();
  // The previous transaction must have committed before this one loads (its rows are
  // what this one reduces into) or reports that it is caught up.
  if (auto f = impl_->Finish(*m_, &stats_); !f) return f.error();
  if (t.read == 0) return uint64_t{0};
  if (auto r = t.Reduce(); !r) return r.error();
  if (auto c = t.CommitDeadLetters(); !c) return c.error();
  t.Hand(m_);
  return t.read;
}

}  // namespace flow::runtime
