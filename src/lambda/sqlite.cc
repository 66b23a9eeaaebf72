#include "lambda/sqlite.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sqlite3.h>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"

namespace flow::lambda {

std::string ParameterName(std::string_view field) {
  std::string out(field);
  for (char& c : out) {
    bool ident =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ident) c = '_';
  }
  return out;
}

namespace {

// SQLite's subtype for values produced by its JSON functions (JSON_SUBTYPE in json.c).
constexpr unsigned kJsonSubtype = 'J';
// SQLite virtual-machine instructions between two watchdog checks: a few microseconds, so
// a check (one clock read) costs well under 1% and a timeout fires within a millisecond.
constexpr int kProgressSteps = 1000;

// What a statement parameter is bound to.
enum class Input { kSource, kRegister, kPrevious, kField };

struct Binding {
  int index = 0;  // sqlite3 parameter index, 1-based
  Input input = Input::kField;
  size_t field = 0;  // into Impl::fields when input == kField
  // JSON text of the bound value when it is a document, object or array. Bound with
  // SQLITE_STATIC, so it must stay unchanged until the bindings are cleared.
  rapidjson::StringBuffer json;
};

// The first byte of `s` that is not whitespace, ';' or inside an SQL comment.
const char* SkipComments(const char* s) {
  for (;;) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == ';') ++s;
    if (s[0] == '-' && s[1] == '-') {
      while (*s && *s != '\n') ++s;
    } else if (s[0] == '/' && s[1] == '*') {
      const char* end = std::strstr(s + 2, "*/");
      if (!end) return s + std::strlen(s);  // SQLite accepts an unterminated trailing comment
      s = end + 2;
    } else {
      return s;
    }
  }
}

void WriteJson(const doc::Value& v, rapidjson::StringBuffer* buf) {
  buf->Clear();
  rapidjson::Writer<rapidjson::StringBuffer> w(*buf);
  v.Accept(w);
}

// Skips JSON whitespace.
const char* SkipSpace(const char* p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  return p;
}

// Prepares a lambda's query on `db` and applies the rules of QueryProblem. On success
// `*stmt` is the statement and `*columns` its result columns' names; on a problem `*stmt`
// is finalized and null.
QueryProblem PrepareQuery(sqlite3* db, const std::string& sql, unsigned flags, sqlite3_stmt** stmt,
                          std::vector<std::string>* columns) {
  QueryProblem p;
  const char* tail = nullptr;
  *stmt = nullptr;
  columns->clear();
  if (sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()), flags, stmt, &tail) !=
      SQLITE_OK) {
    p.kind = QueryProblem::Kind::kDoesNotCompile;
    p.detail = sqlite3_errmsg(db);
    p.offset = sqlite3_error_offset(db);
  } else if (!*stmt) {
    p.kind = QueryProblem::Kind::kEmpty;
  } else if (tail && *SkipComments(tail)) {
    p.kind = QueryProblem::Kind::kMoreThanOneStatement;
    p.detail = SkipComments(tail);
  } else if (sqlite3_column_count(*stmt) == 0) {
    p.kind = QueryProblem::Kind::kNoColumns;
  } else {
    for (int i = 0; i < sqlite3_column_count(*stmt) && !p; ++i) {
      std::string name = sqlite3_column_name(*stmt, i);
      for (const auto& prev : *columns) {
        if (prev == name) {
          p.kind = QueryProblem::Kind::kDuplicateColumn;
          p.detail = name;
        }
      }
      columns->push_back(std::move(name));
    }
  }
  if (p) {
    sqlite3_finalize(*stmt);
    *stmt = nullptr;
  }
  return p;
}

// The parameters a lambda's query may use: the three documents, then the projections by
// their identifier-safe name (ParameterName).
class ParameterNames {
 public:
  explicit ParameterNames(const std::vector<std::string>& fields) : fields_(fields) {
    // A field named exactly like the parameter wins over one that only maps to it ("a_b"
    // over "a b"); otherwise the first field wins.
    for (size_t i = 0; i < fields.size(); ++i) {
      if (ParameterName(fields[i]) == fields[i]) by_name_.emplace(fields[i], i);
    }
    for (size_t i = 0; i < fields.size(); ++i) by_name_.emplace(ParameterName(fields[i]), i);
  }

