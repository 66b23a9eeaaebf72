// How commands start the Node.js workers of a catalog's nodeJS lambdas.
#pragma once

#include "cli/common.h"
#include "runtime/plan.h"

namespace flow::cli {

// A NodeStarter for the derivations of `catalog` (its nodeDependencies installed once).
runtime::NodeStarter NodeStarterFor(const CheckedCatalog& catalog);

// Transpiles every derivation's nodeJS lambdas and installs the catalog's nodeDependencies
// (what `flowctl build` does), printing errors at the lambda's place in the sources. Returns
// the exit code: 0, 1 for a lambda that does not compile or a package that npm cannot
// find, 3 when esbuild or npm are missing.
int PrepareNodeLambdas(const GlobalOptions& g, const CheckedCatalog& catalog);

}  // namespace flow::cli
