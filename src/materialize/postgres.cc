#include "materialize/postgres.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "materialize/migrate.h"

namespace flow::materialize {
namespace {

// Keys per Load query: each batch is one round trip with one array parameter per key
// column, so the statement text does not grow with the batch, and the server looks each
// key up in the primary key's index. Large, to amortize the round trips; bounded, so that
// one result (a stored document per key) stays a modest allocation.
constexpr size_t kLoadBatch = 1 << 17;
// Bytes of COPY data handed to libpq at a time: big enough to amortize the calls, small
// enough that the server works on one chunk while the next is built.
constexpr size_t kCopyChunk = 256 << 10;
// A COPY of at least this many rows formats them on a thread of its own, at most
// kCopyAhead chunks ahead of the sending: libpq sends a chunk whole before it returns, so
// formatting on the sending thread left the server idle while the next chunk was built
// (a back-fill of 100k rows took 1.1 s to COPY against 0.66 s for psql's \copy).
constexpr size_t kCopyThreadRows = 4096;
constexpr size_t kCopyAhead = 4;
// pg_advisory_xact_lock key serializing Open's DDL across flowctl instances ("flowctl" in
// ASCII): two concurrent CREATE TABLE IF NOT EXISTS of one name can otherwise both pass the
// existence check and one fail on a unique index of the catalog.
constexpr const char* kOpenLockKey = "28829673624663148";
// How many keys a table's `stored` may hold (16 to 32 bytes each, in a set at most half full
// that doubles) before Load asks the server about every key again: a back-fill of four
// million keys.
constexpr size_t kFreshKeys = 4 << 20;
// Seconds to wait for a connection unless the URI says otherwise (libpq waits forever).
constexpr const char* kConnectTimeout = "10";

using PgResult = std::unique_ptr<PGresult, void (*)(PGresult*)>;

// A set of key hashes (Binding::KeyHash): open addressing, a slot of 8 bytes per hash, at
// most half full, with no allocation per key (a back-fill's first transaction adds a hash
// per row at once: 100k of them took 29 ms in a node-based set). A slot of 0 is empty; the
// hash 0 is kept aside.
class KeyHashSet {
 public:
  bool Contains(uint64_t h) const {
    if (h == 0) return has_zero_;
    if (slots_.empty()) return false;
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return true;
      if (slots_[i] == 0) return false;
    }
  }
  // Adds `h`; false when it was there already.
  bool Insert(uint64_t h) {
    if (h == 0) {
      bool added = !has_zero_;
      size_ += added ? 1 : 0;
      has_zero_ = true;
      return added;
    }
    if ((size_ + 1) * 2 > slots_.size()) Grow(std::max<size_t>(1024, slots_.size() * 2));
    if (!Place(h)) return false;
    ++size_;
    return true;
  }
  // Room for `n` more hashes without growing on the way.
  void Reserve(size_t n) {
    size_t size = std::max<size_t>(1024, slots_.size());
    while ((size_ + n) * 2 > size) size *= 2;
    if (size != slots_.size()) Grow(size);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void Clear() {
    std::vector<uint64_t>().swap(slots_);
    size_ = 0;
    has_zero_ = false;
  }

 private:
  // Puts `h` (not 0) in its slot; false when it was there already.
  bool Place(uint64_t h) {
    size_t mask = slots_.size() - 1;
    size_t i = h & mask;
    for (; slots_[i] != 0; i = (i + 1) & mask) {
      if (slots_[i] == h) return false;
    }
    slots_[i] = h;
    return true;
  }
  void Grow(size_t size) {
    std::vector<uint64_t> old(size, 0);
    old.swap(slots_);
    for (uint64_t h : old) {
      if (h != 0) Place(h);
    }
  }
  std::vector<uint64_t> slots_;  // a power of two of them, or none
  size_t size_ = 0;
  bool has_zero_ = false;
};

PgResult Wrap(PGresult* r) { return PgResult(r, PQclear); }

// Removes trailing whitespace (libpq messages end with "\n").
std::string Trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.pop_back();
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
  std::string_view authority = std::string_view(uri).substr(
      start, end == std::string::npos ? std::string::npos : end - start);
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

// COPY's text format: backslash, newline, carriage return and tab are escaped. NUL
// characters (U+0000, `\u0000` in JSON) are dropped: PostgreSQL's text types cannot hold
// them. That is the documented projection of such strings (docs/materializations.md):
// `flow_document` and JSON columns keep them escaped, and key columns refuse them (Load).
void AppendCopyText(std::string_view s, std::string* out) {
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c > '\\' || (c != '\\' && c != '\n' && c != '\r' && c != '\t' && c != '\0')) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    if (c == '\0') continue;
    out->push_back('\\');
    out->push_back(c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\');
  }
  out->append(s.data() + run, s.size() - run);
}

// The same for compact JSON text, whose only such character is the backslash (JSON
// escapes control characters in strings).
void AppendCopyJson(std::string_view s, std::string* out) {
  for (;;) {
    const void* at = std::memchr(s.data(), '\\', s.size());
    if (at == nullptr) break;
    size_t n = static_cast<size_t>(static_cast<const char*>(at) - s.data()) + 1;
    out->append(s.data(), n);
    out->push_back('\\');
    s.remove_prefix(n);
  }
  out->append(s.data(), s.size());
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
  AppendCopyJson(*scratch, out);
}

// ---- COPY's binary format ------------------------------------------------------------
//
// Rows go to the server in COPY's binary format when every column of the table is of a type
// below (what flowctl's own DDL creates): the server then reads integers, doubles and
// booleans without parsing them, and strings without unescaping them (a back-fill's COPY of
// 100k rows took the server 10-15% less time than the same rows as text). Each value is
// sent as the text format would have the server store it; a value with no binary form in
// its column (an integer beyond BIGINT, a string in a number column: the server converts or
// refuses those in text) makes the transaction start over in the text format, so that what
// is stored, and the server's errors, stay as they were.

// How a column's values are sent in binary, by its type in the server's catalog.
enum class Wire : uint8_t {
  kNone,    // a type without a binary form here: the table's rows go as text
  kInt8,    // bigint
  kFloat8,  // double precision
  kBool,    // boolean
  kText,    // text, character varying
  kJson,    // json
};

Wire WireOf(uint32_t type_oid) {
  switch (type_oid) {
    case 20:
      return Wire::kInt8;
    case 701:
      return Wire::kFloat8;
    case 16:
      return Wire::kBool;
    case 25:
    case 1043:
      return Wire::kText;
    case 114:
      return Wire::kJson;
    default:
      return Wire::kNone;
  }
}

// The signature, flags and header extension that open COPY's binary data.
constexpr std::string_view kBinaryHeader("PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);

void AppendBE16(uint16_t x, std::string* out) {
  x = __builtin_bswap16(x);
  out->append(reinterpret_cast<const char*>(&x), 2);
}
void AppendBE32(uint32_t x, std::string* out) {
  x = __builtin_bswap32(x);
  out->append(reinterpret_cast<const char*>(&x), 4);
}
void AppendBE64(uint64_t x, std::string* out) {
  x = __builtin_bswap64(x);
  out->append(reinterpret_cast<const char*>(&x), 8);
}

// One field of a binary COPY row: `v` as a column of `kind` sent as `wire`, holding what
// AppendCopyField's text would have the server store; false, having appended nothing, when
// it has no such binary form.
bool AppendBinaryField(const doc::Value* v, Kind kind, Wire wire, std::string* out) {
  if (v == nullptr || v->IsNull()) {
    AppendBE32(0xffffffffu, out);  // NULL
    return true;
  }
  bool scalar = kind == Kind::kScalar;
  switch (wire) {
    case Wire::kInt8:
      if (!scalar || !v->IsInt64()) return false;
      AppendBE32(8, out);
      AppendBE64(static_cast<uint64_t>(v->GetInt64()), out);
      return true;
    case Wire::kFloat8: {
      if (!scalar || !v->IsNumber()) return false;
      // (An integer rounds to the nearest double, as the server's reading of its digits does.)
      double d = v->GetDouble();
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      AppendBE32(8, out);
      AppendBE64(bits, out);
      return true;
    }
    case Wire::kBool:
      if (!scalar || !v->IsBool()) return false;
      AppendBE32(1, out);
      out->push_back(v->GetBool() ? 1 : 0);
      return true;
    case Wire::kText:
    case Wire::kJson: {
      if (wire == Wire::kJson && scalar) return false;  // text would send a string unquoted
      size_t at = out->size();
      AppendBE32(0, out);  // the length, set below
      if (scalar && v->IsString()) {
        // Without NUL characters, as AppendCopyText.
        std::string_view str(v->GetString(), v->GetStringLength());
        for (size_t nul; (nul = str.find('\0')) != std::string_view::npos;
             str.remove_prefix(nul + 1))
          out->append(str.data(), nul);
        out->append(str);
      } else if (scalar && v->IsBool()) {
        out->push_back(v->GetBool() ? 't' : 'f');
      } else if (scalar && v->IsNumber()) {
        AppendNumber(*v, out);
      } else {
        doc::AppendJson(*v, out);
      }
      size_t n = out->size() - at - 4;
      if (n > 0x7fffffffu) {
        out->resize(at);
        return false;
      }
      uint32_t be = __builtin_bswap32(static_cast<uint32_t>(n));
      std::memcpy(out->data() + at, &be, 4);
      return true;
    }
    case Wire::kNone:
      return false;
  }
  return false;
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
  // is an environment error, or a user error for data errors (SQLSTATE classes 22, 23) and
  // schema changes a user's object stands in the way of (a view: 2BP01, 0A000).
  Result<PgResult> Exec(const std::string& sql, const std::vector<std::string>& params,
                        const char* what) const {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    PgResult r = Wrap(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                   values.data(), nullptr, nullptr, 0));
    ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
    return Failure(r.get(), what);
  }
  Result<PgResult> Exec(const std::string& sql, const char* what) const {
    return Exec(sql, {}, what);
  }

  // Runs `copy_sql` (a COPY ... FROM STDIN) with the rows that `append_row(i, &buffer)`
  // appends for i in [0, n), sent in chunks of about kCopyChunk bytes so that the server
  // parses one chunk while the next is built (on a thread of its own from kCopyThreadRows
  // rows on; `append_row` is then called on that thread, for one row at a time, in order).
  // When `append_row` returns false the COPY is abandoned, and fails.
  Result<bool> Copy(const std::string& copy_sql, size_t n,
                    const std::function<bool(size_t, std::string*)>& append_row,
                    const char* what) const {
    PgResult r = Wrap(PQexec(conn_, copy_sql.c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) return Failure(r.get(), what);
    bool sent = true;
    auto send = [&](const std::string& chunk) {
      if (sent) sent = PQputCopyData(conn_, chunk.data(), static_cast<int>(chunk.size())) == 1;
      return sent;
    };
    bool formatted = true;
    if (n < kCopyThreadRows || !SendFormattedAhead(n, append_row, send, &formatted)) {
      std::string buffer;
      buffer.reserve(kCopyChunk + kCopyChunk / 4);
      for (size_t i = 0; i < n && sent; ++i) {
        if (!append_row(i, &buffer)) {
          formatted = false;
          break;
        }
        if (buffer.size() >= kCopyChunk || i + 1 == n) {
          send(buffer);
          buffer.clear();
        }
      }
    }
    const char* abandon = !formatted ? "flowctl: a row has no form in this format"
                          : !sent    ? "flowctl: sending rows failed"
                                     : nullptr;
    if (PQputCopyEnd(conn_, abandon) != 1) return Failure(nullptr, what);
    // Drain every result so the connection is ready for the next command.
    std::optional<Error> error;
    while (PGresult* raw = PQgetResult(conn_)) {
      PgResult end = Wrap(raw);
      if (PQresultStatus(raw) != PGRES_COMMAND_OK && !error) error = Failure(raw, what);
    }
    if (error) return *error;
    if (!sent || !formatted) return Failure(nullptr, what);
    return true;
  }

  // Formats the rows in chunks on a thread of its own and calls `send` with each, in
  // order, on this one, until it returns false; `*formatted` is false when `append_row`
  // refused a row (the rows after it are neither formatted nor sent). False, having
  // formatted and sent nothing, when no thread can be started.
  static bool SendFormattedAhead(size_t n,
                                 const std::function<bool(size_t, std::string*)>& append_row,
                                 const std::function<bool(const std::string&)>& send,
                                 bool* formatted) {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> ready;  // formatted chunks not yet sent
    bool done = false, stop = false;
    std::exception_ptr failed;
    bool refused = false;  // (written by the formatter before `done`)
    auto format = [&] {
      try {
        std::string buffer;
        for (size_t i = 0; i < n; ++i) {
          if (!append_row(i, &buffer)) {
            refused = true;
            break;
          }
          if (buffer.size() < kCopyChunk && i + 1 < n) continue;
          std::unique_lock<std::mutex> l(mu);
          cv.wait(l, [&] { return ready.size() < kCopyAhead || stop; });
          if (stop) break;
          ready.push_back(std::move(buffer));
          cv.notify_all();
          l.unlock();
          buffer = std::string();
          buffer.reserve(kCopyChunk + kCopyChunk / 4);
        }
      } catch (...) {  // (out of memory): rethrown on the sending thread
        failed = std::current_exception();
      }
      std::lock_guard<std::mutex> l(mu);
      done = true;
      cv.notify_all();
    };
    std::thread formatter;
    try {
      formatter = std::thread(format);
    } catch (const std::system_error&) {
      return false;
    }
    for (;;) {
      std::string chunk;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return !ready.empty() || done; });
        if (ready.empty()) break;
        chunk = std::move(ready.front());
        ready.pop_front();
        cv.notify_all();
      }
      if (!send(chunk)) {
        std::lock_guard<std::mutex> l(mu);
        stop = true;
        cv.notify_all();
      }
    }
    formatter.join();
    if (failed) std::rethrow_exception(failed);
    if (refused) *formatted = false;
    return true;
  }

  // Ends a failed transaction; its own failure adds nothing to the error being returned.
  void Rollback() const {
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) Wrap(PQexec(conn_, "ROLLBACK"));
  }

  // The SQLSTATE of the last failure ("" when there was none, or no server error).
  const std::string& last_state() const { return last_state_; }
  // Where in a COPY the last failure was, from the server's context ("COPY t, line 3,
  // column c: ..."): the 1-based line (0 when not said) and the column ("" when not said).
  size_t last_copy_line() const { return last_copy_line_; }
  const std::string& last_copy_column() const { return last_copy_column_; }

  Error Failure(const PGresult* r, const char* what) const {
    std::string message;
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    last_state_ = state ? state : "";
    last_copy_line_ = 0;
    last_copy_column_.clear();
    if (const char* context = r ? PQresultErrorField(r, PG_DIAG_CONTEXT) : nullptr) {
      std::string_view c(context);
      if (c.substr(0, 5) == "COPY ") {
        if (size_t at = c.find(", line "); at != std::string_view::npos) {
          last_copy_line_ = std::strtoull(context + at + 7, nullptr, 10);
        }
        if (size_t at = c.find(", column "); at != std::string_view::npos) {
          std::string_view rest = c.substr(at + 9);
          last_copy_column_ = std::string(rest.substr(0, rest.find(':')));
        }
      }
    }
    const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    if (primary) {
      message = primary;
      if (const char* detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL))
        message += fmt::format(" ({})", detail);
    } else {
      message = Trim(PQerrorMessage(conn_));
      if (message.empty()) message = "unknown libpq error";
    }
    if (PQstatus(conn_) == CONNECTION_BAD) {
      return Error::Env(
          Redact(fmt::format("PostgreSQL target `{}`: lost the connection while {}: {}", target_,
                             what, message),
                 password_));
    }
    message = Redact(fmt::format("PostgreSQL target `{}`: {} failed: {}", target_, what, message),
                     password_);
    bool user_error = state && (std::strncmp(state, "22", 2) == 0 || std::strncmp(state, "23", 2) == 0 ||
                                std::strcmp(state, "2BP01") == 0 || std::strcmp(state, "0A000") == 0);
    return user_error ? Error::User(std::move(message)) : Error::Env(std::move(message));
  }

 private:
  PGconn* conn_;
  const std::string& target_;
  const std::string& password_;
  mutable std::string last_state_;
  mutable size_t last_copy_line_ = 0;
  mutable std::string last_copy_column_;
};