  // What `name` binds to: false when nothing.
  bool Resolve(const std::string& name, Input* input, size_t* field) const {
    if (name == "$source") {
      *input = Input::kSource;
    } else if (name == "$register") {
      *input = Input::kRegister;
    } else if (name == "$previous") {
      *input = Input::kPrevious;
    } else if (auto it = by_name_.find(name.substr(1)); name[0] == '$' && it != by_name_.end()) {
      *input = Input::kField;
      *field = it->second;
    } else {
      return false;
    }
    return true;
  }

  // The parameter that binds and is closest to `name` (written with `$`), or "".
  std::string Suggest(const std::string& name) const {
    std::vector<std::string> candidates = {"$source", "$register", "$previous"};
    for (const auto& f : fields_) candidates.push_back("$" + ParameterName(f));
    std::string word = name[0] == '$' ? name : "$" + name.substr(1);
    if (name[0] != '$' && std::find(candidates.begin(), candidates.end(), word) != candidates.end())
      return word;
    return ClosestMatch(word, candidates).value_or("");
  }

 private:
  std::vector<std::string> fields_;
  std::unordered_map<std::string, size_t> by_name_;
};

// The name of parameter `i` of `stmt`: as written, or `?i` for a nameless `?`.
std::string NameOfParameter(sqlite3_stmt* stmt, int i) {
  const char* p = sqlite3_bind_parameter_name(stmt, i);
  return p ? p : fmt::format("?{}", i);
}

bool IsIdentByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

