#include "catalog/parse_context.h"

#include <filesystem>

#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"

namespace flow::catalog::parsing {
namespace {

// Parses the database of a target, `sqlite: {path}` or `postgres: {uri}` (member `kind` at
// `kp`), into `t`. With `binding`, the mapping also names the table (the inline form of a
// materialization, SPEC 1.7), read into `binding->table`.
void ParseDatabase(const Ctx& ctx, const Node::Member& kind, const std::string& kp,
                   const std::string& owner, TargetSpec* t, MaterializationBindingSpec* binding) {
  std::vector<std::string> allowed = kind.key == "sqlite" ? std::vector<std::string>{"path", "uri"}
                                                          : std::vector<std::string>{"uri"};
  if (binding) allowed.push_back("table");
  Obj o(ctx, kind.value, kp, owner,
        fmt::format("a {} {}", kind.key, binding ? "materialization" : "target"), allowed);
  t->kind = kind.key;
  if (binding && o.ok()) {
    if (const Node* tbl = o.Required("table", "the table name")) {
      o.String(tbl, "table", &binding->table);
      binding->table_where = ctx.At(*tbl, o.PointerOf("table"));
      if (tbl->is_string() && binding->table.empty()) {
        ctx.Error(tbl->mark(), o.PointerOf("table"), owner, "`table` may not be empty");
      }
    }
  }
  if (kind.key == "sqlite") {
    const char* key = o.Get("path") ? "path" : "uri";  // `uri`: the preview's spelling
    const Node* path = o.Get(key);
    if (!path) {
      if (o.ok() && !o.HasNearMiss("path")) {
        ctx.Error(kind.value.mark(), kp, owner, "missing required `path` (the database file)");
      }
      return;
    }
    if (!o.String(path, key, &t->written)) return;
    std::string file = t->written;
    if (file.rfind("file://", 0) == 0) file = FilePathOfUrl(file);
    if (IsFileUrl(ctx.file().url) && !file.empty() && file[0] != '/' && file != ":memory:") {
      std::filesystem::path dir =
          std::filesystem::path(FilePathOfUrl(ctx.file().url)).parent_path();
      file = (dir / file).lexically_normal().string();
    }
    t->address = file;
  } else {
    const Node* uri = o.Required("uri", "a postgresql:// connection URI");
    if (!o.String(uri, "uri", &t->written)) return;
    t->address = t->written;
    if (t->written.rfind("postgres://", 0) != 0 && t->written.rfind("postgresql://", 0) != 0) {
      ctx.Error(uri->mark(), Ptr(kp, "uri"), owner,
                fmt::format("`{}` is not a PostgreSQL URI", t->written),
                "write postgresql://user:password@host:port/database");
    }
  }
}

// Parses one target into `t`, reporting problems. `t` is recorded by the caller even when
// malformed, so that materializations using it do not also report it missing.
void ParseTarget(const Ctx& ctx, const Node::Member& m, TargetSpec* t) {
  std::string p = Ptr("/materializationTargets", m.key);
  std::string owner = fmt::format("materialization target `{}`", m.key);
  Obj o(ctx, m.value, p, owner, "a materialization target", {"sqlite", "postgres"});
  if (!o.ok()) return;
  if (m.value.members().size() != 1) {
    ctx.Error(m.value.mark(), p, owner,
              "a materialization target has exactly one of `sqlite` or `postgres`");
    return;
  }
  const auto& kind = m.value.members()[0];
  if (kind.key == "sqlite" || kind.key == "postgres") {
    ParseDatabase(ctx, kind, Ptr(p, kind.key), owner, t, nullptr);
  }
}

void ParseFieldList(const Ctx& ctx, const Obj& o, const char* key, const std::string& owner,
                    std::vector<std::string>* out, std::vector<Where>* where) {
  const Node* v = o.Get(key);
  if (!v) return;
  if (!v->is_array()) {
    ctx.Error(v->mark(), o.PointerOf(key), owner,
              fmt::format("`{}` must be a list of field names", key));
    return;
  }
  for (size_t i = 0; i < v->items().size(); ++i) {
    const Node& f = v->items()[i];
    std::string ip = o.PointerOf(key) + "/" + std::to_string(i);
    if (!f.is_string()) {
      ctx.Error(f.mark(), ip, owner,
                fmt::format("field names must be strings, found {}", Obj::Describe(f)));
      continue;
    }
    out->push_back(f.as_string());
    where->push_back(ctx.At(f, ip));
  }
}

// The earliest preview form of a materialization (SPEC 1.7): `{collection: C, sqlite: {path,
// table}}` or `{collection: C, postgres: {uri, table}}`, as Flow's 2020 catalogs wrote it
// (they also spelled the SQLite path `uri`). It becomes one binding into a target of its own,
// named like the materialization. Flow's form had no field selection: the defaults apply.
void ParseInlineMaterialization(const Ctx& ctx, const Node::Member& m, const Obj& o,
                                const std::string& owner, MaterializationSpec* s, Catalog* cat) {
  s->is_inline = true;
  MaterializationBindingSpec b;
  b.where = ctx.At(m.value, o.pointer());
  if (const Node* c = o.Required("collection", "the collection to materialize")) {
    o.String(c, "collection", &b.source);
    b.source_where = ctx.At(*c, o.PointerOf("collection"));
  }
  const Node::Member* db = nullptr;
  for (const auto& k : m.value.members()) {
    if (k.key != "sqlite" && k.key != "postgres") continue;
    if (db) {
      ctx.Error(k.key_mark, o.PointerOf(k.key), owner,
                "a materialization has exactly one of `sqlite` or `postgres`",
                "materialize into several databases with one materialization each");
      return;
    }
    db = &k;
  }
  if (!db) {
    if (!o.HasNearMiss("sqlite") && !o.HasNearMiss("postgres")) {
      ctx.Error(m.value.mark(), o.pointer(), owner,
                "missing the database: `sqlite: {path, table}` or `postgres: {uri, table}`");
    }
    return;
  }
  TargetSpec t;
  t.name = s->name;
  t.is_inline = true;
  t.where = Where{ctx.file().url, ctx.file().display, db->key_mark, o.PointerOf(db->key)};
  ParseDatabase(ctx, *db, o.PointerOf(db->key), owner, &t, &b);
  ParseDeadLetters(ctx, o, owner, &b.dead_letters, &b.dead_letters_where);
  s->target = t.name;
  s->target_where = t.where;
  s->bindings.push_back(std::move(b));
  cat->targets.push_back(std::move(t));
}

}  // namespace

void ParseTargets(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/materializationTargets", "",
              "`materializationTargets` must map target names to targets");
    return;
  }
  for (const auto& m : v.members()) {
    TargetSpec t;
    t.name = m.key;
    t.where = Where{ctx.file().url, ctx.file().display, m.key_mark,
                    Ptr("/materializationTargets", m.key)};
    ParseTarget(ctx, m, &t);
    cat->targets.push_back(std::move(t));
  }
}

