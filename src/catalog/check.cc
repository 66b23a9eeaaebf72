#include "catalog/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>
#include <tuple>

#include "base/strings.h"
#include "base/url.h"
#include "doc/uuid.h"
#include "doc/value.h"
#include "lambda/sqlite.h"
#include "schema/bundle.h"
#include "schema/inspect.h"
#include "schema/validator.h"

namespace flow::catalog {
namespace {

using schema::Shape;
using ShapePtr = std::shared_ptr<Shape>;

// The dead-letter collection docs/reference/dead-letters.md recommends, for hints.
constexpr const char* kDeadLetterCollection =
    "a dead-letter collection as docs/reference/dead-letters.md recommends has "
    "`key: [/task, /binding, /journal, /offset]` and `schema: {type: object, properties: "
    "{task: {type: string}, taskKind: {enum: [derivation, materialization]}, "
    "binding: {type: string}, collection: {type: string}, journal: {type: string}, "
    "offset: {type: integer}, error: {type: string}, document: {}}, "
    "required: [task, taskKind, binding, collection, journal, offset, error, document]}`";

// The `_meta.uuid` of the sample dead letter's document: a v1 UUID as runtime::Stamper
// writes them, fixed so that diagnostics quoting it do not change from build to build.
std::string SampleUuid() {
  doc::Uuid u;
  u.producer.bytes = {0x6b, 0x3f, 0x1c, 0x2e, 0x95, 0xd4};
  u.clock = doc::ClockFromUnixNanos(int64_t{1704067200} * 1000000000);  // 2024-01-01T00:00Z
  u.flags = doc::kFlagOutsideTxn;
  return doc::FormatUuid(u);
}

std::string Scope(const std::string& owner, const Where& w) {
  return fmt::format("{} at {}", owner, w.pointer.empty() ? "/" : w.pointer);
}

class Checker {
 public:
  Checker(const Loaded& loaded, Built* out, Diagnostics* diags)
      : cat_(loaded.catalog), index_(loaded.index), out_(out), diags_(diags) {}

  void Run() {
    index_.CheckRefs(diags_);
    index_.CheckRefCycles(diags_);
    CheckNames();
    for (const auto& c : cat_.collections) CheckCollection(c);
    for (const auto& c : cat_.collections) {
      if (c.derivation && out_->by_name.count(c.name)) CheckDerivation(c);
    }
    CheckCycles();
    CheckMaterializations();
    CheckDeadLetterCycles();
    CheckCaptures();
    CheckTests();
  }

 private:
  void Error(const Where& w, const std::string& owner, std::string msg, std::string hint = {}) {
    diags_->Error(w.file, w.mark, std::move(msg), Scope(owner, w), std::move(hint));
  }

  std::vector<std::string> CollectionNames() const {
    std::vector<std::string> v;
    for (const auto& c : cat_.collections) v.push_back(c.name);
    return v;
  }

  // A collection name that must exist; reports it otherwise.
  const BuiltCollection* Need(const std::string& name, const Where& w, const std::string& owner,
                              const char* role) {
    if (const BuiltCollection* c = out_->Collection(name)) return c;
    if (cat_.Collection(name)) return nullptr;  // exists but failed its own checks
    Error(w, owner, fmt::format("{} `{}` does not exist", role, name),
          DidYouMean(name, CollectionNames()));
    return nullptr;
  }

  // ---- names -------------------------------------------------------------------------
  void CheckNames() {
    std::map<std::string, std::pair<std::string, const Where*>> seen;
    auto add = [&](const std::string& name, const char* kind, const Where& w) {
      if (name.empty()) return;
      auto [it, inserted] = seen.emplace(name, std::make_pair(std::string(kind), &w));
      if (!inserted) {
        const Where& first = *it->second.second;
        Error(w, fmt::format("{} `{}`", kind, name),
              fmt::format("{} name `{}` is already used by the {} defined at {}:{}:{}", kind,
                          name, it->second.first, first.file, first.mark.line, first.mark.col),
              "names of collections, materialization targets, materializations and captures "
              "are unique across the catalog");
      }
    };
    for (const auto& c : cat_.collections) add(c.name, "collection", c.where);
    // Transform names are scoped to their derivation, and compared there without regard to
    // case (as Flow did): two derivations may each have a transform `fromOrders`.
    for (const auto& c : cat_.collections) {
      if (!c.derivation) continue;
      std::map<std::string, const TransformSpec*> transforms;
      for (const auto& t : c.derivation->transforms) {
        auto [it, inserted] = transforms.emplace(AsciiLower(t.name), &t);
        if (inserted) continue;
        const TransformSpec& first = *it->second;
        Error(t.where, fmt::format("transform `{}` of derivation `{}`", t.name, c.name),
              fmt::format("transform name `{}` is already used by transform `{}` of the same "
                          "derivation, defined at {}:{}:{}",
                          t.name, first.name, first.where.file, first.where.mark.line,
                          first.where.mark.col),
              "transform names differ within a derivation, ignoring case; other derivations "
              "may reuse them");
      }
    }
    for (const auto& t : cat_.targets) {
      // An inline target is named like its materialization, whose name is checked.
      if (!t.is_inline) add(t.name, "materialization target", t.where);
    }
    for (const auto& m : cat_.materializations) add(m.name, "materialization", m.where);
    for (const auto& c : cat_.captures) add(c.name, "capture", c.where);
    std::map<std::string, const Where*> tests;
    for (const auto& t : cat_.tests) {
      auto [it, inserted] = tests.emplace(t.name, &t.where);
      if (!inserted) {
        Error(t.where, fmt::format("test `{}`", t.name),
              fmt::format("test `{}` is already defined at {}:{}:{}", t.name, it->second->file,
                          it->second->mark.line, it->second->mark.col));
      }
    }
  }

