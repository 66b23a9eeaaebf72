#include "catalog/parse.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"
#include "doc/pointer.h"
#include "schema/index.h"

namespace flow::catalog {
namespace {

using doc::Node;

// Text of a source shown in a message: at most `max` bytes, control characters escaped,
// so that a file that is not a catalog at all (read by mistake) is not echoed.
std::string Excerpt(std::string_view text, size_t max = 40) {
  std::string q = JsonQuote(Truncate(text, max));
  return q.substr(1, q.size() - 2);
}

std::string Ptr(const std::string& base, const std::string& token) {
  return base + "/" + doc::Pointer::Escape(token);
}

// Parsing context for one file: where errors go and what they are about.
class Ctx {
 public:
  Ctx(const SourceFile& file, Diagnostics* diags) : file_(file), diags_(diags) {}

  Where At(const Node& n, const std::string& pointer) const {
    return Where{file_.url, file_.display, n.mark(), pointer};
  }
  void Error(Mark mark, const std::string& pointer, const std::string& owner, std::string msg,
             std::string hint = {}) const {
    std::string scope = owner.empty() ? fmt::format("{}", pointer.empty() ? "/" : pointer)
                                      : fmt::format("{} at {}", owner, pointer.empty() ? "/" : pointer);
    diags_->Error(file_.display, mark, std::move(msg), std::move(scope), std::move(hint));
  }
  const SourceFile& file() const { return file_; }

 private:
  const SourceFile& file_;
  Diagnostics* diags_;
};

const char* Article(const char* type) {
  return (type[0] == 'a' || type[0] == 'o' || type[0] == 'i') ? "an" : "a";
}

// Reads one YAML mapping of a known shape: looks keys up, reports unknown ones with a
// "did you mean" hint (or, for keys in `misplaced`, the hint given there: keys that belong
// elsewhere), and reports type mismatches.
class Obj {
 public:
  Obj(const Ctx& ctx, const Node& n, std::string pointer, std::string owner, std::string what,
      std::vector<std::string> allowed, const std::map<std::string, std::string>& misplaced = {})
      : ctx_(ctx), n_(n), pointer_(std::move(pointer)), owner_(std::move(owner)),
        allowed_(std::move(allowed)) {
    ok_ = n.is_object();
    if (!ok_) {
      ctx_.Error(n.mark(), pointer_, owner_,
                 fmt::format("expected {} to be a mapping, found {}", what, Describe(n)));
      return;
    }
    for (const auto& m : n.members()) {
      if (std::find(allowed_.begin(), allowed_.end(), m.key) != allowed_.end()) continue;
      if (auto it = misplaced.find(m.key); it != misplaced.end()) {
        ctx_.Error(m.key_mark, Ptr(pointer_, m.key), owner_,
                   fmt::format("unknown key `{}` in {}", Excerpt(m.key, 80), what), it->second);
        has_unknown_ = true;
        continue;
      }
      unknown_.push_back(m.key);
      has_unknown_ = true;
      std::string hint = DidYouMean(m.key, allowed_);
      if (hint.empty()) {
        std::string keys;
        for (const auto& a : allowed_) {
          if (a[0] == '$') continue;
          keys += (keys.empty() ? "`" : ", `") + a + "`";
        }
        hint = "allowed keys are " + keys;
      }
      ctx_.Error(m.key_mark, Ptr(pointer_, Excerpt(m.key, 80)), owner_,
                 fmt::format("unknown key `{}` in {}", Excerpt(m.key, 80), what), hint);
    }
  }

  bool ok() const { return ok_; }
  const Node& node() const { return n_; }
  const std::string& pointer() const { return pointer_; }
  std::string PointerOf(const std::string& key) const { return Ptr(pointer_, key); }

  const Node* Get(const std::string& key) const { return ok_ ? n_.Find(key) : nullptr; }

  // True if an unknown key of this mapping is likely a misspelling of `key`: it is closest
  // to `key`, or close to no allowed key at all (then its error lists the allowed keys).
  // Its error already covers the mistake, so a "missing" error would repeat it.
  bool HasNearMiss(const std::string& key) const {
    for (const auto& u : unknown_) {
      auto m = ClosestMatch(u, allowed_);
      if (!m || *m == key) return true;
    }
    return false;
  }
  bool HasUnknownKeys() const { return has_unknown_; }

