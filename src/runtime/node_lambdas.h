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
// the catalog's nodeDependencies. `output_fd`: where the workers' stdout and stderr go (see
// lambda::NodeOptions::output_fd); -1: captured.
NodeStarter NodeStarterFor(const catalog::Catalog& catalog, int output_fd = -1);

// Transpiles every derivation's nodeJS lambdas as one module and installs the catalog's
// nodeDependencies. On failure `*where` is the place of the lambda the error names in the
// sources ("FILE:LINE:COLUMN"), else empty. User errors: a lambda that does not compile, a
// package npm cannot find; environment errors: esbuild or npm missing.
Result<bool> PrepareNodeLambdas(const catalog::Catalog& catalog, const catalog::Built& built,
                                std::string* where);

// The TypeScript declarations of the catalog (a module, flow.d.ts): a type per
// collection (`shop/orders` -> ShopOrders), per derivation's register (ShopByStatusRegister)
// and per transform's `source.schema` (ShopByStatusFromOrdersSource), of what a
// derivation's lambdas return (ShopByStatusOutput, ShopByStatusRegisterOutput: TypeScriptOf's
// `output`), and the signature of each transform's lambdas
// (ShopByStatusFromOrdersPublish), from their schemas as
// schema/typescript.h maps them. What `flowctl generate-types` writes, and what `flowctl
// build` checks the lambdas against.
std::string TypeScriptDeclarations(const catalog::Catalog& catalog, const catalog::Built& built);

struct TypeCheckResult {
  size_t lambdas = 0;   // nodeJS lambdas checked
  bool cached = false;  // an earlier check of the same text was reused: tsc did not run
};

// Type-checks every nodeJS lambda of the catalog against TypeScriptDeclarations in one tsc
// run (lambda::TypeCheckNodeLambdas), adding an error per type error at its place in the
// sources to `diags`, with a hint naming the lambda's types. Environment errors: `node` or
// the TypeScript compiler missing or failing.
Result<TypeCheckResult> TypeCheckNodeLambdas(const catalog::Catalog& catalog,
                                             const catalog::Built& built, Diagnostics* diags);

}  // namespace flow::runtime
