#include "catalog/checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <set>

#include "base/strings.h"
#include "doc/value.h"
#include "schema/bundle.h"
#include "schema/inspect.h"
#include "schema/validator.h"

namespace flow::catalog::checker {

std::shared_ptr<schema::Validator> Checker::Compile(const std::string& bundle) {
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

std::string Checker::Validate(const std::string& bundle, const doc::Node& n, std::string* at) {
  auto v = Compile(bundle);
  if (!v) return compile_errors_[bundle];
  rapidjson::Document d;
  n.ToJson(&d, d.GetAllocator());
  auto errors = v->Validate(d, d.GetAllocator());
  if (errors.empty()) return "";
  if (at) *at = schema::MostSpecific(errors).front().pointer;
  return schema::FormatValidationErrors(errors, d);
}

Mark Checker::LocateInScalar(const Where& w, const std::string& value, size_t offset) {
  return catalog::LocateInScalar(cat_, w, value, offset);
}

}  // namespace flow::catalog::checker

namespace flow::catalog {

Mark LocateInScalar(const Catalog& cat, const Where& w, const std::string& value, size_t offset) {
  const SourceFile* f = cat.File(w.url);
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
    while (line_start + src_indent < text.size() && text[line_start + src_indent] == ' ')
      ++src_indent;
    size_t body_indent = 0;
    while (body_line_start + body_indent < value.size() &&
           value[body_line_start + body_indent] == ' ') {
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

}  // namespace flow::catalog

namespace flow::catalog::checker {

// The rules are lambda/sqlite.h's; an empty query and duplicate column names are reported
// when the task starts.
void Checker::CheckSqlite(const LambdaSpec& l, const std::string& owner,
                          lambda::SqliteDatabase* shared, const BuiltCollection* source,
                          bool update) {
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
  if (p || !source) return;
  std::vector<std::string> fields;
  for (const auto& f : source->projections) fields.push_back(f.field);
  // The parameters that bind, for hints: the documents, then a few projections.
  std::string known = update ? "$source" : "$source, $register, $previous";
  for (size_t i = 0; i < fields.size() && i < 8; ++i) {
    known += ", $" + lambda::ParameterName(fields[i]);
  }
  if (fields.size() > 8) known += fmt::format(" and {} more", fields.size() - 8);
  for (const auto& q : shared->CheckParameters(l.body, fields, update)) {
    Where at = l.where;
    if (q.offset < l.body.size()) at.mark = LocateInScalar(l.where, l.body, q.offset);
    std::string mean = q.suggestion.empty() ? "" : fmt::format("did you mean `{}`? ", q.suggestion);
    using PKind = lambda::ParameterProblem::Kind;
    switch (q.kind) {
      case PKind::kUnknown:
        Error(at, owner,
              fmt::format("sqlite lambda uses parameter `{}`, but source collection `{}` has no "
                          "projection `{}`",
                          q.name, source->spec->name, q.name.substr(1)),
              fmt::format(
                  "{}the parameters are {}; to bind another location, add a projection to `{}`",
                  mean, known, source->spec->name));
        break;
      case PKind::kNotDollar:
        Error(at, owner,
              fmt::format("sqlite lambda uses parameter `{}`, which flowctl does not bind", q.name),
              fmt::format("{}parameters are written `$name`: {}", mean, known));
        break;
      case PKind::kNotInUpdate:
        Error(at, owner,
              fmt::format("sqlite update lambda uses `{}`, which is always NULL there: an update "
                          "lambda sees only its source document",
                          q.name),
              "read the register in the transform's `publish` lambda, which is given `$register` "
              "and `$previous`");
        break;
    }
  }
}

std::shared_ptr<lambda::SqliteDatabase> Checker::SqliteBootstraps(const DerivationSpec& d,
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
    if (failure.offset < l.body.size()) where.mark = LocateInScalar(l.where, l.body, failure.offset);
    std::string why = failure.timed_out
                          ? fmt::format(
                                "it did not finish within {} s (the lambda timeout; set `lambdaTimeout` "
                                "to allow longer)",
                                d.BootstrapTimeoutSeconds())
                          : failure.message;
    Error(where, owner, fmt::format("sqlite bootstrap fails: {}", why));
  }
  return db;
}

const std::set<std::string>& Checker::Reachable(const std::string& url) {
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

// The register of derivation `d`: its schema (or the default, which allows anything), shape,
// reductions and bundle, and its `initial` value validated against it.
void Checker::CheckRegister(const DerivationSpec& d, const std::string& owner,
                            BuiltDerivation* out) {
  BuiltDerivation& bd = *out;
  schema::SchemaLoc rloc;
  static const doc::Node kAnySchema = doc::Node::Bool(true, {});
  bool have_register = true;
  if (d.register_schema.present) {
    have_register = Resolve(d.register_schema, owner, &rloc);
  } else {
    rloc =
        schema::SchemaLoc{&kAnySchema, "flowctl:default-register", "", "flowctl:default-register"};
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
            d.register_initial ? ""
                               : "without `initial` the register starts as null; "
                                 "declare an `initial` value");
    }
  }
}

// All transforms of derivation `c` shuffle on keys of one length and compatible types;
// `shuffle_types` holds, per transform, the types of its shuffle locations (empty when they
// are unknown).
void Checker::CheckShuffleTypes(const CollectionSpec& c, const BuiltDerivation& bd,
                                const std::vector<std::vector<uint8_t>>& shuffle_types) {
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
        if (x & (schema::kInteger | schema::kNumber))
          x = (x & ~(schema::kInteger | schema::kNumber)) | schema::kInteger;
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
}

void Checker::CheckDerivation(const CollectionSpec& c) {
  const DerivationSpec& d = *c.derivation;
  std::string owner = fmt::format("derivation `{}`", c.name);
  BuiltDerivation bd;
  bd.collection = &c;
  CheckRegister(d, owner, &bd);
  auto sqlite = SqliteBootstraps(d, owner);
  // Transforms.
  // Per transform, the types of its shuffle locations (empty when they are unknown).
  std::vector<std::vector<uint8_t>> shuffle_types;
  for (const auto& t : d.transforms) {
    std::string towner = fmt::format("transform `{}` of `{}`", t.name, c.name);
    BuiltTransform bt;
    bt.spec = &t;
    const BuiltCollection* src =
        t.source.empty() ? nullptr : Need(t.source, t.source_where, towner, "source collection");
    if (src && !Reachable(t.where.url).count(src->spec->where.url)) {
      Error(
          t.source_where, towner,
          fmt::format("source collection `{}` is defined in {}, which {} does not import", t.source,
                      src->spec->where.file, t.where.file),
          fmt::format("add `{}` to the `import` list of {}", src->spec->where.file, t.where.file));
    }
    ShapePtr source_shape = src ? src->shape : nullptr;
    if (t.source_schema.present) {
      schema::SchemaLoc sloc;
      if (Resolve(t.source_schema, towner, &sloc)) {
        bt.source_schema_url = SchemaUrl(t.source_schema, sloc);
        source_shape = schema::InferShape(index_, sloc, diags_);
        bt.source_shape = source_shape;
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
      if (*l && (*l)->kind == LambdaSpec::Kind::kSqlite) {
        CheckSqlite(**l, towner, sqlite.get(), src, l == &t.update);
      }
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
        Error(
            where[i], towner,
            fmt::format("shuffle location `{}` does not exist in the source schema", bt.shuffle[i]),
            "declare it under `properties` of the source schema");
        ok = false;
        break;
      }
      types.push_back(at.shape->types);
    }
    bd.transforms.push_back(std::move(bt));
    shuffle_types.push_back(ok ? types : std::vector<uint8_t>{});
  }
  CheckShuffleTypes(c, bd, shuffle_types);
  out_->derivations.push_back(std::move(bd));
}

void Checker::CheckSelector(const BuiltCollection& c, const PartitionSelectorSpec& sel,
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

void Checker::CheckCycles() {
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

}  // namespace flow::catalog::checker
