// Shared pieces of the command implementations: global flags, colour, and loading the
// catalog a command needs (from sources, checked in memory, or from a built catalog).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "catalog/built.h"

namespace flow::cli {

struct GlobalOptions {
  bool no_color = false;
};

bool UseColor(const GlobalOptions& g);

// `source` as a URL (paths become file:// URLs).
std::string SourceUrl(const std::string& source);

struct CatalogOptions {
  std::string source = "flow.yaml";
  std::string catalog;  // a built catalog; used instead of `source` when set
  std::vector<std::string> resource_map;
};

// The collections of the catalog. On failure prints the errors to stderr and returns
// nullopt with `*exit_code` set.
std::optional<std::vector<catalog::CollectionRecord>> LoadCollections(const GlobalOptions& g,
                                                                     const CatalogOptions& o,
                                                                     int* exit_code);

}  // namespace flow::cli
