// How commands start the Node.js workers of a catalog's nodeJS lambdas.
#pragma once

#include "cli/common.h"
#include "runtime/plan.h"

namespace flow::cli {

// A NodeStarter for the derivations of `catalog` (its nodeDependencies installed once).
runtime::NodeStarter NodeStarterFor(const CheckedCatalog& catalog);

// Transpiles every derivation's nodeJS lambdas and installs the catalog's nodeDependencies
// (what `flowctl build` does), then, with `type_check`, type-checks them against the
// catalog's TypeScript declarations; prints errors at the lambda's place in the sources.
// Returns the exit code: 0, 1 for a lambda that does not compile or type-check or a package
// that npm cannot find, 3 when esbuild, npm, node or tsc are missing.
int PrepareNodeLambdas(const GlobalOptions& g, const CheckedCatalog& catalog,
                       const std::string& consequence = {}, bool type_check = true);

}  // namespace flow::cli
