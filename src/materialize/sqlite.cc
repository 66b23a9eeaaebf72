#include "materialize/sqlite.h"

#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "doc/value.h"
#include "materialize/migrate.h"

namespace flow::materialize {
namespace {

// SQLite's message for the last failure, with the OS's reason when there is one: "disk I/O
// error" alone does not say that the disk is full.
std::string Why(sqlite3* db) {
  std::string why = sqlite3_errmsg(db);
  if (int e = sqlite3_system_errno(db); e != 0) why += fmt::format(" ({})", std::strerror(e));
  return why;
}


class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* st) : st_(st) {}
  ~Statement() { sqlite3_finalize(st_); }
  Statement(Statement&& o) noexcept : st_(o.st_) { o.st_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  sqlite3_stmt* get() const { return st_; }

 private:
  sqlite3_stmt* st_ = nullptr;
};

class SqliteDriver : public Driver {
 public:
  SqliteDriver(sqlite3* db, std::string path, std::string target)
      : db_(db), path_(std::move(path)), target_(std::move(target)) {}
  ~SqliteDriver() override {
    loads_.clear();
    stores_.clear();
    checkpoint_ = Statement();
    // sqlite3_close fails (SQLITE_BUSY) and leaves the connection open while any statement
    // is unfinalized; close_v2 closes it once the last one is.
    sqlite3_close_v2(db_);
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

  Result<std::string> Open(const std::string& materialization, const std::vector<Table>& tables,
                           const OpenOptions& options) override {
    materialization_ = materialization;
    tables_ = tables;
    if (auto problem = CheckIdentifiers(tables); !problem) return problem.error();
    auto b = Exec("BEGIN IMMEDIATE");
    if (!b) return b.error();
    auto result = OpenInTransaction(options);
    if (!result) {
      auto r = Exec("ROLLBACK");
      (void)r;
      return result;
    }
    auto c = Exec("COMMIT");
    if (!c) return c.error();
    // Statements for loads and stores.
    loads_.clear();
    stores_.clear();
    for (const auto& t : tables_) {
      std::vector<std::string> cols, params, keys;
      for (const auto& c : t.columns) {
        cols.push_back(QuoteIdentifier(c.field));
        params.push_back("?");
      }
      for (const Column* k : t.KeyColumns()) keys.push_back(QuoteIdentifier(k->field) + " = ?");
      const Column* doc_column = nullptr;
      for (const auto& c : t.columns) {
        if (c.document) doc_column = &c;
      }
      Statement load;
      if (!t.delta_updates && doc_column) {
        auto l = Prepare(fmt::format("SELECT {} FROM {} WHERE {}", QuoteIdentifier(doc_column->field),
                                     QuoteIdentifier(t.name), fmt::join(keys, " AND ")));
        if (!l) return l.error();
        load = std::move(l.value());
      }
      loads_.push_back(std::move(load));
      auto s = Prepare(fmt::format("{} INTO {} ({}) VALUES ({})", t.delta_updates ? "INSERT" : "INSERT OR REPLACE",
                                   QuoteIdentifier(t.name), fmt::join(cols, ", "), fmt::join(params, ", ")));
      if (!s) return s.error();
      stores_.push_back(std::move(s.value()));
    }
    auto cp = Prepare("UPDATE flow_checkpoints SET checkpoint = ? WHERE materialization = ? AND fence = ?");
    if (!cp) return cp.error();
    checkpoint_ = std::move(cp.value());
    return stored_checkpoint_;
  }

  Result<std::vector<std::string>> Plan(const std::string& materialization,
                                        const std::vector<Table>& tables,
                                        const OpenOptions& options) override {
    if (auto problem = CheckIdentifiers(tables); !problem) return problem.error();
    // One read transaction, so that what is read is one state of the database.
    auto b = Exec("BEGIN");
    if (!b) return b.error();
    auto result = PlanInTransaction(materialization, tables, options);
    auto c = Exec(result ? "COMMIT" : "ROLLBACK");
    if (result && !c) return c.error();
    return result;
  }

  Result<bool> Load(size_t table, const std::vector<std::vector<const doc::Value*>>& keys,
                    const std::function<void(size_t, std::string_view)>& found,
                    size_t* failed_key = nullptr) override {
    if (!loads_.at(table).get()) return true;
    // One read transaction for every key, rather than one (with its file locking) per key.
    auto b = Exec("BEGIN");
    if (!b) return b;
    auto r = LoadInTransaction(table, keys, found, failed_key);
    auto c = Exec(r ? "COMMIT" : "ROLLBACK");
    if (!r) return r;
    return c;
  }

  Result<bool> LoadInTransaction(size_t table,
                                 const std::vector<std::vector<const doc::Value*>>& keys,
                                 const std::function<void(size_t, std::string_view)>& found,
                                 size_t* failed_key) {
    sqlite3_stmt* st = loads_.at(table).get();
    std::vector<const Column*> key_columns = tables_[table].KeyColumns();
    for (size_t i = 0; i < keys.size(); ++i) {
      for (size_t k = 0; k < keys[i].size() && k < key_columns.size(); ++k) {
        if (!Bind(st, static_cast<int>(k + 1), keys[i][k], StoredAsJson(*key_columns[k]))) {
          sqlite3_reset(st);
          sqlite3_clear_bindings(st);
          if (failed_key) *failed_key = i;
          return Error::User(
              fmt::format("target `{}` ({}): table {}, column {}: a key integer is beyond SQLite's "
                          "64-bit range",
                          target_, path_, QuoteIdentifier(tables_[table].name),
                          QuoteIdentifier(key_columns[k]->field)));
        }
      }
      int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        found(i, std::string_view(text ? text : "", static_cast<size_t>(sqlite3_column_bytes(st, 0))));
      } else if (rc != SQLITE_DONE) {
        auto e = Failure(fmt::format("cannot load from table {}", QuoteIdentifier(tables_[table].name)));
        sqlite3_reset(st);
        return e;
      }
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    }
    return true;
  }

