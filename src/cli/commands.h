// The commands main.cc registers that have no header of their own: each
// cli/<command>.cc holds its options, registers its flags (Register<Command>) and runs it.
#pragma once

#include "cli/command.h"

namespace flow::cli {

Command RegisterBuild(CLI::App& app);  // flowctl build
Command RegisterCombine(CLI::App& app);  // flowctl combine
Command RegisterDocs(CLI::App& app);  // flowctl docs
Command RegisterFsck(CLI::App& app);  // flowctl fsck
Command RegisterIngest(CLI::App& app);  // flowctl ingest
Command RegisterRead(CLI::App& app);  // flowctl read
Command RegisterTest(CLI::App& app);  // flowctl test

}  // namespace flow::cli
