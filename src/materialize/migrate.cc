#include "materialize/migrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace flow::materialize {
namespace {

// How messages name a table: as each driver's other messages do.
std::string Named(Dialect dialect, const std::string& table) {
  return dialect == Dialect::kPostgres ? fmt::format("`{}`", table) : QuoteIdentifier(table);
}

std::string EndWithHint(const std::string& lead, const std::string& hint) {
  return hint.empty() ? lead : fmt::format("{}: {}", lead, hint);
}

// The n of "VARCHAR(n)"; 0 for other types.
uint64_t VarcharLength(const std::string& canonical) {
  if (canonical.rfind("VARCHAR(", 0) != 0) return 0;
  return std::strtoull(canonical.c_str() + 8, nullptr, 10);
}

// Whether a column of type `have` can hold every value of type `want` once altered (or,
// in SQLite, as it is): integer → number, and in PostgreSQL a longer VARCHAR or TEXT.
bool Widens(Dialect dialect, const std::string& have, const std::string& want) {
  if (dialect == Dialect::kSqlite) return have == "INTEGER" && want == "REAL";
  if (have == "BIGINT" && want == "DOUBLE PRECISION") return true;
  uint64_t from = VarcharLength(have);
  if (from == 0) return false;
  return want == "TEXT" || VarcharLength(want) > from;
}

// A column definition of a re-created SQLite table.
std::string SqliteColumnSql(const ExistingColumn& e) {
  std::string sql = QuoteIdentifier(e.name);
  if (!e.type.empty()) sql += " " + e.type;
  if (e.not_null) sql += " NOT NULL";
  if (!e.default_sql.empty()) sql += " DEFAULT " + e.default_sql;
  return sql;
}

// The statements that re-create SQLite table `name` with `columns` (its existing columns
// first, whose rows are copied): SQLite cannot alter a column's constraints. The rows go
// through a temporary copy rather than a renamed table, so views and triggers elsewhere
// that name the table keep naming it.
void RebuildSqlite(const std::string& name, const std::vector<ExistingColumn>& columns,
                   size_t copied, const std::vector<std::string>& dependents,
                   std::vector<std::string>* out) {
  std::string table = QuoteIdentifier(name);
  const std::string aside = "temp.\"flowctl_migrate\"";
  std::vector<std::string> defs, names;
  std::vector<const ExistingColumn*> keyed;
  for (size_t i = 0; i < columns.size(); ++i) {
    defs.push_back("  " + SqliteColumnSql(columns[i]));
    if (i < copied) names.push_back(QuoteIdentifier(columns[i].name));
    if (columns[i].key_position > 0) keyed.push_back(&columns[i]);
  }
  std::sort(keyed.begin(), keyed.end(),
            [](const auto* a, const auto* b) { return a->key_position < b->key_position; });
  if (!keyed.empty()) {
    std::vector<std::string> keys;
    for (const auto* k : keyed) keys.push_back(QuoteIdentifier(k->name));
    defs.push_back(fmt::format("  PRIMARY KEY ({})", fmt::join(keys, ", ")));
  }
  out->push_back(fmt::format("CREATE TEMP TABLE {} AS SELECT * FROM {};", aside, table));
  out->push_back(fmt::format("DROP TABLE {};", table));
  out->push_back(fmt::format("CREATE TABLE {} (\n{}\n);", table, fmt::join(defs, ",\n")));
  out->push_back(fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM {2};", table,
                             fmt::join(names, ", "), aside));
  out->push_back(fmt::format("DROP TABLE {};", aside));
  for (const auto& d : dependents) out->push_back(d + ";");
}