// The stored checkpoint of `materialization` ("" when there is none); flow_checkpoints
// must exist.
Result<std::string> StoredCheckpoint(Session& s, const std::string& materialization) {
  auto r = s.Exec("SELECT checkpoint FROM flow_checkpoints WHERE materialization = $1",
                  {materialization}, "reading the checkpoint");
  if (!r) return r.error();
  return std::string(PQntuples(r->get()) > 0 ? PQgetvalue(r->get(), 0, 0) : "");
}

// The statements that bring `tables` to their shape (PlanMigration), from the columns of
// each that exists; `checkpoint` is the stored one.
Result<std::vector<std::string>> Migration(Session& s, const std::vector<Table>& tables,
                                           const std::string& target,
                                           const std::string& materialization,
                                           const std::string& checkpoint,
                                           const OpenOptions& options) {
  // A checkpoint of other data is refused before anything else (OpenOptions::accept).
  if (options.accept && !options.rebuild) {
    if (auto accepted = options.accept(checkpoint); !accepted) return accepted.error();
  }
  std::vector<std::optional<ExistingTable>> existing;
  for (const Table& table : tables) {
    std::string what = fmt::format("reading the columns of table `{}`", table.name);
    auto exists =
        s.Exec("SELECT to_regclass($1) IS NOT NULL", {QuoteIdentifier(table.name)}, what.c_str());
    if (!exists) return exists.error();
    if (PQgetvalue(exists->get(), 0, 0)[0] != 't') {
      existing.emplace_back();
      continue;
    }
    auto columns = s.Exec(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,\n"
        "  COALESCE((SELECT k.n FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY AS "
        "k(attnum, n)\n"
        "            WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum), "
        "0)\n"
        "FROM pg_attribute a\n"
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped\n"
        "ORDER BY a.attnum",
        {QuoteIdentifier(table.name)}, what.c_str());
    if (!columns) return columns.error();
    ExistingTable t;
    PGresult* r = columns->get();
    for (int i = 0; i < PQntuples(r); ++i) {
      t.columns.push_back({PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0] == 't',
                           std::atoi(PQgetvalue(r, i, 3)), ""});
    }
    existing.emplace_back(std::move(t));
  }
  MigrationContext context;
  context.dialect = Dialect::kPostgres;
  context.target = fmt::format("target `{}`", target);
  context.materialization = materialization;
  context.has_checkpoint = !checkpoint.empty();
  if (options.filled) {
    context.filled = [&](const std::string& table) { return options.filled(checkpoint, table); };
  }
  return PlanMigration(context, tables, existing, options);
}

