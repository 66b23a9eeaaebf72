#include "catalog/parse_context.h"

#include <optional>

#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"
#include "catalog/parse.h"
#include "doc/pointer.h"

namespace flow::catalog::parsing {
namespace {

std::optional<LambdaSpec> ParseLambda(const Ctx& ctx, const Node& v, const std::string& pointer,
                                      const std::string& owner) {
  // Compatibility: the preview also wrote `{lambda: {nodeJS: ...}}`.
  if (v.is_object() && v.members().size() == 1 && v.members()[0].key == "lambda") {
    return ParseLambda(ctx, v.members()[0].value, Ptr(pointer, "lambda"), owner);
  }
  Obj o(ctx, v, pointer, owner, "a lambda", {"nodeJS", "sqlite", "remote"});
  if (!o.ok()) return std::nullopt;
  if (v.members().size() != 1) {
    if (v.members().empty()) {
      ctx.Error(v.mark(), pointer, owner, "a lambda needs one of `nodeJS`, `sqlite` or `remote`");
    } else {
      ctx.Error(v.mark(), pointer, owner,
                "a lambda has exactly one of `nodeJS`, `sqlite` or `remote`");
    }
    return std::nullopt;
  }
  const auto& m = v.members()[0];
  LambdaSpec l;
  l.where = ctx.At(m.value, Ptr(pointer, m.key));
  if (m.key == "nodeJS") {
    l.kind = LambdaSpec::Kind::kNodeJS;
  } else if (m.key == "sqlite") {
    l.kind = LambdaSpec::Kind::kSqlite;
  } else if (m.key == "remote") {
    l.kind = LambdaSpec::Kind::kRemote;
  } else {
    return std::nullopt;  // reported as unknown key
  }
  if (!o.String(&m.value, m.key, &l.body)) return std::nullopt;
  if (l.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    ctx.Error(m.value.mark(), Ptr(pointer, m.key), owner,
              fmt::format("`{}` lambda is empty", m.key));
    return std::nullopt;
  }
  if (l.kind == LambdaSpec::Kind::kRemote && !IsHttpUrl(l.body)) {
    ctx.Error(m.value.mark(), Ptr(pointer, m.key), owner,
              fmt::format("`remote` lambda must be an http:// or https:// URL, not `{}`", l.body));
    return std::nullopt;
  }
  return l;
}

// `lambdaTimeout`: a duration of 1 s to 1 d.
void ParseLambdaTimeout(const Ctx& ctx, const Obj& o, const Node& v, const std::string& owner,
                        int64_t* seconds) {
  std::string pointer = o.PointerOf("lambdaTimeout");
  if (!v.is_string()) {
    o.TypeError(v, "lambdaTimeout", "string");
    return;
  }
  int64_t parsed = 0;
  if (!ParseDuration(v.as_string(), &parsed)) {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("`lambdaTimeout` `{}` is not a duration", v.as_string()),
              "write amounts with units s, m, h or d, e.g. \"30s\" or \"2m\"");
    return;
  }
  if (parsed < 1 || parsed > kMaxLambdaTimeoutSeconds) {
    ctx.Error(
        v.mark(), pointer, owner,
        fmt::format("`lambdaTimeout` `{}` is out of range: it must be at least 1s and at most 1d",
                    v.as_string()));
    return;
  }
  *seconds = parsed;
}

void ParseTransform(const Ctx& ctx, const Node::Member& m, const std::string& pointer,
                    const std::string& owner_collection, DerivationSpec* d) {
  TransformSpec t;
  t.name = m.key;
  t.where = Where{ctx.file().url, ctx.file().display, m.key_mark, pointer};
  std::string owner = fmt::format("transform `{}` of `{}`", t.name, owner_collection);
  Obj o(ctx, m.value, pointer, owner, "a transform",
        {"source", "shuffle", "readDelay", "lambdaTimeout", "update", "publish", "deadLetters"});
  if (!o.ok()) return;
  if (const Node* src = o.Required("source", "the collection to read")) {
    std::string sp = o.PointerOf("source");
    // Compatibility: `source: name` is short for `source: {name: name}`.
    if (src->is_string()) {
      t.source = src->as_string();
      t.source_where = ctx.At(*src, sp);
    } else {
      Obj so(ctx, *src, sp, owner, "a transform source", {"name", "schema", "partitions"});
      if (const Node* name = so.Required("name", "the source collection")) {
        so.String(name, "name", &t.source);
        t.source_where = ctx.At(*name, so.PointerOf("name"));
      }
      if (const Node* s = so.Get("schema")) {
        t.source_schema = ParseSchemaRef(ctx, *s, so.PointerOf("schema"), owner);
      }
      if (const Node* p = so.Get("partitions")) {
        ParseSelector(ctx, *p, so.PointerOf("partitions"), owner, &t.partitions);
      }
    }
  }
  if (const Node* sh = o.Get("shuffle")) {
    std::string sp = o.PointerOf("shuffle");
    const Node* list = sh;
    // Compatibility: the preview wrote `shuffle: {key: [...]}`.
    if (sh->is_object()) {
      Obj so(ctx, *sh, sp, owner, "a shuffle", {"key"});
      list = so.Required("key", "JSON pointers to shuffle on");
      sp = so.PointerOf("key");
    }
    if (list && !list->is_array()) {
      ctx.Error(list->mark(), sp, owner, "`shuffle` must be a list of JSON pointers",
                "e.g. `shuffle: [/customer/id]`");
    } else if (list) {
      t.has_shuffle = true;
      t.shuffle_list_where = ctx.At(*list, sp);
      if (list->items().empty()) {
        ctx.Error(list->mark(), sp, owner, "`shuffle` may not be empty",
                  "omit it to shuffle on the source collection's key");
      }
      for (size_t i = 0; i < list->items().size(); ++i) {
        std::string p;
        std::string ip = sp + "/" + std::to_string(i);
        if (CheckPointer(ctx, list->items()[i], ip, owner, "shuffle location", &p)) {
          t.shuffle.push_back(p);
          t.shuffle_where.push_back(ctx.At(list->items()[i], ip));
        } else {
          t.has_shuffle = false;
        }
      }
    }
  }
  if (const Node* rd = o.Get("readDelay")) {
    t.read_delay_where = ctx.At(*rd, o.PointerOf("readDelay"));
    if (rd->is_string()) {
      t.read_delay = rd->as_string();
      if (!ParseDuration(t.read_delay, &t.read_delay_seconds)) {
        ctx.Error(rd->mark(), o.PointerOf("readDelay"), owner,
                  fmt::format("`readDelay` `{}` is not a duration", t.read_delay),
                  "write amounts with units s, m, h or d, e.g. \"2h\" or \"1h30m\"");
      }
    } else {
      o.TypeError(*rd, "readDelay", "string");
    }
  }
  if (const Node* lt = o.Get("lambdaTimeout"))
    ParseLambdaTimeout(ctx, o, *lt, owner, &t.lambda_timeout_seconds);
  if (const Node* u = o.Get("update"))
    t.update = ParseLambda(ctx, *u, o.PointerOf("update"), owner);
  if (const Node* p = o.Get("publish"))
    t.publish = ParseLambda(ctx, *p, o.PointerOf("publish"), owner);
  ParseDeadLetters(ctx, o, owner, &t.dead_letters, &t.dead_letters_where);
  if (!o.Get("update") && !o.Get("publish")) {
    ctx.Error(m.value.mark(), pointer, owner, "a transform needs `update`, `publish` or both");
  }
  d->transforms.push_back(std::move(t));
}

void ParseDerivation(const Ctx& ctx, const Node& v, const std::string& pointer,
                     const std::string& collection, CollectionSpec* c) {
  std::string owner = fmt::format("derivation `{}`", collection);
  Obj o(ctx, v, pointer, owner, "a derivation",
        {"register", "bootstrap", "lambdaTimeout", "transform"});
  if (!o.ok()) return;
  DerivationSpec d;
  d.where = ctx.At(v, pointer);
  if (const Node* lt = o.Get("lambdaTimeout"))
    ParseLambdaTimeout(ctx, o, *lt, owner, &d.lambda_timeout_seconds);
  if (const Node* r = o.Get("register")) {
    Obj ro(ctx, *r, o.PointerOf("register"), owner, "a register", {"schema", "initial"});
    d.register_malformed = !ro.ok() || ro.HasUnknownKeys();
    if (const Node* s = ro.Get("schema")) {
      d.register_schema = ParseSchemaRef(ctx, *s, ro.PointerOf("schema"), owner);
    }
    if (const Node* i = ro.Get("initial")) {
      d.register_initial = i;
      d.initial_where = ctx.At(*i, ro.PointerOf("initial"));
    }
  }
  if (const Node* b = o.Get("bootstrap")) {
    std::string bp = o.PointerOf("bootstrap");
    if (!b->is_array()) {
      ctx.Error(b->mark(), bp, owner,
                fmt::format("`bootstrap` must be a list of lambdas, found {}", Obj::Describe(*b)),
                "e.g. `bootstrap: [{nodeJS: \"globalThis.rate = 1.1;\"}]`");
    } else {
      for (size_t i = 0; i < b->items().size(); ++i) {
        auto l = ParseLambda(ctx, b->items()[i], Ptr(bp, std::to_string(i)), owner);
        if (l) d.bootstrap.push_back(std::move(*l));
      }
    }
  }
  if (const Node* t = o.Required("transform", "named transforms reading source collections")) {
    std::string tp = o.PointerOf("transform");
    if (!t->is_object()) {
      ctx.Error(t->mark(), tp, owner, "`transform` must map transform names to transforms");
    } else if (t->members().empty()) {
      ctx.Error(t->mark(), tp, owner, "a derivation needs at least one transform");
    } else {
      for (const auto& m : t->members()) ParseTransform(ctx, m, Ptr(tp, m.key), collection, &d);
    }
  }
  c->derivation = std::move(d);
}

// `journals: {fragments: {compressionCodec, length, flushInterval}}`.
void ParseJournals(const Ctx& ctx, const Node& v, const std::string& pointer,
                   const std::string& owner, CollectionSpec* c) {
  Obj o(ctx, v, pointer, owner, "journal settings", {"fragments"});
  if (!o.ok()) return;
  const Node* f = o.Get("fragments");
  if (!f) return;
  Obj fo(ctx, *f, o.PointerOf("fragments"), owner, "fragment settings",
         {"compressionCodec", "length", "flushInterval"});
  if (!fo.ok()) return;
  if (const Node* codec = fo.Get("compressionCodec")) {
    std::string text;
    if (fo.String(codec, "compressionCodec", &text)) {
      std::string lower;
      for (char ch : text)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
      if (lower == "gzip")
        c->fragment_codec = "gzip";
      else if (lower == "zstd" || lower == "zstandard")
        c->fragment_codec = "zstd";
      else if (lower == "none")
        c->fragment_codec = "none";
      else {
        ctx.Error(codec->mark(), fo.PointerOf("compressionCodec"), owner,
                  fmt::format("unknown compression codec `{}`", text),
                  "use `gzip`, `zstd` or `none`");
      }
    }
  }
  if (const Node* len = fo.Get("length")) {
    bool good = false;
    if (len->is_int() && len->as_int() > 0) {
      c->fragment_length = static_cast<uint64_t>(len->as_int());
      good = true;
    } else if (len->is_string()) {
      if (auto n = ParseByteSize(len->as_string()); n && *n > 0) {
        c->fragment_length = *n;
        good = true;
      }
    }
    if (!good) {
      ctx.Error(len->mark(), fo.PointerOf("length"), owner, "`length` must be a positive size",
                "e.g. `length: 64MiB` or a number of bytes");
    }
  }
  if (const Node* fl = fo.Get("flushInterval")) {
    std::string text;
    if (fo.String(fl, "flushInterval", &text) &&
        (!ParseDuration(text, &c->flush_interval) || c->flush_interval <= 0)) {
      ctx.Error(fl->mark(), fo.PointerOf("flushInterval"), owner,
                fmt::format("`flushInterval` `{}` is not a positive duration", text),
                "e.g. `5m` or `30s`");
    }
  }
}

}  // namespace