// The statements that migrate `existing` to `table`, or the differences that cannot be
// migrated (in `problems`).
void MigrateTable(Dialect dialect, const Table& table, const ExistingTable& existing,
                  std::vector<std::string>* statements, std::vector<std::string>* problems) {
  const bool pg = dialect == Dialect::kPostgres;
  const std::string name = QuoteIdentifier(table.name);
  std::vector<ExistingColumn> columns = existing.columns;  // after the migration
  std::vector<std::string> alters;                         // PostgreSQL; SQLite's adds
  bool rebuild = false;                                    // SQLite: a constraint changed
  auto relax = [&](ExistingColumn* e) {
    e->not_null = false;
    if (pg) {
      alters.push_back(fmt::format("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL;", name,
                                   QuoteIdentifier(e->name)));
    } else {
      rebuild = true;
    }
  };
  auto find = [&](const std::string& field) {
    auto it = std::find_if(columns.begin(), columns.end(),
                           [&](const ExistingColumn& x) { return x.name == field; });
    return it == columns.end() ? nullptr : &*it;
  };
  for (const Column& c : table.columns) {
    std::string q = QuoteIdentifier(c.field), type = ColumnType(dialect, c);
    ExistingColumn* e = find(c.field);
    if (e == nullptr) {
      if (c.NotNull()) {
        problems->push_back(fmt::format(
            "missing column {}, which is NOT NULL: the existing rows have no value for it", q));
      } else {
        alters.push_back(fmt::format("ALTER TABLE {} ADD COLUMN {} {};", name, q, type));
      }
      continue;
    }
    std::string want = CanonicalType(dialect, type), have = CanonicalType(dialect, e->type);
    if (have != want) {
      if (!Widens(dialect, have, want)) {
        problems->push_back(fmt::format("column {} is {}, expected {}", q, e->type, want));
      } else if (pg) {
        alters.push_back(fmt::format("ALTER TABLE {} ALTER COLUMN {} TYPE {};", name, q, type));
      }
    }
    // A primary-key column is NOT NULL whether declared so or not (SQLite reports it as is).
    bool not_null = e->not_null || (pg && e->key_position > 0);
    if (c.NotNull() && !not_null && !(c.key && e->key_position > 0)) {
      problems->push_back(fmt::format(
          "column {} may be NULL, expected NOT NULL: the existing rows may hold NULL", q));
    } else if (!c.NotNull() && e->not_null && e->key_position == 0) {
      relax(e);  // a key column expected nullable is a change of the key, reported below
    }
  }
  for (ExistingColumn& e : columns) {
    bool selected = std::any_of(table.columns.begin(), table.columns.end(),
                                [&](const Column& c) { return c.field == e.name; });
    if (!selected && e.not_null && e.key_position == 0) relax(&e);
  }
  std::vector<std::string> want_key, have_key;
  if (!table.delta_updates) {
    for (const Column* k : table.KeyColumns()) want_key.push_back(k->field);
  }
  std::vector<const ExistingColumn*> keyed;
  for (const auto& e : existing.columns) {
    if (e.key_position > 0) keyed.push_back(&e);
  }
  std::sort(keyed.begin(), keyed.end(),
            [](const auto* a, const auto* b) { return a->key_position < b->key_position; });
  for (const auto* e : keyed) have_key.push_back(e->name);
  if (have_key != want_key) {
    auto list = [](const std::vector<std::string>& v) {
      std::vector<std::string> q;
      for (const auto& n : v) q.push_back(QuoteIdentifier(n));
      return q.empty() ? std::string("none") : fmt::format("({})", fmt::join(q, ", "));
    };
    problems->push_back(
        fmt::format("the primary key is {}, expected {}{}", list(have_key), list(want_key),
                    want_key.empty() != have_key.empty()
                        ? (table.delta_updates ? " (delta updates)" : " (not delta updates)")
                        : ""));
  }
  if (!problems->empty()) return;
  if (!rebuild) {
    statements->insert(statements->end(), alters.begin(), alters.end());
    return;
  }
  size_t copied = columns.size();
  for (const Column& c : table.columns) {
    if (find(c.field) == nullptr)
      columns.push_back({c.field, ColumnType(dialect, c), false, 0, ""});
  }
  RebuildSqlite(table.name, columns, copied, existing.dependents, statements);
}

}  // namespace

Result<bool> CheckIdentifiers(Dialect dialect, const std::vector<Table>& tables,
                              const std::string& target) {
  for (const auto& t : tables) {
    if (auto problem = IdentifierProblem(dialect, t); !problem.empty()) {
      return Error::User(fmt::format("{}: {}", target, problem));
    }
  }
  return true;
}

Result<std::vector<std::string>> PlanMigration(
    const MigrationContext& context, const std::vector<Table>& tables,
    const std::vector<std::optional<ExistingTable>>& existing, const OpenOptions& options) {
  const Dialect dialect = context.dialect;
  std::vector<std::string> statements, errors;
  for (size_t i = 0; i < tables.size(); ++i) {
    const Table& t = tables[i];
    if (options.rebuild) {
      statements.push_back(fmt::format("DROP TABLE IF EXISTS {};", QuoteIdentifier(t.name)));
      statements.push_back(CreateTableSql(dialect, t));
      continue;
    }
    if (!existing.at(i)) {
      if (context.has_checkpoint && (!context.filled || context.filled(t.name))) {
        errors.push_back(EndWithHint(
            fmt::format("table {} is missing from {}, although flow_checkpoints holds a "
                        "checkpoint for materialization `{}`: creating it empty would silently "
                        "miss every document before that checkpoint. Nothing was changed; "
                        "back-fill it",
                        Named(dialect, t.name), context.target, context.materialization),
            options.backfill_hint));
      } else {
        statements.push_back(CreateTableSql(dialect, t));
      }
      continue;
    }
    std::vector<std::string> problems;
    MigrateTable(dialect, t, *existing[i], &statements, &problems);
    if (problems.empty()) continue;
    std::string m = fmt::format(
        "table {} in {} exists with a different shape that cannot be migrated. Expected:\n{}\n"
        "Differences:",
        Named(dialect, t.name), context.target, CreateTableSql(dialect, t));
    for (const auto& p : problems) m += "\n  - " + p;
    errors.push_back(EndWithHint(m + "\nNothing was changed; back-fill it to re-create the table",
                                 options.backfill_hint));
  }
  if (!errors.empty()) return Error::User(fmt::format("{}", fmt::join(errors, "\n")));
  return statements;
}

}  // namespace flow::materialize
