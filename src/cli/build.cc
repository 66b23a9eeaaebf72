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
  const catalog::Built& built = checked->built;
  // TypeScript lambdas are transpiled and nodeDependencies installed now, so that their
  // errors are the build's.
  if (int node = PrepareNodeLambdas(g, *checked); node != kExitOk) {
    PrintNote(fmt::format("{} was not written", o.catalog));
    return node;
  }
  auto written = catalog::WriteBuiltCatalog(o.catalog, *loaded, built);
  if (!written) return PrintFailure(written.error());
  const auto& cat = loaded->catalog;
  size_t derived = 0, transforms = 0, projections = 0, bindings = 0, steps = 0;
  for (const auto& c : built.collections) projections += c.projections.size();
  for (const auto& d : built.derivations) transforms += d.transforms.size();
  for (const auto& c : cat.collections) derived += c.derivation ? 1 : 0;
  for (const auto& [_, b] : built.bindings) bindings += b.size();
  for (const auto& t : cat.tests) steps += t.steps.size();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  std::string summary = fmt::format(
      "built {} from {} ({} source file{}) in {} ms\n"
      "  collections:       {} ({} captured, {} derived), {} projections\n"
      "  transforms:        {}\n"
      "  materializations:  {} into {} target{} ({} table{})\n"
      "  captures:          {}\n"
      "  tests:             {} ({} steps)\n"
      "  npm dependencies:  {}",
      o.catalog, DisplayName(cat.root_url), cat.files.size(), cat.files.size() == 1 ? "" : "s", ms,
      cat.collections.size(), cat.collections.size() - derived, derived, projections, transforms,
      cat.materializations.size(), cat.targets.size(), cat.targets.size() == 1 ? "" : "s", bindings,
      bindings == 1 ? "" : "s", cat.captures.size(), cat.tests.size(), steps,
      cat.node_dependencies.size());
  if (JsonOutput()) {
    Log(LogLevel::kInfo, fmt::format("built {} from {}", o.catalog, DisplayName(cat.root_url)),
        {{"catalog", o.catalog},
         {"sources", static_cast<uint64_t>(cat.files.size())},
         {"ms", static_cast<int64_t>(ms)},
         {"collections", static_cast<uint64_t>(cat.collections.size())},
         {"derived", static_cast<uint64_t>(derived)},
         {"transforms", static_cast<uint64_t>(transforms)},
         {"materializations", static_cast<uint64_t>(cat.materializations.size())},
         {"captures", static_cast<uint64_t>(cat.captures.size())},
         {"tests", static_cast<uint64_t>(cat.tests.size())}});
  } else {
    fmt::print(stderr, "{}\n", summary);
  }
  return kExitOk;
}

Command RegisterBuild(CLI::App& app) {
  auto o = std::make_shared<BuildOptions>();
  auto* cmd =
      app.add_subcommand("build", "Load and check a catalog, and write the built catalog database");
  AddBuildCatalogOptions(*cmd, o->sources, o->catalog);
  cmd->footer(
      "Exit status: 0 built (warnings are printed but do not fail the build), 1 the catalog has "
      "errors, or warnings with --deny-warnings (all are printed), 2 usage error, 3 the catalog "
      "could not be written.");
  return {cmd, [o](const GlobalOptions& g) { return RunBuild(g, *o); }};
}

}  // namespace flow::cli
