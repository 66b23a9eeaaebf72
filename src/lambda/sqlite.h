// SQLite lambdas (SPEC 4.1): one SQL query, prepared once on a private in-memory connection,
// run once per row with `$source`, `$register`, `$previous` and `$<field>` parameters; each
// result row is one output document. This file and sqlite.cc are the lambda module's only
// users of SQLite. A SqliteLambda is used by one thread (its connection is opened NOMUTEX).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "lambda/lambda.h"

namespace flow::lambda {

class SqliteLambda final : public Lambda {
 public:
  // Opens an in-memory connection and prepares `sql`, which must be exactly one statement
  // returning columns with distinct names. Parameters must be named `$name`: `$source`,
  // `$register` and `$previous` are bound as JSON text (NULL when the row has no such
  // document); `$<field>` binds the projection `fields[i]` whose name, with every character
  // other than [A-Za-z0-9_] replaced by `_`, is `<field>` (a field named exactly `<field>`
  // wins, then the first; the three names above win over fields). Returns a user error with
  // SQLite's message when the query does not compile, and one naming the parameter (with a
  // suggestion) when a parameter matches nothing.
  static Result<std::unique_ptr<Lambda>> Compile(const std::string& sql,
                                                 std::vector<SourceField> fields);

  ~SqliteLambda() override;

  // Binds each row and steps the statement. Values are bound natively: integers as 64-bit
  // integers (unsigned ones beyond INT64_MAX as REAL, as SQLite itself reads such literals),
  // numbers as REAL, booleans as 0/1, strings as TEXT, objects and arrays as JSON text, null
  // or absent (or any projection of a null `row.source`) as NULL. Result rows become
  // documents: a single TEXT column holding a JSON object is the document; otherwise an
  // object of the columns (INTEGER, REAL, TEXT, NULL; TEXT with SQLite's JSON subtype, e.g.
  // from json_array(), as parsed JSON). BLOBs, infinite reals, invalid UTF-8, text that
  // starts like an object in a single column but is not JSON, and SQLite runtime errors are
  // user errors for the row.
  Result<bool> Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                      int* failed_row = nullptr) override;

 private:
  struct Impl;
  explicit SqliteLambda(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::lambda
