// A materialization target's driver (SPEC 5): one connection, the fence of one
// materialization, and its tables. A transaction loads the stored documents of the keys it
// touches (one read per key), then stores the reduced rows and the checkpoint together in
// one database transaction, guarded by the fence. Used by one thread.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "doc/pointer.h"
#include "doc/value.h"
#include "materialize/dialect.h"
#include "materialize/table.h"

namespace flow::materialize {

// The error of a Store whose fence moved: another instance took the target over. `where`
// (e.g. the database's path) follows the target's name when not empty.
inline Error FencedOff(const std::string& materialization, const std::string& target, const std::string& where = "") {
  return Error::Fenced(
      fmt::format("materialization `{}` was fenced off: another flowctl instance took over target "
                  "`{}`{}",
                  materialization, target, where.empty() ? "" : " (" + where + ")"));
}
// Whether `e` is that error: retrying would only take the target back.
inline bool IsFencedOff(const Error& e) { return e.code == Error::Code::kFenced; }

// The key of a row's document as JSON text (`[v1,v2]`, its key columns' values in key
// order; absent values show as null), for messages naming the row.
inline std::string RowKeyJson(const Table& t, const doc::Value& document) {
  std::string out = "[";
  for (const Column* c : t.KeyColumns()) {
    if (out.size() > 1) out.push_back(',');
    const doc::Value* v = doc::Lookup(document, c->location);
    if (v) {
      doc::AppendJson(*v, &out);
    } else {
      out += "null";
    }
  }
  out.push_back(']');
  return out;
}

// How Open treats the tables of a materialization.
struct OpenOptions {
  // Drop and re-create every table, and set the checkpoint to `reset_checkpoint`.
  bool rebuild = false;
  // The checkpoint a rebuild writes (the runtime's; may be "").
  std::string reset_checkpoint;
  // The command that back-fills this materialization (e.g. "flowctl run --backfill
  // acme/m"): errors that need a back-fill end with it.
  std::string backfill_hint;
  // Called (by Open and Plan) with the stored checkpoint ("" when none) before anything is
  // changed, unless rebuilding: an error it returns is Open's, and the database is left as it was (tables,
  // checkpoint and fence), so that a refused instance does not fence off a running one.
  std::function<Result<bool>(const std::string& stored)> accept;
  // Whether the stored checkpoint has read documents into `table` (unset: any non-empty
  // checkpoint has). A missing table it has not read into is created (a binding added).
  std::function<bool(const std::string& stored, const std::string& table)> filled;
};

class Driver {
 public:
  virtual ~Driver() = default;

  // In one database transaction: creates the checkpoints table; brings the tables to their
  // expected shape (Plan's statements: creates missing ones, migrates compatible changes,
  // or drops and re-creates them all for a rebuild, whose checkpoint is then
  // `options.reset_checkpoint`); increments the materialization's fence. Returns the
  // stored checkpoint ("" when it has none yet). A change that needs a back-fill (an
  // incompatible shape; a missing table while a checkpoint is stored) is a user error
  // ending with `options.backfill_hint`, and nothing is changed. Environment errors for an
  // unreachable database.
  virtual Result<std::string> Open(const std::string& materialization,
                                   const std::vector<Table>& tables,
                                   const OpenOptions& options) = 0;

  // The DDL statements Open would run (CREATE TABLE for `flow_checkpoints` and missing
  // tables, the ALTERs of a migration, the DROP and CREATE of a rebuild), in order, without
  // running anything; or the error Open would give. Empty when nothing would change.
  virtual Result<std::vector<std::string>> Plan(const std::string& materialization,
                                                const std::vector<Table>& tables,
                                                const OpenOptions& options) = 0;

  // Loads the stored `flow_document` of each key of binding `table` that has one, calling
  // `found(i, json)` with the index into `keys` (each key: its values in key order). A key
  // the database cannot represent is a user error naming it and its column; `failed_key`,
  // when given, is then set to its index into `keys`.
  virtual Result<bool> Load(size_t table, const std::vector<std::vector<const doc::Value*>>& keys,
                            const std::function<void(size_t, std::string_view)>& found,
                            size_t* failed_key = nullptr) = 0;

  // One row: the document the table's columns are projected from.
  struct Row {
    size_t table;
    const doc::Value* document;
  };
  // In one database transaction: inserts or replaces every row (appends, for delta
  // updates), and sets the checkpoint where the fence is still ours. A fence that moved (a
  // newer instance took over) is an environment error saying so, and nothing is written.
  // A value the database refuses is a user error naming the table, the key and the column;
  // `failed_row`, when given, is then set to the index into `rows` of the row refused (it is
  // left alone when the error is not about one row).
  virtual Result<bool> Store(const std::vector<Row>& rows, const std::string& checkpoint,
                             size_t* failed_row = nullptr) = 0;

  virtual Dialect dialect() const = 0;
};

}  // namespace flow::materialize