  const Node* Required(const std::string& key, const char* what_it_is) const {
    const Node* v = Get(key);
    if (ok_ && !v && !HasNearMiss(key)) {
      ctx_.Error(n_.mark(), pointer_, owner_, fmt::format("missing required `{}` ({})", key, what_it_is));
    }
    return v;
  }

  // Typed accessors: report a mismatch and return false.
  bool String(const Node* v, const std::string& key, std::string* out) const {
    if (!v) return false;
    if (!v->is_string()) {
      TypeError(*v, key, "string");
      return false;
    }
    *out = v->as_string();
    return true;
  }
  bool Bool(const Node* v, const std::string& key, bool* out) const {
    if (!v) return false;
    if (!v->is_bool()) {
      TypeError(*v, key, "boolean");
      return false;
    }
    *out = v->as_bool();
    return true;
  }
  void TypeError(const Node& v, const std::string& key, const char* expected) const {
    ctx_.Error(v.mark(), Ptr(pointer_, key), owner_,
               fmt::format("`{}` must be {} {}, found {}", key, Article(expected), expected,
                           Describe(v)));
  }

  static std::string Describe(const Node& n) {
    if (n.is_string()) return fmt::format("string \"{}\"", Excerpt(n.as_string()));
    if (n.is_object() || n.is_array()) return std::string(Article(n.TypeName())) + " " + n.TypeName();
    return fmt::format("{} {}", n.TypeName(), n.ToJsonText());
  }

 private:
  const Ctx& ctx_;
  const Node& n_;
  std::string pointer_;
  std::string owner_;
  std::vector<std::string> allowed_;
  std::vector<std::string> unknown_;  // misspellings, perhaps: not the `misplaced` keys
  bool has_unknown_ = false;
  bool ok_ = false;
};

bool CheckPointer(const Ctx& ctx, const Node& v, const std::string& pointer,
                  const std::string& owner, const char* what, std::string* out) {
  if (!v.is_string()) {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("{} must be a JSON pointer string, found {}", what, Obj::Describe(v)));
    return false;
  }
  std::string why;
  if (!doc::Pointer::Parse(v.as_string(), &why)) {
    std::string hint = why.find("start with") != std::string::npos
                           ? fmt::format("JSON pointers start with / (write `/{}`)", v.as_string())
                           : why;
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("{} `{}` is not a valid JSON pointer", what, v.as_string()), hint);
    return false;
  }
  if (v.as_string().empty()) {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("{} may not be the empty pointer (the whole document)", what));
    return false;
  }
  *out = v.as_string();
  return true;
}

SchemaSpec ParseSchemaRef(const Ctx& ctx, const Node& v, const std::string& pointer,
                          const std::string& owner) {
  SchemaSpec s;
  s.where = ctx.At(v, pointer);
  if (v.is_string()) {
    if (v.as_string().empty()) {
      ctx.Error(v.mark(), pointer, owner, "schema URL is empty");
      return s;
    }
    s.present = true;
    s.url = ResolveUrl(ctx.file().url, v.as_string());
  } else if (v.is_object() || v.is_bool()) {
    s.present = true;
    s.inline_node = &v;
    s.url = schema::InlineSchemaUrl(ctx.file().url, pointer);
  } else {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("`schema` must be a URL or an inline schema, found {}", Obj::Describe(v)));
  }
  return s;
}