  Result<bool> Store(const std::vector<Row>& rows, const std::string& checkpoint,
                     size_t* failed_row = nullptr) override {
    auto b = Exec("BEGIN IMMEDIATE");
    if (!b) return b;
    auto r = StoreInTransaction(rows, checkpoint, failed_row);
    if (!r) {
      auto rb = Exec("ROLLBACK");
      (void)rb;
      return r;
    }
    return Exec("COMMIT");
  }

 private:
  Result<bool> CheckIdentifiers(const std::vector<Table>& tables) const {
    return materialize::CheckIdentifiers(Dialect::kSqlite, tables,
                                         fmt::format("target `{}` ({})", target_, path_));
  }

  // The stored checkpoint of `materialization` ("" when flow_checkpoints has none).
  Result<std::string> StoredCheckpoint(const std::string& materialization) {
    auto st = Prepare("SELECT checkpoint FROM flow_checkpoints WHERE materialization = ?");
    if (!st) return st.error();
    sqlite3_bind_text(st->get(), 1, materialization.data(),
                      static_cast<int>(materialization.size()), SQLITE_STATIC);
    std::string checkpoint;
    if (sqlite3_step(st->get()) == SQLITE_ROW) {
      const unsigned char* cp = sqlite3_column_text(st->get(), 0);
      checkpoint = cp ? reinterpret_cast<const char*>(cp) : "";
    }
    return checkpoint;
  }