  // ---- schemas -----------------------------------------------------------------------
  bool Resolve(const SchemaSpec& s, const std::string& owner, schema::SchemaLoc* loc) {
    if (s.inline_node) {
      *loc = schema::InlineSchemaLoc(s.inline_node, s.where.url, s.where.pointer);
      return true;
    }
    std::string why;
    *loc = index_.ResolveUrl(s.url, &why);
    if (loc->node) return true;
    std::string res, frag;
    SplitFragment(s.url, &res, &frag);
    if (index_.Known(res)) {  // unreadable files were reported when loading
      std::string hint;
      if (!frag.empty() && frag[0] != '/' && frag.find('/') != std::string::npos) {
        hint = "JSON pointers start with / (write `#/" + frag + "`)";
      }
      Error(s.where, owner, fmt::format("schema `{}` resolves to nothing: {}", DisplayName(s.url), why),
            hint);
    }
    return false;
  }

  // The canonical URL of a resolved schema: an inline schema's own URL, or the file's
  // URL with the JSON pointer of the schema within it.
  static std::string SchemaUrl(const SchemaSpec& s, const schema::SchemaLoc& loc) {
    return s.inline_node ? s.url : loc.Id();
  }

  // ---- collections -------------------------------------------------------------------
  void CheckKeyLike(const BuiltCollection& bc, const std::string& ptr, const Where& w,
                    const std::string& owner, const std::string& what) {
    std::string why;
    auto p = doc::Pointer::Parse(ptr, &why);  // parsed already: it is valid
    auto at = schema::ShapeAt(bc.shape, *p);
    if (!at.shape) {
      Error(w, owner, fmt::format("{} location `{}` is not allowed by the schema", what, ptr));
      return;
    }
    if (!at.must_exist) {
      std::string parent = p->Parent().ToString();
      Error(w, owner,
            fmt::format("{} location `{}` may not exist in every document", what, ptr),
            fmt::format("list `{}` in `required` of {}{}", p->tokens().back(),
                        parent.empty() ? "the root schema" : "the schema of " + parent,
                        p->tokens().size() > 1 ? " and of every enclosing object" : ""));
    }
    uint8_t t = at.shape->types;
    if (t != schema::kString && t != schema::kInteger && t != schema::kBoolean) {
      Error(w, owner,
            fmt::format("{} location `{}` must have exactly one type of string, integer or "
                        "boolean, but it may be {}",
                        what, ptr, schema::TypesToString(t)),
            t == (schema::kInteger | schema::kNumber) ? "numbers cannot be keys; use `type: integer`"
            : (t & schema::kNull) ? "keys cannot be null; remove `null` from its type"
                                  : "declare a single `type` at this location");
    }
    if (at.shape->reduce && at.shape->reduce->strategy != "lastWriteWins") {
      Error(w, owner,
            fmt::format("{} location `{}` may not be reduced with `{}`", what, ptr,
                        at.shape->reduce->strategy),
            "keys only take `lastWriteWins`; remove the `reduce` annotation");
    } else if (at.shape->reduce_conflict) {
      Error(w, owner, fmt::format("{} location `{}` has different reductions in different schema "
                                  "branches", what, ptr),
            "keys only take `lastWriteWins`");
    }
  }

  void CheckCollection(const CollectionSpec& c) {
    if (c.name.empty() || !c.schema.present) return;
    std::string owner = fmt::format("collection `{}`", c.name);
    if (out_->by_name.count(c.name)) return;  // duplicate: reported by CheckNames
    schema::SchemaLoc loc;
    if (!Resolve(c.schema, owner, &loc)) return;
    BuiltCollection bc;
    bc.spec = &c;
    bc.schema_url = SchemaUrl(c.schema, loc);
    bc.shape = schema::InferShape(index_, loc, diags_);
    schema::InspectReductions(index_, loc, bc.shape, owner, diags_);
    bc.bundle = doc::JsonText(schema::BundleSchema(index_, loc));
    bc.locations = schema::EnumerateLocations(bc.shape);
    if (!(bc.shape->types & schema::kObject)) {
      Error(c.schema.where, owner,
            fmt::format("a collection schema must describe objects, but it allows {}",
                        schema::TypesToString(bc.shape->types)),
            "add `type: object`");
    }
    for (size_t i = 0; i < c.key.size(); ++i) {
      CheckKeyLike(bc, c.key[i], c.key_where[i], owner, "key");
    }
    // Projections: defaults first, then user projections (which win on the same name).
    std::map<std::string, BuiltProjection> fields;
    for (const auto& l : bc.locations) {
      std::string type;
      if (l.pointer.empty() || !schema::SingleScalarType(l.shape->types, &type)) continue;
      std::string ptr = l.pointer.ToString();
      BuiltProjection p;
      p.field = ptr.substr(1);
      p.location = ptr;
      p.shape = l.shape;
      p.must_exist = l.must_exist;
      fields[p.field] = p;
    }
    std::set<std::string> user_fields;
    for (const auto& up : c.projections) {
      if (!user_fields.insert(up.field).second) continue;  // YAML rejects duplicate keys
      std::string why;
      auto ptr = doc::Pointer::Parse(up.location, &why);
      auto at = schema::ShapeAt(bc.shape, *ptr);
      if (!at.shape) {
        Error(up.where, owner,
              fmt::format("projection `{}` points at `{}`, which the schema does not allow",
                          up.field, up.location));
        continue;
      }
      BuiltProjection p;
      p.field = up.field;
      p.location = up.location;
      p.user = true;
      p.partition = up.partition;
      p.shape = at.shape;
      p.must_exist = at.must_exist;
      if (up.partition) {
        CheckKeyLike(bc, up.location, up.where, owner, fmt::format("partition `{}`", up.field));
      }
      fields[p.field] = p;
    }
    fields["flow_document"] = BuiltProjection{"flow_document", "", false, false, false, bc.shape, true};
    // Key fields: the user projection of each key location if there is one, else the default.
    for (const auto& k : c.key) {
      std::string chosen;
      for (const auto& up : c.projections) {
        if (up.location == k && fields.count(up.field)) {
          chosen = up.field;
          break;
        }
      }
      if (chosen.empty()) {
        chosen = k.substr(1);
        if (!fields.count(chosen)) {
          // A key inside a location that is not projected by default.
          std::string why;
          auto ptr = doc::Pointer::Parse(k, &why);
          auto at = schema::ShapeAt(bc.shape, *ptr);
          fields[chosen] = BuiltProjection{chosen, k, false, false, false, at.shape, at.must_exist};
        }
      }
      fields[chosen].key = true;
      bc.key_fields.push_back(chosen);
    }
    for (auto& [name, p] : fields) bc.projections.push_back(std::move(p));
    out_->by_name[c.name] = out_->collections.size();
    out_->collections.push_back(std::move(bc));
  }