// The query Load runs for `table` (its columns quoted in `columns`, with `kinds` and `keys`
// as in PostgresDriver::Binding): key arrays in, (ordinality, document) out.
std::string LoadSql(const Table& table, const std::vector<Kind>& kinds,
                    const std::vector<size_t>& keys, const std::vector<std::string>& columns,
                    const Column& document) {
  std::vector<std::string> arrays, names, on;
  for (size_t i = 0; i < keys.size(); ++i) {
    const Column& k = table.columns[keys[i]];
    arrays.push_back(fmt::format("${}::{}", i + 1, ArrayType(k)));
    names.push_back(fmt::format("k{}", i));
    // JSON has no equality operator; jsonb does.
    on.push_back(kinds[keys[i]] == Kind::kJson
                     ? fmt::format("t.{}::jsonb = k.k{}::jsonb", columns[keys[i]], i)
                     : fmt::format("t.{} = k.k{}", columns[keys[i]], i));
  }
  // One index lookup per key (a subquery per row, NULL where the key is absent): a
  // join lets the planner hash the whole table for every batch, which took 0.9-1.7 s
  // per batch of 131,072 keys against a table of 4M rows, against 0.16 s this way.
  // (Keys are single-typed strings, integers or booleans, a catalog check, so the
  // index serves every lookup.)
  return fmt::format(
      "SELECT k.flowctl_i, (SELECT t.{} FROM {} AS t WHERE {}) FROM unnest({}) WITH ORDINALITY "
      "AS k({}, flowctl_i)",
      QuoteIdentifier(document.field), QuoteIdentifier(table.name), fmt::join(on, " AND "),
      fmt::join(arrays, ", "), fmt::join(names, ", "));
}

