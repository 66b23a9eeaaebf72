// SQL dialects of materialization targets (SPEC 5): identifier quoting, column types and
// the DDL of tables and of `flow_checkpoints`. Pure functions of the table spec: no
// connection, so they are what `flowctl materialize --dry-run` prints and what the drivers
// execute and compare existing tables against.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "materialize/table.h"

namespace flow::materialize {

enum class Dialect { kSqlite, kPostgres };

// "table", "end station id" → `"end station id"`: always double-quoted, `"` doubled, so
// any name is safe and keeps its case.
std::string QuoteIdentifier(std::string_view name);

// Whether a column (other than `flow_document`) holds JSON text: objects, arrays, and
// locations of several types. The others hold their scalar values natively.
bool StoredAsJson(const Column& column);

// The SQL type of a column, without NOT NULL: integer → BIGINT (SQLite INTEGER), number →
// DOUBLE PRECISION (REAL), boolean → BOOLEAN, string → TEXT (PostgreSQL VARCHAR(n) with a
// known maxLength), object/array or several types → JSON (SQLite TEXT).
std::string ColumnType(Dialect dialect, const Column& column);

// CREATE TABLE IF NOT EXISTS with every column (NOT NULL where Column::NotNull), and the
// PRIMARY KEY of the key columns in key order unless delta updates.
std::string CreateTableSql(Dialect dialect, const Table& table);

// The checkpoints table: one row per materialization, with its fence and checkpoint.
std::string CreateCheckpointsSql(Dialect dialect);

// Names the database would not keep apart or intact: in PostgreSQL, a table or column name
// over 63 bytes (silently cut); in SQLite, two columns equal but for ASCII case. Returns
// the problem (a user error), or "" when there is none.
std::string IdentifierProblem(Dialect dialect, const Table& table);

// A column of an existing table, as the database describes it.
struct ExistingColumn {
  std::string name;
  std::string type;  // as declared, e.g. "BIGINT", "character varying(32)"
  bool not_null = false;
  int key_position = 0;     // 1-based position in the primary key; 0 when not in it
  std::string default_sql;  // SQLite: the DEFAULT expression as declared; "" when none
};

// A type as the database reports it, in the spelling flowctl declares it (PostgreSQL's
// "character varying(32)" is "VARCHAR(32)", "int8" is "BIGINT"; upper case).
std::string CanonicalType(Dialect dialect, std::string type);

}  // namespace flow::materialize
