// Back-fills (SPEC 11): which tasks a `--backfill NAME` recomputes. A derivation is derived
// again from the start of its sources (its collection reset to a new generation, its
// registers and checkpoint cleared), and so is everything downstream of it: the derivations
// reading its collection, theirs, and every materialization of those collections, whose
// tables are rebuilt. A materialization alone is rebuilt; a collection back-fills what reads it.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/plan.h"

namespace flow::runtime {

struct Backfill {
  std::set<std::string> derivations;       // by collection name
  std::set<std::string> materializations;  // by name
  bool empty() const { return derivations.empty() && materializations.empty(); }
};

// The back-fill of `names` (derivations, materializations or collections of `plan`) with
// everything downstream. A name the catalog lacks is a user error with a "did you mean".
Result<Backfill> BackfillOf(const Plan& plan, const std::vector<std::string>& names);

// `b` plus everything downstream of its derivations.
Backfill Downstream(const Plan& plan, Backfill b);

// What a back-fill does, one line each ("derivation `x`: its collection and registers are reset
// and it derives again from the start of its sources").
std::vector<std::string> DescribeBackfill(const Backfill& b);

}  // namespace flow::runtime
