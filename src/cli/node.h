// How commands start the Node.js workers of a catalog's nodeJS lambdas.
#pragma once

#include "cli/common.h"
#include "runtime/plan.h"

namespace flow::cli {

// A NodeStarter for the derivations of `catalog` (its nodeDependencies installed once).
runtime::NodeStarter NodeStarterFor(const CheckedCatalog& catalog);

}  // namespace flow::cli