void ParseSelector(const Ctx& ctx, const Node& v, const std::string& pointer,
                   const std::string& owner, PartitionSelectorSpec* out) {
  Obj o(ctx, v, pointer, owner, "a partition selector", {"include", "exclude"});
  out->where = ctx.At(v, pointer);
  out->node = &v;
  if (!o.ok()) return;
  out->present = true;
  for (const char* which : {"include", "exclude"}) {
    const Node* m = o.Get(which);
    if (!m) continue;
    std::string mp = o.PointerOf(which);
    if (!m->is_object()) {
      ctx.Error(m->mark(), mp, owner,
                fmt::format("`{}` must map partition fields to lists of values", which),
                "e.g. `include: {region: [EU, US]}`");
      continue;
    }
    for (const auto& f : m->members()) {
      PartitionSelectorSpec::Term t;
      t.field = f.key;
      t.where = Where{ctx.file().url, ctx.file().display, f.key_mark, Ptr(mp, f.key)};
      if (!f.value.is_array()) {
        ctx.Error(f.value.mark(), Ptr(mp, f.key), owner,
                  fmt::format("values of partition field `{}` must be a list", f.key),
                  fmt::format("write `{}: [{}]`", f.key, f.value.ToJsonText()));
        continue;
      }
      for (const auto& i : f.value.items()) t.values.push_back(&i);
      (std::string(which) == "include" ? out->include : out->exclude).push_back(std::move(t));
    }
  }
}

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
    ctx.Error(m.value.mark(), Ptr(pointer, m.key), owner, fmt::format("`{}` lambda is empty", m.key));
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
void ParseLambdaTimeout(const Ctx& ctx, const Obj& o, const Node& v, const std::string& owner, int64_t* seconds) {
  std::string pointer = o.PointerOf("lambdaTimeout");
  if (!v.is_string()) {
    o.TypeError(v, "lambdaTimeout", "string");
    return;
  }
  int64_t parsed = 0;
  if (!ParseDuration(v.as_string(), &parsed)) {
    ctx.Error(v.mark(), pointer, owner, fmt::format("`lambdaTimeout` `{}` is not a duration", v.as_string()),
              "write amounts with units s, m, h or d, e.g. \"30s\" or \"2m\"");
    return;
  }
  if (parsed < 1 || parsed > kMaxLambdaTimeoutSeconds) {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("`lambdaTimeout` `{}` is out of range: it must be at least 1s and at most 1d",
                          v.as_string()));
    return;
  }
  *seconds = parsed;
}

// `deadLetters`: the name of a collection (checked in check.cc).
void ParseDeadLetters(const Ctx& ctx, const Obj& o, const std::string& owner, std::string* name,
                      Where* where) {
  const Node* v = o.Get("deadLetters");
  if (!v || !o.String(v, "deadLetters", name)) return;
  *where = ctx.At(*v, o.PointerOf("deadLetters"));
  if (name->empty()) {
    ctx.Error(
        v->mark(), o.PointerOf("deadLetters"), owner, "`deadLetters` may not be empty",
        "name the collection that receives dead letters, or omit `deadLetters` to halt on errors");
  }
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
  if (const Node* lt = o.Get("lambdaTimeout")) ParseLambdaTimeout(ctx, o, *lt, owner, &t.lambda_timeout_seconds);
  if (const Node* u = o.Get("update")) t.update = ParseLambda(ctx, *u, o.PointerOf("update"), owner);
  if (const Node* p = o.Get("publish")) t.publish = ParseLambda(ctx, *p, o.PointerOf("publish"), owner);
  ParseDeadLetters(ctx, o, owner, &t.dead_letters, &t.dead_letters_where);
  if (!o.Get("update") && !o.Get("publish")) {
    ctx.Error(m.value.mark(), pointer, owner, "a transform needs `update`, `publish` or both");
  }
  d->transforms.push_back(std::move(t));
}

