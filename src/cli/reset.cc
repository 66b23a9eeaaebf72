// `flowctl reset`: empty a data directory, or some of its collections (SPEC section 11).
#include <unistd.h>

#include <filesystem>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/output.h"
#include "store/journal.h"

namespace flow::cli {

struct ResetOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  std::vector<std::string> collections;  // only these (default: the whole directory)
  bool yes = false;
};

int RunReset(const GlobalOptions& g, const ResetOptions& o) {
  std::vector<catalog::CollectionRecord> records;
  if (!o.collections.empty()) {  // named collections must exist in the catalog
    int code = 0;
    auto loaded = LoadCollections(g, o.catalog, &code);
    if (!loaded) return code;
    records = std::move(*loaded);
    for (const auto& c : o.collections) {
      if (!FindCollection(records, c, &code)) return code;
    }
  }
  if (!std::filesystem::is_directory(o.data_dir)) {  // nothing to empty, and nothing to create
    PrintError(fmt::format("data directory {} does not exist; pass --data-dir", o.data_dir));
    return kExitEnvironment;
  }
  std::string what = o.collections.empty() ? "every collection of " + o.data_dir
                                           : fmt::format("collection(s) {} in {}", fmt::join(o.collections, ", "), o.data_dir);
  if (!Confirm(fmt::format("Delete the documents of {}?", what), o.yes, "pass --yes to reset (stdin is not a terminal to ask on)",
               "nothing was reset")) {
    return ::isatty(STDIN_FILENO) ? kExitOk : kExitUsage;
  }
  if (o.collections.empty()) {
    auto lock = store::DataDirLock::Acquire(o.data_dir);
    if (!lock) return PrintFailure(lock.error());
    if (auto wiped = store::Store::Wipe(o.data_dir); !wiped) return PrintFailure(wiped.error());
    auto fresh = store::Store::Open(o.data_dir);
    if (!fresh) return PrintFailure(fresh.error());
    PrintNote(fmt::format("reset {}: it is empty, with a new identity; materializations of it now need "
                          "`flowctl run --backfill NAME` to rebuild their tables",
                          o.data_dir));
    return kExitOk;
  }
  int code = 0;
  auto data = OpenDataDir(o.data_dir, &code);
  if (!data) return code;
  std::vector<std::string> journals;
  for (const auto& c : o.collections) {
    for (auto& j : store::CollectionJournals(data->store->committed(), c)) journals.push_back(std::move(j));
  }
  if (auto reset = data->store->Reset(journals, {}); !reset) return PrintFailure(reset.error());
  PrintNote(fmt::format("reset {}: {} journal(s) emptied; tasks reading them stop until back-filled "
                        "(`flowctl run --backfill COLLECTION` back-fills what reads it)",
                        what, journals.size()));
  return kExitOk;
}

Command RegisterReset(CLI::App& app) {
  auto o = std::make_shared<ResetOptions>();
  auto* cmd = app.add_subcommand("reset", "Empty a data directory, or some of its collections");
  AddCatalogOptions(*cmd, o->catalog);
  AddDataDirOption(*cmd, o->data_dir);
  cmd->add_option("--collection", o->collections, "Empty only this collection (repeatable)")->type_name("NAME");
  cmd->add_flag("--yes", o->yes, "Do not ask for confirmation (needed when stdin is not a terminal)");
  cmd->footer(
      "Targets are not touched: a materialization's tables keep what they hold, and its checkpoint then names "
      "data that is gone, so it stops with an error naming `flowctl run --backfill NAME`, which rebuilds them "
      "(see docs/lifecycle.md).\n"
      "Exit status: 0 reset (or declined), 1 an unknown collection, 2 usage error (no --yes without a "
      "terminal), 3 the data directory does not exist, is locked by another process or cannot be written.");
  return {cmd, [o](const GlobalOptions& g) { return RunReset(g, *o); }};
}

}  // namespace flow::cli
