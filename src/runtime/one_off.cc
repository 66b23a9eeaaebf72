#include "runtime/one_off.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "base/strings.h"
#include "catalog/built.h"
#include "materialize/dialect.h"
#include "runtime/parallel.h"
#include "runtime/plan.h"
#include "runtime/supervisor.h"

namespace flow::runtime {

Result<std::shared_ptr<Materialization>> OneOffMaterialization(const catalog::Catalog& cat,
                                                               const catalog::Built& built,
                                                               const OneOffRequest& o) {
  if (o.all_fields && !o.fields.empty())
    return Error::User("--field and --all-fields cannot be combined");
  const catalog::TargetSpec* target = nullptr;
  std::vector<std::string> names;
  for (const auto& t : cat.targets) {
    names.push_back(t.name);
    if (t.name == o.target) target = &t;
  }
  if (!target) {
    std::string hint = DidYouMean(o.target, names);
    return Error::User(fmt::format("no materialization target `{}` in the catalog{}", o.target,
                                   hint.empty() ? "" : "; " + hint));
  }
  const catalog::BuiltCollection* collection = built.Collection(o.collection);
  if (!collection) {
    names.clear();
    for (const auto& c : built.collections) names.push_back(c.spec->name);
    std::string hint = DidYouMean(o.collection, names);
    return Error::User(fmt::format("no collection `{}` in the catalog{}", o.collection,
                                   hint.empty() ? "" : "; " + hint));
  }
  if (o.table.empty()) return Error::User("the table name is empty");

  // Fields: as a declared binding selects them (the key, then the --field ones or the
  // defaults, then `flow_document`); --all-fields adds every projection.
  std::vector<std::string> fields;
  if (o.all_fields) {
    fields = collection->key_fields;
    for (const auto& p : collection->projections) {
      if (p.field != "flow_document" &&
          std::find(fields.begin(), fields.end(), p.field) == fields.end()) {
        fields.push_back(p.field);
      }
    }
    fields.push_back("flow_document");
  } else {
    catalog::MaterializationBindingSpec binding;
    binding.source = o.collection;
    binding.table = o.table;
    binding.fields.present = !o.fields.empty();
    binding.fields.include = o.fields;
    binding.fields.include_where.resize(o.fields.size());
    std::vector<std::string> errors;
    fields = catalog::SelectFields(
        *collection, binding,
        [&](const catalog::Where&, const std::string& message, const std::string& hint) {
          errors.push_back(
              fmt::format("--field: {}{}", message, hint.empty() ? "" : "\n    hint: " + hint));
        });
    if (!errors.empty()) return Error::User(fmt::format("{}", fmt::join(errors, "\nerror: ")));
  }
  auto compiled = Collection::Compile(catalog::MakeCollectionRecord(*collection));
  if (!compiled) return compiled.error();
  auto m = std::make_shared<Materialization>();
  m->name = fmt::format("materialize/{}/{}", o.target, o.table);
  m->target = target->name;
  m->kind = target->kind;
  m->address = target->address;
  m->bindings.push_back(
      {compiled.value(), MakeTable(*collection, o.table, fields, false), nullptr});
  return std::shared_ptr<Materialization>(std::move(m));
}

std::string CreateTableSqlOf(const Materialization& m) {
  auto dialect =
      m.kind == "postgres" ? materialize::Dialect::kPostgres : materialize::Dialect::kSqlite;
  return materialize::CreateTableSql(dialect, m.bindings[0].table);
}

Result<TaskCounters> MaterializeUntilCaughtUp(store::Store* store, std::shared_ptr<const Materialization> m,
                                              bool rebuild) {
  Supervisor::Options so;
  so.retry_targets = false;
  so.log = [](const std::string&) {};  // the first failure is the result
  so.threads = static_cast<int>(DefaultThreads());  // the read path's threads (no derivations)
  Supervisor tasks(store, nullptr, so);
  tasks.AddMaterialization(std::move(m), rebuild);
  for (;;) {
    auto round = tasks.Step();
    if (!round) return round.error();
    if (const auto& failure = tasks.first_failure()) return *failure;
    if (!round->progress) break;
  }
  return tasks.Status().at(0).counters;
}

}  // namespace flow::runtime