void ParseDerivation(const Ctx& ctx, const Node& v, const std::string& pointer,
                     const std::string& collection, CollectionSpec* c) {
  std::string owner = fmt::format("derivation `{}`", collection);
  Obj o(ctx, v, pointer, owner, "a derivation", {"register", "bootstrap", "lambdaTimeout", "transform"});
  if (!o.ok()) return;
  DerivationSpec d;
  d.where = ctx.At(v, pointer);
  if (const Node* lt = o.Get("lambdaTimeout")) ParseLambdaTimeout(ctx, o, *lt, owner, &d.lambda_timeout_seconds);
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
void ParseJournals(const Ctx& ctx, const Node& v, const std::string& pointer, const std::string& owner,
                   CollectionSpec* c) {
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
      for (char ch : text) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
      if (lower == "gzip") c->fragment_codec = "gzip";
      else if (lower == "zstd" || lower == "zstandard") c->fragment_codec = "zstd";
      else if (lower == "none") c->fragment_codec = "none";
      else {
        ctx.Error(codec->mark(), fo.PointerOf("compressionCodec"), owner,
                  fmt::format("unknown compression codec `{}`", text), "use `gzip`, `zstd` or `none`");
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
    if (fo.String(fl, "flushInterval", &text) && (!ParseDuration(text, &c->flush_interval) || c->flush_interval <= 0)) {
      ctx.Error(fl->mark(), fo.PointerOf("flushInterval"), owner,
                fmt::format("`flushInterval` `{}` is not a positive duration", text), "e.g. `5m` or `30s`");
    }
  }
}

void ParseCollection(const Ctx& ctx, const Node& v, const std::string& pointer, Catalog* cat) {
  CollectionSpec c;
  c.where = ctx.At(v, pointer);
  std::string owner = "collection";
  if (v.is_object()) {
    if (const Node* n = v.Find("name"); n && n->is_string()) owner = fmt::format("collection `{}`", n->as_string());
  }
  Obj o(ctx, v, pointer, owner, "a collection", {"name", "schema", "key", "projections", "derivation", "journals"});
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
          ctx.Error(m.key_mark, fp, owner,
                    "`flow_document` is reserved for the whole document",
                    "choose another field name");
          continue;
        }
        if (loc && CheckPointer(ctx, *loc, lp, owner, "projection location", &p.location)) {
          c.projections.push_back(std::move(p));
        }
      }
    }
  }
  if (const Node* d = o.Get("derivation")) ParseDerivation(ctx, *d, o.PointerOf("derivation"), c.name, &c);
  if (const Node* j = o.Get("journals")) ParseJournals(ctx, *j, o.PointerOf("journals"), owner, &c);
  cat->collections.push_back(std::move(c));
}

