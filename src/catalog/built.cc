#include "catalog/built.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <ctime>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <sqlite3.h>
#include <unistd.h>

#include "base/version.h"
#include "doc/node.h"

namespace flow::catalog {
namespace {

constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE resources (
  url TEXT PRIMARY KEY, kind TEXT NOT NULL, content TEXT NOT NULL);
CREATE TABLE resource_imports (
  from_url TEXT NOT NULL, to_url TEXT NOT NULL, PRIMARY KEY (from_url, to_url));
CREATE TABLE collections (
  name TEXT PRIMARY KEY, resource_url TEXT NOT NULL, line INTEGER, col INTEGER,
  schema_url TEXT NOT NULL, schema_bundle TEXT NOT NULL, key_json TEXT NOT NULL,
  key_fields_json TEXT NOT NULL, is_derived INTEGER NOT NULL, title TEXT, description TEXT,
  fragment_codec TEXT, fragment_length INTEGER, flush_interval_seconds INTEGER);
CREATE TABLE projections (
  collection TEXT NOT NULL, field TEXT NOT NULL, location TEXT NOT NULL,
  is_user INTEGER NOT NULL, is_partition INTEGER NOT NULL, is_key INTEGER NOT NULL,
  types_json TEXT NOT NULL, must_exist INTEGER NOT NULL,
  PRIMARY KEY (collection, field));
CREATE TABLE inferred_shapes (
  collection TEXT NOT NULL, location TEXT NOT NULL, types_json TEXT NOT NULL,
  must_exist INTEGER NOT NULL, title TEXT, description TEXT, format TEXT,
  max_length INTEGER, content_encoding TEXT, reduce_strategy TEXT, reduce_key_json TEXT,
  PRIMARY KEY (collection, location));
CREATE TABLE derivations (
  collection TEXT PRIMARY KEY, register_schema_url TEXT, register_bundle TEXT NOT NULL,
  register_initial TEXT NOT NULL);
CREATE TABLE lambdas (
  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,
  resource_url TEXT NOT NULL, line INTEGER, col INTEGER, timeout_seconds INTEGER NOT NULL);
CREATE TABLE transforms (
  name TEXT NOT NULL, derivation TEXT NOT NULL, source_collection TEXT NOT NULL,
  source_schema_url TEXT, source_schema_bundle TEXT, partitions_json TEXT,
  shuffle_json TEXT NOT NULL, read_delay_seconds INTEGER NOT NULL,
  update_lambda INTEGER REFERENCES lambdas(id), publish_lambda INTEGER REFERENCES lambdas(id),
  dead_letters TEXT, resource_url TEXT NOT NULL, line INTEGER, col INTEGER,
  PRIMARY KEY (derivation, name));
CREATE TABLE bootstraps (
  derivation TEXT NOT NULL, idx INTEGER NOT NULL, lambda INTEGER NOT NULL REFERENCES lambdas(id),
  PRIMARY KEY (derivation, idx));
CREATE TABLE materialization_targets (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, address TEXT NOT NULL, written TEXT NOT NULL,
  is_inline INTEGER NOT NULL);
CREATE TABLE materializations (
  name TEXT PRIMARY KEY, target TEXT NOT NULL, resource_url TEXT NOT NULL);
CREATE TABLE materialization_bindings (
  materialization TEXT NOT NULL, idx INTEGER NOT NULL, source_collection TEXT NOT NULL,
  table_name TEXT NOT NULL, fields_json TEXT NOT NULL, delta_updates INTEGER NOT NULL,
  dead_letters TEXT, PRIMARY KEY (materialization, idx));
CREATE TABLE captures (
  name TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, format TEXT NOT NULL);
CREATE TABLE capture_bindings (
  capture TEXT NOT NULL, idx INTEGER NOT NULL, target_collection TEXT NOT NULL,
  PRIMARY KEY (capture, idx));
CREATE TABLE tests (
  name TEXT PRIMARY KEY, resource_url TEXT NOT NULL, line INTEGER, col INTEGER);
CREATE TABLE test_steps (
  test TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, collection TEXT NOT NULL,
  documents_json TEXT NOT NULL, partitions_json TEXT, resource_url TEXT NOT NULL,
  line INTEGER, col INTEGER, PRIMARY KEY (test, idx));
CREATE TABLE node_dependencies (package TEXT PRIMARY KEY, version TEXT NOT NULL);
)sql";

class Db {
 public:
  ~Db() {
    for (auto& [_, s] : stmts_) sqlite3_finalize(s);
    if (db_) sqlite3_close(db_);
  }
  bool Open(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) return Fail("open");
    return Exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN;");
  }
  bool Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      error_ = err ? err : "unknown error";
      sqlite3_free(err);
      return false;
    }
    return true;
  }
  // Binds values in order: std::string (TEXT), const char* (TEXT or NULL when nullptr),
  // int64/int/bool (INTEGER), std::nullptr_t (NULL).
  template <typename... Args>
  bool Insert(const char* sql, const Args&... args) {
    sqlite3_stmt*& st = stmts_[sql];
    if (!st && sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) return Fail("prepare");
    sqlite3_reset(st);
    int i = 0;
    (Bind(st, ++i, args), ...);
    if (sqlite3_step(st) != SQLITE_DONE) return Fail("insert");
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  static void Bind(sqlite3_stmt* st, int i, const std::string& s) {
    sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  static void Bind(sqlite3_stmt* st, int i, const char* s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
  }
  static void Bind(sqlite3_stmt* st, int i, const std::optional<std::string>& s) {
    Bind(st, i, s ? s->c_str() : nullptr);
  }
  static void Bind(sqlite3_stmt* st, int i, int64_t v) { sqlite3_bind_int64(st, i, v); }
  static void Bind(sqlite3_stmt* st, int i, const std::optional<int64_t>& v) {
    if (v) sqlite3_bind_int64(st, i, *v);
    else sqlite3_bind_null(st, i);
  }
  static void Bind(sqlite3_stmt* st, int i, int v) { sqlite3_bind_int64(st, i, v); }
  static void Bind(sqlite3_stmt* st, int i, uint32_t v) { sqlite3_bind_int64(st, i, v); }
  static void Bind(sqlite3_stmt* st, int i, size_t v) { sqlite3_bind_int64(st, i, static_cast<int64_t>(v)); }
  static void Bind(sqlite3_stmt* st, int i, bool v) { sqlite3_bind_int64(st, i, v ? 1 : 0); }
  static void Bind(sqlite3_stmt* st, int i, std::nullptr_t) { sqlite3_bind_null(st, i); }
  bool Fail(const char* what) {
    error_ = fmt::format("{}: {}", what, db_ ? sqlite3_errmsg(db_) : "out of memory");
    return false;
  }
  sqlite3* db_ = nullptr;
  std::map<const char*, sqlite3_stmt*> stmts_;
  std::string error_;
};

std::string JsonStrings(const std::vector<std::string>& v) {
  rapidjson::Document d(rapidjson::kArrayType);
  for (const auto& s : v) {
    d.PushBack(rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), d.GetAllocator()),
               d.GetAllocator());
  }
  return doc::JsonText(d);
}

