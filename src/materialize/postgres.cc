#include "materialize/postgres.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace flow::materialize {
namespace {

// Keys per Load query: each batch is one round trip with one array parameter per key
// column, so the statement text does not grow with the batch.
constexpr size_t kLoadBatch = 4096;
// Bytes of COPY data handed to libpq at a time.
constexpr size_t kCopyChunk = 1 << 20;
// pg_advisory_xact_lock key serializing Open's DDL across flowctl instances ("flowctl" in
// ASCII): two concurrent CREATE TABLE IF NOT EXISTS of one name can otherwise both pass the
// existence check and one fail on a unique index of the catalog.
constexpr const char* kOpenLockKey = "28829673624663148";
// Seconds to wait for a connection unless the URI says otherwise (libpq waits forever).
constexpr const char* kConnectTimeout = "10";

using PgResult = std::unique_ptr<PGresult, void (*)(PGresult*)>;

PgResult Wrap(PGresult* r) { return PgResult(r, PQclear); }

// Removes trailing whitespace (libpq messages end with "\n").
std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

// Passwords shorter than this are not masked: libpq does not echo passwords in its
// messages, and masking "flow" in `user "flow"` would only garble them (bytes).
constexpr size_t kMinRedacted = 6;

// `text` with every occurrence of `password` masked: a second line of defense for messages
// that quote a URI or a server's words.
std::string Redact(std::string text, const std::string& password) {
  if (password.size() < kMinRedacted) return text;
  for (size_t at = text.find(password); at != std::string::npos; at = text.find(password, at + 3)) {
    text.replace(at, password.size(), "***");
  }
  return text;
}

// The password of a URI libpq could not parse, found by hand: "scheme://user:PASSWORD@host".
std::string UriPassword(const std::string& uri) {
  size_t scheme = uri.find("://");
  if (scheme == std::string::npos) return {};
  size_t start = scheme + 3;
  size_t end = uri.find_first_of("/?", start);
  std::string_view authority = std::string_view(uri).substr(start, end == std::string::npos ? std::string::npos : end - start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return {};
  size_t colon = authority.substr(0, at).find(':');
  if (colon == std::string_view::npos) return {};
  return std::string(authority.substr(colon + 1, at - colon - 1));
}

void IgnoreNotice(void*, const char*) {}  // library code never prints (STYLE 1)

// How a column's values are written.
enum class Kind {
  kScalar,    // by the value's type: numbers, booleans and strings as themselves
  kJson,      // JSON text of the value (objects, arrays, several types)
  kDocument,  // `flow_document`: the whole document
};

// The PostgreSQL array type for Load parameters of a key column.
std::string ArrayType(const Column& c) {
  std::string type = ColumnType(Dialect::kPostgres, c);
  if (type == "BIGINT") return "int8[]";
  if (type == "DOUBLE PRECISION") return "float8[]";
  if (type == "BOOLEAN") return "bool[]";
  return "text[]";
}

void AppendNumber(const doc::Value& v, std::string* out) {
  if (v.IsInt64()) {
    out->append(fmt::format_int(v.GetInt64()).c_str());
  } else if (v.IsUint64()) {
    out->append(fmt::format_int(v.GetUint64()).c_str());
  } else {
    fmt::format_to(std::back_inserter(*out), "{}", v.GetDouble());  // shortest round trip
  }
}

// COPY's text format: backslash, newline, carriage return and tab are escaped.
void AppendCopyText(std::string_view s, std::string* out) {
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* esc = nullptr;
    switch (s[i]) {
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default: continue;
    }
    out->append(s.data() + run, i - run);
    out->append(esc);
    run = i + 1;
  }
  out->append(s.data() + run, s.size() - run);
}

// One field of a COPY row: `v` (null or absent is \N) as a column of `kind`.
void AppendCopyField(const doc::Value* v, Kind kind, std::string* scratch, std::string* out) {
  if (v == nullptr || v->IsNull()) {
    out->append("\\N");
    return;
  }
  if (kind == Kind::kScalar) {
    if (v->IsBool()) {
      out->push_back(v->GetBool() ? 't' : 'f');
      return;
    }
    if (v->IsNumber()) {
      AppendNumber(*v, out);
      return;
    }
    if (v->IsString()) {
      AppendCopyText(std::string_view(v->GetString(), v->GetStringLength()), out);
      return;
    }
  }
  scratch->clear();
  doc::AppendJson(*v, scratch);
  AppendCopyText(*scratch, out);
}

// One element of a PostgreSQL array literal (text format), for Load's key parameters.
void AppendArrayElement(const doc::Value* v, std::string* scratch, std::string* out) {
  if (v == nullptr || v->IsNull()) {
    out->append("NULL");
    return;
  }
  if (v->IsBool()) {
    out->push_back(v->GetBool() ? 't' : 'f');
    return;
  }
  if (v->IsNumber()) {
    AppendNumber(*v, out);
    return;
  }
  std::string_view s;
  if (v->IsString()) {
    s = std::string_view(v->GetString(), v->GetStringLength());
  } else {
    scratch->clear();
    doc::AppendJson(*v, scratch);
    s = *scratch;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

// Runs queries on one connection and turns failures into Errors naming the target.
class Session {
 public:
  Session(PGconn* conn, const std::string& target, const std::string& password)
      : conn_(conn), target_(target), password_(password) {}

  // Runs `sql` with text parameters; `what` says what it was for, in messages. A failure
  // is an environment error, or a user error for data errors (SQLSTATE classes 22, 23).
  Result<PgResult> Exec(const std::string& sql, const std::vector<std::string>& params, const char* what) const {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    PgResult r = Wrap(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                   nullptr, nullptr, 0));
    ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
    return Failure(r.get(), what);
  }
  Result<PgResult> Exec(const std::string& sql, const char* what) const { return Exec(sql, {}, what); }

  // Sends `data` (COPY text rows) to `copy_sql` (a COPY ... FROM STDIN).
  Result<bool> Copy(const std::string& copy_sql, const std::string& data, const char* what) const {
    PgResult r = Wrap(PQexec(conn_, copy_sql.c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) return Failure(r.get(), what);
    bool sent = true;
    for (size_t at = 0; at < data.size() && sent; at += kCopyChunk) {
      size_t n = std::min(kCopyChunk, data.size() - at);
      sent = PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) == 1;
    }
    if (PQputCopyEnd(conn_, sent ? nullptr : "flowctl: sending rows failed") != 1) return Failure(nullptr, what);
    // Drain every result so the connection is ready for the next command.
    std::optional<Error> error;
    while (PGresult* raw = PQgetResult(conn_)) {
      PgResult end = Wrap(raw);
      if (PQresultStatus(raw) != PGRES_COMMAND_OK && !error) error = Failure(raw, what);
    }
    if (error) return *error;
    if (!sent) return Failure(nullptr, what);
    return true;
  }

  // Ends a failed transaction; its own failure adds nothing to the error being returned.
  void Rollback() const {
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) Wrap(PQexec(conn_, "ROLLBACK"));
  }

  Error Failure(const PGresult* r, const char* what) const {
    std::string message;
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    if (primary) {
      message = primary;
      if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) message += fmt::format(" ({})", detail);
    } else {
      message = Trim(PQerrorMessage(conn_));
      if (message.empty()) message = "unknown libpq error";
    }
    if (PQstatus(conn_) == CONNECTION_BAD) {
      return Error::Env(Redact(fmt::format("PostgreSQL target `{}`: lost the connection while {}: {}", target_, what, message), password_));
    }
    message = Redact(fmt::format("PostgreSQL target `{}`: {} failed: {}", target_, what, message), password_);
    bool data_error = state && (std::strncmp(state, "22", 2) == 0 || std::strncmp(state, "23", 2) == 0);
    return data_error ? Error::User(std::move(message)) : Error::Env(std::move(message));
  }