  // ---- derivations -------------------------------------------------------------------
  std::shared_ptr<schema::Validator> Compile(const std::string& bundle) {
    auto it = validators_.find(bundle);
    if (it != validators_.end()) return it->second;
    rapidjson::Document d;
    d.Parse(bundle.c_str(), bundle.size());
    auto v = schema::Validator::Compile(d);
    std::shared_ptr<schema::Validator> out = v ? v.value() : nullptr;
    if (!v) compile_errors_[bundle] = v.error().message;
    validators_[bundle] = out;
    return out;
  }

  // Validates `doc` against `bundle`; returns "" or the formatted errors, and sets
  // `*at` (when given) to the document location of the first error.
  std::string Validate(const std::string& bundle, const doc::Node& n, std::string* at = nullptr) {
    auto v = Compile(bundle);
    if (!v) return compile_errors_[bundle];
    rapidjson::Document d;
    n.ToJson(&d, d.GetAllocator());
    auto errors = v->Validate(d, d.GetAllocator());
    if (errors.empty()) return "";
    if (at) *at = schema::MostSpecific(errors).front().pointer;
    return schema::FormatValidationErrors(errors, d);
  }

  // The source position of byte `offset` of a scalar's value, for a single-line scalar or
  // a block scalar (`|`/`>`); other multi-line forms fall back to the scalar's start.
  Mark LocateInScalar(const Where& w, const std::string& value, size_t offset) {
    const SourceFile* f = cat_.File(w.url);
    if (!f || w.mark.line == 0) return w.mark;
    const std::string& text = f->content;
    size_t at = LineOffset(text, w.mark.line) + w.mark.col - 1;
    if (at >= text.size()) return w.mark;
    size_t body_line = std::count(value.begin(), value.begin() + offset, '\n');
    size_t body_line_start = value.rfind('\n', offset == 0 ? 0 : offset - 1);
    body_line_start = (body_line_start == std::string::npos || offset == 0) ? 0 : body_line_start + 1;
    size_t col_in_body = offset - body_line_start;
    char c = text[at];
    if (c == '|' || c == '>') {
      // Find the source line holding this body line and its indentation.
      size_t line_start = text.find('\n', at);
      for (size_t k = 0; k < body_line && line_start != std::string::npos; ++k) {
        line_start = text.find('\n', line_start + 1);
      }
      if (line_start == std::string::npos) return w.mark;
      ++line_start;
      size_t src_indent = 0;
      while (line_start + src_indent < text.size() && text[line_start + src_indent] == ' ') ++src_indent;
      size_t body_indent = 0;
      while (body_line_start + body_indent < value.size() && value[body_line_start + body_indent] == ' ') {
        ++body_indent;
      }
      size_t indent = src_indent >= body_indent ? src_indent - body_indent : 0;
      return Mark{static_cast<uint32_t>(w.mark.line + 1 + body_line),
                  static_cast<uint32_t>(indent + col_in_body + 1)};
    }
    if (body_line > 0) return w.mark;
    uint32_t quote = (c == '"' || c == '\'') ? 1 : 0;
    return Mark{w.mark.line, static_cast<uint32_t>(w.mark.col + quote + offset)};
  }

  // `shared`: the derivation's database with its sqlite bootstraps applied (null: none).
  // The rules are lambda/sqlite.h's; an empty query, duplicate column names and unknown
  // parameters are reported when the task starts.
  void CheckSqlite(const LambdaSpec& l, const std::string& owner, lambda::SqliteDatabase* shared) {
    std::shared_ptr<lambda::SqliteDatabase> own;
    if (!shared) {
      auto opened = lambda::SqliteDatabase::Open();
      if (!opened) return;
      own = opened.value();
      shared = own.get();
    }
    lambda::QueryProblem p = shared->CheckQuery(l.body);
    using Kind = lambda::QueryProblem::Kind;
    if (p.kind == Kind::kDoesNotCompile) {
      Where at = l.where;
      if (p.offset >= 0 && static_cast<size_t>(p.offset) <= l.body.size()) {
        at.mark = LocateInScalar(l.where, l.body, static_cast<size_t>(p.offset));
      }
      Error(at, owner, fmt::format("sqlite lambda does not compile: {}", p.detail));
    } else if (p.kind == Kind::kNoColumns) {
      Error(l.where, owner, "sqlite lambda returns no columns",
            "write a SELECT whose rows are the output documents");
    } else if (p.kind == Kind::kMoreThanOneStatement) {
      Error(l.where, owner, "sqlite lambda holds more than one statement",
            "a lambda is a single SELECT");
    }
  }

  // A database for the sqlite lambdas of derivation `d`, on which its sqlite bootstraps ran
  // (so that lambdas may read the tables they create), as they will when the task starts,
  // each bounded by its lambda timeout; null when it has none. A bootstrap that fails is an
  // error at the bootstrap.
  std::shared_ptr<lambda::SqliteDatabase> SqliteBootstraps(const DerivationSpec& d,
                                                           const std::string& owner) {
    std::shared_ptr<lambda::SqliteDatabase> db;
    for (const auto& l : d.bootstrap) {
      if (l.kind != LambdaSpec::Kind::kSqlite) continue;
      if (!db) {
        auto opened = lambda::SqliteDatabase::Open();
        if (!opened) return nullptr;
        db = opened.value();
      }
      lambda::ExecFailure failure;
      if (db->Exec(l.body, std::chrono::seconds(d.BootstrapTimeoutSeconds()), &failure)) continue;
      Where where = l.where;
      if (failure.offset < l.body.size())
        where.mark = LocateInScalar(l.where, l.body, failure.offset);
      std::string why =
          failure.timed_out
              ? fmt::format(
                    "it did not finish within {} s (the lambda timeout; set `lambdaTimeout` "
                    "to allow longer)",
                    d.BootstrapTimeoutSeconds())
              : failure.message;
      Error(where, owner, fmt::format("sqlite bootstrap fails: {}", why));
    }
    return db;
  }

