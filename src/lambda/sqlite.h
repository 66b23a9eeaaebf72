// SQLite lambdas (SPEC 4.1): one SQL query, prepared once on an in-memory connection (its
// own, or one its derivation's lambdas and bootstraps share: SqliteDatabase),
// run once per row with `$source`, `$register`, `$previous` and `$<field>` parameters; each
// result row is one output document. This file and sqlite.cc are the lambda module's only
// users of SQLite. A SqliteLambda is used by one thread (its connection is opened NOMUTEX).
//
// The rules of SQLite lambdas and bootstraps live here alone: the catalog's check
// (`flowctl build`) applies them through SqliteDatabase::CheckQuery and Exec, the tasks
// through SqliteLambda::Compile and Bootstrap; each words the problems itself.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>
#include <string>
#include <vector>

#include "base/result.h"
#include "lambda/lambda.h"

struct sqlite3;

namespace flow::lambda {

// What is wrong with a SQLite lambda's query, found without running it. Compile's checks
// in its order: the first problem found.
struct QueryProblem {
  enum class Kind {
    kNone,
    kDoesNotCompile,        // SQLite cannot prepare it
    kEmpty,                 // no statement (only whitespace, `;` and comments)
    kMoreThanOneStatement,  // anything but whitespace, `;` and comments after the first
    kNoColumns,             // the statement returns no columns (not a SELECT)
    kDuplicateColumn,       // two result columns share a name
  };
  Kind kind = Kind::kNone;
  // kDoesNotCompile: SQLite's message; kMoreThanOneStatement: the rest of the query from
  // the second statement on; kDuplicateColumn: the column's name.
  std::string detail;
  int offset = -1;  // kDoesNotCompile: the byte of the query SQLite points at, or -1
  explicit operator bool() const { return kind != Kind::kNone; }
};

// The parameter name (without its `$`) that binds projection `field`: the field with every
// character outside [A-Za-z0-9_] replaced by '_'.
std::string ParameterName(std::string_view field);

// A parameter of a lambda's query that SqliteLambda::Compile would bind to nothing, or to
// a document the lambda is never given (SqliteDatabase::CheckParameters).
struct ParameterProblem {
  enum class Kind {
    kUnknown,     // neither $source, $register, $previous nor a projection
    kNotDollar,   // `:name`, `@name` or `?`: parameters are written `$name`
    kNotInUpdate  // $register or $previous in an update lambda, which sees only its source
  };
  Kind kind = Kind::kUnknown;
  std::string name;                   // as SQLite names it: "$staus", ":id", "?1"
  size_t offset = std::string::npos;  // its first occurrence in the query; npos: not found
  std::string suggestion;             // the closest parameter that binds ("$status"), or ""
};

// Why SqliteDatabase::Exec failed, for callers that word the error themselves.
struct ExecFailure {
  std::string message;  // SQLite's message
  // The byte of the SQL that SQLite points at, else the first non-whitespace byte of the
  // failing statement (std::string::npos when there is none).
  size_t offset = 0;
  bool timed_out = false;  // interrupted by the timeout (not by a stop request)
};

// An in-memory database that the SQLite lambdas and bootstraps of one derivation share, so
// that the tables a bootstrap creates can be read by the derivation's lambdas. ATTACH and
// extension loading are disabled. Used by one thread at a time.
//
// Every statement runs under a watchdog (a progress handler): a query still running after
// its timeout, or when lambda::RequestStop was called, is interrupted (e.g. a recursive CTE
// that never ends).
class SqliteDatabase {
 public:
  static Result<std::shared_ptr<SqliteDatabase>> Open();
  ~SqliteDatabase();

  // Runs `sql`: any number of statements, with no parameters, one after the other; result
  // rows are ignored. A failure is a user error with SQLite's message (changes made by the
  // statements before the failing one stay); running longer than `timeout` (all
  // statements together) is a user error saying so; a stop request, an environment error.
  // `failure`, when given, is filled on failure.
  Result<bool> Exec(const std::string& sql, std::chrono::milliseconds timeout = kDefaultTimeout,
                    ExecFailure* failure = nullptr);

