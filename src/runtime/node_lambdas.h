// Setting up a catalog's nodeJS lambdas: the workers a plan starts for its derivations, and
// the check `flowctl build` (and develop) runs before anything starts.
#pragma once

#include <string>

#include "base/result.h"
#include "catalog/check.h"
#include "catalog/spec.h"
#include "runtime/plan.h"

namespace flow::runtime {

// A NodeStarter for the derivations of `catalog`: one Node.js worker per derivation, with
// the catalog's nodeDependencies.
NodeStarter NodeStarterFor(const catalog::Catalog& catalog);

// Transpiles every derivation's nodeJS lambdas as one module and installs the catalog's
// nodeDependencies. On failure `*where` is the place of the lambda the error names in the
// sources ("FILE:LINE:COLUMN"), else empty. User errors: a lambda that does not compile, a
// package npm cannot find; environment errors: esbuild or npm missing.
Result<bool> PrepareNodeLambdas(const catalog::Catalog& catalog, const catalog::Built& built,
                                std::string* where);

}  // namespace flow::runtime