  // Files reachable from `url` through imports (including itself).
  const std::set<std::string>& Reachable(const std::string& url) {
    auto it = reachable_.find(url);
    if (it != reachable_.end()) return it->second;
    std::set<std::string> seen{url};
    std::vector<std::string> stack{url};
    while (!stack.empty()) {
      std::string u = stack.back();
      stack.pop_back();
      if (const SourceFile* f = cat_.File(u)) {
        for (const auto& i : f->imports) {
          if (seen.insert(i).second) stack.push_back(i);
        }
      }
    }
    return reachable_[url] = std::move(seen);
  }

  void CheckDerivation(const CollectionSpec& c) {
    const DerivationSpec& d = *c.derivation;
    std::string owner = fmt::format("derivation `{}`", c.name);
    BuiltDerivation bd;
    bd.collection = &c;
    // Register.
    schema::SchemaLoc rloc;
    static const doc::Node kAnySchema = doc::Node::Bool(true, {});
    bool have_register = true;
    if (d.register_schema.present) {
      have_register = Resolve(d.register_schema, owner, &rloc);
    } else {
      rloc = schema::SchemaLoc{&kAnySchema, "flowctl:default-register", "", "flowctl:default-register"};
    }
    if (have_register) {
      bd.register_schema_url = d.register_schema.present ? SchemaUrl(d.register_schema, rloc) : "";
      bd.register_shape = schema::InferShape(index_, rloc, diags_);
      schema::InspectReductions(index_, rloc, bd.register_shape, owner + " register", diags_);
      bd.register_bundle = doc::JsonText(schema::BundleSchema(index_, rloc));
      static const doc::Node kNull = doc::Node::Null({});
      const doc::Node& initial = d.register_initial ? *d.register_initial : kNull;
      bd.register_initial = initial.ToJsonText();
      std::string err = d.register_malformed ? "" : Validate(bd.register_bundle, initial);
      if (!err.empty()) {
        Where w = d.register_initial ? d.initial_where : d.register_schema.where;
        Error(w, owner,
              fmt::format("register `initial` {} does not validate against the register schema: {}",
                          Truncate(initial.ToJsonText(), 80), err),
              d.register_initial ? "" : "without `initial` the register starts as null; "
                                        "declare an `initial` value");
      }
    }
    auto sqlite = SqliteBootstraps(d, owner);
    // Transforms.
    // Per transform, the types of its shuffle locations (empty when they are unknown).
    std::vector<std::vector<uint8_t>> shuffle_types;
    for (const auto& t : d.transforms) {
      std::string towner = fmt::format("transform `{}` of `{}`", t.name, c.name);
      BuiltTransform bt;
      bt.spec = &t;
      const BuiltCollection* src = t.source.empty() ? nullptr
                                                    : Need(t.source, t.source_where, towner, "source collection");
      if (src && !Reachable(t.where.url).count(src->spec->where.url)) {
        Error(t.source_where, towner,
              fmt::format("source collection `{}` is defined in {}, which {} does not import",
                          t.source, src->spec->where.file, t.where.file),
              fmt::format("add `{}` to the `import` list of {}", src->spec->where.file, t.where.file));
      }
      ShapePtr source_shape = src ? src->shape : nullptr;
      if (t.source_schema.present) {
        schema::SchemaLoc sloc;
        if (Resolve(t.source_schema, towner, &sloc)) {
          bt.source_schema_url = SchemaUrl(t.source_schema, sloc);
          source_shape = schema::InferShape(index_, sloc, diags_);
          bt.source_schema_bundle = doc::JsonText(schema::BundleSchema(index_, sloc));
        } else {
          source_shape = nullptr;
        }
      }
      if (src && t.partitions.present) CheckSelector(*src, t.partitions, towner);
      if (CheckDeadLetters(t.dead_letters, t.dead_letters_where, towner,
                           DeadLetterUser{c.name, "derivation", t.name, t.source, c.name})) {
        bt.dead_letters = t.dead_letters;
      }
      for (const auto* l : {&t.update, &t.publish}) {
        if (*l && (*l)->kind == LambdaSpec::Kind::kSqlite) CheckSqlite(**l, towner, sqlite.get());
      }
      // Shuffle: explicit pointers, or the source's key.
      std::vector<Where> where = t.shuffle_where;
      if (t.has_shuffle) {
        bt.shuffle = t.shuffle;
      } else if (src) {
        bt.shuffle = src->spec->key;
        where.assign(bt.shuffle.size(), t.where);
      }
      std::vector<uint8_t> types;
      bool ok = source_shape && !bt.shuffle.empty() && where.size() == bt.shuffle.size();
      for (size_t i = 0; ok && i < bt.shuffle.size(); ++i) {
        std::string why;
        auto p = doc::Pointer::Parse(bt.shuffle[i], &why);
        auto at = schema::ShapeAt(source_shape, *p);
        if (!at.shape || !at.declared) {
          Error(where[i], towner,
                fmt::format("shuffle location `{}` does not exist in the source schema",
                            bt.shuffle[i]),
                "declare it under `properties` of the source schema");
          ok = false;
          break;
        }
        types.push_back(at.shape->types);
      }
      bd.transforms.push_back(std::move(bt));
      shuffle_types.push_back(ok ? types : std::vector<uint8_t>{});
    }
    // All transforms shuffle on keys of one length and compatible types.
    const std::vector<uint8_t>* first = nullptr;
    const TransformSpec* first_t = nullptr;
    for (size_t i = 0; i < bd.transforms.size(); ++i) {
      const auto& types = shuffle_types[i];
      if (types.empty()) continue;
      const TransformSpec& t = *bd.transforms[i].spec;
      if (!first) {
        first = &types;
        first_t = &t;
        continue;
      }
      Where w = t.has_shuffle ? t.shuffle_list_where : t.where;
      std::string towner = fmt::format("transform `{}` of `{}`", t.name, c.name);
      if (types.size() != first->size()) {
        Error(w, towner,
              fmt::format("transform `{}` shuffles on {} location(s) but transform `{}` shuffles "
                          "on {}",
                          t.name, types.size(), first_t->name, first->size()),
              "every transform of a derivation shuffles on keys of the same length");
        continue;
      }
      for (size_t k = 0; k < types.size(); ++k) {
        auto norm = [](uint8_t x) -> uint8_t {
          x &= ~schema::kNull;
          if (x & (schema::kInteger | schema::kNumber)) x = (x & ~(schema::kInteger | schema::kNumber)) | schema::kInteger;
          return x;
        };
        if (norm(types[k]) != norm((*first)[k])) {
          Error(w, towner,
                fmt::format("shuffle key component {} of transform `{}` may be {}, but for "
                            "transform `{}` it is {}",
                            k, t.name, schema::TypesToString(types[k]), first_t->name,
                            schema::TypesToString((*first)[k])),
                "transforms that share registers must shuffle on keys of compatible types");
        }
      }
    }
    out_->derivations.push_back(std::move(bd));
  }