std::string SelectorJson(const PartitionSelectorSpec& s) {
  return s.present && s.node ? s.node->ToJsonText() : std::string();
}

// Runs inserts until one fails, and none after that (`*ok` false; the database's error says
// why).
struct Inserter {
  Db* db;
  bool* ok;
  template <typename... Args>
  void operator()(const char* sql, const Args&... args) const {
    if (*ok) *ok = db->Insert(sql, args...);
  }
};

// The collections, with their projections and inferred shapes.
void WriteCollections(const Inserter& ins, const Built& built) {
  for (const auto& c : built.collections) {
    const CollectionSpec& s = *c.spec;
    ins("INSERT INTO collections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", s.name,
        s.where.url, s.where.mark.line, s.where.mark.col, c.schema_url, c.bundle,
        JsonStrings(s.key), JsonStrings(c.key_fields), s.derivation.has_value(), c.shape->title,
        c.shape->description,
        s.fragment_codec.empty() ? std::optional<std::string>()
                                 : std::optional<std::string>(s.fragment_codec),
        s.fragment_length ? std::optional<int64_t>(static_cast<int64_t>(s.fragment_length))
                          : std::nullopt,
        s.flush_interval ? std::optional<int64_t>(s.flush_interval) : std::nullopt);
    for (const auto& p : c.projections) {
      ins("INSERT INTO projections VALUES (?, ?, ?, ?, ?, ?, ?, ?)", s.name, p.field, p.location,
          p.user, p.partition, p.key,
          JsonStrings(p.shape ? schema::TypeNames(p.shape->types) : std::vector<std::string>{}),
          p.must_exist);
    }
    for (const auto& l : c.locations) {
      const schema::Shape& sh = *l.shape;
      std::optional<std::string> strategy, key;
      if (sh.reduce) {
        strategy = sh.reduce->strategy;
        if (!sh.reduce->key.empty()) key = JsonStrings(sh.reduce->key);
      }
      ins("INSERT INTO inferred_shapes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", s.name,
          l.pointer.ToString(), JsonStrings(schema::TypeNames(sh.types)), l.must_exist, sh.title,
          sh.description, sh.format,
          sh.max_length ? std::optional<int64_t>(static_cast<int64_t>(*sh.max_length))
                        : std::nullopt,
          sh.content_encoding, strategy, key);
    }
  }
}