// How each column of `table` (of `kinds`) is sent in COPY's binary format, by the types the
// server has for the table now: all Wire::kNone unless every one of them has a binary form.
Result<std::vector<Wire>> ReadWires(const Session& s, const Table& table,
                                    const std::vector<Kind>& kinds) {
  std::string what = fmt::format("reading the column types of table `{}`", table.name);
  auto types = s.Exec(
      "SELECT a.attname, a.atttypid::int8 FROM pg_attribute a\n"
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
      {QuoteIdentifier(table.name)}, what.c_str());
  if (!types) return types.error();
  std::unordered_map<std::string, Wire> wire_of;
  for (int i = 0; i < PQntuples(types->get()); ++i) {
    wire_of[PQgetvalue(types->get(), i, 0)] =
        WireOf(static_cast<uint32_t>(std::strtoul(PQgetvalue(types->get(), i, 1), nullptr, 10)));
  }
  std::vector<Wire> wires;
  for (size_t i = 0; i < table.columns.size(); ++i) {
    auto w = wire_of.find(table.columns[i].field);
    Wire wire = w == wire_of.end() ? Wire::kNone : w->second;
    // A JSON column holds JSON text of its values; a scalar one is sent as its type.
    if (wire == Wire::kJson && kinds[i] == Kind::kScalar) wire = Wire::kNone;
    if (kinds[i] != Kind::kScalar && wire != Wire::kJson && wire != Wire::kText) wire = Wire::kNone;
    wires.push_back(wire);
  }
  if (std::find(wires.begin(), wires.end(), Wire::kNone) != wires.end())
    wires.assign(wires.size(), Wire::kNone);
  return wires;
}

// Takes the next fence of `materialization` into `*fence`, returning its checkpoint.
Result<std::string> TakeFence(Session& s, const std::string& materialization, int64_t* fence) {
  // The UPDATE locks the row, so a concurrent Open waits for this
  // transaction and then increments the fence this one committed.
  if (auto r = s.Exec("INSERT INTO flow_checkpoints (materialization, fence, checkpoint) VALUES "
                      "($1, 0, '') ON CONFLICT DO NOTHING",
                      {materialization}, "registering the materialization");
      !r) {
    return r.error();
  }
  auto fenced = s.Exec(
      "UPDATE flow_checkpoints SET fence = fence + 1 WHERE materialization = $1 RETURNING fence, "
      "checkpoint",
      {materialization}, "incrementing the fence");
  if (!fenced) return fenced.error();
  if (PQntuples(fenced->get()) != 1)
    return Error::Internal("flow_checkpoints has no row for the materialization");
  *fence = std::strtoll(PQgetvalue(fenced->get(), 0, 0), nullptr, 10);
  return std::string(PQgetvalue(fenced->get(), 0, 1));
}

}  // namespace