  void CheckSelector(const BuiltCollection& c, const PartitionSelectorSpec& sel,
                     const std::string& owner) {
    std::vector<std::string> partitions;
    for (const auto& p : c.projections) {
      if (p.partition) partitions.push_back(p.field);
    }
    for (const auto* terms : {&sel.include, &sel.exclude}) {
      for (const auto& t : *terms) {
        const BuiltProjection* p = c.Field(t.field);
        if (!p || !p->partition) {
          std::string hint = DidYouMean(t.field, partitions);
          if (hint.empty()) {
            hint = partitions.empty()
                       ? fmt::format("`{}` has no partitions", c.spec->name)
                       : fmt::format("its partitions are: {}", fmt::join(partitions, ", "));
          }
          Error(t.where, owner,
                fmt::format("`{}` is not a partition of collection `{}`", t.field, c.spec->name),
                hint);
          continue;
        }
        for (const doc::Node* v : t.values) {
          uint8_t want = p->shape ? p->shape->types : static_cast<uint8_t>(schema::kAnyType);
          uint8_t have = v->is_string() ? schema::kString
                         : v->is_bool() ? schema::kBoolean
                         : v->is_int()  ? schema::kInteger
                                        : 0;
          if (!(want & have)) {
            Error(Where{t.where.url, t.where.file, v->mark(), t.where.pointer}, owner,
                  fmt::format("partition `{}` holds {} values, but {} is {}", t.field,
                              schema::TypesToString(want), v->ToJsonText(), v->TypeName()));
          }
        }
      }
    }
  }

  void CheckCycles() {
    // Edges: derived collection -> source collections.
    std::map<std::string, std::vector<std::pair<std::string, const TransformSpec*>>> edges;
    for (const auto& c : cat_.collections) {
      if (!c.derivation) continue;
      for (const auto& t : c.derivation->transforms) edges[c.name].emplace_back(t.source, &t);
    }
    std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
    std::vector<std::string> path;
    std::set<std::string> reported;
    std::function<void(const std::string&)> visit = [&](const std::string& n) {
      state[n] = 1;
      path.push_back(n);
      for (const auto& [src, t] : edges[n]) {
        if (state[src] == 1) {
          auto it = std::find(path.begin(), path.end(), src);
          std::vector<std::string> cycle(it, path.end());
          std::string key = *std::min_element(cycle.begin(), cycle.end());
          if (reported.insert(key).second) {
            std::string desc;
            for (const auto& x : cycle) desc += "`" + x + "` <- ";
            desc += "`" + src + "`";
            Error(t->source_where, fmt::format("transform `{}` of `{}`", t->name, n),
                  fmt::format("derivation cycle: {}", desc),
                  "a derivation may not read (directly or indirectly) from itself");
          }
        } else if (state[src] == 0) {
          visit(src);
        }
      }
      path.pop_back();
      state[n] = 2;
    };
    for (const auto& [n, _] : edges) {
      if (state[n] == 0) visit(n);
    }
  }

  // ---- materializations --------------------------------------------------------------
  void CheckMaterializations() {
    // Inline targets (SPEC 1.7) belong to their own materialization: `target:` names only
    // those declared under `materializationTargets`.
    std::vector<std::string> target_names;
    for (const auto& t : cat_.targets) {
      if (!t.is_inline) target_names.push_back(t.name);
    }
    // Tables by database: two targets (inline ones, typically) may name one database file.
    std::map<std::tuple<std::string, std::string, std::string>, const Where*> tables;
    for (const auto& m : cat_.materializations) {
      std::string owner = fmt::format("materialization `{}`", m.name);
      const TargetSpec* target = nullptr;
      for (const auto& t : cat_.targets) {
        if (t.name == m.target && t.is_inline == m.is_inline) target = &t;
      }
      if (!m.target.empty() && !target) {
        std::string hint = DidYouMean(m.target, target_names);
        Error(m.target_where, owner,
              fmt::format("materialization target `{}` does not exist", m.target),
              hint.empty() ? "declare it under `materializationTargets`" : hint);
      }
      auto& bindings = out_->bindings[m.name];
      for (const auto& b : m.bindings) {
        if (b.source.empty()) continue;
        const BuiltCollection* c = Need(b.source, b.source_where, owner, "source collection");
        if (target && !b.table.empty()) {
          // A malformed target has no address: its tables are told apart by its name.
          std::string db = target->address.empty() ? "\n" + target->name : target->address;
          auto [it, inserted] = tables.emplace(std::make_tuple(target->kind, db, b.table), &b.table_where);
          if (!inserted) {
            Error(b.table_where, owner,
                  fmt::format("table `{}` of {} is already materialized at {}:{}:{}", b.table,
                              target->is_inline ? fmt::format("{} database `{}`", target->kind, target->written)
                                                : fmt::format("target `{}`", target->name),
                              it->second->file, it->second->mark.line, it->second->mark.col),
                  "each table holds exactly one collection");
          }
        }
        bool dead_letters =
            CheckDeadLetters(b.dead_letters, b.dead_letters_where, owner,
                             DeadLetterUser{m.name, "materialization", b.table, b.source, ""});
        if (!c) continue;
        bindings.push_back(
            BuiltBinding{&b,
                         SelectFields(*c, b,
                                      [&](const Where& w, const std::string& msg,
                                          const std::string& hint) { Error(w, owner, msg, hint); }),
                         dead_letters ? b.dead_letters : std::string()});
      }
    }
  }

