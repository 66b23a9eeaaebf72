// The commands main.cc registers: each cli/<command>.cc holds its options, registers its
// flags (Register<Command>) and runs it.
#pragma once

#include "cli/command.h"

namespace flow::cli {

Command RegisterBuild(CLI::App& app);  // flowctl build
Command RegisterCombine(CLI::App& app);  // flowctl combine
Command RegisterDevelop(CLI::App& app);  // flowctl develop
Command RegisterDocs(CLI::App& app);  // flowctl docs
Command RegisterFsck(CLI::App& app);  // flowctl fsck
Command RegisterGenerateTypes(CLI::App& app);  // flowctl generate-types
Command RegisterInferSchema(CLI::App& app);  // flowctl infer-schema
Command RegisterIngest(CLI::App& app);  // flowctl ingest
Command RegisterInit(CLI::App& app);  // flowctl init
Command RegisterMaterialize(CLI::App& app);  // flowctl materialize
Command RegisterPreview(CLI::App& app);  // flowctl preview
Command RegisterRead(CLI::App& app);  // flowctl read
Command RegisterReset(CLI::App& app);  // flowctl reset
Command RegisterRun(CLI::App& app);  // flowctl run
Command RegisterTest(CLI::App& app);  // flowctl test

}  // namespace flow::cli
