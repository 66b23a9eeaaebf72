#include "cli/read.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <memory>
#include <set>

#include "base/strings.h"
#include "cli/output.h"
#include "doc/parse.h"
#include "doc/uuid.h"
#include "reduce/combiner.h"
#include "runtime/collection.h"
#include "runtime/source_reader.h"
#include "store/journal.h"

namespace flow::cli {
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
  auto compiled = LoadCollection(g, o.catalog, o.collection, std::nullopt, &code);
  if (!compiled) return code;
  const runtime::Collection& collection = *compiled;

  // `--partition f=v`: the journal name segment `f=<v encoded>` must be present.
  std::vector<std::string> segments;
  for (const auto& sel : o.partitions) {
    size_t eq = sel.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintError(fmt::format("--partition `{}` is not of the form field=value", sel));
      return kExitUsage;
    }
    std::string field = sel.substr(0, eq);
    std::vector<std::string> names;
    bool known = false;
    for (const auto& p : collection.partitions) {
      names.push_back(p.field);
      known = known || p.field == field;
    }
    if (!known) {
      std::string hint = DidYouMean(field, names);
      PrintError(fmt::format("`{}` is not a partition field of collection `{}`{}", field, collection.name,
                             names.empty() ? " (it has none)"
                             : !hint.empty() ? "; " + hint
                                             : fmt::format(" (its partition fields: {})", fmt::join(names, ", "))));
      return kExitUserError;
    }
    std::string seg = field + "=";
    doc::Value v(sel.c_str() + eq + 1, static_cast<rapidjson::SizeType>(sel.size() - eq - 1));
    store::EncodePartitionValue(v, &seg);
    segments.push_back("/" + seg + "/");
  }

  struct stat st;
  if (::stat(o.data_dir.c_str(), &st) != 0) {
    PrintError(fmt::format("data directory {} does not exist; ingest into it first, or pass --data-dir",
               o.data_dir));
    return kExitUserError;
  }

  runtime::SourceReader reader(o.data_dir, {{collection.name, {}, 0, ""}});
  std::set<std::string> journals;
  store::LedgerState state;
  bool first_refresh = true;
  auto refresh = [&]() -> Result<bool> {
    auto s = store::ReadLedger(o.data_dir, /*check_files=*/first_refresh);
    first_refresh = false;
    if (!s) return s.error();
    state = std::move(s.value());
    for (const auto& j : store::CollectionJournals(state, collection.name)) {
      if (journals.count(j)) continue;
      std::string padded = j.substr(collection.name.size()) + "/";
      bool selected = std::all_of(segments.begin(), segments.end(),
                                  [&](const std::string& seg) { return padded.find(seg) != std::string::npos; });
      if (!selected) continue;
      journals.insert(j);
      reader.Add(0, j);
    }
    reader.Advance(state);
    return true;
  };

  std::unique_ptr<reduce::Combiner> combiner;
  rapidjson::Document parsed;
  if (o.reduced) {
    reduce::CombinerOptions copts;
    copts.memory_budget = *budget;
    combiner = std::make_unique<reduce::Combiner>(collection.reducer, collection.key, copts);
    parsed = rapidjson::Document(&combiner->scratch());
  }
  std::string out;
  bool write_failed = false;
  auto flush = [&]() {
    if (!out.empty() && std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) write_failed = true;
    out.clear();
    if (std::fflush(stdout) != 0) write_failed = true;
  };

  // Reads everything committed that is not yet printed, in commit order.
  auto drain = [&]() -> Result<bool> {
    return reader.Drain(
        [&](const std::string& journal, uint64_t offset, const std::string& line) -> Result<bool> {
          if (combiner) {
            doc::ParseError perr;
            if (!doc::ParseStoredDocument(line, &parsed, &perr)) {
              return Error::Env(
                  fmt::format("journal {} holds a malformed document at offset {}: {}", journal,
                              offset, perr.message));
            }
            auto a = combiner->AddScratch(parsed);
            if (!a) {
              return Error{a.error().code,
                           fmt::format("the document at offset {} of journal {}: {}", offset,
                                       journal, a.error().message)};
            }
            return a;
          }
          out.append(line);
          out.push_back('\n');
          if (out.size() >= (1 << 20)) flush();
          if (write_failed)
            return Error::Env(fmt::format("cannot write the output: {}", std::strerror(errno)));
          return true;
        });
  };

  auto report = [&](const Error& e) {
    PrintError(fmt::format("collection `{}`: {}", collection.name, e.message));
    return e.ExitCode();
  };
  auto r = refresh();
  if (r) r = drain();
  if (!r) return report(r.error());
  if (combiner) {
    auto drained = combiner->Drain(true, [&](std::string_view, doc::Value& d) -> Result<bool> {
      doc::AppendJson(d, &out);
      out.push_back('\n');
      if (out.size() >= (1 << 20)) flush();
      if (write_failed) return Error::Env(fmt::format("cannot write the output: {}", std::strerror(errno)));
      return true;
    });
    if (!drained) return report(drained.error());
  }
  flush();
  if (o.follow) {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    while (!g_stop && !write_failed) {
      ::usleep(50 * 1000);
      r = refresh();
      if (r) r = drain();
      if (!r) return report(r.error());
      flush();
    }
  }
  if (write_failed) {
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
      ->type_name("FIELD=VALUE");
  cmd->add_flag("--reduced", o->reduced, "One fully reduced document per key, in key order");
  cmd->add_flag("--follow", o->follow,
                "Keep printing documents as they are committed (until SIGINT)");
  AddMemoryBudgetOption(*cmd, o->memory_budget, "Memory for --reduced before it spills to disk");
  cmd->footer(
      "Documents are printed in commit order across journals. Reading needs no lock: it works "
      "while another flowctl process writes the data directory, and sees only committed "
      "documents.");
  return {cmd, [o](const GlobalOptions& g) { return RunRead(g, *o); }};
}

}  // namespace flow::cli