// The byte at which `sql` first uses parameter `name` (outside string literals, quoted
// identifiers and comments), or npos. A nameless `?` (named `?N`) is found as the first `?`.
size_t FindParameter(std::string_view sql, std::string_view name) {
  bool nameless = name.size() > 1 && name[0] == '?';
  size_t i = 0, n = sql.size();
  while (i < n) {
    char c = sql[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      char close = c == '[' ? ']' : c;
      size_t end = sql.find(close, i + 1);
      i = end == std::string_view::npos ? n : end + 1;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? n : end + 1;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      size_t end = sql.find("*/", i + 2);
      i = end == std::string_view::npos ? n : end + 2;
    } else if (c == '$' || c == ':' || c == '@' || c == '?') {
      size_t j = i + 1;
      while (j < n && IsIdentByte(sql[j])) ++j;
      std::string_view token = sql.substr(i, j - i);
      if (token == name || (nameless && c == '?')) return i;
      i = j;
    } else if (IsIdentByte(c)) {
      while (i < n && IsIdentByte(sql[i])) ++i;
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}
}  // namespace

Result<std::shared_ptr<SqliteDatabase>> SqliteDatabase::Open() {
  std::shared_ptr<SqliteDatabase> d(new SqliteDatabase());
  int rc = sqlite3_open_v2(":memory:", &d->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    return Error::Env(fmt::format("cannot open an in-memory SQLite database: {}",
                                  d->db_ ? sqlite3_errmsg(d->db_) : sqlite3_errstr(rc)));
  }
  // Lambdas are catalog content: they may not reach files (ATTACH) or load extensions.
  sqlite3_limit(d->db_, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_db_config(d->db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(d->db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_progress_handler(d->db_, kProgressSteps, &SqliteDatabase::Progress, d.get());
  return d;
}

SqliteDatabase::~SqliteDatabase() { sqlite3_close_v2(db_); }

int SqliteDatabase::Progress(void* p) {
  auto* self = static_cast<SqliteDatabase*>(p);
  if (StopRequested()) return 1;
  if (self->armed_ && std::chrono::steady_clock::now() >= self->deadline_) {
    self->expired_ = true;
    return 1;
  }
  return 0;
}

void SqliteDatabase::Arm(std::chrono::milliseconds timeout) {
  armed_ = true;
  expired_ = false;
  deadline_ = std::chrono::steady_clock::now() + timeout;
}

bool SqliteDatabase::Disarm() {
  armed_ = false;
  return expired_;
}

Error SqliteDatabase::Interrupted(std::string_view what, std::chrono::milliseconds timeout) const {
  if (!expired_) return StoppedError();
  return Error::User(fmt::format("{} did not finish within {} and was interrupted (the lambda timeout; "
                                 "set `lambdaTimeout` to allow longer)",
                                 what, DescribeTimeout(timeout)));
}

Result<bool> SqliteDatabase::Exec(const std::string& sql, std::chrono::milliseconds timeout,
                                  ExecFailure* failure) {
  if (StopRequested()) return StoppedError();
  Arm(timeout);
  // Statement by statement (as sqlite3_exec does), so that a failure knows its statement.
  const char* text = sql.c_str();
  int rc = SQLITE_OK;
  size_t offset = 0;
  std::string message;
  for (const char* at = text; *at;) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    rc = sqlite3_prepare_v2(db_, at, -1, &stmt, &tail);
    if (rc == SQLITE_OK && stmt) {
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      }
      if (rc == SQLITE_DONE) rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK) {
      message = sqlite3_errmsg(db_);
      // Where SQLite says, else at the start of the failing statement.
      int error_offset = stmt ? -1 : sqlite3_error_offset(db_);
      size_t start = static_cast<size_t>(at - text);
      offset = error_offset >= 0 ? start + static_cast<size_t>(error_offset)
                                 : sql.find_first_not_of(" \t\r\n", start);
      sqlite3_finalize(stmt);
      break;
    }
    sqlite3_finalize(stmt);
    at = tail;
  }
  bool expired = Disarm();
  if (rc != SQLITE_OK) {
    if (failure) *failure = ExecFailure{message, offset, rc == SQLITE_INTERRUPT && expired};
    if (rc == SQLITE_INTERRUPT) return Interrupted("the SQLite statements", timeout);
    return Error::User(fmt::format("SQLite: {}", message));
  }
  return true;
}

QueryProblem SqliteDatabase::CheckQuery(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  std::vector<std::string> columns;
  QueryProblem p = PrepareQuery(db_, sql, 0, &stmt, &columns);
  sqlite3_finalize(stmt);
  return p;
}

std::vector<ParameterProblem> SqliteDatabase::CheckParameters(
    const std::string& sql, const std::vector<std::string>& fields, bool update) {
  std::vector<ParameterProblem> out;
  sqlite3_stmt* stmt = nullptr;
  std::vector<std::string> columns;
  if (PrepareQuery(db_, sql, 0, &stmt, &columns)) {
    sqlite3_finalize(stmt);
    return out;  // CheckQuery's to report
  }
  ParameterNames params(fields);
  int nparams = sqlite3_bind_parameter_count(stmt);
  for (int i = 1; i <= nparams; ++i) {
    ParameterProblem p;
    p.name = NameOfParameter(stmt, i);
    Input input = Input::kField;
    size_t field = 0;
    if (params.Resolve(p.name, &input, &field)) {
      if (!update || (input != Input::kRegister && input != Input::kPrevious)) continue;
      p.kind = ParameterProblem::Kind::kNotInUpdate;
    } else {
      p.kind =
          p.name[0] == '$' ? ParameterProblem::Kind::kUnknown : ParameterProblem::Kind::kNotDollar;
      p.suggestion = params.Suggest(p.name);
    }
    p.offset = FindParameter(sql, p.name);
    out.push_back(std::move(p));
  }
  sqlite3_finalize(stmt);
  return out;
}

Result<bool> SqliteDatabase::Reset() {
  // Temporary objects first (RESET_DATABASE empties the main database only).
  std::vector<std::string> drops;
  sqlite3_stmt* stmt = nullptr;
  const char* list =
      "SELECT type, name FROM temp.sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'";
  if (sqlite3_prepare_v2(db_, list, -1, &stmt, nullptr) != SQLITE_OK) {
    return Error::Internal(fmt::format("cannot list temporary SQLite tables: {}", sqlite3_errmsg(db_)));
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string type = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    std::string name = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    std::string quoted;
    for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    drops.push_back(fmt::format("DROP {} IF EXISTS temp.\"{}\"", type == "view" ? "VIEW" : "TABLE", quoted));
  }
  sqlite3_finalize(stmt);
  for (const auto& d : drops) {
    if (auto r = Exec(d); !r) return Error::Internal(fmt::format("cannot empty a SQLite database: {}", r.error().message));
  }
  // VACUUM attaches a database of its own, which the ATTACH limit would refuse.
  sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 1);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_RESET_DATABASE, 1, nullptr);
  int rc = sqlite3_exec(db_, "VACUUM", nullptr, nullptr, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_RESET_DATABASE, 0, nullptr);
  sqlite3_limit(db_, SQLITE_LIMIT_ATTACHED, 0);
  if (rc != SQLITE_OK) {
    return Error::Internal(fmt::format("cannot empty a SQLite database: {}", sqlite3_errmsg(db_)));
  }
  return true;
}

