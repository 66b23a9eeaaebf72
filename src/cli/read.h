// `flowctl read`: print a collection's committed documents as JSON lines (SPEC section 8).
#pragma once

#include <string>
#include <vector>

#include "cli/common.h"

namespace flow::cli {

struct ReadOptions {
  CatalogOptions catalog;
  std::string data_dir = "flowctl-data";
  std::string collection;
  std::vector<std::string> partitions;  // `field=value` selectors
  bool reduced = false;
  bool follow = false;
  std::string memory_budget = "256MiB";
};

int RunRead(const GlobalOptions& g, const ReadOptions& o);

}  // namespace flow::cli
