// Materialization tasks (SPEC 5): keep tables equal to the reduced contents of collections.
// Each transaction reads committed documents of the bound collections from the checkpoint
// stored in the target, combines them per key, loads the stored document of every key it
// touches (one read per key; none in delta-updates mode), reduces, and stores the rows and
// the new checkpoint in one database transaction guarded by the materialization's fence.
// Exactly-once therefore lives in the target: the data directory is only read.
// A task is used by one thread; after an error it must be dropped and reopened.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "materialize/driver.h"
#include "runtime/collection.h"
#include "runtime/cursor.h"
#include "store/journal.h"

namespace flow::runtime {

struct MaterializationBinding {
  std::shared_ptr<const Collection> source;
  materialize::Table table;
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
};

// Connects to a materialization's target.
Result<std::unique_ptr<materialize::Driver>> ConnectTarget(const Materialization& m);

class MaterializeTask {
 public:
  MaterializeTask(std::shared_ptr<const Materialization> m, store::Store* store,
                  std::unique_ptr<materialize::Driver> driver);
  ~MaterializeTask();

  // Creates or checks the tables, takes the fence and reads the checkpoint.
  Result<bool> Open();

  // One transaction of up to `max_docs` documents; returns how many were read (0: caught
  // up). Needs only committed journal content, so `store` may be another process's.
  Result<uint64_t> Step(uint64_t max_docs = 4u << 20);

  const MaterializeStats& stats() const { return stats_; }
  // Over the source journals opened so far, against their committed heads.
  ReadProgress progress() const;
  const Materialization& materialization() const { return *m_; }

 private:
  struct Impl;
  std::shared_ptr<const Materialization> m_;
  std::unique_ptr<Impl> impl_;
  MaterializeStats stats_;
};

}  // namespace flow::runtime