  // The rules of a lambda's query (SqliteLambda::Compile's, but parameters), checked
  // against this database's tables without running the query.
  QueryProblem CheckQuery(const std::string& sql);

  // The parameters of `sql` (a query CheckQuery accepts) that SqliteLambda::Compile would
  // bind to nothing given the source collection's projections `fields`, in order of first
  // use; with `update`, also $register and $previous, which an update lambda is never given
  // (they would always be NULL).
  std::vector<ParameterProblem> CheckParameters(const std::string& sql,
                                                const std::vector<std::string>& fields,
                                                bool update);

  // Empties the database: every table, index, view and trigger, temporary ones included,
  // is dropped. Statements prepared on it stay valid (SQLite prepares them again).
  Result<bool> Reset();

  // A bootstrap lambda: each row Invoke is given runs `sql` with Exec (under `timeout`)
  // and outputs no documents.
  static std::unique_ptr<Lambda> Bootstrap(std::shared_ptr<SqliteDatabase> db, std::string sql,
                                           std::chrono::milliseconds timeout = kDefaultTimeout);

  sqlite3* handle() const { return db_; }

  // The watchdog: statements stepped between Arm and Disarm are interrupted once `timeout`
  // has passed (Disarm then returns true) or a stop is requested.
  void Arm(std::chrono::milliseconds timeout);
  bool Disarm();
  // The error of a statement the watchdog interrupted (SQLITE_INTERRUPT): `what` ran out of
  // `timeout`, or flowctl is stopping.
  Error Interrupted(std::string_view what, std::chrono::milliseconds timeout) const;

  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

 private:
  SqliteDatabase() = default;
  static int Progress(void* self);
  sqlite3* db_ = nullptr;
  bool armed_ = false, expired_ = false;
  std::chrono::steady_clock::time_point deadline_;
};

class SqliteLambda final : public Lambda {
 public:
  // Opens an in-memory connection and prepares `sql`, which must be exactly one statement
  // returning columns with distinct names. Parameters must be named `$name`: `$source`,
  // `$register` and `$previous` are bound as JSON text (NULL when the row has no such
  // document); `$<field>` binds the projection `fields[i]` whose name, with every character
  // other than [A-Za-z0-9_] replaced by `_`, is `<field>` (a field named exactly `<field>`
  // wins, then the first; the three names above win over fields). Returns a user error with
  // SQLite's message when the query does not compile, and one naming the parameter (with a
  // suggestion) when a parameter matches nothing. `db`: the database to prepare `sql` on
  // (shared with other lambdas); null: a private one. `timeout`: how long the query may run
  // for one row.
  static Result<std::unique_ptr<Lambda>> Compile(const std::string& sql,
                                                 std::vector<SourceField> fields,
                                                 std::shared_ptr<SqliteDatabase> db = nullptr,
                                                 std::chrono::milliseconds timeout = kDefaultTimeout);

  ~SqliteLambda() override;

  // Binds each row and steps the statement. Values are bound natively: integers as 64-bit
  // integers (unsigned ones beyond INT64_MAX as REAL, as SQLite itself reads such literals),
  // numbers as REAL, booleans as 0/1, strings as TEXT, objects and arrays as JSON text, null
  // or absent (or any projection of a null `row.source`) as NULL. Result rows become
  // documents: a single TEXT column holding a JSON object is the document; otherwise an
  // object of the columns (INTEGER, REAL, TEXT, NULL; TEXT with SQLite's JSON subtype, e.g.
  // from json_array(), as parsed JSON). BLOBs, infinite reals, invalid UTF-8, text that
  // starts like an object in a single column but is not JSON, and SQLite runtime errors are
  // user errors for the row; so is a query running longer than the timeout for one row
  // (interrupted). A stop request interrupts it too (an environment error).
  Result<bool> Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                      int* failed_row = nullptr) override;

 private:
  struct Impl;
  explicit SqliteLambda(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::lambda