  // The table named `name` as the database describes it; nullopt when there is none.
  Result<std::optional<ExistingTable>> ReadTable(const std::string& name) {
    auto info = Prepare(fmt::format("PRAGMA table_info({})", QuoteIdentifier(name)));
    if (!info) return info.error();
    ExistingTable table;
    while (sqlite3_step(info->get()) == SQLITE_ROW) {
      auto text = [&](int i) {
        const unsigned char* t = sqlite3_column_text(info->get(), i);
        return std::string(t ? reinterpret_cast<const char*>(t) : "");
      };
      ExistingColumn e;
      e.name = text(1);
      e.type = text(2);
      e.not_null = sqlite3_column_int(info->get(), 3) != 0;
      e.default_sql = text(4);
      e.key_position = sqlite3_column_int(info->get(), 5);
      table.columns.push_back(std::move(e));
    }
    if (table.columns.empty()) return std::optional<ExistingTable>();
    auto deps = Prepare(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND "
        "sql IS NOT NULL ORDER BY type, name");
    if (!deps) return deps.error();
    sqlite3_bind_text(deps->get(), 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
    while (sqlite3_step(deps->get()) == SQLITE_ROW) {
      table.dependents.push_back(
          reinterpret_cast<const char*>(sqlite3_column_text(deps->get(), 0)));
    }
    return std::optional<ExistingTable>(std::move(table));
  }

  // The statements that bring `tables` to their shape (PlanMigration), from what the
  // database holds now; `checkpoint` is the stored one.
  Result<std::vector<std::string>> Migration(const std::string& materialization,
                                             const std::vector<Table>& tables,
                                             const std::string& checkpoint,
                                             const OpenOptions& options) {
    // A checkpoint of other data is refused before anything else (OpenOptions::accept).
    if (options.accept && !options.rebuild) {
      if (auto accepted = options.accept(checkpoint); !accepted) return accepted.error();
    }
    std::vector<std::optional<ExistingTable>> existing;
    for (const auto& t : tables) {
      auto read = ReadTable(t.name);
      if (!read) return read.error();
      existing.push_back(std::move(read.value()));
    }
    MigrationContext context;
    context.dialect = Dialect::kSqlite;
    context.target = fmt::format("target `{}` ({})", target_, path_);
    context.materialization = materialization;
    context.has_checkpoint = !checkpoint.empty();
    if (options.filled) {
      context.filled = [&](const std::string& table) { return options.filled(checkpoint, table); };
    }
    return PlanMigration(context, tables, existing, options);
  }

  Result<std::vector<std::string>> PlanInTransaction(const std::string& materialization,
                                                     const std::vector<Table>& tables,
                                                     const OpenOptions& options) {
    auto exists = Prepare(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'flow_checkpoints'");
    if (!exists) return exists.error();
    if (sqlite3_step(exists->get()) != SQLITE_ROW) return Failure("cannot read the schema").error();
    bool checkpoints = sqlite3_column_int(exists->get(), 0) > 0;
    std::string checkpoint;
    if (checkpoints) {
      auto cp = StoredCheckpoint(materialization);
      if (!cp) return cp.error();
      checkpoint = *cp;
    }
    auto statements = Migration(materialization, tables, checkpoint, options);
    if (!statements) return statements;
    if (!checkpoints)
      statements->insert(statements->begin(), CreateCheckpointsSql(Dialect::kSqlite));
    return statements;
  }

  Result<std::string> OpenInTransaction(const OpenOptions& options) {
    auto c = Exec(CreateCheckpointsSql(Dialect::kSqlite));
    if (!c) return c.error();
    auto checkpoint = StoredCheckpoint(materialization_);
    if (!checkpoint) return checkpoint.error();
    auto statements = Migration(materialization_, tables_, *checkpoint, options);
    if (!statements) return statements.error();
    for (const auto& sql : *statements) {
      if (auto r = Exec(sql); !r) return r.error();
    }
    if (options.rebuild) {
      auto reset = Prepare(
          "INSERT INTO flow_checkpoints (materialization, fence, checkpoint) VALUES (?, 0, ?) "
          "ON CONFLICT (materialization) DO UPDATE SET checkpoint = excluded.checkpoint");
      if (!reset) return reset.error();
      sqlite3_bind_text(reset->get(), 1, materialization_.data(),
                        static_cast<int>(materialization_.size()), SQLITE_STATIC);
      sqlite3_bind_text(reset->get(), 2, options.reset_checkpoint.data(),
                        static_cast<int>(options.reset_checkpoint.size()), SQLITE_STATIC);
      if (sqlite3_step(reset->get()) != SQLITE_DONE)
        return Failure("cannot write flow_checkpoints").error();
    }
    auto ins = Prepare("INSERT OR IGNORE INTO flow_checkpoints (materialization, fence, checkpoint) VALUES (?, 0, '')");
    if (!ins) return ins.error();
    sqlite3_bind_text(ins->get(), 1, materialization_.data(), static_cast<int>(materialization_.size()), SQLITE_STATIC);
    if (sqlite3_step(ins->get()) != SQLITE_DONE) return Failure("cannot write flow_checkpoints").error();
    auto bump = Prepare("UPDATE flow_checkpoints SET fence = fence + 1 WHERE materialization = ? "
                        "RETURNING fence, checkpoint");
    if (!bump) return bump.error();
    sqlite3_bind_text(bump->get(), 1, materialization_.data(), static_cast<int>(materialization_.size()),
                      SQLITE_STATIC);
    if (sqlite3_step(bump->get()) != SQLITE_ROW) return Failure("cannot take the fence in flow_checkpoints").error();
    fence_ = sqlite3_column_int64(bump->get(), 0);
    const unsigned char* cp = sqlite3_column_text(bump->get(), 1);
    stored_checkpoint_ = cp ? reinterpret_cast<const char*>(cp) : "";
    while (sqlite3_step(bump->get()) == SQLITE_ROW) {
    }
    return stored_checkpoint_;
  }

  Result<bool> StoreInTransaction(const std::vector<Row>& rows, const std::string& checkpoint,
                                  size_t* failed_row) {
    std::string json;
    for (size_t r = 0; r < rows.size(); ++r) {
      const Row& row = rows[r];
      const Table& t = tables_.at(row.table);
      sqlite3_stmt* st = stores_[row.table].get();
      for (size_t i = 0; i < t.columns.size(); ++i) {
        const Column& c = t.columns[i];
        int index = static_cast<int>(i + 1);
        if (c.document) {
          json.clear();
          doc::AppendJson(*row.document, &json);
          sqlite3_bind_text(st, index, json.data(), static_cast<int>(json.size()), SQLITE_TRANSIENT);
          continue;
        }
        if (!Bind(st, index, doc::Lookup(*row.document, c.location), StoredAsJson(c))) {
          sqlite3_reset(st);
          sqlite3_clear_bindings(st);
          if (failed_row) *failed_row = r;
          return OutOfRange(t, c, *row.document);
        }
      }
      int rc = sqlite3_step(st);
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      if (rc != SQLITE_DONE) {
        if (failed_row && (rc == SQLITE_CONSTRAINT || rc == SQLITE_TOOBIG || rc == SQLITE_MISMATCH))
          *failed_row = r;
        return Failure(fmt::format("cannot write table {}, key {}", QuoteIdentifier(t.name),
                                   RowKeyJson(t, *row.document)));
      }
    }
    sqlite3_stmt* cp = checkpoint_.get();
    sqlite3_bind_text(cp, 1, checkpoint.data(), static_cast<int>(checkpoint.size()), SQLITE_STATIC);
    sqlite3_bind_text(cp, 2, materialization_.data(), static_cast<int>(materialization_.size()), SQLITE_STATIC);
    sqlite3_bind_int64(cp, 3, fence_);
    int rc = sqlite3_step(cp);
    sqlite3_reset(cp);
    sqlite3_clear_bindings(cp);
    if (rc != SQLITE_DONE) return Failure("cannot write flow_checkpoints");
    if (sqlite3_changes(db_) == 0) {
      return FencedOff(materialization_, target_, path_);
    }
    return true;
  }

  // Binds the value at a column's location: natively for single-typed columns, as JSON text
  // for objects, arrays and columns of several types; NULL when absent or null.
  // False for an integer beyond SQLite's signed 64-bit range (which SQLite would turn into
  // an approximate REAL).
  static bool Bind(sqlite3_stmt* st, int index, const doc::Value* v, bool json) {
    if (!v || v->IsNull()) {
      sqlite3_bind_null(st, index);
      return true;
    }
    if (!json && v->IsUint64() && !v->IsInt64()) return false;
    if (!json && v->IsString()) {
      sqlite3_bind_text(st, index, v->GetString(), static_cast<int>(v->GetStringLength()), SQLITE_TRANSIENT);
    } else if (!json && v->IsBool()) {
      sqlite3_bind_int(st, index, v->GetBool() ? 1 : 0);
    } else if (!json && v->IsInt64()) {
      sqlite3_bind_int64(st, index, v->GetInt64());
    } else if (!json && v->IsNumber()) {
      sqlite3_bind_double(st, index, v->GetDouble());
    } else {
      std::string text;
      doc::AppendJson(*v, &text);
      sqlite3_bind_text(st, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    }
    return true;
  }

  Error OutOfRange(const Table& t, const Column& c, const doc::Value& document) const {
    std::string value;
    if (const doc::Value* v = doc::Lookup(document, c.location)) doc::AppendJson(*v, &value);
    return Error::User(
        fmt::format("target `{}` ({}): table {}, key {}, column {}: the integer {} is beyond "
                    "SQLite's 64-bit range (at {} of "
                    "the document); nothing of the transaction was stored",
                    target_, path_, QuoteIdentifier(t.name), RowKeyJson(t, document),
                    QuoteIdentifier(c.field), value, c.location.ToString()));
  }

  Result<Statement> Prepare(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      return Error::Env(fmt::format("target `{}` ({}): {} (in: {})", target_, path_, Why(db_), sql));
    }
    return Statement(st);
  }

  Result<bool> Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string message = Why(db_);
      sqlite3_free(err);
      return Error::Env(fmt::format("target `{}` ({}): {}", target_, path_, message));
    }
    return true;
  }

  Result<bool> Failure(const std::string& what) {
    return Error::Env(fmt::format("target `{}` ({}): {}: {}", target_, path_, what, Why(db_)));
  }

  sqlite3* db_;
  std::string path_, target_, materialization_;
  std::vector<Table> tables_;
  std::vector<Statement> loads_, stores_;
  Statement checkpoint_;
  int64_t fence_ = 0;
  std::string stored_checkpoint_;
};

}  // namespace

Result<std::unique_ptr<Driver>> ConnectSqlite(const std::string& path, const std::string& target) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return Error::Env(fmt::format("target `{}`: cannot create directory {}: {}", target, parent.string(), ec.message()));
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string why = db ? Why(db) : "out of memory";
    sqlite3_close(db);
    return Error::Env(fmt::format("target `{}`: cannot open SQLite database {}: {}", target, path, why));
  }
  sqlite3_busy_timeout(db, 10000);
  char* err = nullptr;
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;", nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = Why(db);
    sqlite3_free(err);
    sqlite3_close(db);
    return Error::Env(fmt::format("target `{}`: cannot use SQLite database {}: {}", target, path, why));
  }
  return std::unique_ptr<Driver>(new SqliteDriver(db, path, target));
}

}  // namespace flow::materialize
