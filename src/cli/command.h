// How a command joins flowctl's command line: each cli/<command>.cc registers its subcommand
// and flags and returns a Command that runs it once the line is parsed; main.cc dispatches.
// The option groups several commands share are defined here, once, so that a flag reads and
// behaves the same in every command. Headers only forward-declare CLI11's App.
#pragma once

#include <functional>
#include <string>

#include "cli/common.h"

namespace CLI {
class App;
}  // namespace CLI

namespace flow::cli {

// A registered subcommand. `run` owns the options its flags are parsed into; main calls it
// once, after parsing, when `subcommand` was given. It returns the exit code.
struct Command {
  CLI::App* subcommand = nullptr;
  std::function<int(const GlobalOptions&)> run;
};

// --no-color, -v/--verbose, --log-level and --log-format, on the app itself; with the app's
// fallthrough() they are accepted before or after the command.
void AddGlobalOptions(CLI::App& app, GlobalOptions& g);

// --source, --catalog, --resource-map and --deny-warnings: the catalog a command reads, from
// its sources or from a built catalog.
void AddCatalogOptions(CLI::App& cmd, CatalogOptions& o);

// The same flags for `build`, whose --catalog names the built catalog it writes (`output`);
// `sources.catalog` stays empty.
void AddBuildCatalogOptions(CLI::App& cmd, CatalogOptions& sources, std::string& output);

// --no-type-check: skip type-checking the nodeJS lambdas (build, test, run, develop).
void AddTypeCheckFlag(CLI::App& cmd, CatalogOptions& o);

// --data-dir, its default shown in the help.
void AddDataDirOption(CLI::App& cmd, std::string& dir,
                      const std::string& description = "Data directory");

// --memory-budget (a size such as 64MiB, read with ParseBudget when the command runs), its
// default shown in the help; `description` says what the memory is for.
void AddMemoryBudgetOption(CLI::App& cmd, std::string& budget, const std::string& description);

// --threads N (1 to 1024); `threads` keeps 0 when the flag is absent, for ThreadsOrDefault.
void AddThreadsOption(CLI::App& cmd, unsigned& threads, const std::string& description);
// `threads`, or the cores available (runtime::DefaultThreads) for 0.
unsigned ThreadsOrDefault(unsigned threads);

}  // namespace flow::cli