struct PostgresDriver::Binding {
  Table table;
  std::vector<Kind> kinds;   // per column
  std::vector<size_t> keys;  // indices of the key columns, in key order
  std::string copy_sql;      // COPY into the table
  std::string stage_sql;     // COPY into the staging table; empty for delta updates
  std::string merge_sql;     // staging table → table, upserting; empty for delta updates
  std::string load_sql;      // key arrays → (ordinality, flow_document)
  // Per column, how a value is sent in COPY's binary format: all of them Wire::kNone unless
  // every column has a binary form (the table's rows then go in binary, see Wire).
  std::vector<Wire> wires;
  bool Binary() const { return !wires.empty() && wires.front() != Wire::kNone; }
  // The keys (KeyHash of their KeyText) that Load found absent since the last Store. This
  // instance holds the fence, so until it commits nobody else writes them (a newer instance
  // fences the Store off): Store copies their rows straight into the table, which is about
  // twice as fast as an upsert through the staging table. Hashes, not texts: a key taken
  // for absent by a collision is refused by the primary key, and Store upserts them all.
  std::unordered_set<uint64_t> absent;
  // Whether the table was empty when Open took the fence and every key this instance
  // stored since is in `stored` (at most kFreshKeys): a key not in it has no row, so Load
  // need not ask. The fence makes this safe as `absent` is: an older instance can no
  // longer commit, and a newer one fences this one's Store off.
  // Hashes too: a collision makes Load ask the server about a key it need not.
  bool fresh = false;
  KeyHashSet stored;
  // Whether every key is absent: the table was empty and nothing was stored since, a
  // back-fill's first transaction. Load then hashes no key, and Store copies every row
  // straight into the table.
  bool AllAbsent() const { return fresh && stored.empty(); }

  // The hash of a KeyText in `absent` and `stored`.
  static uint64_t KeyHash(std::string_view text) { return std::hash<std::string_view>()(text); }

  // Appends the identity of a key, given its values in key order.
  template <typename ValueAt>
  void KeyText(ValueAt value_at, std::string* scratch, std::string* out) const {
    for (size_t k = 0; k < keys.size(); ++k) {
      AppendCopyField(value_at(k), kinds[keys[k]], scratch, out);
      out->push_back('\t');
    }
  }
};

PostgresDriver::PostgresDriver(PGconn* conn, std::string target, std::string password)
    : conn_(conn), target_(std::move(target)), password_(std::move(password)) {}

PostgresDriver::~PostgresDriver() { PQfinish(conn_); }

Result<std::unique_ptr<Driver>> PostgresDriver::Connect(const std::string& uri,
                                                        const std::string& target_name) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &parse_error);
  if (options == nullptr) {
    std::string why = parse_error ? Trim(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return Error::User(
        Redact(fmt::format("PostgreSQL target `{}`: invalid connection URI: {}", target_name, why),
               UriPassword(uri)));
  }
  std::string password;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (std::strcmp(o->keyword, "password") == 0 && o->val) password = o->val;
  }
  PQconninfoFree(options);

  // Later keywords override the URI's (`client_encoding`); earlier ones are defaults it may
  // override (`connect_timeout`, the application name).
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname",
                            "client_encoding", nullptr};
  const char* values[] = {kConnectTimeout, "flowctl", uri.c_str(), "UTF8", nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr)
    return Error::Env(fmt::format("PostgreSQL target `{}`: out of memory", target_name));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = Trim(PQerrorMessage(conn));
    PQfinish(conn);
    return Error::Env(
        Redact(fmt::format("cannot connect to PostgreSQL target `{}`: {}", target_name, message),
               password));
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  // JIT compilation pays off for long analytical queries, not for ours: a Load of 100k keys
  // has a large estimated cost, and compiling it took longer than running it. (Best effort:
  // servers before PostgreSQL 11 have no such setting.)
  PQclear(PQexec(conn, "SET jit = off"));
  return std::unique_ptr<Driver>(new PostgresDriver(conn, target_name, std::move(password)));
}

Result<std::vector<std::string>> PostgresDriver::Plan(const std::string& materialization,
                                                      const std::vector<Table>& tables,
                                                      const OpenOptions& options) {
  std::string names = fmt::format("PostgreSQL target `{}`", target_);
  if (auto r = CheckIdentifiers(Dialect::kPostgres, tables, names); !r) return r.error();
  Session s(conn_, target_, password_);
  auto fail = [&](Error e) -> Result<std::vector<std::string>> {
    s.Rollback();
    return e;
  };
  // One snapshot for every read.
  auto begin = s.Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting a transaction");
  if (!begin) return fail(begin.error());
  auto exists =
      s.Exec("SELECT to_regclass('flow_checkpoints') IS NOT NULL", "reading flow_checkpoints");
  if (!exists) return fail(exists.error());
  bool checkpoints = PQgetvalue(exists->get(), 0, 0)[0] == 't';
  std::string checkpoint;
  if (checkpoints) {
    auto cp = StoredCheckpoint(s, materialization);
    if (!cp) return fail(cp.error());
    checkpoint = *cp;
  }
  auto statements = Migration(s, tables, target_, materialization, checkpoint, options);
  if (!statements) return fail(statements.error());
  if (auto r = s.Exec("COMMIT", "ending the transaction"); !r) return fail(r.error());
  if (!checkpoints) statements->insert(statements->begin(), CreateCheckpointsSql(Dialect::kPostgres));
  return statements;
}

