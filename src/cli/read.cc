// `flowctl read`: print a collection's committed documents as JSON lines (SPEC section 8).
#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <utility>

#include "cli/common.h"
#include "cli/output.h"
#include "runtime/read.h"

namespace flow::cli {

struct ReadOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::string collection;
  std::vector<std::string> partitions;  // `field=value` selectors
  bool reduced = false;
  bool follow = false;
  std::string memory_budget = kDefaultMemoryBudget;
  unsigned threads = 0;  // for --reduced; 0: the cores available
};

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

}  // namespace

int RunRead(const GlobalOptions& g, const ReadOptions& o) {
  if (o.reduced && o.follow) {
    PrintError("--reduced and --follow cannot be combined (a reduced view has no end to follow)");
    return kExitUsage;
  }
  auto budget = ParseBudget(o.memory_budget);
  if (!budget) return kExitUsage;
  int code = 0;
  auto collection = LoadCollection(g, o.catalog, o.collection, std::nullopt, &code);
  if (!collection) return code;
  auto reader = runtime::CollectionReader::Open(o.data_dir, collection, o.partitions);
  if (!reader) return PrintFailure(reader.error());

  StdoutLines out;
  auto sink = [&](std::string_view line) { return out.Add(line); };
  auto report = [&](const Error& e) {
    PrintError(fmt::format("collection `{}`: {}", collection->name, e.message));
    return e.ExitCode();
  };
  auto r = o.reduced ? (*reader)->Reduced(*budget, sink, ThreadsOrDefault(o.threads)) : (*reader)->Poll(sink);
  if (!r) return report(r.error());
  out.Flush();
  if (o.follow) {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    while (!g_stop && !out.failed()) {
      ::usleep(50 * 1000);
      r = (*reader)->Poll(sink);
      if (!r) return report(r.error());
      out.Flush();
    }
  }
  if (out.failed()) {
    PrintError(fmt::format("cannot write the output: {}", std::strerror(errno)));
    return kExitEnvironment;
  }
  return kExitOk;
}

Command RegisterRead(CLI::App& app) {
  auto o = std::make_shared<ReadOptions>();
  auto* cmd = app.add_subcommand("read", "Print a collection's committed documents as JSON lines");
  cmd->add_option("COLLECTION", o->collection, "Collection to read")->required();
  AddCatalogOptions(*cmd, o->catalog);
  AddDataDirOption(*cmd, o->data_dir);
  cmd->add_option("--partition", o->partitions,
                  "Only journals whose partition field has this value (repeatable)")
      ->type_name("FIELD=VALUE")
      ->check([](const std::string& s) {
        return s.find('=') > 0 && s.find('=') != std::string::npos ? "" : "`" + s + "` is not of the form field=value";
      });
  cmd->add_flag("--reduced", o->reduced, "One fully reduced document per key, in key order");
  cmd->add_flag("--follow", o->follow,
                "Keep printing documents as they are committed (until SIGINT)");
  AddMemoryBudgetOption(*cmd, o->memory_budget, "Memory for --reduced before it spills to disk");
  AddThreadsOption(*cmd, o->threads,
                   "Threads that parse and combine for --reduced; the output is the same for any number");
  cmd->footer(
      "Documents are printed in commit order across journals. Reading needs no lock: it works "
      "while another flowctl process writes the data directory, and sees only committed "
      "documents.");
  return {cmd, [o](const GlobalOptions& g) { return RunRead(g, *o); }};
}

}  // namespace flow::cli
