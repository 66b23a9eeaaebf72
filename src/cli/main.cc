// flowctl command line: flag parsing and output formatting only. Library code never
// prints; commands turn Results and Diagnostics into text and exit codes (SPEC section 8).
// Each cli/<command>.cc registers its own subcommand and flags (cli/command.h); this file
// sets up the app and its global options, parses, and dispatches.
#include <fmt/format.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string_view>
#include <vector>

#include "base/version.h"
#include "catalog/source_schema.h"
#include "cli/command.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/manners.h"
#include "cli/output.h"

namespace {

using namespace flow;

// `flowctl json-schema` and `flowctl version` take no flags.
cli::Command RegisterJsonSchema(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "json-schema", "Print the JSON Schema of catalog source files (for editors and linters)");
  return {cmd, [](const cli::GlobalOptions&) {
            fmt::print("{}", catalog::CatalogSourceSchema());
            return kExitOk;
          }};
}

cli::Command RegisterVersion(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the flowctl version");
  return {cmd, [](const cli::GlobalOptions&) {
            fmt::print("flowctl {}\n", kVersion);
            return kExitOk;
          }};
}

// With --log-format json anywhere on the line, stderr holds only JSON records, usage errors
// included (the parse may have stopped before reaching the flag).
bool JsonLogFormatRequested(int argc, char** argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--log-format=json" ||
        (a == "--log-format" && i + 1 < argc && std::string_view(argv[i + 1]) == "json")) {
      json = true;
    }
  }
  return json;
}

}  // namespace

int main(int argc, char** argv) {
  // Document arenas allocate and free 1 MiB chunks all the time; by default glibc serves
  // those with mmap/munmap, so every reuse page-faults afresh. Keep them in the heap.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{
      "flowctl: define, check, test and run continuously-updating data pipelines described "
      "as YAML catalogs."};
  app.name("flowctl");  // not the path the binary was run by
  app.get_formatter()->label("SUBCOMMAND", "COMMAND");
  app.get_formatter()->label("SUBCOMMANDS", "COMMANDS");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("flowctl ") + kVersion, "Print the version and exit");
  cli::GlobalOptions g;
  // Global flags may come before or after the command (`flowctl build -v`).
  app.fallthrough();
  cli::AddGlobalOptions(app, g);
  app.footer("Run `flowctl COMMAND --help` for a command's options.");

  // In the order `flowctl --help` lists them.
  const std::vector<cli::Command> commands = {
      cli::RegisterInit(app), cli::RegisterInferSchema(app),
      cli::RegisterBuild(app), cli::RegisterCombine(app), cli::RegisterIngest(app),
      cli::RegisterRead(app),  cli::RegisterFsck(app),    cli::RegisterReset(app),   cli::RegisterPreview(app), cli::RegisterTest(app),
      cli::RegisterRun(app),   cli::RegisterDevelop(app), cli::RegisterMaterialize(app),
      cli::RegisterDocs(app),  RegisterJsonSchema(app),   cli::RegisterGenerateTypes(app),
      RegisterVersion(app),
      cli::RegisterHelp(app),  cli::RegisterCompletion(app), cli::RegisterMan(app),
  };
  cli::AddExamples(app);
  for (const auto& command : commands) command.subcommand->group("Commands");  // not "Subcommands"

  if (auto wrong = cli::CheckCommandWord(app, argc, argv)) {
    if (JsonLogFormatRequested(argc, argv)) g.log_format = "json";
    cli::ConfigureLogging(g);
    cli::PrintError(*wrong);
    return kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (JsonLogFormatRequested(argc, argv)) g.log_format = "json";
    if (g.log_format != "json") {
      app.exit(e);
      return kExitUsage;
    }
    cli::ConfigureLogging(g);
    cli::PrintError(fmt::format("{} (run with --help for more information)", e.what()));
    return kExitUsage;
  }

  cli::ConfigureLogging(g);
  for (const auto& command : commands) {
    if (command.subcommand->parsed()) return command.run(g);
  }
  return kExitUsage;
}
