// `flowctl docs`: write the static documentation site of a catalog (SPEC section 10).
#pragma once

#include <string>

#include "cli/common.h"

namespace flow::cli {

struct DocsOptions {
  CatalogOptions catalog;
  std::string output;                     // the site's directory
  std::string data_dir = "flowctl-data";  // shown in the pages' lake paths
};

int RunDocs(const GlobalOptions& g, const DocsOptions& o);

}  // namespace flow::cli
