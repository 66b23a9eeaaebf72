// Derivations (SPEC 4): a task reads its transforms' source journals from its checkpoint,
// gates documents by read delay, keeps a register per shuffle key, runs update and publish
// lambdas in batches, and commits its outputs (combined per derived key), its register
// changes and its new read offsets in one store transaction.
//
// Registers live in memory and in an internal journal, `.flowctl/registers/<collection>/
// pivot=00`, where each transaction appends the final register of every shuffle key it
// changed; opening a task replays that journal. Because the store commits every journal
// and the checkpoint together, outputs, registers and offsets can never disagree.
//
// A task is used by one thread. After an error it must be dropped (its in-memory state
// may hold the failed transaction's changes); a new task reopens from the store.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "lambda/lambda.h"
#include "lambda/sqlite.h"
#include "reduce/reduce.h"
#include "runtime/collection.h"
#include "runtime/cursor.h"
#include "runtime/ingest.h"
#include "runtime/source_reader.h"
#include "runtime/task.h"
#include "schema/validator.h"
#include "store/journal.h"

namespace flow::runtime {

struct Transform {
  std::string name;
  std::shared_ptr<const Collection> source;
  std::shared_ptr<schema::Validator> source_schema;  // `source.schema`; null: none
  std::shared_ptr<const schema::Annotations> source_annotations;
  std::vector<doc::Pointer> shuffle;
  int64_t read_delay_seconds = 0;
  PartitionFilter partitions;
  std::shared_ptr<lambda::Lambda> update, publish;
  // `deadLetters`: where a source document this transform cannot process goes, with its
  // error, instead of halting the derivation (runtime/dead_letter.h). Null: it halts.
  std::shared_ptr<const Collection> dead_letters;
};

struct Derivation {
  std::shared_ptr<const Collection> collection;  // the derived collection
  std::shared_ptr<schema::Validator> register_validator;
  std::shared_ptr<const schema::Annotations> register_annotations;
  std::shared_ptr<const reduce::Reducer> register_reducer;
  std::string register_initial = "null";  // JSON text
  // `bootstrap` lambdas, in order: each is invoked with one row of no documents.
  struct Bootstrap {
    std::string kind;  // "nodeJS", "sqlite" or "remote", for messages
    std::shared_ptr<lambda::Lambda> lambda;
  };
  std::vector<Bootstrap> bootstraps;
  // The database the derivation's SQLite lambdas and bootstraps share; emptied before the
  // bootstraps run. Null when it has no sqlite bootstrap.
  std::shared_ptr<lambda::SqliteDatabase> sqlite;
  std::vector<Transform> transforms;
  // Its fingerprint (runtime/fingerprint.h), recorded in its checkpoint: a checkpoint of
  // other logic means earlier outputs were derived differently.
  std::string logic;

  // The internal journal holding the derivation's registers.
  std::string RegisterJournal() const;
  // The ledger checkpoint key of its read offsets.
  std::string CheckpointKey() const;
};

// Whether `d`'s checkpoint in `ledger` was taken with other logic (false without one, or
// when it did not record its logic).
bool LogicChanged(const Derivation& d, const store::LedgerState& ledger);

// What a back-fill of `d` resets in the store (Store::Reset): the journals of its
// collection and its registers, and its checkpoint.
void BackfillScope(const Derivation& d, const store::LedgerState& ledger, std::vector<std::string>* journals,
                   std::vector<std::string>* checkpoints);

struct DeriveStats {
  uint64_t read = 0;       // source documents processed
  uint64_t published = 0;  // documents appended after combining
  uint64_t bytes = 0;      // appended, of published documents
  uint64_t transactions = 0;
  uint64_t dead_letters = 0;  // source documents sent to dead letters
};

class DeriveTask final : public Task {
 public:
  // The most source documents one transaction reads by default.
  static constexpr uint64_t kMaxDocs = 8192;
  // A transaction also ends once it has read this many bytes of source documents, and
  // before another segment once its outputs (held in memory until Publish) reach it.
  static constexpr size_t kMaxTransactionBytes = 64u << 20;

  // `clock.wall` gives the wall time in Unix nanoseconds (a simulated clock in tests).
  DeriveTask(std::shared_ptr<const Derivation> derivation, store::Store* store, Stamper* stamper,
             Clock clock);
  ~DeriveTask() override;

  TaskKind kind() const override { return TaskKind::kDerivation; }
  const std::string& name() const override;

  // Loads the checkpoint and replays the registers.
  Result<bool> Open() override;

  // Processes one transaction: up to `max_docs` source documents that are committed and
  // ready (read delay passed), in order of (UUID timestamp + delay). Returns how many were
  // processed (0: nothing is ready). Errors name the transform, the source journal and
  // offset, and the cause; nothing of the failed transaction is committed. The first Step
  // of a task first runs the derivation's bootstrap lambdas (the SQLite database emptied
  // first); one that fails fails the Step, naming the derivation and the bootstrap.
  Result<uint64_t> Step(uint64_t max_docs);
  Result<uint64_t> Step() override { return Step(kMaxDocs); }

  // Step in two halves, so that the first runs on a thread of its own (runtime/
  // supervisor.h). Compute reads and derives one transaction against `ledger`, a copy of the
  // store's committed state, holding its appends in memory: it touches neither the store
  // nor anything the store's thread uses (give the task a Stamper of its own). Publish
  // commits what the last Compute that returned more than 0 derived, on the store's thread.
  // An error of either ends the task, as an error of Step does.
  Result<uint64_t> Compute(const store::LedgerState& ledger, uint64_t max_docs);
  Result<bool> Publish();

  // Publish in parts, so that transactions are pipelined during a back-fill: TakeComputed
  // hands over what the last Compute that returned more than 0 derived; Finish completes it
  // (a streamed transaction's combined outputs are stamped and appended there) and may run
  // on a thread of its own while the next Compute runs; Publish(txn) commits it on the
  // store's thread. Transactions must be finished and published in the order computed.
  struct Transaction;
  std::shared_ptr<Transaction> TakeComputed();
  Result<bool> Finish(Transaction& txn);
  Result<bool> Publish(Transaction& txn);

  // The earliest time (Unix nanoseconds) at which a committed document that is waiting for
  // its read delay becomes ready; 0 when none waits. Valid after a Step.
  int64_t next_ready() const override { return next_ready_; }
  bool behind() const override { return behind_; }

  const DeriveStats& stats() const { return stats_; }
  TaskCounters counters() const override;
  // Over the source journals opened so far, against their committed heads.
  ReadProgress progress() const override;
  const Derivation& derivation() const { return *derivation_; }

 private:
  Result<bool> Bootstrap();

  struct Impl;
  struct Segment;
  std::shared_ptr<const Derivation> derivation_;
  std::unique_ptr<Impl> impl_;
  int64_t next_ready_ = 0;
  bool behind_ = false;
  // The most documents the next Step reads (see Step).
  uint64_t batch_cap_ = uint64_t{1} << 62;
  DeriveStats stats_;
};

}  // namespace flow::runtime