namespace {

class SqliteBootstrap final : public Lambda {
 public:
  SqliteBootstrap(std::shared_ptr<SqliteDatabase> db, std::string sql, std::chrono::milliseconds timeout)
      : db_(std::move(db)), sql_(std::move(sql)), timeout_(timeout) {}

  Result<bool> Invoke(const std::vector<Row>& rows, doc::Allocator&, Outputs* out, int* failed_row) override {
    out->clear();
    if (failed_row) *failed_row = -1;
    for (size_t r = 0; r < rows.size(); ++r) {
      auto done = db_->Exec(sql_, timeout_);
      if (!done) {
        if (failed_row) *failed_row = static_cast<int>(r);
        return done;
      }
      out->emplace_back();
    }
    return true;
  }

 private:
  std::shared_ptr<SqliteDatabase> db_;
  std::string sql_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::unique_ptr<Lambda> SqliteDatabase::Bootstrap(std::shared_ptr<SqliteDatabase> db, std::string sql,
                                                  std::chrono::milliseconds timeout) {
  return std::make_unique<SqliteBootstrap>(std::move(db), std::move(sql), timeout);
}

struct SqliteLambda::Impl {
  std::shared_ptr<SqliteDatabase> database;  // owns `db`
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  std::vector<SourceField> fields;
  std::vector<Binding> bindings;
  std::vector<std::string> columns;  // result column names, distinct
  std::chrono::milliseconds timeout = kDefaultTimeout;  // for one row

  ~Impl() { sqlite3_finalize(stmt); }

  std::string Message() const { return sqlite3_errmsg(db); }

