// The PostgreSQL materialization driver (SPEC 5), over one libpq connection. Store sends
// rows with COPY, in the same transaction as the fenced checkpoint update: straight into
// the table for delta updates and for keys the last Load found absent, otherwise into a
// session-private staging table and then one INSERT ... ON CONFLICT per table. Messages
// name the target and never contain the URI's password (of 6+ bytes). After an
// environment error, reconnect (Connect, Open) rather than reuse the driver. This file
// and postgres.cc are the only users of libpq. Used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "materialize/driver.h"

struct pg_conn;  // libpq's PGconn

namespace flow::materialize {

class PostgresDriver final : public Driver {
 public:
  // Connects to the database at `uri` (a libpq URI such as
  // "postgresql://user:pass@host:5432/db", or "key=value ..." text); `target_name` names
  // the target in messages. An unreachable server, a refused login or an unknown database
  // is an environment error; a URI libpq cannot parse is a user error.
  static Result<std::unique_ptr<Driver>> Connect(const std::string& uri,
                                                 const std::string& target_name);

  ~PostgresDriver() override;
  PostgresDriver(const PostgresDriver&) = delete;
  PostgresDriver& operator=(const PostgresDriver&) = delete;

  Result<std::string> Open(const std::string& materialization, const std::vector<Table>& tables,
                           const OpenOptions& options) override;
  Result<std::vector<std::string>> Plan(const std::string& materialization,
                                        const std::vector<Table>& tables,
                                        const OpenOptions& options) override;
  Result<bool> Load(size_t table, const std::vector<std::vector<const doc::Value*>>& keys,
                    const std::function<void(size_t, std::string_view)>& found,
                    size_t* failed_key = nullptr) override;
  Result<bool> Store(const std::vector<Row>& rows, const std::string& checkpoint,
                     size_t* failed_row = nullptr) override;
  Dialect dialect() const override { return Dialect::kPostgres; }

  // The fence this instance holds after Open (0 before).
  int64_t fence() const { return fence_; }
  // For tests: whether Store sends binding `table`'s rows in COPY's binary format (see
  // postgres.cc); and whether the next Open lets any table have it (true unless switched
  // off here, to compare the two formats).
  bool binary_copy(size_t table) const;
  void set_binary_copy(bool on) { binary_copy_ = on; }

 private:
  struct Binding;  // a table and its SQL, in postgres.cc

  using Batch = std::vector<const doc::Value*>;  // documents of one table
  using Batches = std::vector<Batch>;            // by binding

  PostgresDriver(pg_conn* conn, std::string target, std::string password);
  // Store's database transaction: `inserts` are copied into their tables (delta updates,
  // and keys that Load found absent), `upserts` go through the staging tables. Sets
  // `*conflict` when an insert failed on an existing key.
  // A row the database refused sets `*failed` to its document, when the server says which.
  Result<bool> Write(const Batches& inserts, const Batches& upserts, const std::string& checkpoint,
                     bool binary, bool* conflict, bool* unformattable, const doc::Value** failed);

  pg_conn* conn_;
  std::string target_;
  std::string password_;  // redacted from messages; empty when the URI has none
  std::string materialization_;
  int64_t fence_ = 0;
  bool binary_copy_ = true;
  std::vector<Binding> bindings_;
};

// The same as PostgresDriver::Connect, named like ConnectSqlite.
inline Result<std::unique_ptr<Driver>> ConnectPostgres(const std::string& uri,
                                                       const std::string& target) {
  return PostgresDriver::Connect(uri, target);
}

}  // namespace flow::materialize