// Parses the database of a target, `sqlite: {path}` or `postgres: {uri}` (member `kind` at
// `kp`), into `t`. With `binding`, the mapping also names the table (the inline form of a
// materialization, SPEC 1.7), read into `binding->table`.
void ParseDatabase(const Ctx& ctx, const Node::Member& kind, const std::string& kp, const std::string& owner,
                   TargetSpec* t, MaterializationBindingSpec* binding) {
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
      std::filesystem::path dir = std::filesystem::path(FilePathOfUrl(ctx.file().url)).parent_path();
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

void ParseFieldList(const Ctx& ctx, const Obj& o, const char* key, const std::string& owner,
                    std::vector<std::string>* out, std::vector<Where>* where) {
  const Node* v = o.Get(key);
  if (!v) return;
  if (!v->is_array()) {
    ctx.Error(v->mark(), o.PointerOf(key), owner, fmt::format("`{}` must be a list of field names", key));
    return;
  }
  for (size_t i = 0; i < v->items().size(); ++i) {
    const Node& f = v->items()[i];
    std::string ip = o.PointerOf(key) + "/" + std::to_string(i);
    if (!f.is_string()) {
      ctx.Error(f.mark(), ip, owner, fmt::format("field names must be strings, found {}", Obj::Describe(f)));
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
void ParseInlineMaterialization(const Ctx& ctx, const Node::Member& m, const Obj& o, const std::string& owner,
                                MaterializationSpec* s, Catalog* cat) {
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

void ParseMaterializations(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/materializations", "", "`materializations` must map names to materializations");
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
    const std::vector<std::string> full = {"target", "bindings"}, inline_form = {"collection", "sqlite", "postgres"};
    auto has_any = [&](const std::vector<std::string>& keys) {
      return m.value.is_object() &&
             std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return m.value.Find(k); });
    };
    bool is_full = has_any(full), is_inline = has_any(inline_form);
    std::vector<std::string> allowed = is_inline && !is_full ? inline_form : full;
    if (is_full == is_inline) allowed.insert(allowed.end(), inline_form.begin(), inline_form.end());
    if (is_inline || !is_full) allowed.push_back("deadLetters");
    std::map<std::string, std::string> misplaced;
    if (is_inline && !is_full) {
      misplaced = {{"fields", "the inline form (`collection` with `sqlite` or `postgres`) materializes "
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
      ctx.Error(m.key_mark, p, owner,
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
    if (!is_full && (o.HasNearMiss("collection") || o.HasNearMiss("sqlite") || o.HasNearMiss("postgres"))) {
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
            if (bs.table.empty()) ctx.Error(tbl->mark(), bo.PointerOf("table"), owner, "`table` may not be empty");
          }
          if (const Node* f = bo.Get("fields")) {
            Obj fo(ctx, *f, bo.PointerOf("fields"), owner, "a field selection", {"include", "exclude"});
            if (fo.ok()) {
              bs.fields.present = true;
              ParseFieldList(ctx, fo, "include", owner, &bs.fields.include, &bs.fields.include_where);
              ParseFieldList(ctx, fo, "exclude", owner, &bs.fields.exclude, &bs.fields.exclude_where);
            }
          }
          if (const Node* du = bo.Get("deltaUpdates")) bo.Bool(du, "deltaUpdates", &bs.delta_updates);
          ParseDeadLetters(ctx, bo, owner, &bs.dead_letters, &bs.dead_letters_where);
          s.bindings.push_back(std::move(bs));
        }
      }
    }
    cat->materializations.push_back(std::move(s));
  }
}

void ParseCaptures(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/captures", "", "`captures` must map names to captures");
    return;
  }
  for (const auto& m : v.members()) {
    CaptureSpec s;
    s.name = m.key;
    std::string p = Ptr("/captures", m.key);
    s.where = Where{ctx.file().url, ctx.file().display, m.key_mark, p};
    std::string owner = fmt::format("capture `{}`", m.key);
    Obj o(ctx, m.value, p, owner, "a capture", {"endpoint", "bindings"});
    if (!o.ok()) continue;
    if (const Node* e = o.Required("endpoint", "where documents come from")) {
      Obj eo(ctx, *e, o.PointerOf("endpoint"), owner, "a capture endpoint", {"fileDrop"});
      if (const Node* fd = eo.Required("fileDrop", "a directory to watch")) {
        Obj fo(ctx, *fd, eo.PointerOf("fileDrop"), owner, "a fileDrop endpoint", {"path", "format"});
        std::string path;
        if (fo.String(fo.Required("path", "the directory to watch"), "path", &path)) {
          if (IsFileUrl(ctx.file().url) && !path.empty() && path[0] != '/') {
            std::filesystem::path dir = std::filesystem::path(FilePathOfUrl(ctx.file().url)).parent_path();
            path = (dir / path).lexically_normal().string();
          }
          s.path = path;
        }
        s.format = "json";
        if (const Node* f = fo.Get("format"); fo.String(f, "format", &s.format)) {
          if (s.format != "json" && s.format != "csv" && s.format != "tsv") {
            ctx.Error(f->mark(), fo.PointerOf("format"), owner,
                      fmt::format("unknown fileDrop format `{}`", s.format),
                      "use json (JSON lines), csv or tsv; gzipped files (.gz) are accepted in each");
          }
        }
      }
    }
    if (const Node* b = o.Required("bindings", "the collections captured into")) {
      if (!b->is_array() || b->items().empty()) {
        ctx.Error(b->mark(), o.PointerOf("bindings"), owner, "`bindings` must be a non-empty list",
                  "e.g. `bindings: [{target: acme/orders}]`");
      } else {
        for (size_t i = 0; i < b->items().size(); ++i) {
          std::string bp = o.PointerOf("bindings") + "/" + std::to_string(i);
          Obj bo(ctx, b->items()[i], bp, owner, "a capture binding", {"target"});
          CaptureSpec::Binding cb;
          if (const Node* t = bo.Required("target", "the collection to capture into")) {
            if (bo.String(t, "target", &cb.target)) {
              cb.where = ctx.At(*t, bo.PointerOf("target"));
              s.bindings.push_back(std::move(cb));
            }
          }
        }
      }
    }
    cat->captures.push_back(std::move(s));
  }
}

void ParseTests(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/tests", "", "`tests` must map test names to lists of steps");
    return;
  }
  for (const auto& m : v.members()) {
    TestSpec t;
    t.name = m.key;
    std::string p = Ptr("/tests", m.key);
    t.where = Where{ctx.file().url, ctx.file().display, m.key_mark, p};
    std::string owner = fmt::format("test `{}`", m.key);
    if (!m.value.is_array()) {
      ctx.Error(m.value.mark(), p, owner, "a test must be a list of `ingest` and `verify` steps");
      continue;
    }
    for (size_t i = 0; i < m.value.items().size(); ++i) {
      const Node& step = m.value.items()[i];
      std::string sp = p + "/" + std::to_string(i);
      std::string sowner = fmt::format("test `{}` step {}", m.key, i);
      Obj so(ctx, step, sp, sowner, "a test step", {"ingest", "verify"});
      if (!so.ok()) continue;
      if (step.members().size() != 1) {
        ctx.Error(step.mark(), sp, sowner, "a test step has exactly one of `ingest` or `verify`");
        continue;
      }
      TestStepSpec s;
      s.where = ctx.At(step, sp);
      const auto& body = step.members()[0];
      std::string bp = Ptr(sp, body.key);
      if (body.key == "ingest") {
        s.kind = TestStepSpec::Kind::kIngest;
      } else if (body.key == "verify") {
        s.kind = TestStepSpec::Kind::kVerify;
      } else {
        continue;
      }
      std::vector<std::string> allowed = {"collection", "documents"};
      if (s.kind == TestStepSpec::Kind::kVerify) allowed.push_back("partitions");
      Obj bo(ctx, body.value, bp, sowner,
             fmt::format("{} `{}` step", s.kind == TestStepSpec::Kind::kIngest ? "an" : "a", body.key),
             allowed);
      if (!bo.ok()) continue;
      if (const Node* c = bo.Required("collection", "the collection")) {
        bo.String(c, "collection", &s.collection);
        s.collection_where = ctx.At(*c, bo.PointerOf("collection"));
      }
      if (const Node* d = bo.Required("documents", "a list of documents")) {
        s.documents_where = ctx.At(*d, bo.PointerOf("documents"));
        if (!d->is_array()) {
          ctx.Error(d->mark(), bo.PointerOf("documents"), sowner, "`documents` must be a list");
        } else {
          s.documents = d;
        }
      }
      if (const Node* ps = bo.Get("partitions")) {
        ParseSelector(ctx, *ps, bo.PointerOf("partitions"), sowner, &s.partitions);
      }
      t.steps.push_back(std::move(s));
    }
    cat->tests.push_back(std::move(t));
  }
}

void ParseNodeDependencies(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/nodeDependencies", "",
              "`nodeDependencies` must map npm package names to version ranges",
              "e.g. `nodeDependencies: {moment: ^2.29.0}`");
    return;
  }
  for (const auto& m : v.members()) {
    NodeDependencySpec d;
    d.package = m.key;
    d.where = Where{ctx.file().url, ctx.file().display, m.key_mark, Ptr("/nodeDependencies", m.key)};
    if (!m.value.is_string()) {
      ctx.Error(m.value.mark(), d.where.pointer, "",
                fmt::format("the version of npm package `{}` must be a string, found {}", m.key,
                            Obj::Describe(m.value)),
                "quote version numbers, e.g. \"1.2.0\"");
      continue;
    }
    d.version = m.value.as_string();
    // Several files may declare one package (SPEC 1.2): the same version range merges into
    // the first declaration (in load order), another one is an error naming both places.
    auto same = std::find_if(cat->node_dependencies.begin(), cat->node_dependencies.end(),
                             [&](const NodeDependencySpec& e) { return e.package == d.package; });
    if (same == cat->node_dependencies.end()) {
      cat->node_dependencies.push_back(std::move(d));
    } else if (same->version != d.version) {
      ctx.Error(m.key_mark, d.where.pointer, "",
                fmt::format("npm package `{}` is declared with version range \"{}\" here but \"{}\" at "
                            "{}:{}:{}",
                            d.package, d.version, same->version, same->where.file,
                            same->where.mark.line, same->where.mark.col),
                "every file that declares a package must give the same version range; "
                "declare it once in a file the others import");
    }
  }
}

