#include "cli/combine.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/strings.h"
#include "cli/input.h"
#include "cli/output.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "reduce/combiner.h"
#include "runtime/collection.h"

namespace flow::cli {

int RunCombine(const GlobalOptions& g, const CombineOptions& o) {
  auto start = std::chrono::steady_clock::now();
  auto budget = ParseBudget(o.memory_budget);
  if (!budget) return kExitUsage;
  int code = 0;
  auto compiled = LoadCollection(g, o.catalog, o.collection, std::nullopt, &code);
  if (!compiled) return code;
  const runtime::Collection& collection = *compiled;

  auto input = Input::Open(o.input);
  if (!input) {
    PrintError(input.error().message);
    return kExitUserError;
  }
  const std::string& input_name = input->name();

  reduce::CombinerOptions copts;
  copts.memory_budget = *budget;
  copts.spill_dir = o.spill_dir;
  reduce::Combiner combiner(collection.reducer, collection.key, copts);
  rapidjson::Document parsed(&combiner.scratch());
  LineReader lines(input->file());
  std::string_view line;
  bool progress = ::isatty(STDERR_FILENO) && !JsonOutput();
  auto last_progress = start;
  uint64_t docs = 0;
  while (lines.Next(&line)) {
    if (BlankLine(line)) continue;
    doc::ParseError perr;
    if (!doc::ParseTerminatedDocument(line, &parsed, &perr)) {
      PrintErrorAt(fmt::format("{}:{}:{}", input_name, lines.number(), perr.offset + 1), perr.message);
      return kExitUserError;
    }
    auto valid = collection.Validate(parsed, combiner.scratch());
    if (!valid) {
      PrintErrorAt(fmt::format("{}:{}", input_name, lines.number()), valid.error().message);
      return kExitUserError;
    }
    auto added = combiner.AddScratch(parsed);
    if (!added) {
      if (added.error().code == Error::Code::kUser) {
        PrintErrorAt(fmt::format("{}:{}", input_name, lines.number()),
                     fmt::format("cannot reduce into collection `{}`: {}", o.collection, added.error().message));
      } else {
        PrintError(added.error().message);
      }
      return added.error().ExitCode();
    }
    ++docs;
    if (progress && (docs & 0xffff) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_progress > std::chrono::milliseconds(500)) {
        last_progress = now;
        fmt::print(stderr, "\rcombining: {} documents, {:.1f} MB read", docs, lines.bytes() / 1e6);
      }
    }
  }
  if (lines.too_long()) {
    PrintErrorAt(fmt::format("{}:{}", input_name, lines.number()), lines.TooLongMessage());
    return kExitUserError;
  }
  if (lines.failed()) {
    PrintError(fmt::format("cannot read {}: {}", input_name, std::strerror(errno)));
    return kExitUserError;
  }
  if (progress && docs >= 0x10000) fmt::print(stderr, "\r\033[K");

  std::string out;
  out.reserve(1 << 20);
  uint64_t keys = 0;
  bool write_failed = false;
  auto flush = [&]() {
    if (!out.empty() && std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) write_failed = true;
    out.clear();
  };
  auto drained = combiner.Drain(!o.combined_only, [&](std::string_view, doc::Value& d) -> Result<bool> {
    doc::AppendJson(d, &out);
    out.push_back('\n');
    ++keys;
    if (out.size() >= (1 << 20)) flush();
    if (write_failed) return Error::Env(fmt::format("cannot write the output: {}", std::strerror(errno)));
    return true;
  });
  flush();
  if (std::fflush(stdout) != 0) write_failed = true;
  if (!drained) {
    PrintError(fmt::format("collection `{}`: {}", o.collection, drained.error().message));
    return drained.error().ExitCode();
  }
  if (write_failed) {
    PrintError(fmt::format("cannot write the output: {}", std::strerror(errno)));
    return kExitEnvironment;
  }
  if (progress) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto& st = combiner.stats();
    PrintNote(fmt::format("combined {} documents into {} keys in {:.2f} s{}", docs, keys, secs,
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