// The derivations, with their bootstraps, transforms and lambdas.
void WriteDerivations(const Inserter& ins, const Built& built) {
  int64_t lambda_id = 0;
  auto lambda = [&](const std::optional<LambdaSpec>& l, int64_t timeout) -> std::optional<int64_t> {
    if (!l) return std::nullopt;
    ins("INSERT INTO lambdas VALUES (?, ?, ?, ?, ?, ?, ?)", ++lambda_id,
        std::string(LambdaSpec::KindName(l->kind)), l->body, l->where.url, l->where.mark.line,
        l->where.mark.col, timeout);
    return lambda_id;
  };
  for (const auto& d : built.derivations) {
    ins("INSERT INTO derivations VALUES (?, ?, ?, ?)", d.collection->name,
        d.register_schema_url.empty() ? nullptr : d.register_schema_url.c_str(), d.register_bundle,
        d.register_initial);
    const DerivationSpec& ds = *d.collection->derivation;
    for (size_t i = 0; i < ds.bootstrap.size(); ++i) {
      ins("INSERT INTO bootstraps VALUES (?, ?, ?)", d.collection->name, static_cast<int64_t>(i),
          *lambda(ds.bootstrap[i], ds.BootstrapTimeoutSeconds()));
    }
    for (const auto& t : d.transforms) {
      const TransformSpec& s = *t.spec;
      int64_t timeout = ds.LambdaTimeoutSeconds(s);
      std::optional<int64_t> u = lambda(s.update, timeout), p = lambda(s.publish, timeout);
      std::string partitions = SelectorJson(s.partitions);
      ins("INSERT INTO transforms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", s.name,
          d.collection->name, s.source,
          t.source_schema_url.empty() ? nullptr : t.source_schema_url.c_str(),
          t.source_schema_bundle.empty() ? nullptr : t.source_schema_bundle.c_str(),
          partitions.empty() ? nullptr : partitions.c_str(), JsonStrings(t.shuffle),
          s.read_delay_seconds, u, p, t.dead_letters.empty() ? nullptr : t.dead_letters.c_str(),
          s.where.url, s.where.mark.line, s.where.mark.col);
    }
  }
}

}  // namespace

