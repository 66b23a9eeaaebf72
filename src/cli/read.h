// `flowctl read`: print a collection's committed documents as JSON lines (SPEC section 8).
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct ReadOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::string collection;
  std::vector<std::string> partitions;  // `field=value` selectors
  bool reduced = false;
  bool follow = false;
  std::string memory_budget = kDefaultMemoryBudget;
};

// Registers `flowctl read` and its flags on `app`.
Command RegisterRead(CLI::App& app);

int RunRead(const GlobalOptions& g, const ReadOptions& o);

}  // namespace flow::cli
