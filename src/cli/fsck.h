// `flowctl fsck`: verify a data directory without modifying it (SPEC sections 8 and 9).
#pragma once

#include <string>

#include "cli/command.h"
#include "cli/common.h"

namespace flow::cli {

struct FsckOptions {
  std::string data_dir = kDefaultDataDir;
};

// Registers `flowctl fsck` and its flags on `app`.
Command RegisterFsck(CLI::App& app);

// Prints the report to stdout. Exit status: 0 clean, 1 damage found, 3 the directory
// cannot be read.
int RunFsck(const GlobalOptions& g, const FsckOptions& o);

}  // namespace flow::cli