Result<bool> WriteBuiltCatalog(const std::string& path, const Loaded& loaded, const Built& built) {
  const Catalog& cat = loaded.catalog;
  std::string tmp = fmt::format("{}.tmp{}", path, ::getpid());
  std::remove(tmp.c_str());
  bool ok;
  std::string error;
  {
    Db db;
    ok = db.Open(tmp) && db.Exec(kSchemaSql);
    Inserter ins{&db, &ok};
    ins("INSERT INTO meta VALUES (?, ?)", std::string("format"), std::to_string(kBuiltCatalogFormat));
    ins("INSERT INTO meta VALUES (?, ?)", std::string("flowctl_version"), std::string(kVersion));
    ins("INSERT INTO meta VALUES (?, ?)", std::string("root_url"), cat.root_url);
    ins("INSERT INTO meta VALUES (?, ?)", std::string("built_at"), std::to_string(std::time(nullptr)));
    for (const auto& f : cat.files) {
      ins("INSERT INTO resources VALUES (?, ?, ?)", f->url, f->kind, f->content);
      for (const auto& i : f->imports) {
        ins("INSERT OR IGNORE INTO resource_imports VALUES (?, ?)", f->url, i);
      }
    }
    WriteCollections(ins, built);
    WriteDerivations(ins, built);
    for (const auto& t : cat.targets) {
      ins("INSERT INTO materialization_targets VALUES (?, ?, ?, ?, ?)", t.name, t.kind, t.address, t.written,
          t.is_inline);
    }
    for (const auto& m : cat.materializations) {
      ins("INSERT INTO materializations VALUES (?, ?, ?)", m.name, m.target, m.where.url);
      auto it = built.bindings.find(m.name);
      if (it == built.bindings.end()) continue;
      for (size_t i = 0; i < it->second.size(); ++i) {
        const BuiltBinding& b = it->second[i];
        ins("INSERT INTO materialization_bindings VALUES (?, ?, ?, ?, ?, ?, ?)", m.name, i,
            b.spec->source, b.spec->table, JsonStrings(b.fields), b.spec->delta_updates,
            b.dead_letters.empty() ? nullptr : b.dead_letters.c_str());
      }
    }
    for (const auto& c : cat.captures) {
      ins("INSERT INTO captures VALUES (?, ?, ?, ?)", c.name, c.kind, c.path, c.format);
      for (size_t i = 0; i < c.bindings.size(); ++i) {
        ins("INSERT INTO capture_bindings VALUES (?, ?, ?)", c.name, i, c.bindings[i].target);
      }
    }
    for (const auto& t : cat.tests) {
      ins("INSERT INTO tests VALUES (?, ?, ?, ?)", t.name, t.where.url, t.where.mark.line, t.where.mark.col);
      for (size_t i = 0; i < t.steps.size(); ++i) {
        const TestStepSpec& s = t.steps[i];
        std::string partitions = SelectorJson(s.partitions);
        ins("INSERT INTO test_steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", t.name, i,
            std::string(s.kind == TestStepSpec::Kind::kIngest ? "ingest" : "verify"), s.collection,
            s.documents ? s.documents->ToJsonText() : std::string("[]"),
            partitions.empty() ? nullptr : partitions.c_str(), s.where.url, s.where.mark.line,
            s.where.mark.col);
      }
    }
    for (const auto& d : cat.node_dependencies) {
      ins("INSERT INTO node_dependencies VALUES (?, ?)", d.package, d.version);
    }
    if (ok) ok = db.Exec("COMMIT;");
    if (!ok) error = db.error();
  }
  if (!ok) {
    std::remove(tmp.c_str());
    return Error::Env(fmt::format("cannot write built catalog {}: {}", path, error));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Error::Env(fmt::format("cannot write built catalog {}: {}", path, std::strerror(errno)));
  }
  return true;
}

CollectionRecord MakeCollectionRecord(const BuiltCollection& c) {
  CollectionRecord r;
  r.name = c.spec->name;
  r.bundle = c.bundle;
  r.key = c.spec->key;
  r.derived = c.spec->derivation.has_value();
  for (const auto& p : c.projections) {
    r.projections.push_back({p.field, p.location, p.partition,
                             p.shape ? p.shape->types : static_cast<uint8_t>(schema::kAnyType), p.must_exist});
  }
  r.fragment_codec = c.spec->fragment_codec;
  r.fragment_length = c.spec->fragment_length;
  r.flush_interval = c.spec->flush_interval;
  return r;
}