void ParseMaterializations(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/materializations", "",
              "`materializations` must map names to materializations");
    return;
  }
  for (const auto& m : v.members()) {
    MaterializationSpec s;
    s.name = m.key;
    std::string p = Ptr("/materializations", m.key);
    s.where = Where{ctx.file().url, ctx.file().display, m.key_mark, p};
    std::string owner = fmt::format("materialization `{}`", m.key);
    // Which form: `target` + `bindings`, or the inline one. Unknown keys are reported
    // against the keys of the form in use (both, when neither is recognisable).
    // `deadLetters` is a key of the inline form (of its one binding) but tells neither form.
    const std::vector<std::string> full = {"target", "bindings"},
                                   inline_form = {"collection", "sqlite", "postgres"};
    auto has_any = [&](const std::vector<std::string>& keys) {
      return m.value.is_object() &&
             std::any_of(keys.begin(), keys.end(),
                         [&](const std::string& k) { return m.value.Find(k); });
    };
    bool is_full = has_any(full), is_inline = has_any(inline_form);
    std::vector<std::string> allowed = is_inline && !is_full ? inline_form : full;
    if (is_full == is_inline) allowed.insert(allowed.end(), inline_form.begin(), inline_form.end());
    if (is_inline || !is_full) allowed.push_back("deadLetters");
    std::map<std::string, std::string> misplaced;
    if (is_inline && !is_full) {
      misplaced = {
          {"fields",
           "the inline form (`collection` with `sqlite` or `postgres`) materializes "
           "the default fields; write `target` and `bindings` to choose fields"},
          {"deltaUpdates", "the inline form has no delta updates; write `target` and `bindings`"},
          {"table", "`table` goes inside `sqlite` or `postgres`"}};
    } else {
      for (const char* k : {"source", "table", "fields", "deltaUpdates", "deadLetters"}) {
        misplaced[k] = fmt::format("`{}` belongs in each item of `bindings`", k);
      }
    }
    Obj o(ctx, m.value, p, owner, "a materialization", allowed, misplaced);
    if (!o.ok()) continue;
    if (is_full && is_inline) {
      ctx.Error(
          m.key_mark, p, owner,
          "a materialization has either `target` and `bindings`, or `collection` with `sqlite` "
          "or `postgres` (the inline form), not both",
          "declare the database under `materializationTargets` and bind the collection in "
          "`bindings`, or drop `target` and `bindings`");
      cat->materializations.push_back(std::move(s));
      continue;
    }
    if (is_inline) {
      ParseInlineMaterialization(ctx, m, o, owner, &s, cat);
      cat->materializations.push_back(std::move(s));
      continue;
    }
    if (!is_full &&
        (o.HasNearMiss("collection") || o.HasNearMiss("sqlite") || o.HasNearMiss("postgres"))) {
      // Misspelt keys of either form: their errors say enough.
      cat->materializations.push_back(std::move(s));
      continue;
    }
    if (const Node* t = o.Required("target", "a materialization target name")) {
      o.String(t, "target", &s.target);
      s.target_where = ctx.At(*t, o.PointerOf("target"));
    }
    if (const Node* b = o.Required("bindings", "collections and the tables they go to")) {
      if (!b->is_array()) {
        ctx.Error(b->mark(), o.PointerOf("bindings"), owner, "`bindings` must be a list");
      } else {
        for (size_t i = 0; i < b->items().size(); ++i) {
          std::string bp = o.PointerOf("bindings") + "/" + std::to_string(i);
          const Node& bn = b->items()[i];
          Obj bo(ctx, bn, bp, owner, "a materialization binding",
                 {"source", "table", "fields", "deltaUpdates", "deadLetters"});
          if (!bo.ok()) continue;
          MaterializationBindingSpec bs;
          bs.where = ctx.At(bn, bp);
          if (const Node* src = bo.Required("source", "the collection to materialize")) {
            bo.String(src, "source", &bs.source);
            bs.source_where = ctx.At(*src, bo.PointerOf("source"));
          }
          if (const Node* tbl = bo.Required("table", "the table name")) {
            bo.String(tbl, "table", &bs.table);
            bs.table_where = ctx.At(*tbl, bo.PointerOf("table"));
            if (bs.table.empty())
              ctx.Error(tbl->mark(), bo.PointerOf("table"), owner, "`table` may not be empty");
          }
          if (const Node* f = bo.Get("fields")) {
            Obj fo(ctx, *f, bo.PointerOf("fields"), owner, "a field selection",
                   {"include", "exclude"});
            if (fo.ok()) {
              bs.fields.present = true;
              ParseFieldList(ctx, fo, "include", owner, &bs.fields.include,
                             &bs.fields.include_where);
              ParseFieldList(ctx, fo, "exclude", owner, &bs.fields.exclude,
                             &bs.fields.exclude_where);
            }
          }
          if (const Node* du = bo.Get("deltaUpdates"))
            bo.Bool(du, "deltaUpdates", &bs.delta_updates);
          ParseDeadLetters(ctx, bo, owner, &bs.dead_letters, &bs.dead_letters_where);
          s.bindings.push_back(std::move(bs));
        }
      }
    }
    cat->materializations.push_back(std::move(s));
  }
}

}  // namespace flow::catalog::parsing
