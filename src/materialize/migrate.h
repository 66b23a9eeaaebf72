// Schema evolution of materialized tables (SPEC 5), internal to the materialize module: from
// what a driver read of the existing tables, the DDL that brings them to the expected shape
// (missing tables, compatible migrations, a rebuild), or the user error naming what needs a
// back-fill. Pure functions, so a driver's Open and Plan share them.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "materialize/dialect.h"
#include "materialize/driver.h"
#include "materialize/table.h"

namespace flow::materialize {

// A table as the database describes it.
struct ExistingTable {
  std::vector<ExistingColumn> columns;  // in the table's order
  // SQLite: the CREATE INDEX and CREATE TRIGGER statements of the table, run again after
  // the table is rebuilt.
  std::vector<std::string> dependents;
};

// A user error, starting with `target` (how messages name it), when a name of `tables`
// would not survive in the database (IdentifierProblem).
Result<bool> CheckIdentifiers(Dialect dialect, const std::vector<Table>& tables,
                              const std::string& target);

// What the statements are planned for.
struct MigrationContext {
  Dialect dialect = Dialect::kSqlite;
  std::string target;           // how messages name the target: "target `t` (path)"
  std::string materialization;  // its name
  bool has_checkpoint = false;  // flow_checkpoints holds a non-empty checkpoint for it
  // Whether that checkpoint has read documents into the table named so (unset: any
  // checkpoint has); a table it has not read into (a new binding) is created.
  std::function<bool(const std::string& table)> filled;
};

// The DDL statements, in order, that bring each of `tables` to its expected shape, given
// `existing[i]` for `tables[i]` (nullopt: the table does not exist). A rebuild drops and
// creates every table. Otherwise a missing table is created, unless a checkpoint is
// stored (a user error: creating it empty would miss what the checkpoint covers), and an
// existing one is migrated:
// - a new column that may be null is added (a NOT NULL one cannot be);
// - integer → number and a longer VARCHAR (or TEXT) are widened in PostgreSQL (ALTER
//   COLUMN TYPE); SQLite keeps the declared INTEGER, whose affinity stores reals as such;
// - a column no longer selected is left in place, and one that is NOT NULL, or a kept one
//   that is expected nullable, becomes nullable (PostgreSQL: DROP NOT NULL; SQLite cannot
//   alter a constraint, so the table is copied aside, re-created with its columns, key,
//   indexes and triggers, and refilled);
// - anything else (the key, a narrowed or other type, nullable → NOT NULL) is a user
//   error showing the expected DDL and what differs, ending with the back-fill hint.
// Every table is checked before any statement is returned: an error plans nothing.
Result<std::vector<std::string>> PlanMigration(
    const MigrationContext& context, const std::vector<Table>& tables,
    const std::vector<std::optional<ExistingTable>>& existing, const OpenOptions& options);

}  // namespace flow::materialize
