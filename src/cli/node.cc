#include "cli/node.h"

#include <fmt/format.h>

#include <chrono>

#include "base/log.h"
#include "cli/output.h"
#include "runtime/node_lambdas.h"

namespace flow::cli {

runtime::NodeStarter NodeStarterFor(const CheckedCatalog& catalog) {
  return runtime::NodeStarterFor(catalog.loaded->catalog);
}

namespace {

// Type-checks the catalog's nodeJS lambdas, printing the type errors as catalog diagnostics.
int TypeCheck(const GlobalOptions& g, const CheckedCatalog& catalog,
              const std::string& consequence) {
  auto start = std::chrono::steady_clock::now();
  Diagnostics diags;
  auto checked = runtime::TypeCheckNodeLambdas(catalog.loaded->catalog, catalog.built, &diags);
  if (!checked) {
    PrintError(checked.error().message + consequence);
    return checked.error().ExitCode();
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  if (checked->lambdas > 0) {
    Log(LogLevel::kInfo,
        fmt::format(
            "type-checked {} nodeJS lambda{} in {} ms{}", checked->lambdas,
            checked->lambdas == 1 ? "" : "s", ms,
            checked->cached ? " (unchanged since the last check: its result was reused)" : ""),
        {{"lambdas", uint64_t{checked->lambdas}},
         {"ms", static_cast<int64_t>(ms)},
         {"cached", static_cast<int>(checked->cached)}});
  }
  if (diags.empty()) return kExitOk;
  diags.SortAndDedupe();
  PrintDiagnostics(g, diags);
  std::string summary = fmt::format("{} in the nodeJS lambdas{}", diags.CountText(), consequence);
  if (JsonOutput()) {
    PrintError(summary, {{"errors", uint64_t{diags.errors()}}});
  } else {
    fmt::print(stderr, "\n{}\n", summary);
  }
  return kExitUserError;
}

}  // namespace

int PrepareNodeLambdas(const GlobalOptions& g, const CheckedCatalog& catalog,
                       const std::string& consequence, bool type_check) {
  std::string where;
  auto prepared = runtime::PrepareNodeLambdas(catalog.loaded->catalog, catalog.built, &where);
  if (prepared) return type_check ? TypeCheck(g, catalog, consequence) : kExitOk;
  const Error& e = prepared.error();
  if (JsonOutput()) {
    PrintErrorAt(where, e.message + consequence);
  } else {
    fmt::print(stderr, "{}{}: {}{}\n", where.empty() ? "" : where + ": ",
               UseColor(g) ? "\033[31merror\033[0m" : "error", e.message, consequence);
  }
  return e.ExitCode();
}

}  // namespace flow::cli
