// `flowctl run`: run the catalog's tasks over a data directory (SPEC section 8). Issue 5
// runs derivations; captures and materializations join them in later issues.
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct RunOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  bool until_idle = false;
  std::vector<std::string> materializations;  // only these (default: all)
};

// Registers `flowctl run` and its flags on `app`.
Command RegisterRun(CLI::App& app);

int RunRun(const GlobalOptions& g, const RunOptions& o);

}  // namespace flow::cli