 private:
  PGconn* conn_;
  const std::string& target_;
  const std::string& password_;
};

}  // namespace

struct PostgresDriver::Binding {
  Table table;
  std::vector<Kind> kinds;        // per column
  std::vector<size_t> keys;       // indices of the key columns, in key order
  std::string copy_sql;           // COPY into the staging table (the table, for delta updates)
  std::string merge_sql;          // staging table → table, upserting; empty for delta updates
  std::string load_sql;           // key arrays → (ordinality, flow_document)
};

PostgresDriver::PostgresDriver(PGconn* conn, std::string target, std::string password)
    : conn_(conn), target_(std::move(target)), password_(std::move(password)) {}

PostgresDriver::~PostgresDriver() { PQfinish(conn_); }

Result<std::unique_ptr<Driver>> PostgresDriver::Connect(const std::string& uri, const std::string& target_name) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &parse_error);
  if (options == nullptr) {
    std::string why = parse_error ? Trim(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return Error::User(Redact(fmt::format("PostgreSQL target `{}`: invalid connection URI: {}", target_name, why),
                              UriPassword(uri)));
  }
  std::string password;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val) password = o->val;
  }
  PQconninfoFree(options);

  // Later keywords override the URI's (`client_encoding`); earlier ones are defaults it may
  // override (`connect_timeout`, the application name).
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", "client_encoding", nullptr};
  const char* values[] = {kConnectTimeout, "flowctl", uri.c_str(), "UTF8", nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Error::Env(fmt::format("PostgreSQL target `{}`: out of memory", target_name));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = Trim(PQerrorMessage(conn));
    PQfinish(conn);
    return Error::Env(Redact(fmt::format("cannot connect to PostgreSQL target `{}`: {}", target_name, message), password));
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<Driver>(new PostgresDriver(conn, target_name, std::move(password)));
}

