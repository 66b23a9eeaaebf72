// One-off materializations: a collection materialized into a table of a catalog's target
// without a declaration in the catalog (`flowctl materialize`, and the same request sent to
// a running develop's control API).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "catalog/check.h"
#include "catalog/spec.h"
#include "runtime/materialize.h"
#include "runtime/task.h"
#include "store/journal.h"

namespace flow::runtime {

struct OneOffRequest {
  std::string target;               // a materialization target of the catalog
  std::string collection;           // the collection to materialize
  std::string table;                // the table to create, or reuse when it has the same shape
  std::vector<std::string> fields;  // fields to store besides the defaults
  bool all_fields = false;          // every projection
};

// The materialization `request` describes: named `materialize/<target>/<table>`, its
// fields selected as a declared binding's are (every projection with all_fields). Errors
// are the user's.
Result<std::shared_ptr<Materialization>> OneOffMaterialization(const catalog::Catalog& catalog,
                                                               const catalog::Built& built,
                                                               const OneOffRequest& request);

// The CREATE TABLE statement of a one-off materialization's table.
std::string CreateTableSqlOf(const Materialization& m);

// Runs `m` alone over `store` until it has stored everything committed (`flowctl
// materialize` without a develop), first rebuilding its table with `rebuild`. Its first
// error ends it: no retries.
Result<TaskCounters> MaterializeUntilCaughtUp(store::Store* store, std::shared_ptr<const Materialization> m,
                                              bool rebuild = false);

}  // namespace flow::runtime
