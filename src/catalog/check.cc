#include "catalog/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "base/strings.h"
#include "base/url.h"
#include "catalog/checker.h"
#include "doc/value.h"
#include "schema/bundle.h"
#include "schema/inspect.h"

namespace flow::catalog::checker {
namespace {

std::string Scope(const std::string& owner, const Where& w) {
  return fmt::format("{} at {}", owner, w.pointer.empty() ? "/" : w.pointer);
}

}  // namespace

void Checker::Run() {
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

void Checker::Error(const Where& w, const std::string& owner, std::string msg, std::string hint) {
  diags_->Error(w.file, w.mark, std::move(msg), Scope(owner, w), std::move(hint));
}

std::vector<std::string> Checker::CollectionNames() const {
  std::vector<std::string> v;
  for (const auto& c : cat_.collections) v.push_back(c.name);
  return v;
}

const BuiltCollection* Checker::Need(const std::string& name, const Where& w,
                                     const std::string& owner, const char* role) {
  if (const BuiltCollection* c = out_->Collection(name)) return c;
  if (cat_.Collection(name)) return nullptr;  // exists but failed its own checks
  Error(w, owner, fmt::format("{} `{}` does not exist", role, name),
        DidYouMean(name, CollectionNames()));
  return nullptr;
}

void Checker::CheckNames() {
  std::map<std::string, std::pair<std::string, const Where*>> seen;
  auto add = [&](const std::string& name, const char* kind, const Where& w) {
    if (name.empty()) return;
    auto [it, inserted] = seen.emplace(name, std::make_pair(std::string(kind), &w));
    if (!inserted) {
      const Where& first = *it->second.second;
      Error(w, fmt::format("{} `{}`", kind, name),
            fmt::format("{} name `{}` is already used by the {} defined at {}:{}:{}", kind, name,
                        it->second.first, first.file, first.mark.line, first.mark.col),
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

bool Checker::Resolve(const SchemaSpec& s, const std::string& owner, schema::SchemaLoc* loc) {
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
    Error(s.where, owner,
          fmt::format("schema `{}` resolves to nothing: {}", DisplayName(s.url), why), hint);
  }
  return false;
}

std::string Checker::SchemaUrl(const SchemaSpec& s, const schema::SchemaLoc& loc) {
  return s.inline_node ? s.url : loc.Id();
}

void Checker::CheckKeyLike(const BuiltCollection& bc, const std::string& ptr, const Where& w,
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
    Error(w, owner, fmt::format("{} location `{}` may not exist in every document", what, ptr),
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
    Error(w, owner,
          fmt::format("{} location `{}` has different reductions in different schema "
                      "branches",
                      what, ptr),
          "keys only take `lastWriteWins`");
  }
}

void Checker::CheckCollection(const CollectionSpec& c) {
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
            fmt::format("projection `{}` points at `{}`, which the schema does not allow", up.field,
                        up.location));
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
  fields["flow_document"] =
      BuiltProjection{"flow_document", "", false, false, false, bc.shape, true};
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

void Checker::CheckCaptures() {
  for (const auto& c : cat_.captures) {
    std::string owner = fmt::format("capture `{}`", c.name);
    for (const auto& b : c.bindings) {
      const BuiltCollection* col = Need(b.target, b.where, owner, "target collection");
      if (col && col->spec->derivation) {
        Error(b.where, owner,
              fmt::format("collection `{}` is derived; only captured collections can be "
                          "captured into",
                          b.target));
      }
    }
  }
}

void Checker::CheckTests() {
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
            Error(w, owner,
                  fmt::format("expected document {} must be an object, found {}", d, n.TypeName()));
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

}  // namespace flow::catalog::checker

namespace flow::catalog {

const BuiltProjection* BuiltCollection::Field(const std::string& name) const {
  auto it = std::lower_bound(projections.begin(), projections.end(), name,
                             [](const BuiltProjection& p, const std::string& n) { return p.field < n; });
  return it != projections.end() && it->field == name ? &*it : nullptr;
}

const BuiltCollection* Built::Collection(const std::string& name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : &collections[it->second];
}

void CheckCatalog(const Loaded& loaded, Built* out, Diagnostics* diags) {
  checker::Checker c(loaded, out, diags);
  c.Run();
}

}  // namespace flow::catalog