  void Bind(Binding& b, const Row& row);
  Result<bool> AppendRow(doc::Allocator& alloc, std::optional<rapidjson::Document>& parser,
                         std::vector<doc::Value>* docs);
  Result<bool> ColumnValue(int i, doc::Allocator& alloc, std::optional<rapidjson::Document>& parser,
                           doc::Value* v);
};

namespace {

// Parses JSON text of a result column into `parser` (whose allocator is the output's).
Result<bool> ParseColumn(const char* text, int n, doc::Allocator& alloc,
                         std::optional<rapidjson::Document>& parser, const std::string& column) {
  if (!parser) parser.emplace(&alloc);
  doc::ParseError error;
  if (!doc::ParseTerminatedDocument(std::string_view(text, static_cast<size_t>(n)), &*parser, &error)) {
    return Error::User(fmt::format("column `{}` holds JSON text that cannot be parsed: {} at byte {}",
                                   column, error.message, error.offset));
  }
  return true;
}

}  // namespace

void SqliteLambda::Impl::Bind(Binding& b, const Row& row) {
  const doc::Value* v = nullptr;
  switch (b.input) {
    case Input::kSource: v = row.source; break;
    case Input::kRegister: v = row.register_value; break;
    case Input::kPrevious: v = row.previous; break;
    case Input::kField: v = row.source ? doc::Lookup(*row.source, fields[b.field].pointer) : nullptr; break;
  }
  // Whole documents are JSON text even when they are scalars (a register is often a number).
  bool as_json = b.input != Input::kField;
  if (!v || v->IsNull()) {
    sqlite3_bind_null(stmt, b.index);
  } else if (as_json || v->IsObject() || v->IsArray()) {
    WriteJson(*v, &b.json);
    sqlite3_bind_text(stmt, b.index, b.json.GetString(), static_cast<int>(b.json.GetSize()), SQLITE_STATIC);
  } else if (v->IsString()) {
    sqlite3_bind_text(stmt, b.index, v->GetString(), static_cast<int>(v->GetStringLength()), SQLITE_STATIC);
  } else if (v->IsInt64()) {
    sqlite3_bind_int64(stmt, b.index, v->GetInt64());
  } else if (v->IsNumber()) {
    // Doubles, and unsigned integers beyond INT64_MAX, which SQLite has no integer for.
    sqlite3_bind_double(stmt, b.index, v->GetDouble());
  } else {
    sqlite3_bind_int(stmt, b.index, v->IsTrue() ? 1 : 0);
  }
}

Result<bool> SqliteLambda::Impl::ColumnValue(int i, doc::Allocator& alloc,
                                             std::optional<rapidjson::Document>& parser,
                                             doc::Value* v) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_NULL: v->SetNull(); return true;
    case SQLITE_INTEGER: v->SetInt64(sqlite3_column_int64(stmt, i)); return true;
    case SQLITE_FLOAT: {
      double d = sqlite3_column_double(stmt, i);
      if (!std::isfinite(d)) {
        return Error::User(fmt::format("column `{}` is an infinite number, which JSON cannot hold", columns[i]));
      }
      v->SetDouble(d);
      return true;
    }
    case SQLITE_TEXT: {
      const char* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      int n = sqlite3_column_bytes(stmt, i);
      if (sqlite3_value_subtype(sqlite3_column_value(stmt, i)) == kJsonSubtype) {
        auto r = ParseColumn(text, n, alloc, parser, columns[i]);
        if (!r) return r;
        *v = std::move(static_cast<doc::Value&>(*parser));
        return true;
      }
      if (auto bad = FindInvalidUtf8(std::string_view(text, static_cast<size_t>(n)))) {
        return Error::User(fmt::format("column `{}` holds text that is not valid UTF-8 (at byte {})", columns[i], *bad));
      }
      v->SetString(text, static_cast<rapidjson::SizeType>(n), alloc);
      return true;
    }
    default:
      return Error::User(fmt::format("column `{}` holds a BLOB, which has no JSON representation", columns[i]));
  }
}

Result<bool> SqliteLambda::Impl::AppendRow(doc::Allocator& alloc, std::optional<rapidjson::Document>& parser,
                                           std::vector<doc::Value>* docs) {
  if (columns.size() == 1 && sqlite3_column_type(stmt, 0) == SQLITE_TEXT) {
    const char* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    if (*SkipSpace(text) == '{') {
      // A single column holding a JSON object is the document itself.
      auto r = ParseColumn(text, sqlite3_column_bytes(stmt, 0), alloc, parser, columns[0]);
      if (!r) return r;
      if (parser->IsObject()) {
        docs->emplace_back(std::move(static_cast<doc::Value&>(*parser)));
        return true;
      }
    }
  }
  doc::Value obj(rapidjson::kObjectType);
  for (size_t i = 0; i < columns.size(); ++i) {
    doc::Value v;
    auto r = ColumnValue(static_cast<int>(i), alloc, parser, &v);
    if (!r) return r;
    // Names are copied: outputs may outlive this lambda.
    obj.AddMember(doc::Value(columns[i].data(), static_cast<rapidjson::SizeType>(columns[i].size()), alloc),
                  v, alloc);
  }
  docs->push_back(std::move(obj));
  return true;
}

