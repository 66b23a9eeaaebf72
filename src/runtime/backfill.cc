#include "runtime/backfill.h"

#include <fmt/format.h>

#include "base/strings.h"
#include "runtime/derive.h"
#include "runtime/materialize.h"

namespace flow::runtime {

Backfill Downstream(const Plan& plan, Backfill b) {
  // Collections whose content is derived again.
  std::set<std::string> reset(b.derivations.begin(), b.derivations.end());
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& d : plan.derivations) {
      if (reset.count(d->collection->name)) continue;
      for (const auto& t : d->transforms) {
        if (reset.count(t.source->name)) {
          reset.insert(d->collection->name);
          b.derivations.insert(d->collection->name);
          grew = true;
          break;
        }
      }
    }
  }
  for (const auto& m : plan.materializations) {
    for (const auto& binding : m->bindings) {
      if (reset.count(binding.source->name)) b.materializations.insert(m->name);
    }
  }
  return b;
}

Result<Backfill> BackfillOf(const Plan& plan, const std::vector<std::string>& names) {
  Backfill b;
  for (const auto& name : names) {
    bool found = false;
    for (const auto& d : plan.derivations) {
      if (d->collection->name == name) {
        b.derivations.insert(name);
        found = true;
      }
    }
    for (const auto& m : plan.materializations) {
      if (m->name == name) {
        b.materializations.insert(name);
        found = true;
      }
    }
    if (!found && plan.collections.count(name)) {
      // A collection that is not derived: what reads it.
      for (const auto& d : plan.derivations) {
        for (const auto& t : d->transforms) {
          if (t.source->name == name) b.derivations.insert(d->collection->name);
        }
      }
      for (const auto& m : plan.materializations) {
        for (const auto& binding : m->bindings) {
          if (binding.source->name == name) b.materializations.insert(m->name);
        }
      }
      found = true;
    }
    if (!found) {
      std::vector<std::string> known;
      for (const auto& d : plan.derivations) known.push_back(d->collection->name);
      for (const auto& m : plan.materializations) known.push_back(m->name);
      for (const auto& [c, _] : plan.collections) known.push_back(c);
      std::string hint = DidYouMean(name, known);
      return Error::User(fmt::format("--backfill `{}`: no derivation, materialization or collection of that name in "
                                     "the catalog{}",
                                     name, hint.empty() ? "" : "; " + hint));
    }
  }
  return Downstream(plan, std::move(b));
}

std::vector<std::string> DescribeBackfill(const Backfill& b) {
  std::vector<std::string> lines;
  for (const auto& d : b.derivations) {
    lines.push_back(fmt::format("derivation `{}`: its collection and registers are reset, and it derives again from "
                                "the start of its sources",
                                d));
  }
  for (const auto& m : b.materializations) {
    lines.push_back(fmt::format("materialization `{}`: its tables are dropped, re-created and filled again from the "
                                "start of its sources",
                                m));
  }
  return lines;
}

}  // namespace flow::runtime