  // ---- dead letters ------------------------------------------------------------------
  // A transform or binding that names `deadLetters`: what its dead letters say of it
  // (runtime/dead_letter.h), and the collections it may not name.
  struct DeadLetterUser {
    std::string task;       // the derivation's collection, or the materialization
    std::string task_kind;  // "derivation" or "materialization"
    std::string binding;    // the transform, or the table
    std::string source;     // its source collection
    std::string own;        // the derivation's collection; empty for a materialization
  };

  // Checks `name`, the dead-letter collection of `user` written at `w` (SPEC 9): it exists,
  // is captured, is neither the source nor the derivation's own collection, and takes a dead
  // letter as runtime/dead_letter.h writes it, key included. False when `name` is empty or
  // the collection is unusable (reported, unless its own checks failed).
  bool CheckDeadLetters(const std::string& name, const Where& w, const std::string& owner,
                        const DeadLetterUser& user) {
    if (name.empty()) return false;
    const BuiltCollection* c = out_->Collection(name);
    if (!c) {
      if (cat_.Collection(name)) return false;  // exists but failed its own checks
      std::string hint = DidYouMean(name, CollectionNames());
      Error(w, owner, fmt::format("dead-letter collection `{}` does not exist", name),
            hint.empty() ? "declare it under `collections`; " + std::string(kDeadLetterCollection)
                         : hint);
      return false;
    }
    const char* what = user.own.empty() ? "binding" : "transform";
    if (name == user.source) {
      Error(w, owner,
            fmt::format("dead-letter collection `{}` is the source collection of this {}", name,
                        what),
            "its dead letters would be read back as source documents; send them to a "
            "collection of their own (docs/reference/dead-letters.md recommends one)");
      return false;
    }
    if (name == user.own || c->spec->derivation) {
      Error(
          w, owner,
          name == user.own
              ? fmt::format("dead-letter collection `{}` is this derivation's own collection", name)
              : fmt::format("dead-letter collection `{}` is a derived collection", name),
          "a derivation owns its collection's writes; send dead letters to a captured collection "
          "(docs/reference/dead-letters.md recommends one)");
      return false;
    }
    // A sample dead letter, shaped as AppendDeadLetter writes one, with this user's values
    // and a realistic error and document: a document as stored (with its `_meta`) and an
    // error of the runtime's shape and length, so that a schema that refuses every real dead
    // letter (`additionalProperties: false` or `maxProperties: 0` on `document`, a short
    // `maxLength` on `error`) fails here rather than halting the task at its first one.
    std::string journal = user.source + "/pivot=00";
    std::string error =
        user.own.empty()
            ? fmt::format(
                  "materialization `{}`, table `{}`: collection `{}`, key [1] (its last document "
                  "read: offset 0 of journal {}): cannot reduce into the stored document: sum at "
                  "/total: cannot sum a string; left 12.5, right \"12.50\"",
                  user.task, user.binding, user.source, journal)
            : fmt::format(
                  "derivation `{}`, transform `{}`: the document at offset 0 of journal {} does "
                  "not validate against the transform's source schema: at /total (value "
                  "\"12.50\"): value type not permitted by 'type' constraint (expected "
                  "\"number\") [`type`]",
                  user.task, user.binding, journal);
    rapidjson::Document letter(rapidjson::kObjectType);
    auto& a = letter.GetAllocator();
    auto str = [&](const std::string& s) {
      return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
    };
    letter.AddMember("task", str(user.task), a);
    letter.AddMember("taskKind", str(user.task_kind), a);
    letter.AddMember("binding", str(user.binding), a);
    letter.AddMember("collection", str(user.source), a);
    letter.AddMember("journal", str(journal), a);
    letter.AddMember("offset", rapidjson::Value(uint64_t{0}), a);
    letter.AddMember("error", str(error), a);
    rapidjson::Value meta(rapidjson::kObjectType);
    meta.AddMember("uuid", str(SampleUuid()), a);
    rapidjson::Value document(rapidjson::kObjectType);
    document.AddMember("_meta", meta, a);
    letter.AddMember("document", document, a);
    auto v = Compile(c->bundle);
    if (!v) return false;  // a schema that does not compile is reported where it is written
    if (auto errors = v->Validate(letter, a); !errors.empty()) {
      // Say what real dead letters hold where the sample's realistic parts are refused.
      std::string hint;
      auto at = [&](const char* prefix) {
        return std::any_of(errors.begin(), errors.end(), [&](const schema::ValidationError& e) {
          return e.pointer == prefix || e.pointer.rfind(std::string(prefix) + "/", 0) == 0;
        });
      };
      if (at("/document")) {
        hint +=
            "a dead letter's `document` is a document as its source collection stores it, "
            "`_meta` (its UUID) included; ";
      }
      if (at("/error")) {
        hint +=
            "a dead letter's `error` is the error the task would have halted with: it names "
            "the task, the journal and the offset, and often runs to hundreds of "
            "characters; ";
      }
      Error(w, owner,
            fmt::format("dead-letter collection `{}` does not accept a dead letter: {}", name,
                        schema::FormatValidationErrors(errors, letter)),
            hint + kDeadLetterCollection);
      return false;
    }
    bool ok = true;
    for (const auto& key : c->spec->key) {
      std::string why;
      auto p = doc::Pointer::Parse(key, &why);
      // `document` is the source's document (or null): no location inside it is in every
      // dead letter, whatever the sample holds.
      bool inside_document = p && p->tokens().size() > 1 && p->tokens()[0] == "document";
      if (p && !inside_document && doc::Lookup(letter, *p)) continue;
      Error(
          w, owner,
          fmt::format("key `{}` of dead-letter collection `{}` is not a location of a dead letter",
                      key, name),
          kDeadLetterCollection);
      ok = false;
    }
    return ok;
  }

