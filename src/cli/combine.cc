// `flowctl combine`: validate JSON lines against a collection's schema and print them fully
// reduced, one document per key, in key order (SPEC section 8).
#include "cli/commands.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/common.h"
#include "cli/output.h"
#include "runtime/combine.h"
#include "runtime/input.h"

namespace flow::cli {

struct CombineOptions {
  CatalogOptions catalog;
  std::string collection;
  std::string input;  // a file, or "" / "-" for stdin
  std::string memory_budget = kDefaultMemoryBudget;
  std::string spill_dir;
  bool combined_only = false;  // print combined (partial) documents instead of fully reduced
  unsigned threads = 0;        // 0: the cores available
};

int RunCombine(const GlobalOptions& g, const CombineOptions& o) {
  auto start = std::chrono::steady_clock::now();
  auto budget = ParseBudget(o.memory_budget);
  if (!budget) return kExitUsage;
  int code = 0;
  auto collection = LoadCollection(g, o.catalog, o.collection, std::nullopt, &code);
  if (!collection) return code;

  auto input = runtime::Input::Open(o.input);
  if (!input) return PrintFailure(input.error());

  reduce::CombinerOptions copts;
  copts.memory_budget = *budget;
  copts.spill_dir = o.spill_dir;
  Progress progress("combining");
  progress.SetTotal(input->size());
  auto show = [&](uint64_t docs, uint64_t bytes, bool done) {
    if (done) return progress.Stop();  // before the first line of output
    progress.Update(docs, bytes);
  };
  StdoutLines out;
  auto sink = [&](std::string_view line) { return out.Add(line); };
  std::string where;
  auto combined = runtime::CombineInput(collection, *input, copts, o.combined_only, show, sink, &where,
                                        ThreadsOrDefault(o.threads));
  out.Flush();
  progress.Stop();
  if (!combined) return PrintErrorAtPlace(where, combined.error());
  if (out.failed()) {
    PrintError(fmt::format("cannot write the output: {}", std::strerror(errno)));
    return kExitEnvironment;
  }
  if (progress.enabled()) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto& st = combined->combiner;
    PrintNote(fmt::format("combined {} documents into {} keys in {:.2f} s{}", combined->documents, combined->keys, secs,
                          st.spills ? fmt::format(" ({} compactions, {} spill runs, {:.1f} MB spilled)",
                                                  st.compactions, st.spills, st.spilled_bytes / 1e6)
                          : st.compactions ? fmt::format(" ({} compactions)", st.compactions)
                                           : std::string()));
  }
  return kExitOk;
}

Command RegisterCombine(CLI::App& app) {
  auto o = std::make_shared<CombineOptions>();
  auto* cmd = app.add_subcommand(
      "combine",
      "Validate JSON lines against a collection's schema and print them fully reduced, one "
      "document per key, in key order");
  cmd->add_option("--collection", o->collection, "Collection whose schema and key apply")
      ->required();
  AddCatalogOptions(*cmd, o->catalog);
  AddMemoryBudgetOption(*cmd, o->memory_budget,
                        "Memory for documents before sorted runs spill to disk (e.g. 64MiB, 1GiB)");
  cmd->add_option("--spill-dir", o->spill_dir,
                  "Directory for spill files (default: $TMPDIR or /tmp); they are unlinked at "
                  "creation");
  AddThreadsOption(*cmd, o->threads,
                   "Threads that parse, validate and combine; the output is the same for any number");
  cmd->add_flag("--combined", o->combined_only,
                "Print combined (partial) documents: `set` keeps intersect/remove");
  cmd->add_option("FILE", o->input, "JSON lines to read (default: stdin)");
  cmd->footer(
      "Exit status: 0 success, 1 invalid input (malformed JSON with file:line:col, a document "
      "that fails validation, a reduction error) or catalog errors, 2 usage error, 3 the "
      "spill file or output cannot be written.");
  return {cmd, [o](const GlobalOptions& g) { return RunCombine(g, *o); }};
}

}  // namespace flow::cli