Result<std::string> PostgresDriver::Open(const std::string& materialization, const std::vector<Table>& tables) {
  Session s(conn_, target_, password_);
  bindings_.clear();
  fence_ = 0;
  materialization_ = materialization;

  auto fail = [&](Error e) -> Result<std::string> {
    s.Rollback();
    return e;
  };
  if (auto r = s.Exec("BEGIN", "starting a transaction"); !r) return fail(r.error());
  if (auto r = s.Exec(fmt::format("SELECT pg_advisory_xact_lock({})", kOpenLockKey), "locking flowctl's tables"); !r) {
    return fail(r.error());
  }
  if (auto r = s.Exec(CreateCheckpointsSql(Dialect::kPostgres), "creating flow_checkpoints"); !r) return fail(r.error());

  // Check every existing table before creating any, so that a mismatch changes nothing.
  std::vector<std::string> mismatches;
  std::vector<const Table*> missing;
  for (const Table& table : tables) {
    std::string what = fmt::format("reading the columns of table `{}`", table.name);
    auto exists = s.Exec("SELECT to_regclass($1) IS NOT NULL", {QuoteIdentifier(table.name)}, what.c_str());
    if (!exists) return fail(exists.error());
    if (PQgetvalue(exists->get(), 0, 0)[0] != 't') {
      missing.push_back(&table);
      continue;
    }
    auto columns = s.Exec(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,\n"
        "  COALESCE((SELECT k.n FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)\n"
        "            WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum), 0)\n"
        "FROM pg_attribute a\n"
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped\n"
        "ORDER BY a.attnum",
        {QuoteIdentifier(table.name)}, what.c_str());
    if (!columns) return fail(columns.error());
    std::vector<ExistingColumn> existing;
    PGresult* r = columns->get();
    for (int i = 0; i < PQntuples(r); ++i) {
      existing.push_back({PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0] == 't',
                          std::atoi(PQgetvalue(r, i, 3))});
    }
    std::vector<std::string> diffs = DiffTable(Dialect::kPostgres, table, existing);
    if (diffs.empty()) continue;
    std::string m = fmt::format("table `{}` in target `{}` exists with a different shape; nothing was changed. Expected:\n{}\nDifferences:",
                                table.name, target_, CreateTableSql(Dialect::kPostgres, table));
    for (const auto& d : diffs) m += "\n  - " + d;
    mismatches.push_back(std::move(m));
  }
  if (!mismatches.empty()) return fail(Error::User(fmt::format("{}", fmt::join(mismatches, "\n"))));
  for (const Table* table : missing) {
    std::string what = fmt::format("creating table `{}`", table->name);
    if (auto r = s.Exec(CreateTableSql(Dialect::kPostgres, *table), what.c_str()); !r) return fail(r.error());
  }

  for (size_t t = 0; t < tables.size(); ++t) {
    Binding b;
    b.table = tables[t];
    const Table& table = b.table;
    std::string name = QuoteIdentifier(table.name);
    std::vector<std::string> columns, updates;
    const Column* document = nullptr;
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const Column& c = table.columns[i];
      std::string q = QuoteIdentifier(c.field);
      columns.push_back(q);
      if (c.document) {
        b.kinds.push_back(Kind::kDocument);
        document = &c;
      } else {
        b.kinds.push_back(ColumnType(Dialect::kPostgres, c) == "JSON" ? Kind::kJson : Kind::kScalar);
      }
      if (!c.key) updates.push_back(fmt::format("{0} = EXCLUDED.{0}", q));
    }
    for (const Column* k : table.KeyColumns()) b.keys.push_back(static_cast<size_t>(k - table.columns.data()));

    if (table.delta_updates) {
      b.copy_sql = fmt::format("COPY {} ({}) FROM STDIN", name, fmt::join(columns, ", "));
    } else {
      // A session-private staging table, emptied at each commit (and by a rollback).
      std::string stage = fmt::format("pg_temp.{}", QuoteIdentifier(fmt::format("flowctl_stage_{}", t)));
      std::string what = fmt::format("creating the staging table of `{}`", table.name);
      if (auto r = s.Exec(fmt::format("DROP TABLE IF EXISTS {}", stage), what.c_str()); !r) return fail(r.error());
      if (auto r = s.Exec(fmt::format("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DELETE ROWS", stage, name), what.c_str()); !r) {
        return fail(r.error());
      }
      std::vector<std::string> keys;
      for (size_t k : b.keys) keys.push_back(columns[k]);
      b.copy_sql = fmt::format("COPY {} ({}) FROM STDIN", stage, fmt::join(columns, ", "));
      b.merge_sql = fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM {2} ON CONFLICT ({3}) DO {4}", name,
                                fmt::join(columns, ", "), stage, fmt::join(keys, ", "),
                                updates.empty() ? "NOTHING" : fmt::format("UPDATE SET {}", fmt::join(updates, ", ")));
      if (document != nullptr) {
        std::vector<std::string> arrays, names, on;
        for (size_t i = 0; i < b.keys.size(); ++i) {
          const Column& k = table.columns[b.keys[i]];
          arrays.push_back(fmt::format("${}::{}", i + 1, ArrayType(k)));
          names.push_back(fmt::format("k{}", i));
          // JSON has no equality operator; jsonb does.
          on.push_back(b.kinds[b.keys[i]] == Kind::kJson ? fmt::format("t.{}::jsonb = k.k{}::jsonb", columns[b.keys[i]], i)
                                                         : fmt::format("t.{} = k.k{}", columns[b.keys[i]], i));
        }
        b.load_sql = fmt::format("SELECT k.flowctl_i, t.{} FROM unnest({}) WITH ORDINALITY AS k({}, flowctl_i) JOIN {} AS t ON {}",
                                 QuoteIdentifier(document->field), fmt::join(arrays, ", "), fmt::join(names, ", "), name,
                                 fmt::join(on, " AND "));
      }
    }
    bindings_.push_back(std::move(b));
  }

  // Take the next fence. The UPDATE locks the row, so a concurrent Open waits for this
  // transaction and then increments the fence this one committed.
  if (auto r = s.Exec("INSERT INTO flow_checkpoints (materialization, fence, checkpoint) VALUES ($1, 0, '') ON CONFLICT DO NOTHING",
                      {materialization}, "registering the materialization");
      !r) {
    return fail(r.error());
  }
  auto fenced = s.Exec("UPDATE flow_checkpoints SET fence = fence + 1 WHERE materialization = $1 RETURNING fence, checkpoint",
                       {materialization}, "incrementing the fence");
  if (!fenced) return fail(fenced.error());
  if (PQntuples(fenced->get()) != 1) return fail(Error::Internal("flow_checkpoints has no row for the materialization"));
  int64_t fence = std::strtoll(PQgetvalue(fenced->get(), 0, 0), nullptr, 10);
  std::string checkpoint = PQgetvalue(fenced->get(), 0, 1);
  if (auto r = s.Exec("COMMIT", "committing the tables and the fence"); !r) return fail(r.error());
  fence_ = fence;
  return checkpoint;
}