Result<std::string> PostgresDriver::Open(const std::string& materialization,
                                         const std::vector<Table>& tables,
                                         const OpenOptions& options) {
  Session s(conn_, target_, password_);
  bindings_.clear();
  fence_ = 0;
  materialization_ = materialization;
  std::string names = fmt::format("PostgreSQL target `{}`", target_);
  if (auto r = CheckIdentifiers(Dialect::kPostgres, tables, names); !r) return r.error();

  auto fail = [&](Error e) -> Result<std::string> {
    s.Rollback();
    return e;
  };
  if (auto r = s.Exec("BEGIN", "starting a transaction"); !r) return fail(r.error());
  if (auto r = s.Exec(fmt::format("SELECT pg_advisory_xact_lock({})", kOpenLockKey),
                      "locking flowctl's tables");
      !r) {
    return fail(r.error());
  }
  if (auto r = s.Exec(CreateCheckpointsSql(Dialect::kPostgres), "creating flow_checkpoints"); !r)
    return fail(r.error());

  // Every table is checked before any is changed, so that an error changes nothing.
  auto stored = StoredCheckpoint(s, materialization);
  if (!stored) return fail(stored.error());
  auto statements = Migration(s, tables, target_, materialization, *stored, options);
  if (!statements) return fail(statements.error());
  for (const auto& sql : *statements) {
    if (auto r = s.Exec(sql, "changing the tables"); !r) return fail(r.error());
  }
  if (options.rebuild) {
    if (auto r = s.Exec("INSERT INTO flow_checkpoints (materialization, fence, checkpoint) VALUES "
                        "($1, 0, $2) ON CONFLICT (materialization) DO UPDATE SET checkpoint = "
                        "EXCLUDED.checkpoint",
                        {materialization, options.reset_checkpoint}, "resetting the checkpoint");
        !r) {
      return fail(r.error());
    }
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
        b.kinds.push_back(StoredAsJson(c) ? Kind::kJson : Kind::kScalar);
      }
      if (!c.key) updates.push_back(fmt::format("{0} = EXCLUDED.{0}", q));
    }
    for (const Column* k : table.KeyColumns())
      b.keys.push_back(static_cast<size_t>(k - table.columns.data()));

    b.copy_sql = fmt::format("COPY {} ({}) FROM STDIN", name, fmt::join(columns, ", "));
    // The columns' types as the server has them (the table may predate this catalog).
    auto wires = ReadWires(s, table, b.kinds);
    if (!wires) return fail(wires.error());
    b.wires =
        binary_copy_ ? std::move(*wires) : std::vector<Wire>(table.columns.size(), Wire::kNone);
    if (!table.delta_updates) {
      // A session-private staging table, emptied at each commit (and by a rollback).
      std::string stage =
          fmt::format("pg_temp.{}", QuoteIdentifier(fmt::format("flowctl_stage_{}", t)));
      std::string what = fmt::format("creating the staging table of `{}`", table.name);
      if (auto r = s.Exec(fmt::format("DROP TABLE IF EXISTS {}", stage), what.c_str()); !r)
        return fail(r.error());
      if (auto r = s.Exec(
              fmt::format("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DELETE ROWS", stage, name),
              what.c_str());
          !r) {
        return fail(r.error());
      }
      std::vector<std::string> keys;
      for (size_t k : b.keys) keys.push_back(columns[k]);
      b.stage_sql = fmt::format("COPY {} ({}) FROM STDIN", stage, fmt::join(columns, ", "));
      b.merge_sql = fmt::format(
          "INSERT INTO {0} ({1}) SELECT {1} FROM {2} ON CONFLICT ({3}) DO {4}", name,
          fmt::join(columns, ", "), stage, fmt::join(keys, ", "),
          updates.empty() ? "NOTHING" : fmt::format("UPDATE SET {}", fmt::join(updates, ", ")));
      if (document != nullptr) b.load_sql = LoadSql(table, b.kinds, b.keys, columns, *document);
    }
    bindings_.push_back(std::move(b));
  }

  int64_t fence = 0;
  auto checkpoint = TakeFence(s, materialization, &fence);
  if (!checkpoint) return fail(checkpoint.error());
  // Which tables are empty, now that the fence is taken: the UPDATE taking it waited for
  // any Store of an older instance in flight (which updates the checkpoint first), and
  // this statement's snapshot sees what that Store committed; no older Store can commit
  // rows after it.
  for (Binding& b : bindings_) {
    if (b.table.delta_updates || b.load_sql.empty()) continue;
    auto any =
        s.Exec(fmt::format("SELECT EXISTS (SELECT 1 FROM {})", QuoteIdentifier(b.table.name)),
               "reading whether the table is empty");
    if (!any) return fail(any.error());
    b.fresh = PQgetvalue(any->get(), 0, 0)[0] != 't';
  }
  if (auto r = s.Exec("COMMIT", "committing the tables and the fence"); !r) return fail(r.error());
  fence_ = fence;
  return checkpoint.value();
}

bool PostgresDriver::binary_copy(size_t table) const {
  return table < bindings_.size() && bindings_[table].Binary();
}

