// `flowctl build`: load and check a catalog, and write the built catalog database (SPEC
// section 8).
#pragma once

#include <string>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct BuildOptions {
  CatalogOptions sources;              // its `catalog` stays empty: build reads sources
  std::string catalog = "catalog.db";  // the built catalog to write
};

// Registers `flowctl build` and its flags on `app`.
Command RegisterBuild(CLI::App& app);

int RunBuild(const GlobalOptions& g, const BuildOptions& o);

}  // namespace flow::cli