Result<bool> PostgresDriver::Load(size_t table, const std::vector<std::vector<const doc::Value*>>& keys,
                                  const std::function<void(size_t, std::string_view)>& found) {
  if (table >= bindings_.size()) return Error::Internal(fmt::format("Load of binding {} before Open", table));
  const Binding& b = bindings_[table];
  if (b.load_sql.empty() || keys.empty()) return true;  // delta updates: nothing is loaded
  Session s(conn_, target_, password_);
  std::string what = fmt::format("loading from table `{}`", b.table.name);
  std::string scratch;
  std::vector<std::string> arrays(b.keys.size());
  for (size_t start = 0; start < keys.size(); start += kLoadBatch) {
    size_t end = std::min(keys.size(), start + kLoadBatch);
    for (size_t k = 0; k < arrays.size(); ++k) {
      std::string& a = arrays[k];
      a = "{";
      for (size_t i = start; i < end; ++i) {
        if (i > start) a.push_back(',');
        AppendArrayElement(k < keys[i].size() ? keys[i][k] : nullptr, &scratch, &a);
      }
      a.push_back('}');
    }
    auto r = s.Exec(b.load_sql, arrays, what.c_str());
    if (!r) return r.error();
    PGresult* res = r->get();
    for (int row = 0; row < PQntuples(res); ++row) {
      size_t i = start + std::strtoull(PQgetvalue(res, row, 0), nullptr, 10) - 1;
      found(i, std::string_view(PQgetvalue(res, row, 1), static_cast<size_t>(PQgetlength(res, row, 1))));
    }
  }
  return true;
}