Result<bool> PostgresDriver::Load(size_t table,
                                  const std::vector<std::vector<const doc::Value*>>& keys,
                                  const std::function<void(size_t, std::string_view)>& found,
                                  size_t* failed_key) {
  if (table >= bindings_.size())
    return Error::Internal(fmt::format("Load of binding {} before Open", table));
  Binding& b = bindings_[table];
  if (b.load_sql.empty() || keys.empty()) return true;  // delta updates: nothing is loaded
  // A key string holding U+0000 cannot be sent (parameters are C strings) nor stored in a
  // text column; dropping the character (as in other text columns) could merge two keys.
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t k = 0; k < keys[i].size() && k < b.keys.size(); ++k) {
      const doc::Value* v = keys[i][k];
      if (!v || !v->IsString() ||
          std::memchr(v->GetString(), '\0', v->GetStringLength()) == nullptr)
        continue;
      if (failed_key) *failed_key = i;
      std::string shown;
      doc::AppendJson(*v, &shown);
      return Error::User(
          fmt::format("PostgreSQL target `{}`: table `{}`, column `{}`: the key value {} holds the "
                      "character U+0000, which PostgreSQL text cannot store; nothing of the "
                      "transaction was stored",
                      target_, b.table.name, b.table.columns[b.keys[k]].field, shown));
    }
  }
  if (b.AllAbsent()) return true;
  std::string scratch, key;
  auto key_hash = [&](size_t i) {
    key.clear();
    b.KeyText([&](size_t k) { return k < keys[i].size() ? keys[i][k] : nullptr; }, &scratch, &key);
    return Binding::KeyHash(key);
  };
  // The keys to ask the server about: all of them, or of a table that was empty, those
  // this instance stored (the others are absent).
  std::vector<size_t> ask;
  ask.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    uint64_t h = key_hash(i);
    if (!b.fresh || b.stored.Contains(h)) {
      ask.push_back(i);
    } else {
      b.absent.insert(h);
    }
  }
  Session s(conn_, target_, password_);
  std::string what = fmt::format("loading from table `{}`", b.table.name);
  std::vector<std::string> arrays(b.keys.size());
  std::vector<bool> hit;
  for (size_t start = 0; start < ask.size(); start += kLoadBatch) {
    size_t end = std::min(ask.size(), start + kLoadBatch);
    for (size_t k = 0; k < arrays.size(); ++k) {
      std::string& a = arrays[k];
      a = "{";
      for (size_t j = start; j < end; ++j) {
        size_t i = ask[j];
        if (j > start) a.push_back(',');
        AppendArrayElement(k < keys[i].size() ? keys[i][k] : nullptr, &scratch, &a);
      }
      a.push_back('}');
    }
    auto r = s.Exec(b.load_sql, arrays, what.c_str());
    if (!r) return r.error();
    PGresult* res = r->get();
    hit.assign(end - start, false);
    for (int row = 0; row < PQntuples(res); ++row) {
      if (PQgetisnull(res, row, 1)) continue;  // absent (flow_document is NOT NULL)
      size_t j = start + std::strtoull(PQgetvalue(res, row, 0), nullptr, 10) - 1;
      hit[j - start] = true;
      found(ask[j], std::string_view(PQgetvalue(res, row, 1),
                                     static_cast<size_t>(PQgetlength(res, row, 1))));
    }
    for (size_t j = start; j < end; ++j) {
      if (hit[j - start]) {
        b.absent.erase(key_hash(ask[j]));
      } else {
        b.absent.insert(key_hash(ask[j]));
      }
    }
  }
  return true;
}

Result<bool> PostgresDriver::Store(const std::vector<Row>& rows, const std::string& checkpoint,
                                   size_t* failed_row) {
  if (fence_ == 0) return Error::Internal("Store before Open");
  // Each table's documents, split into rows of keys Load found absent and the others; the
  // last row of a key wins, as when applied one by one.
  Batches inserts(bindings_.size()), upserts(bindings_.size());
  const doc::Value* refused = nullptr;
  auto result = [&](Result<bool> r) {
    if (!r && refused && failed_row) {
      for (size_t i = 0; i < rows.size(); ++i) {
        if (rows[i].document == refused) *failed_row = i;
      }
    }
    return r;
  };
  // Each row's key hash (KeyHash of its KeyText; 0 for delta updates). Rows of one key
  // have one hash: the first row of a key takes the last one's document, and the others
  // are dropped. Only rows of a hash seen twice (in one table) are compared by KeyText.
  std::vector<uint64_t> hashes(rows.size(), 0);
  std::string key, scratch;
  auto text_of = [&](const Row& row, std::string* out) {
    const Binding& b = bindings_[row.table];
    out->clear();
    b.KeyText(
        [&](size_t k) { return doc::Lookup(*row.document, b.table.columns[b.keys[k]].location); },
        &scratch, out);
  };
  // (table, hash) as one hash, for telling repeats.
  auto in_table = [&](size_t i) { return hashes[i] + rows[i].table * 0x9e3779b97f4a7c15ull; };
  KeyHashSet seen, repeated;
  seen.Reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& row = rows[i];
    if (row.table >= bindings_.size())
      return Error::Internal(fmt::format("Store of binding {} before Open", row.table));
    if (bindings_[row.table].table.delta_updates) continue;
    // The documents are read here first, each from memory: the members of one a few rows
    // on start loading meanwhile.
    if (i + 4 < rows.size() && rows[i + 4].document->IsObject() &&
        rows[i + 4].document->MemberCount() > 0)
      __builtin_prefetch(&*rows[i + 4].document->MemberBegin());
    text_of(row, &key);
    hashes[i] = Binding::KeyHash(key);
    if (!seen.Insert(in_table(i))) repeated.Insert(in_table(i));
  }
  std::vector<const doc::Value*> document(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) document[i] = rows[i].document;
  std::vector<bool> dropped(rows.size(), false);
  if (!repeated.empty()) {
    // Per repeated hash, the distinct keys' texts with their first rows.
    std::unordered_map<uint64_t, std::vector<std::pair<std::string, size_t>>> firsts;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (bindings_[rows[i].table].table.delta_updates || !repeated.Contains(in_table(i))) continue;
      text_of(rows[i], &key);
      auto& texts = firsts[in_table(i)];
      auto same = std::find_if(texts.begin(), texts.end(), [&](const auto& f) {
        return rows[f.second].table == rows[i].table && f.first == key;
      });
      if (same == texts.end()) {
        texts.emplace_back(key, i);
      } else {
        document[same->second] = rows[i].document;
        dropped[i] = true;
      }
    }
  }
  // Split into rows of keys Load found absent and the others.
  for (size_t i = 0; i < rows.size(); ++i) {
    const Binding& b = bindings_[rows[i].table];
    if (b.table.delta_updates) {
      inserts[rows[i].table].push_back(rows[i].document);
    } else if (!dropped[i]) {
      bool absent = b.AllAbsent() || b.absent.count(hashes[i]);
      (absent ? inserts : upserts)[rows[i].table].push_back(document[i]);
    }
  }

  bool conflict = false;
  // In COPY's binary format where the tables have it; over again in the text format when a
  // value has no binary form (see Wire).
  auto write = [&]() {
    bool unformattable = false;
    Result<bool> r = Write(inserts, upserts, checkpoint, true, &conflict, &unformattable, &refused);
    if (unformattable)
      r = Write(inserts, upserts, checkpoint, false, &conflict, &unformattable, &refused);
    return r;
  };
  Result<bool> stored = write();
  if (conflict) {
    // A key Load found absent exists after all: someone else wrote the table. Upsert all,
    // and ask the server about every key from now on.
    for (size_t t = 0; t < bindings_.size(); ++t) {
      if (bindings_[t].table.delta_updates) continue;
      upserts[t].insert(upserts[t].end(), inserts[t].begin(), inserts[t].end());
      inserts[t].clear();
      bindings_[t].fresh = false;
      bindings_[t].stored.Clear();
    }
    stored = write();
  }
  for (size_t t = 0; t < bindings_.size(); ++t) {
    bindings_[t].absent.clear();
    Binding& b = bindings_[t];
    if (stored && b.fresh && b.stored.size() + inserts[t].size() <= kFreshKeys)
      b.stored.Reserve(inserts[t].size());
  }
  if (stored) {
    // Committed: these keys have rows now.
    for (size_t i = 0; i < rows.size(); ++i) {
      Binding& b = bindings_[rows[i].table];
      if (b.fresh && !dropped[i]) b.stored.Insert(hashes[i]);
    }
    for (Binding& b : bindings_) {
      if (b.stored.size() <= kFreshKeys) continue;
      b.fresh = false;
      b.stored.Clear();
    }
  }
  return result(std::move(stored));
}

