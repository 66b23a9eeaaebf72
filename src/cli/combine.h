// `flowctl combine`: validate JSON lines against a collection's schema and print them fully
// reduced, one document per key, in key order (SPEC section 8).
#pragma once

#include <string>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct CombineOptions {
  CatalogOptions catalog;
  std::string collection;
  std::string input;  // a file, or "" / "-" for stdin
  std::string memory_budget = kDefaultMemoryBudget;
  std::string spill_dir;
  bool combined_only = false;  // print combined (partial) documents instead of fully reduced
};

// Registers `flowctl combine` and its flags on `app`.
Command RegisterCombine(CLI::App& app);

int RunCombine(const GlobalOptions& g, const CombineOptions& o);

}  // namespace flow::cli