Result<BuiltResources> ReadBuiltResources(const std::string& path) {
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& why) -> Result<BuiltResources> {
    if (db) sqlite3_close(db);
    return Error::User(fmt::format("{} is not a usable built catalog: {}", path, why));
  };
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return fail(db ? sqlite3_errmsg(db) : "cannot open");
  }
  BuiltResources out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT key, value FROM meta WHERE key IN ('format', 'root_url')", -1, &st,
                         nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  std::string format;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const unsigned char* v = sqlite3_column_text(st, 1);
    (key == "format" ? format : out.root_url) = v ? reinterpret_cast<const char*>(v) : "";
  }
  sqlite3_finalize(st);
  if (format != std::to_string(kBuiltCatalogFormat)) {
    return fail(fmt::format("format `{}`, expected {}; rebuild it with `flowctl build`", format, kBuiltCatalogFormat));
  }
  if (sqlite3_prepare_v2(db, "SELECT url, content FROM resources", -1, &st, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char* url = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    const char* content = reinterpret_cast<const char*>(sqlite3_column_blob(st, 1));
    int n = sqlite3_column_bytes(st, 1);
    out.contents[url ? url : ""] = std::string(content ? content : "", static_cast<size_t>(n));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

Result<std::vector<CollectionRecord>> ReadBuiltCollections(const std::string& path) {
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& why) -> Result<std::vector<CollectionRecord>> {
    if (db) sqlite3_close(db);
    return Error::User(fmt::format("{} is not a usable built catalog: {}", path, why));
  };
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return fail(db ? sqlite3_errmsg(db) : "cannot open");
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'format'", -1, &st, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  std::string format = sqlite3_step(st) == SQLITE_ROW
                           ? reinterpret_cast<const char*>(sqlite3_column_text(st, 0))
                           : "";
  sqlite3_finalize(st);
  if (format != std::to_string(kBuiltCatalogFormat)) {
    return fail(fmt::format("format `{}`, expected {}; rebuild it with `flowctl build`", format,
                            kBuiltCatalogFormat));
  }
  auto text = [](sqlite3_stmt* q, int i) -> std::string {
    const unsigned char* t = sqlite3_column_text(q, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  };
  if (sqlite3_prepare_v2(db,
                         "SELECT name, schema_bundle, key_json, is_derived, fragment_codec, fragment_length, "
                         "flush_interval_seconds FROM collections ORDER BY name",
                         -1, &st, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  std::vector<CollectionRecord> out;
  std::map<std::string, size_t> index;
  while (sqlite3_step(st) == SQLITE_ROW) {
    CollectionRecord r;
    r.name = text(st, 0);
    r.bundle = text(st, 1);
    rapidjson::Document key;
    key.Parse(text(st, 2).c_str());
    if (key.IsArray()) {
      for (const auto& k : key.GetArray()) {
        if (k.IsString()) r.key.emplace_back(k.GetString(), k.GetStringLength());
      }
    }
    r.derived = sqlite3_column_int64(st, 3) != 0;
    r.fragment_codec = text(st, 4);
    r.fragment_length = static_cast<uint64_t>(sqlite3_column_int64(st, 5));
    r.flush_interval = sqlite3_column_int64(st, 6);
    index[r.name] = out.size();
    out.push_back(std::move(r));
  }
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(db,
                         "SELECT collection, field, location, is_partition, types_json, must_exist "
                         "FROM projections ORDER BY collection, field",
                         -1, &st, nullptr) != SQLITE_OK) {
    return fail(sqlite3_errmsg(db));
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    auto it = index.find(text(st, 0));
    if (it == index.end()) continue;
    ProjectionRecord p;
    p.field = text(st, 1);
    p.location = text(st, 2);
    p.partition = sqlite3_column_int64(st, 3) != 0;
    rapidjson::Document types;
    types.Parse(text(st, 4).c_str());
    std::vector<std::string> names;
    if (types.IsArray()) {
      for (const auto& t : types.GetArray()) {
        if (t.IsString()) names.emplace_back(t.GetString());
      }
    }
    p.types = names.empty() ? static_cast<uint8_t>(schema::kAnyType) : schema::TypesFromNames(names);
    p.must_exist = sqlite3_column_int64(st, 5) != 0;
    out[it->second].projections.push_back(std::move(p));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

}  // namespace flow::catalog
