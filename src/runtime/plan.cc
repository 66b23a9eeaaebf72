#include "runtime/plan.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "lambda/remote.h"
#include "runtime/fingerprint.h"
#include "lambda/sqlite.h"
#include "schema/annotations.h"

namespace flow::runtime {
namespace {

Result<std::shared_ptr<schema::Validator>> CompileValidator(const std::string& bundle_text, const std::string& what,
                                                            std::shared_ptr<const schema::Annotations>* annotations) {
  rapidjson::Document bundle;
  bundle.Parse(bundle_text.c_str());
  if (bundle.HasParseError()) return Error::Internal(fmt::format("{} has a malformed schema bundle", what));
  auto v = schema::Validator::Compile(bundle);
  if (!v) return Error::User(fmt::format("the schema of {} cannot be compiled: {}", what, v.error().message));
  auto a = schema::Annotations::Compile(bundle);
  if (!a) return Error::User(fmt::format("the schema of {} cannot be compiled: {}", what, a.error().message));
  *annotations = a.value();
  return v.value();
}

// The compiled collection `name` of `deadLetters` (checked at build), or null when empty.
Result<std::shared_ptr<const Collection>> DeadLetters(const Plan& plan, const std::string& name,
                                                      const std::string& who) {
  if (name.empty()) return std::shared_ptr<const Collection>();
  auto it = plan.collections.find(name);
  if (it == plan.collections.end()) {
    return Error::Internal(
        fmt::format("{} sends dead letters to unknown collection `{}`", who, name));
  }
  return it->second;
}

// The nodeJS lambdas of one derivation, started in one worker once all are known, and where
// each goes then: a bootstrap, or a transform's update or publish.
struct NodeLambdas {
  struct Slot {
    bool bootstrap = false;
    size_t index = 0;  // into bootstraps or transforms
    bool publish = false;
  };
  std::vector<NodeLambda> lambdas;
  std::vector<Slot> slots;
};

// The bootstraps of derivation `name`. SQLite ones run here once, so that the lambdas
// prepared later on the same database can name the tables they create (the task empties it
// and runs them again when it starts).
Result<bool> CompileBootstraps(const catalog::DerivationSpec& ds, const std::string& name,
                               Derivation* d, NodeLambdas* node) {
  const auto& bootstrap = ds.bootstrap;
  const std::chrono::milliseconds bootstrap_timeout =
      std::chrono::seconds(ds.BootstrapTimeoutSeconds());
  for (size_t i = 0; i < bootstrap.size(); ++i) {
    const catalog::LambdaSpec& spec = bootstrap[i];
    Derivation::Bootstrap b;
    b.kind = catalog::LambdaSpec::KindName(spec.kind);
    switch (spec.kind) {
      case catalog::LambdaSpec::Kind::kSqlite: {
        if (!d->sqlite) {
          auto db = lambda::SqliteDatabase::Open();
          if (!db) return db.error();
          d->sqlite = db.value();
        }
        b.lambda = lambda::SqliteDatabase::Bootstrap(d->sqlite, spec.body, bootstrap_timeout);
        if (auto r = d->sqlite->Exec(spec.body, bootstrap_timeout); !r) {
          return Error{r.error().code,
                       fmt::format("derivation `{}`: bootstrap lambda {} (sqlite) failed: {}", name,
                                   i + 1, r.error().message)};
        }
        break;
      }
      case catalog::LambdaSpec::Kind::kRemote:
        b.lambda = lambda::RemoteLambda::MakeBootstrap(spec.body, bootstrap_timeout);
        break;
      case catalog::LambdaSpec::Kind::kNodeJS:
        node->lambdas.push_back({fmt::format("bootstrap/{}", i), spec.body, false, "",
                                 static_cast<int>(i + 1), bootstrap_timeout});
        node->slots.push_back({true, i, false});
        break;
    }
    d->bootstraps.push_back(std::move(b));
  }
  return true;
}

// Transform `bt` of derivation `name`, appended to `d`; its nodeJS lambdas are left to
// StartNodeLambdas.
Result<bool> CompileTransform(const Plan& plan, const catalog::DerivationSpec& ds,
                              const catalog::BuiltTransform& bt, const std::string& name,
                              Derivation* d, NodeLambdas* node) {
  const catalog::TransformSpec& ts = *bt.spec;
  Transform t;
  t.name = ts.name;
  auto src = plan.collections.find(ts.source);
  if (src == plan.collections.end()) {
    return Error::Internal(fmt::format(
        "derivation `{}`, transform `{}` reads unknown collection `{}`", name, ts.name, ts.source));
  }
  t.source = src->second;
  if (!bt.source_schema_bundle.empty()) {
    auto sv =
        CompileValidator(bt.source_schema_bundle,
                         fmt::format("derivation `{}`, transform `{}`'s source", name, ts.name),
                         &t.source_annotations);
    if (!sv) return sv.error();
    t.source_schema = sv.value();
  }
  for (const auto& p : bt.shuffle) {
    std::string why;
    auto ptr = doc::Pointer::Parse(p, &why);
    if (!ptr)
      return Error::User(fmt::format(
          "derivation `{}`, transform `{}`: malformed shuffle pointer `{}`", name, ts.name, p));
    t.shuffle.push_back(*ptr);
  }
  t.read_delay_seconds = ts.read_delay_seconds;
  auto sel = CompilePartitionFilter(ts.partitions);
  if (!sel) return sel.error();
  t.partitions = std::move(sel.value());
  auto dead_letters = DeadLetters(plan, bt.dead_letters,
                                  fmt::format("derivation `{}`, transform `{}`", name, ts.name));
  if (!dead_letters) return dead_letters.error();
  t.dead_letters = dead_letters.value();

  const std::chrono::milliseconds timeout = std::chrono::seconds(ds.LambdaTimeoutSeconds(ts));
  std::vector<lambda::SourceField> fields;
  for (const auto& f : t.source->fields) fields.push_back({f.field, f.pointer});
  auto make = [&](const catalog::LambdaSpec& spec,
                  bool publish) -> Result<std::shared_ptr<lambda::Lambda>> {
    switch (spec.kind) {
      case catalog::LambdaSpec::Kind::kSqlite: {
        auto l = lambda::SqliteLambda::Compile(spec.body, fields, d->sqlite, timeout);
        if (!l) {
          return Error{l.error().code,
                       fmt::format("derivation `{}`, transform `{}` ({}): {}", name, ts.name,
                                   publish ? "publish" : "update", l.error().message)};
        }
        return std::shared_ptr<lambda::Lambda>(std::move(l.value()));
      }
      case catalog::LambdaSpec::Kind::kRemote:
        return std::shared_ptr<lambda::Lambda>(
            lambda::RemoteLambda::Make(spec.body, publish, timeout));
      case catalog::LambdaSpec::Kind::kNodeJS:
        node->lambdas.push_back({fmt::format("{}/{}", ts.name, publish ? "publish" : "update"),
                                 spec.body, publish, ts.name, 0, timeout});
        node->slots.push_back({false, d->transforms.size(), publish});
        return std::shared_ptr<lambda::Lambda>();  // attached by StartNodeLambdas
    }
    return Error::Internal("unknown lambda kind");
  };
  if (ts.update) {
    auto l = make(*ts.update, false);
    if (!l) return l.error();
    t.update = l.value();
  }
  if (ts.publish) {
    auto l = make(*ts.publish, true);
    if (!l) return l.error();
    t.publish = l.value();
  }
  d->transforms.push_back(std::move(t));
  return true;
}

// Starts derivation `name`'s nodeJS lambdas in one worker and puts each where it goes.
Result<bool> StartNodeLambdas(const std::string& name, const NodeStarter& node,
                              const NodeLambdas& lambdas, Derivation* d) {
  if (!node)
    return Error::Env(
        fmt::format("derivation `{}` has nodeJS lambdas but no Node.js runtime", name));
  auto started = node(name, lambdas.lambdas);
  if (!started) return started.error();
  for (size_t k = 0; k < lambdas.lambdas.size(); ++k) {
    auto it = started->find(lambdas.lambdas[k].id);
    if (it == started->end()) return Error::Internal("a nodeJS lambda was not started");
    const NodeLambdas::Slot& slot = lambdas.slots[k];
    if (slot.bootstrap) {
      d->bootstraps[slot.index].lambda = it->second;
      continue;
    }
    auto& t = d->transforms[slot.index];
    (slot.publish ? t.publish : t.update) = it->second;
  }
  return true;
}

Result<std::shared_ptr<Derivation>> CompileDerivation(const Plan& plan,
                                                      const catalog::BuiltDerivation& bd,
                                                      const NodeStarter& node) {
  const std::string& name = bd.collection->name;
  auto d = std::make_shared<Derivation>();
  d->collection = plan.collections.at(name);
  auto rv =
      CompileValidator(bd.register_bundle, fmt::format("the register of derivation `{}`", name),
                       &d->register_annotations);
  if (!rv) return rv.error();
  d->register_validator = rv.value();
  d->register_reducer = std::make_shared<reduce::Reducer>(d->register_annotations);
  d->register_initial = bd.register_initial.empty() ? "null" : bd.register_initial;

  NodeLambdas node_lambdas;
  const catalog::DerivationSpec& ds = *bd.collection->derivation;
  auto b = CompileBootstraps(ds, name, d.get(), &node_lambdas);
  if (!b) return b.error();
  for (const auto& bt : bd.transforms) {
    auto t = CompileTransform(plan, ds, bt, name, d.get(), &node_lambdas);
    if (!t) return t.error();
  }
  if (!node_lambdas.lambdas.empty()) {
    auto started = StartNodeLambdas(name, node, node_lambdas, d.get());
    if (!started) return started.error();
  }
  return d;
}

// Materialization `ms`; null when the build bound nothing for it.
Result<std::shared_ptr<Materialization>> CompileMaterialization(
    const catalog::Catalog& catalog, const catalog::Built& built, const Plan& plan,
    const catalog::MaterializationSpec& ms) {
  auto m = std::make_shared<Materialization>();
  m->name = ms.name;
  m->target = ms.target;
  for (const auto& t : catalog.targets) {
    if (t.name == ms.target) {
      m->kind = t.kind;
      m->address = t.address;
    }
  }
  auto bindings = built.bindings.find(ms.name);
  if (bindings == built.bindings.end()) return std::shared_ptr<Materialization>();
  for (const auto& b : bindings->second) {
    const catalog::BuiltCollection* c = built.Collection(b.spec->source);
    if (!c)
      return Error::Internal(
          fmt::format("materialization `{}` binds unknown `{}`", ms.name, b.spec->source));
    auto dead_letters =
        DeadLetters(plan, b.dead_letters,
                    fmt::format("materialization `{}`, table `{}`", ms.name, b.spec->table));
    if (!dead_letters) return dead_letters.error();
    m->bindings.push_back({plan.collections.at(b.spec->source),
                           MakeTable(*c, b.spec->table, b.fields, b.spec->delta_updates),
                           dead_letters.value()});
  }
  return m;
}

Result<std::shared_ptr<FileDropCapture>> CompileCapture(const Plan& plan,
                                                        const catalog::CaptureSpec& cs) {
  auto c = std::make_shared<FileDropCapture>();
  c->name = cs.name;
  c->path = cs.path;
  auto format = ParseIngestFormat(cs.format);
  if (cs.kind != "fileDrop" || !format) {
    return Error::Internal(fmt::format("capture `{}` has an unknown endpoint or format", cs.name));
  }
  c->format = *format;
  // Several bindings each receive every document of a file (a collection bound twice,
  // once), in the file's one transaction.
  for (const auto& b : cs.bindings) {
    auto target = plan.collections.find(b.target);
    if (target == plan.collections.end()) {
      return Error::Internal(fmt::format("capture `{}` binds unknown `{}`", cs.name, b.target));
    }
    if (std::find(c->targets.begin(), c->targets.end(), target->second) == c->targets.end()) {
      c->targets.push_back(target->second);
    }
  }
  if (c->targets.empty())
    return Error::Internal(fmt::format("capture `{}` has no bindings", cs.name));
  return c;
}

}  // namespace

Result<PartitionFilter> CompilePartitionFilter(const catalog::PartitionSelectorSpec& spec) {
  PartitionFilter f;
  if (!spec.present) return f;
  auto terms = [](const std::vector<catalog::PartitionSelectorSpec::Term>& in,
                  std::map<std::string, std::set<std::string>>* out) -> Result<bool> {
    for (const auto& t : in) {
      auto& set = (*out)[t.field];
      for (const doc::Node* n : t.values) {
        rapidjson::Document v;
        n->ToJson(&v, v.GetAllocator());
        std::string encoded;
        if (!store::EncodePartitionValue(v, &encoded)) {
          return Error::User(fmt::format("partition selector value for `{}` must be a string, integer or boolean",
                                         t.field));
        }
        set.insert(encoded);
      }
    }
    return true;
  };
  auto i = terms(spec.include, &f.include);
  if (!i) return i.error();
  auto e = terms(spec.exclude, &f.exclude);
  if (!e) return e.error();
  return f;
}

materialize::Table MakeTable(const catalog::BuiltCollection& collection, const std::string& table,
                             const std::vector<std::string>& fields, bool delta_updates) {
  materialize::Table t;
  t.name = table;
  t.delta_updates = delta_updates;
  for (const auto& f : fields) {
    materialize::Column c;
    c.field = f;
    const catalog::BuiltProjection* p = collection.Field(f);
    if (f == "flow_document" || (p && p->location.empty())) {
      c.document = true;
    } else if (p) {
      std::string why;
      if (auto ptr = doc::Pointer::Parse(p->location, &why)) c.location = *ptr;
      c.types = p->shape ? p->shape->types : static_cast<uint8_t>(schema::kAnyType);
      c.must_exist = p->must_exist;
      if (p->shape) c.max_length = p->shape->max_length;
    }
    for (size_t k = 0; k < collection.key_fields.size(); ++k) {
      if (collection.key_fields[k] == f) {
        c.key = true;
        c.key_position = static_cast<int>(k + 1);
      }
    }
    t.columns.push_back(std::move(c));
  }
  return t;
}

Result<Plan> CompileDerivationPlan(const catalog::Built& built, const std::string& derivation,
                                   const NodeStarter& node) {
  const catalog::BuiltDerivation* bd = nullptr;
  for (const auto& d : built.derivations) {
    if (d.collection->name == derivation) bd = &d;
  }
  if (!bd) return Error::Internal(fmt::format("`{}` is not a derivation", derivation));
  std::set<std::string> needed = {derivation};
  for (const auto& bt : bd->transforms) {
    needed.insert(bt.spec->source);
    if (!bt.dead_letters.empty()) needed.insert(bt.dead_letters);
  }
  Plan plan;
  for (const auto& c : built.collections) {
    if (!needed.count(c.spec->name)) continue;
    auto compiled = Collection::Compile(catalog::MakeCollectionRecord(c));
    if (!compiled) return compiled.error();
    plan.collections[c.spec->name] = compiled.value();
  }
  auto d = CompileDerivation(plan, *bd, node);
  if (!d) return d.error();
  plan.derivations.push_back(std::move(d.value()));
  return plan;
}

Result<Plan> CompilePlan(const catalog::Catalog& catalog, const catalog::Built& built, const NodeStarter& node) {
  Plan plan;
  for (const auto& c : built.collections) {
    auto compiled = Collection::Compile(catalog::MakeCollectionRecord(c));
    if (!compiled) return compiled.error();
    plan.collections[c.spec->name] = compiled.value();
  }
  auto fingerprints = TaskFingerprints(catalog, built);
  for (const auto& bd : built.derivations) {
    auto d = CompileDerivation(plan, bd, node);
    if (!d) return d.error();
    d.value()->logic = fingerprints["derivation:" + bd.collection->name];
    plan.derivations.push_back(std::move(d.value()));
  }
  for (const auto& ms : catalog.materializations) {
    auto m = CompileMaterialization(catalog, built, plan, ms);
    if (!m) return m.error();
    if (m.value()) plan.materializations.push_back(std::move(m.value()));
  }
  for (const auto& cs : catalog.captures) {
    auto c = CompileCapture(plan, cs);
    if (!c) return c.error();
    plan.captures.push_back(std::move(c.value()));
  }
  return plan;
}

}  // namespace flow::runtime