const std::vector<std::string> kTopLevel = {"$schema",          "import",
                                            "collections",      "materializationTargets",
                                            "materializations", "captures",
                                            "tests",            "nodeDependencies"};

}  // namespace

bool IsValidCollectionName(const std::string& name, std::string* why) {
  if (name.empty()) {
    *why = "it is empty";
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string seg = name.substr(start, end - start);
    if (seg.empty()) {
      *why = "it has an empty segment (leading, trailing or doubled `/`)";
      return false;
    }
    if (seg == "." || seg == "..") {
      *why = fmt::format("segment `{}` is not allowed", seg);
      return false;
    }
    for (char c : seg) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
        *why = fmt::format("character `{}` is not allowed", c);
        return false;
      }
    }
    start = end + 1;
  }
  return true;
}

void ParseImports(SourceFile* file, Diagnostics* diags) {
  Ctx ctx(*file, diags);
  const Node& root = file->root;
  if (!root.is_object()) {
    if (!root.is_null()) {
      ctx.Error(root.mark(), "", "",
                fmt::format("a catalog source must be a mapping of sections, found {}",
                            Obj::Describe(root)));
    }
    return;
  }
  const Node* imp = root.Find("import");
  if (!imp) return;
  if (!imp->is_array()) {
    ctx.Error(imp->mark(), "/import", "", "`import` must be a list of paths or URLs",
              imp->is_string() ? fmt::format("write `import: [{}]`", imp->as_string()) : "");
    return;
  }
  for (size_t i = 0; i < imp->items().size(); ++i) {
    const Node& n = imp->items()[i];
    if (!n.is_string() || n.as_string().empty()) {
      ctx.Error(n.mark(), "/import/" + std::to_string(i), "",
                fmt::format("an import must be a path or URL, found {}", Obj::Describe(n)));
      continue;
    }
    std::string base, frag;
    SplitFragment(ResolveUrl(file->url, n.as_string()), &base, &frag);
    file->imports.push_back(base);
    file->import_marks.push_back(n.mark());
  }
}