  // A document that a chain of tasks carries from a transform or binding with `deadLetters`
  // back to its source can fail at every step and go round forever, each dead letter
  // wrapping the last (so the journals grow quadratically and `run --until-idle` never
  // idles). The graph: collections, with an edge source → derived collection for each
  // transform and source → dead-letter collection for each `deadLetters`. A way back from a
  // dead-letter edge to its source is an error at its `deadLetters` value, with the shortest
  // such cycle; a cycle found again from another of its dead-letter edges is not reported
  // again. Cycles of derivations alone are CheckCycles' business, and a `deadLetters` that
  // names its own source or a derived collection adds no edge (it is reported, once, there).
  void CheckDeadLetterCycles() {
    struct Edge {
      const std::string* from;
      const std::string* to;
      const Where* where;  // its `deadLetters` value; null for a transform's derived collection
      std::string owner;   // the scope of a diagnostic at `where`
      std::string task;    // e.g. "transform `a` of `acme/x`"
      std::string label;   // in a cycle, e.g. "dead letters of `a` of `acme/x`"
      std::string short_label;  // in its own diagnostic, e.g. "dead letters of `a`"
    };
    std::vector<Edge> edges;
    auto captured = [&](const std::string& name) {
      const CollectionSpec* c = cat_.Collection(name);
      return c && !c->derivation;
    };
    for (const auto& c : cat_.collections) {
      if (!c.derivation) continue;
      for (const auto& t : c.derivation->transforms) {
        if (!cat_.Collection(t.source)) continue;
        edges.push_back(
            {&t.source, &c.name, nullptr, "", "", fmt::format("transform `{}`", t.name), ""});
        if (!captured(t.dead_letters) || t.dead_letters == t.source) continue;
        std::string owner = fmt::format("transform `{}` of `{}`", t.name, c.name);
        edges.push_back({&t.source, &t.dead_letters, &t.dead_letters_where, owner, owner,
                         fmt::format("dead letters of `{}` of `{}`", t.name, c.name),
                         fmt::format("dead letters of `{}`", t.name)});
      }
    }
    for (const auto& m : cat_.materializations) {
      for (const auto& b : m.bindings) {
        if (!cat_.Collection(b.source) || !captured(b.dead_letters) || b.dead_letters == b.source) {
          continue;
        }
        edges.push_back({&b.source, &b.dead_letters, &b.dead_letters_where,
                         fmt::format("materialization `{}`", m.name),
                         fmt::format("table `{}` of materialization `{}`", b.table, m.name),
                         fmt::format("dead letters of table `{}` of `{}`", b.table, m.name),
                         fmt::format("dead letters of table `{}`", b.table)});
      }
    }
    std::map<std::string, std::vector<size_t>> out;  // collection → edges from it
    for (size_t i = 0; i < edges.size(); ++i) out[*edges[i].from].push_back(i);
    // For each dead-letter edge, in catalog order, the shortest way back to its source; a
    // cycle found again from another of its dead-letter edges is not reported again.
    std::set<std::vector<size_t>> reported;
    for (size_t e = 0; e < edges.size(); ++e) {
      const Edge& start = edges[e];
      if (!start.where) continue;
      std::map<std::string, size_t> via;  // collection → the edge that reached it first
      std::vector<std::string> queue{*start.to};
      via.emplace(*start.to, e);
      for (size_t q = 0; q < queue.size() && !via.count(*start.from); ++q) {
        for (size_t i : out[queue[q]]) {
          if (via.emplace(*edges[i].to, i).second) queue.push_back(*edges[i].to);
        }
      }
      if (!via.count(*start.from)) continue;
      std::vector<size_t> cycle;  // from `start`, in order
      for (std::string at = *start.from; cycle.empty() || cycle.back() != e;) {
        cycle.push_back(via.at(at));
        at = *edges[cycle.back()].from;
      }
      std::reverse(cycle.begin(), cycle.end());
      std::vector<size_t> key = cycle;
      std::sort(key.begin(), key.end());
      if (!reported.insert(key).second) continue;
      std::string path = *start.from;
      size_t dead_letter_edges = 0;
      for (size_t i : cycle) {
        const Edge& x = edges[i];
        dead_letter_edges += x.where != nullptr;
        path += fmt::format(" → {} ({})", *x.to, i == e ? x.short_label : x.label);
      }
      Error(*start.where, start.owner,
            fmt::format("dead letters of {} would come back to it: {}", start.task, path),
            fmt::format("a document that fails at every step would go round forever, each dead "
                        "letter wrapping the last; send {} to a collection that no transform "
                        "reads and no binding with `deadLetters` reads",
                        dead_letter_edges > 1 ? "the dead letters of one of them" : "them"));
    }
  }

  // ---- captures ----------------------------------------------------------------------
  void CheckCaptures() {
    for (const auto& c : cat_.captures) {
      std::string owner = fmt::format("capture `{}`", c.name);
      for (const auto& b : c.bindings) {
        const BuiltCollection* col = Need(b.target, b.where, owner, "target collection");
        if (col && col->spec->derivation) {
          Error(b.where, owner,
                fmt::format("collection `{}` is derived; only captured collections can be "
                            "captured into", b.target));
        }
      }
    }
  }