Result<bool> PostgresDriver::Store(const std::vector<Row>& rows, const std::string& checkpoint) {
  if (fence_ == 0) return Error::Internal("Store before Open");
  // Each table's documents; the last row of a key wins, as when applied one by one.
  std::vector<std::vector<const doc::Value*>> docs(bindings_.size());
  std::vector<std::unordered_map<std::string, size_t>> seen(bindings_.size());
  std::string key, scratch;
  for (const Row& row : rows) {
    if (row.table >= bindings_.size()) return Error::Internal(fmt::format("Store of binding {} before Open", row.table));
    const Binding& b = bindings_[row.table];
    std::vector<const doc::Value*>& d = docs[row.table];
    if (b.table.delta_updates) {
      d.push_back(row.document);
      continue;
    }
    key.clear();
    for (size_t k : b.keys) {
      AppendCopyField(doc::Lookup(*row.document, b.table.columns[k].location), b.kinds[k], &scratch, &key);
      key.push_back('\t');
    }
    auto [it, inserted] = seen[row.table].try_emplace(key, d.size());
    if (inserted) {
      d.push_back(row.document);
    } else {
      d[it->second] = row.document;
    }
  }
  seen.clear();

  Session s(conn_, target_, password_);
  auto fail = [&](Error e) -> Result<bool> {
    s.Rollback();
    return e;
  };
  if (auto r = s.Exec("BEGIN", "starting a transaction"); !r) return fail(r.error());
  // The checkpoint first: it fails fast when fenced off, and its row lock orders this
  // transaction with a concurrent Open's fence increment.
  auto updated = s.Exec("UPDATE flow_checkpoints SET checkpoint = $1 WHERE materialization = $2 AND fence = $3",
                        {checkpoint, materialization_, std::to_string(fence_)}, "updating the checkpoint");
  if (!updated) return fail(updated.error());
  if (std::strcmp(PQcmdTuples(updated->get()), "1") != 0) {
    return fail(Error::Env(fmt::format("materialization `{}` was fenced off: another flowctl instance took over target `{}`",
                                       materialization_, target_)));
  }
  std::string data;
  for (size_t t = 0; t < bindings_.size(); ++t) {
    if (docs[t].empty()) continue;
    const Binding& b = bindings_[t];
    data.clear();
    for (const doc::Value* document : docs[t]) {
      for (size_t c = 0; c < b.table.columns.size(); ++c) {
        if (c > 0) data.push_back('\t');
        const Column& col = b.table.columns[c];
        const doc::Value* v = b.kinds[c] == Kind::kDocument ? document : doc::Lookup(*document, col.location);
        AppendCopyField(v, b.kinds[c], &scratch, &data);
      }
      data.push_back('\n');
    }
    std::string what = fmt::format("storing rows into table `{}`", b.table.name);
    if (auto r = s.Copy(b.copy_sql, data, what.c_str()); !r) return fail(r.error());
    if (!b.merge_sql.empty()) {
      if (auto r = s.Exec(b.merge_sql, what.c_str()); !r) return fail(r.error());
    }
  }
  if (auto r = s.Exec("COMMIT", "committing the rows and the checkpoint"); !r) return fail(r.error());
  return true;
}

}  // namespace flow::materialize
