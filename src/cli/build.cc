// `flowctl build`: load and check a catalog, and write the built catalog database (SPEC
// section 8).
#include "cli/commands.h"

#include <chrono>
#include <cstdio>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "base/strings.h"
#include "base/url.h"
#include "catalog/built.h"
#include "cli/node.h"
#include "cli/common.h"
#include "cli/output.h"

namespace flow::cli {

struct BuildOptions {
  CatalogOptions sources;              // its `catalog` stays empty: build reads sources
  std::string catalog = "catalog.db";  // the built catalog to write
};

int RunBuild(const GlobalOptions& g, const BuildOptions& o) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = LoadAndCheck(g, o.sources, fmt::format("; {} was not written", o.catalog), &code);
  if (!checked) return code;
  const auto& loaded = checked->loaded;
  // TypeScript lambdas are transpiled, type-checked and nodeDependencies installed now, so
  // that their errors are the build's.
  if (int node = PrepareNodeLambdas(g, *checked, "", !o.sources.no_type_check); node != kExitOk) {
    PrintNote(fmt::format("{} was not written", o.catalog));
    return node;
  }
  auto written = catalog::WriteBuiltCatalog(o.catalog, *loaded, checked->built);
  if (!written) return PrintFailure(written.error());
  const auto& cat = loaded->catalog;
  catalog::Counts n = catalog::CountsOf(*checked);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  auto plural = [](size_t count) { return count == 1 ? "" : "s"; };
  if (JsonOutput()) {
    Log(LogLevel::kInfo, fmt::format("built {} from {}", o.catalog, DisplayName(cat.root_url)),
        {{"catalog", o.catalog}, {"sources", uint64_t{n.sources}}, {"ms", static_cast<int64_t>(ms)},
         {"collections", uint64_t{n.collections}}, {"derived", uint64_t{n.derived}},
         {"transforms", uint64_t{n.transforms}}, {"materializations", uint64_t{n.materializations}},
         {"captures", uint64_t{n.captures}}, {"tests", uint64_t{n.tests}}});
    return kExitOk;
  }
  fmt::print(stderr,
             "built {} from {} ({} source file{}) in {} ms\n"
             "  collections:       {} ({} captured, {} derived), {} projections\n"
             "  transforms:        {}\n"
             "  materializations:  {} into {} target{} ({} table{})\n"
             "  captures:          {}\n"
             "  tests:             {} ({} steps)\n"
             "  npm dependencies:  {}\n",
             o.catalog, DisplayName(cat.root_url), n.sources, plural(n.sources), ms, n.collections,
             n.collections - n.derived, n.derived, n.projections, n.transforms, n.materializations, n.targets,
             plural(n.targets), n.bindings, plural(n.bindings), n.captures, n.tests, n.steps, n.npm_dependencies);
  return kExitOk;
}

Command RegisterBuild(CLI::App& app) {
  auto o = std::make_shared<BuildOptions>();
  auto* cmd =
      app.add_subcommand("build", "Load and check a catalog, and write the built catalog database");
  AddBuildCatalogOptions(*cmd, o->sources, o->catalog);
  AddTypeCheckFlag(*cmd, o->sources);
  cmd->footer(
      "Exit status: 0 built (warnings are printed but do not fail the build), 1 the catalog has "
      "errors, or warnings with --deny-warnings (all are printed), 2 usage error, 3 the catalog "
      "could not be written.");
  return {cmd, [o](const GlobalOptions& g) { return RunBuild(g, *o); }};
}

}  // namespace flow::cli