void ParseCollection(const Ctx& ctx, const Node& v, const std::string& pointer, Catalog* cat) {
  CollectionSpec c;
  c.where = ctx.At(v, pointer);
  std::string owner = "collection";
  if (v.is_object()) {
    if (const Node* n = v.Find("name"); n && n->is_string())
      owner = fmt::format("collection `{}`", n->as_string());
  }
  Obj o(ctx, v, pointer, owner, "a collection",
        {"name", "schema", "key", "projections", "derivation", "journals"});
  if (!o.ok()) return;
  if (const Node* n = o.Required("name", "the collection's name")) {
    if (o.String(n, "name", &c.name)) {
      c.where = ctx.At(*n, o.PointerOf("name"));
      std::string why;
      if (!IsValidCollectionName(c.name, &why)) {
        ctx.Error(n->mark(), o.PointerOf("name"), owner,
                  fmt::format("invalid collection name `{}`: {}", c.name, why),
                  "names are `/`-separated segments of letters, digits and `-_.`");
      }
    }
  }
  if (const Node* s = o.Required("schema", "a schema URL or an inline schema")) {
    c.schema = ParseSchemaRef(ctx, *s, o.PointerOf("schema"), owner);
  }
  if (const Node* k = o.Required("key", "JSON pointers that identify a document")) {
    std::string kp = o.PointerOf("key");
    c.key_list_where = ctx.At(*k, kp);
    if (!k->is_array()) {
      ctx.Error(k->mark(), kp, owner, "`key` must be a list of JSON pointers",
                k->is_string() ? fmt::format("write `key: [{}]`", k->as_string()) : "");
    } else if (k->items().empty()) {
      ctx.Error(k->mark(), kp, owner, "`key` may not be empty",
                "list the pointers that identify a document, e.g. `key: [/id]`");
    } else {
      for (size_t i = 0; i < k->items().size(); ++i) {
        std::string p, ip = kp + "/" + std::to_string(i);
        if (CheckPointer(ctx, k->items()[i], ip, owner, "key", &p)) {
          c.key.push_back(p);
          c.key_where.push_back(ctx.At(k->items()[i], ip));
        }
      }
    }
  }
  if (const Node* ps = o.Get("projections")) {
    std::string pp = o.PointerOf("projections");
    if (!ps->is_object()) {
      ctx.Error(ps->mark(), pp, owner, "`projections` must map field names to locations",
                "e.g. `projections: {customer_id: /customer/id}`");
    } else {
      for (const auto& m : ps->members()) {
        ProjectionSpec p;
        p.field = m.key;
        p.where = Where{ctx.file().url, ctx.file().display, m.key_mark, Ptr(pp, m.key)};
        std::string fp = Ptr(pp, m.key);
        const Node* loc = &m.value;
        std::string lp = fp;
        if (m.value.is_object()) {
          Obj po(ctx, m.value, fp, owner, "a projection", {"location", "partition"});
          loc = po.Required("location", "the JSON pointer this field projects");
          lp = po.PointerOf("location");
          if (const Node* part = po.Get("partition")) po.Bool(part, "partition", &p.partition);
        }
        if (m.key.empty()) {
          ctx.Error(m.key_mark, fp, owner, "a projection field name may not be empty");
          continue;
        }
        if (m.key == "flow_document") {
          ctx.Error(m.key_mark, fp, owner, "`flow_document` is reserved for the whole document",
                    "choose another field name");
          continue;
        }
        if (loc && CheckPointer(ctx, *loc, lp, owner, "projection location", &p.location)) {
          c.projections.push_back(std::move(p));
        }
      }
    }
  }
  if (const Node* d = o.Get("derivation"))
    ParseDerivation(ctx, *d, o.PointerOf("derivation"), c.name, &c);
  if (const Node* j = o.Get("journals")) ParseJournals(ctx, *j, o.PointerOf("journals"), owner, &c);
  cat->collections.push_back(std::move(c));
}

}  // namespace flow::catalog::parsing
