// Materialization tasks (SPEC 5): keep tables equal to the reduced contents of collections.
// Each transaction reads committed documents of the bound collections from the checkpoint
// stored in the target, combines them per key, loads the stored document of every key it
// touches (one read per key; none in delta-updates mode), reduces, and stores the rows and
// the new checkpoint in one database transaction guarded by the materialization's fence.
// Exactly-once therefore lives in the target: the data directory is only read.
// A task is used by one thread; after an error it must be dropped and reopened.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "materialize/driver.h"
#include "runtime/collection.h"
#include "runtime/cursor.h"
#include "runtime/ingest.h"
#include "runtime/task.h"
#include "store/journal.h"

namespace flow::runtime {

struct MaterializationBinding {
  std::shared_ptr<const Collection> source;
  materialize::Table table;
  // `deadLetters`: where a key this binding cannot store goes, with its error, instead of
  // halting the materialization (runtime/dead_letter.h). Null: it halts.
  std::shared_ptr<const Collection> dead_letters;
};

struct Materialization {
  std::string name;
  std::string target;   // the target's name
  std::string kind;     // "sqlite" or "postgres"
  std::string address;  // SQLite path or PostgreSQL URI
  std::vector<MaterializationBinding> bindings;
};

struct MaterializeStats {
  uint64_t read = 0;     // documents read
  uint64_t stored = 0;   // rows written
  uint64_t loaded = 0;   // stored documents loaded
  uint64_t transactions = 0;
  uint64_t dead_letters = 0;  // keys and documents sent to dead letters
};

// When a materialization transaction stops reading. It combines as much of the backlog as
// fits in kMemory and is read within kReading, so that each key is loaded and stored once
// however many of its documents are waiting, while a long back-fill still commits (and
// shows progress, and lets other tasks and ingestion run) every second or so. Past that
// second it keeps reading, up to kReadingMax, while the documents mostly reduce into keys
// it already holds (fewer than 1 in 8 of the last window's documents brought a new key):
// those add no row to load or store, so committing then would only store the same keys
// again a second later. A back-fill of many documents per key (1M over 100k keys) thus
// writes each row once instead of once a second; new keys still end it at the second.
// While the previous transaction is still being stored, only memory ends it: it could not
// load before that one commits anyway, so it reads on (and combines more documents into
// the same rows) rather than wait, and the slower the database the larger the transactions.
class TransactionBounds {
 public:
  static constexpr size_t kMemory = 192u << 20;
  static constexpr std::chrono::milliseconds kReading{1000};
  static constexpr std::chrono::milliseconds kReadingMax{5000};
  static constexpr uint64_t kWindow = 4096;  // documents between checks

  // Called after each window of kWindow documents with the time spent reading so far and
  // the combiners' memory and keys, and whether the previous transaction is still being
  // stored: whether the transaction should stop reading now.
  bool Done(std::chrono::steady_clock::duration reading, size_t memory, size_t keys,
            bool storing = false) {
    // Fewer keys than before: a combiner spilled, and keys may repeat: count it as new.
    bool new_keys = keys >= window_keys_ + kWindow / 8 || keys < window_keys_;
    window_keys_ = keys;
    if (memory >= kMemory) return true;
    return !storing && (reading >= kReadingMax || (reading >= kReading && new_keys));
  }

 private:
  size_t window_keys_ = 0;  // keys held at the end of the previous window
};

// Connects to a materialization's target.
Result<std::unique_ptr<materialize::Driver>> ConnectTarget(const Materialization& m);

class MaterializeTask final : public Task {
 public:
  // The most documents one transaction reads by default (TransactionBounds ends it first).
  static constexpr uint64_t kMaxDocs = 4u << 20;

  // `stamper` stamps dead letters; it may be null when no binding has `dead_letters`.
  // `clock.steady` times transactions (TransactionBounds).
  MaterializeTask(std::shared_ptr<const Materialization> m, store::Store* store,
                  std::unique_ptr<materialize::Driver> driver, Stamper* stamper = nullptr, Clock clock = {});
  ~MaterializeTask() override;

  TaskKind kind() const override { return TaskKind::kMaterialization; }
  const std::string& name() const override;

  // Creates or migrates the tables, takes the fence and reads the checkpoint, which must
  // be of this data directory and of its journals' generations (runtime/checkpoint.h); a
  // checkpoint of other data is a user error naming the back-fill. With set_rebuild(true),
  // the tables are dropped and re-created instead, in one target transaction with a fresh
  // checkpoint (a back-fill).
  Result<bool> Open() override;
  void set_rebuild(bool rebuild) { rebuild_ = rebuild; }
  // How many threads a transaction reads, parses and combines on (the calling thread
  // included; default 1). The rows are the same for any number.
  void set_threads(unsigned threads) { threads_ = threads; }

  // One transaction of up to `max_docs` documents; returns how many were read (0: caught
  // up). Needs only committed journal content, so `store` may be another process's.
  // Transactions are pipelined: a transaction's Store runs on a thread while the next Step
  // reads, and that Step waits for it to commit before loading; so an error storing one
  // transaction is returned by the next Step, and a Step returning 0 has committed
  // everything it read. stats() count committed transactions only.
  Result<uint64_t> Step(uint64_t max_docs);
  Result<uint64_t> Step() override { return Step(kMaxDocs); }
  // Steps until everything read is committed.
  Result<bool> Checkpoint() override;
  // Waits for the transaction in flight, if any.
  void Close() override;

  const MaterializeStats& stats() const { return stats_; }
  TaskCounters counters() const override;
  // Over the source journals opened so far, against their committed heads.
  ReadProgress progress() const override;
  const Materialization& materialization() const { return *m_; }

 private:
  struct Impl;
  // One transaction's state, with one method per phase (defined in materialize.cc).
  struct Transaction;
  Result<uint64_t> RunTransaction(uint64_t max_docs);

  std::shared_ptr<const Materialization> m_;
  std::unique_ptr<Impl> impl_;
  MaterializeStats stats_;
  Clock clock_;
  bool rebuild_ = false;
  unsigned threads_ = 1;
};

// The statements opening `m` would run on its target now (creating or migrating its tables,
// or with `rebuild` dropping and re-creating them), without running them; or the error its
// opening would give (a shape that needs a back-fill, a dropped table, other data's
// checkpoint). For `flowctl run --plan`. `ledger` is the data directory's state.
Result<std::vector<std::string>> PlanTables(const Materialization& m, const store::LedgerState& ledger, bool rebuild);

// The ledger key that tells materialization `name` to rebuild its tables when it next
// opens (a back-fill requested and committed, not yet done); the task removes it once rebuilt.
std::string RebuildKey(const std::string& name);

// The command that back-fills `m`: `flowctl run --backfill NAME`, or for a one-off
// materialization `flowctl materialize ... --backfill`.
std::string BackfillCommand(const Materialization& m);

}  // namespace flow::runtime