SqliteLambda::SqliteLambda(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteLambda::~SqliteLambda() = default;

Result<std::unique_ptr<Lambda>> SqliteLambda::Compile(const std::string& sql,
                                                      std::vector<SourceField> fields,
                                                      std::shared_ptr<SqliteDatabase> db,
                                                      std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->fields = std::move(fields);
  impl->timeout = timeout;
  if (!db) {
    auto opened = SqliteDatabase::Open();
    if (!opened) return opened.error();
    db = std::move(opened.value());
  }
  impl->database = std::move(db);
  impl->db = impl->database->handle();

  QueryProblem problem =
      PrepareQuery(impl->db, sql, SQLITE_PREPARE_PERSISTENT, &impl->stmt, &impl->columns);
  switch (problem.kind) {
    case QueryProblem::Kind::kNone:
      break;
    case QueryProblem::Kind::kDoesNotCompile:
      return Error::User(fmt::format("invalid SQLite query: {}", problem.detail));
    case QueryProblem::Kind::kEmpty:
      return Error::User("the SQLite query is empty");
    case QueryProblem::Kind::kMoreThanOneStatement:
      return Error::User(
          fmt::format("the SQLite query holds more than one statement (the second starts at `{}`)",
                      Truncate(problem.detail, 40)));
    case QueryProblem::Kind::kNoColumns:
      return Error::User("the SQLite query returns no columns: it must be a SELECT");
    case QueryProblem::Kind::kDuplicateColumn:
      return Error::User(
          fmt::format("the SQLite query returns two columns named `{}`: give them distinct "
                      "names with AS",
                      problem.detail));
  }

  std::vector<std::string> names;
  for (const auto& f : impl->fields) names.push_back(f.field);
  ParameterNames params(names);
  int nparams = sqlite3_bind_parameter_count(impl->stmt);
  for (int i = 1; i <= nparams; ++i) {
    std::string name = NameOfParameter(impl->stmt, i);
    Binding b;
    b.index = i;
    if (!params.Resolve(name, &b.input, &b.field)) {
      std::string hint = params.Suggest(name);
      return Error::User(
          fmt::format("the SQLite query uses parameter `{}`, which is neither $source, $register, "
                      "$previous nor a "
                      "projection `$<field>` of the source collection{}{}",
                      name, hint.empty() ? "" : ": ",
                      hint.empty() ? "" : fmt::format("did you mean `{}`?", hint)));
    }
    impl->bindings.push_back(std::move(b));
  }
  return std::unique_ptr<Lambda>(new SqliteLambda(std::move(impl)));
}

Result<bool> SqliteLambda::Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                                  int* failed_row) {
  Impl& m = *impl_;
  out->clear();
  out->reserve(rows.size());
  if (failed_row) *failed_row = -1;
  std::optional<rapidjson::Document> parser;  // created on first use, with `alloc`
  for (size_t r = 0; r < rows.size(); ++r) {
    if (StopRequested()) return StoppedError();
    for (auto& b : m.bindings) m.Bind(b, rows[r]);
    auto& docs = out->emplace_back();
    Result<bool> result = true;
    m.database->Arm(m.timeout);
    for (;;) {
      int rc = sqlite3_step(m.stmt);
      if (rc == SQLITE_ROW) {
        result = m.AppendRow(alloc, parser, &docs);
        if (!result) break;
      } else if (rc == SQLITE_DONE) {
        break;
      } else if (rc == SQLITE_INTERRUPT) {
        result = m.database->Interrupted("the SQLite query", m.timeout);
        break;
      } else {
        result = Error::User(fmt::format("SQLite: {}", m.Message()));
        break;
      }
    }
    m.database->Disarm();
    sqlite3_reset(m.stmt);
    // Bindings point into the rows and into Binding::json: drop them before either changes.
    sqlite3_clear_bindings(m.stmt);
    if (!result) {
      if (failed_row) *failed_row = static_cast<int>(r);
      return result;
    }
  }
  return true;
}

}  // namespace flow::lambda
