#include "cli/command.h"

#include <CLI/CLI.hpp>

#include "runtime/parallel.h"

namespace flow::cli {

void AddGlobalOptions(CLI::App& app, GlobalOptions& g) {
  app.add_flag("--no-color", g.no_color, "Never colour output (also: the NO_COLOR variable)");
  app.add_flag("-v,--verbose", g.verbosity, "Log more: -v info, -vv debug (to stderr)");
  app.add_option("--log-level", g.log_level,
                 "Log records at this level and above: error, warn, info or debug (default: warn; "
                 "info with --log-format json)")
      ->check(CLI::IsMember({"error", "warn", "warning", "info", "debug"}));
  app.add_option("--log-format", g.log_format,
                 "text, or json: one JSON object per line on stderr (time, level, message and "
                 "fields such as collection, task, journal, offset), errors and summaries included")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

void AddCatalogOptions(CLI::App& cmd, CatalogOptions& o) {
  cmd.add_option("--source", o.source, "Root catalog source file or URL")->capture_default_str();
  cmd.add_option("--catalog", o.catalog, "Use this built catalog instead of --source");
  cmd.add_option("--resource-map", o.resource_map,
                 "Read URLs starting with PREFIX from files under DIR (repeatable)")
      ->type_name("PREFIX=DIR");
  cmd.add_flag("--deny-warnings", o.deny_warnings, "Fail on catalog warnings as on errors");
}

void AddBuildCatalogOptions(CLI::App& cmd, CatalogOptions& sources, std::string& output) {
  cmd.add_option("--source", sources.source, "Root catalog source file or URL")
      ->capture_default_str();
  cmd.add_option("--catalog", output, "Path of the built catalog to write")->capture_default_str();
  cmd.add_option("--resource-map", sources.resource_map,
                 "Read URLs starting with PREFIX from files under DIR (repeatable), for building "
                 "offline")
      ->type_name("PREFIX=DIR");
  cmd.add_flag("--deny-warnings", sources.deny_warnings,
               "Fail on catalog warnings as on errors (for CI)");
}

void AddTypeCheckFlag(CLI::App& cmd, CatalogOptions& o) {
  cmd.add_flag("--no-type-check", o.no_type_check,
               "Do not type-check TypeScript lambdas against the schemas' types (faster; they "
               "are still transpiled, and syntax errors still fail)");
}

void AddDataDirOption(CLI::App& cmd, std::string& dir, const std::string& description) {
  cmd.add_option("--data-dir", dir, description)->capture_default_str();
}

void AddMemoryBudgetOption(CLI::App& cmd, std::string& budget, const std::string& description) {
  cmd.add_option("--memory-budget", budget, description)->capture_default_str();
}

void AddThreadsOption(CLI::App& cmd, unsigned& threads, const std::string& description) {
  cmd.add_option("--threads", threads, description + " (default: the cores available)")
      ->type_name("N")
      ->check(CLI::Range(1u, 1024u));
}

unsigned ThreadsOrDefault(unsigned threads) { return threads ? threads : runtime::DefaultThreads(); }

}  // namespace flow::cli
