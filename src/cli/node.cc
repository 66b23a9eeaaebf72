#include "cli/node.h"

#include <fmt/format.h>

#include "cli/output.h"
#include "runtime/node_lambdas.h"

namespace flow::cli {

runtime::NodeStarter NodeStarterFor(const CheckedCatalog& catalog) {
  return runtime::NodeStarterFor(catalog.loaded->catalog);
}

int PrepareNodeLambdas(const GlobalOptions& g, const CheckedCatalog& catalog) {
  std::string where;
  auto prepared = runtime::PrepareNodeLambdas(catalog.loaded->catalog, catalog.built, &where);
  if (prepared) return kExitOk;
  const Error& e = prepared.error();
  if (JsonOutput()) {
    PrintErrorAt(where, e.message);
  } else {
    fmt::print(stderr, "{}{}: {}\n", where.empty() ? "" : where + ": ",
               UseColor(g) ? "\033[31merror\033[0m" : "error", e.message);
  }
  return e.ExitCode();
}

}  // namespace flow::cli
