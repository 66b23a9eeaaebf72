// `flowctl docs`: write the static documentation site of a catalog (SPEC section 10).
#pragma once

#include <string>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct DocsOptions {
  CatalogOptions catalog;
  std::string output;                     // the site's directory
  std::string data_dir = kDefaultDataDir;  // shown in the pages' lake paths
};

// Registers `flowctl docs` and its flags on `app`.
Command RegisterDocs(CLI::App& app);

int RunDocs(const GlobalOptions& g, const DocsOptions& o);

}  // namespace flow::cli
