// `flowctl materialize`: print the DDL of a one-off materialization of a collection into a
// target's table, and (unless --dry-run) run it until caught up (SPEC section 8).
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct MaterializeOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::string target;
  std::string collection;
  std::string table;
  std::vector<std::string> fields;
  bool all_fields = false;
  bool dry_run = false;
  bool yes = false;
};

// Registers `flowctl materialize` and its flags on `app`.
Command RegisterMaterialize(CLI::App& app);

int RunMaterialize(const GlobalOptions& g, const MaterializeOptions& o);

}  // namespace flow::cli