Result<bool> PostgresDriver::Write(const Batches& inserts, const Batches& upserts,
                                   const std::string& checkpoint, bool binary, bool* conflict,
                                   bool* unformattable, const doc::Value** failed) {
  *conflict = false;
  *unformattable = false;
  Session s(conn_, target_, password_);
  auto fail = [&](Error e) -> Result<bool> {
    s.Rollback();
    return e;
  };
  if (auto r = s.Exec("BEGIN", "starting a transaction"); !r) return fail(r.error());
  // The checkpoint first: it fails fast when fenced off, and its row lock orders this
  // transaction with a concurrent Open's fence increment.
  auto updated = s.Exec(
      "UPDATE flow_checkpoints SET checkpoint = $1 WHERE materialization = $2 AND fence = $3",
      {checkpoint, materialization_, std::to_string(fence_)}, "updating the checkpoint");
  if (!updated) return fail(updated.error());
  if (std::strcmp(PQcmdTuples(updated->get()), "1") != 0) {
    return fail(FencedOff(materialization_, target_));
  }
  std::string scratch;
  for (size_t t = 0; t < bindings_.size(); ++t) {
    const Binding& b = bindings_[t];
    std::string what = fmt::format("storing rows into table `{}`", b.table.name);
    auto rows_of = [&](const Batch& docs, bool in_binary) {
      return [&, n = docs.size(), in_binary](size_t i, std::string* out) {
        auto value = [&](size_t c) {
          return b.kinds[c] == Kind::kDocument ? docs[i]
                                               : doc::Lookup(*docs[i], b.table.columns[c].location);
        };
        if (!in_binary) {
          for (size_t c = 0; c < b.table.columns.size(); ++c) {
            if (c > 0) out->push_back('\t');
            AppendCopyField(value(c), b.kinds[c], &scratch, out);
          }
          out->push_back('\n');
          return true;
        }
        if (i == 0) out->append(kBinaryHeader);
        AppendBE16(static_cast<uint16_t>(b.table.columns.size()), out);
        for (size_t c = 0; c < b.table.columns.size(); ++c) {
          if (!AppendBinaryField(value(c), b.kinds[c], b.wires[c], out)) {
            *unformattable = true;
            return false;
          }
        }
        if (i + 1 == n) AppendBE16(0xffff, out);  // the end of the data
        return true;
      };
    };
    auto format = [](bool in_binary) { return in_binary ? " (FORMAT binary)" : ""; };
    // A data error the server places on a line of the COPY names that row's key and column.
    auto refused = [&](const Batch& docs, Error e) {
      size_t line = s.last_copy_line();
      if (e.code != Error::Code::kUser || line == 0 || line > docs.size())
        return fail(std::move(e));
      *failed = docs[line - 1];
      std::string column = s.last_copy_column();
      e.message = fmt::format("{} (table `{}`, key {}{}); nothing of the transaction was stored",
                              e.message, b.table.name, RowKeyJson(b.table, *docs[line - 1]),
                              column.empty() ? "" : fmt::format(", column `{}`", column));
      return fail(std::move(e));
    };
    if (!inserts[t].empty()) {
      bool in_binary = binary && b.Binary();
      if (in_binary) {
        // A column's type may have changed since Open (another materialization widened it,
        // someone altered the table), and the server reads binary data by the type it has
        // now: the table is locked as COPY would lock it, its types read again, and on any
        // change the rows go as text. (Upserts go through the staging table, whose types
        // are those Open read.)
        if (auto r = s.Exec(
                fmt::format("LOCK TABLE {} IN ROW EXCLUSIVE MODE", QuoteIdentifier(b.table.name)),
                what.c_str());
            !r) {
          return fail(r.error());
        }
        auto now = ReadWires(s, b.table, b.kinds);
        if (!now) return fail(now.error());
        if (*now != b.wires) in_binary = false;
      }
      if (auto r = s.Copy(b.copy_sql + format(in_binary), inserts[t].size(),
                          rows_of(inserts[t], in_binary), what.c_str());
          !r) {
        if (*unformattable) return fail(r.error());
        *conflict = s.last_state() == "23505" && !b.table.delta_updates;  // unique_violation
        if (*conflict) return fail(r.error());
        return refused(inserts[t], r.error());
      }
    }
    if (!upserts[t].empty()) {
      bool in_binary = binary && b.Binary();
      if (auto r = s.Copy(b.stage_sql + format(in_binary), upserts[t].size(),
                          rows_of(upserts[t], in_binary), what.c_str());
          !r) {
        if (*unformattable) return fail(r.error());
        return refused(upserts[t], r.error());
      }
      if (auto r = s.Exec(b.merge_sql, what.c_str()); !r) return fail(r.error());
    }
  }
  if (auto r = s.Exec("COMMIT", "committing the rows and the checkpoint"); !r)
    return fail(r.error());
  return true;
}

}  // namespace flow::materialize