void ParseSections(const SourceFile& file, Catalog* catalog, Diagnostics* diags) {
  Ctx ctx(file, diags);
  const Node& root = file.root;
  if (!root.is_object()) return;  // reported by ParseImports
  Obj top(ctx, root, "", "", "a catalog source", kTopLevel);
  if (const Node* c = root.Find("collections")) {
    if (!c->is_array()) {
      ctx.Error(c->mark(), "/collections", "", "`collections` must be a list of collections",
                c->is_object() ? "start each collection with `- name: ...`" : "");
    } else {
      for (size_t i = 0; i < c->items().size(); ++i) {
        ParseCollection(ctx, c->items()[i], "/collections/" + std::to_string(i), catalog);
      }
    }
  }
  if (const Node* t = root.Find("materializationTargets")) ParseTargets(ctx, *t, catalog);
  if (const Node* m = root.Find("materializations")) ParseMaterializations(ctx, *m, catalog);
  if (const Node* c = root.Find("captures")) ParseCaptures(ctx, *c, catalog);
  if (const Node* t = root.Find("tests")) ParseTests(ctx, *t, catalog);
  if (const Node* n = root.Find("nodeDependencies")) ParseNodeDependencies(ctx, *n, catalog);
}

bool ParseDuration(const std::string& text, int64_t* seconds) {
  if (text.empty()) return false;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t amount = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      amount = amount * 10 + (text[i] - '0');
      if (amount > 1'000'000'000) return false;
      ++i;
    }
    if (i == start || i == text.size()) return false;
    switch (text[i]) {
      case 's': total += amount; break;
      case 'm': total += amount * 60; break;
      case 'h': total += amount * 3600; break;
      case 'd': total += amount * 86400; break;
      default: return false;
    }
    ++i;
  }
  *seconds = total;
  return true;
}

int64_t DerivationSpec::BootstrapTimeoutSeconds() const {
  return lambda_timeout_seconds ? lambda_timeout_seconds : kDefaultLambdaTimeoutSeconds;
}

int64_t DerivationSpec::LambdaTimeoutSeconds(const TransformSpec& t) const {
  return t.lambda_timeout_seconds ? t.lambda_timeout_seconds : BootstrapTimeoutSeconds();
}

const SourceFile* Catalog::File(const std::string& url) const {
  for (const auto& f : files) {
    if (f->url == url) return f.get();
  }
  return nullptr;
}

const CollectionSpec* Catalog::Collection(const std::string& name) const {
  for (const auto& c : collections) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace flow::catalog