  // ---- tests -------------------------------------------------------------------------
  void CheckTests() {
    for (const auto& t : cat_.tests) {
      for (size_t i = 0; i < t.steps.size(); ++i) {
        const TestStepSpec& s = t.steps[i];
        std::string owner = fmt::format("test `{}` step {}", t.name, i);
        if (s.collection.empty()) continue;
        const BuiltCollection* c = Need(s.collection, s.collection_where, owner, "collection");
        if (!c) continue;
        if (s.kind == TestStepSpec::Kind::kIngest && c->spec->derivation) {
          Error(s.collection_where, owner,
                fmt::format("cannot ingest into `{}`: it is a derived collection", s.collection),
                "tests ingest into captured collections and verify derived ones");
          continue;
        }
        if (s.partitions.present) CheckSelector(*c, s.partitions, owner);
        if (!s.documents) continue;
        for (size_t d = 0; d < s.documents->items().size(); ++d) {
          const doc::Node& n = s.documents->items()[d];
          Where w{s.documents_where.url, s.documents_where.file, n.mark(),
                  s.documents_where.pointer + "/" + std::to_string(d)};
          if (s.kind == TestStepSpec::Kind::kVerify) {
            if (!n.is_object()) {
              Error(w, owner, fmt::format("expected document {} must be an object, found {}", d,
                                          n.TypeName()));
            }
            continue;
          }
          std::string at;
          std::string err = Validate(c->bundle, n, &at);
          if (!err.empty()) {
            std::string why;
            if (auto p = doc::Pointer::Parse(at, &why)) {
              if (const doc::Node* bad = n.At(*p)) w.mark = bad->mark();
            }
            Error(w, owner,
                  fmt::format("document {} does not validate against the schema of `{}`: {}", d,
                              s.collection, err));
          }
        }
      }
    }
  }

  const Catalog& cat_;
  const schema::Index& index_;
  Built* out_;
  Diagnostics* diags_;
  std::map<std::string, std::shared_ptr<schema::Validator>> validators_;
  std::map<std::string, std::string> compile_errors_;
  std::map<std::string, std::set<std::string>> reachable_;
};

}  // namespace

const BuiltProjection* BuiltCollection::Field(const std::string& name) const {
  auto it = std::lower_bound(projections.begin(), projections.end(), name,
                             [](const BuiltProjection& p, const std::string& n) { return p.field < n; });
  return it != projections.end() && it->field == name ? &*it : nullptr;
}

const BuiltCollection* Built::Collection(const std::string& name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : &collections[it->second];
}

std::vector<std::string> SelectFields(const BuiltCollection& c, const MaterializationBindingSpec& b,
                                    const FieldError& Error) {
  std::vector<std::string> names;
  for (const auto& p : c.projections) names.push_back(p.field);
  auto known = [&](const std::string& f, const Where& w) {
    if (c.Field(f)) return true;
    // A location of several types has no default projection: say so, not "no field".
    for (const auto& l : c.locations) {
      if (!l.pointer.empty() && l.pointer.ToString() == "/" + f) {
        uint8_t t = l.shape->types & ~schema::kNull;
        if (t == schema::kObject || t == schema::kArray) {
          // Objects and arrays have no default projection, but a user projection of one is
          // a JSON column.
          Error(w,
                fmt::format("collection `{}` has no field `{}`: {} locations are not projected by default", c.spec->name,
                            f, t == schema::kObject ? "object" : "array"),
                fmt::format("add `projections: {{{}: {}}}` to the collection to store it as JSON", f,
                            l.pointer.ToString()));
          return false;
        }
        Error(w,
              fmt::format("field `{}` may be {}, which no single column type can hold", f,
                          schema::TypesToString(l.shape->types)),
              "narrow its schema to one type (null aside), or leave it in flow_document");
        return false;
      }
    }
    Error(w, fmt::format("collection `{}` has no field `{}`", c.spec->name, f),
          DidYouMean(f, names));
    return false;
  };
  std::vector<std::string> out = c.key_fields;
  std::set<std::string> chosen(out.begin(), out.end());
  std::set<std::string> exclude;
  for (size_t i = 0; i < b.fields.exclude.size(); ++i) {
    const auto& f = b.fields.exclude[i];
    if (!known(f, b.fields.exclude_where[i])) continue;
    if (std::find(c.key_fields.begin(), c.key_fields.end(), f) != c.key_fields.end() ||
        f == "flow_document") {
      Error(b.fields.exclude_where[i],
            fmt::format("field `{}` cannot be excluded: {}", f,
                        f == "flow_document" ? "every table stores the whole document"
                                             : "it is part of the collection key"),
            "");
    }
    exclude.insert(f);
  }
  auto several_types = [&](const BuiltProjection& p, std::string* type) {
    return !p.shape || !schema::SingleScalarType(p.shape->types, type);
  };
  if (b.fields.present && !b.fields.include.empty()) {
    for (size_t i = 0; i < b.fields.include.size(); ++i) {
      const auto& f = b.fields.include[i];
      if (!known(f, b.fields.include_where[i]) || f == "flow_document") continue;
      const BuiltProjection& p = *c.Field(f);
      std::string type;
      uint8_t t = p.shape ? p.shape->types & ~schema::kNull : 0;
      bool single = t == schema::kString || t == schema::kInteger || t == schema::kBoolean ||
                    t == (schema::kInteger | schema::kNumber) || t == schema::kNumber ||
                    t == schema::kObject || t == schema::kArray;
      if (!single) {
        Error(b.fields.include_where[i],
              fmt::format("field `{}` may be {}, which no single column type can hold", f,
                          p.shape ? schema::TypesToString(p.shape->types) : "anything"),
              "narrow its schema to one type (null aside), or leave it in flow_document");
        continue;
      }
      if (chosen.insert(f).second) out.push_back(f);
    }
  } else {
    // Defaults: user projections of a single scalar type, and default projections of
    // locations that no user projection names (so a location is one column).
    std::set<std::string> user_locations;
    for (const auto& p : c.projections) {
      if (p.user) user_locations.insert(p.location);
    }
    for (const auto& p : c.projections) {
      std::string type;
      if (p.field == "flow_document" || chosen.count(p.field) || exclude.count(p.field)) continue;
      if (several_types(p, &type)) continue;
      if (!p.user && user_locations.count(p.location)) continue;
      chosen.insert(p.field);
      out.push_back(p.field);
    }
  }
  out.erase(std::remove_if(out.begin(), out.end(),
                           [&](const std::string& f) {
                             return exclude.count(f) && std::find(c.key_fields.begin(),
                                                                  c.key_fields.end(), f) ==
                                                            c.key_fields.end();
                           }),
            out.end());
  out.push_back("flow_document");
  return out;
}


void CheckCatalog(const Loaded& loaded, Built* out, Diagnostics* diags) {
  Checker c(loaded, out, diags);
  c.Run();
}

}  // namespace flow::catalog
