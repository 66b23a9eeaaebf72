// `flowctl run`: run the catalog's captures, derivations and materializations over a data
// directory, with back-fills (SPEC sections 8 and 11).
#include "cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/strings.h"
#include "cli/common.h"
#include "cli/node.h"
#include "cli/output.h"
#include "lambda/lambda.h"
#include "runtime/backfill.h"
#include "runtime/derive.h"
#include "runtime/plan.h"
#include "runtime/supervisor.h"
#include "store/lock.h"

namespace flow::cli {

struct RunOptions {
  CatalogOptions catalog;
  std::string data_dir = kDefaultDataDir;
  bool until_idle = false;
  std::vector<std::string> materializations;  // only these (default: all)
  std::vector<std::string> backfill;          // tasks (or collections) to back-fill
  bool plan = false;                          // only say what --backfill would reset
  std::string on_change = "continue";         // a derivation whose logic changed: continue or backfill
  unsigned threads = 0;                       // 0: the cores available
};

namespace {

std::atomic<bool> g_stop{false};
// Lambdas give up too, so that a lambda that never returns cannot hold the process.
void OnSignal(int) {
  g_stop = true;
  lambda::RequestStop();
}

// ", N sent to dead letters", when a task sent any.
std::string DeadLetters(const runtime::TaskStatus& t) {
  return t.counters.dead_letters ? fmt::format(", {} sent to dead letters", t.counters.dead_letters) : "";
}

// The progress line of the tasks: "acme/totals: 1,200 in, 40 out; acme/to-db: 900 read, 40
// rows; 3.2k documents/s" (captures, derivations, then materializations).
std::string StatusLine(const std::vector<runtime::TaskStatus>& status, double elapsed) {
  std::string line;
  uint64_t read = 0;
  for (auto kind : {runtime::TaskKind::kCapture, runtime::TaskKind::kDerivation, runtime::TaskKind::kMaterialization}) {
    for (const auto& t : status) {
      if (t.kind != kind) continue;
      read += t.counters.in;
      std::string what = kind == runtime::TaskKind::kCapture       ? fmt::format("{} files, {} documents", t.counters.in, t.counters.out)
                         : kind == runtime::TaskKind::kDerivation ? fmt::format("{} in, {} out", t.counters.in, t.counters.out)
                                                                  : fmt::format("{} read, {} rows", t.counters.in, t.counters.out);
      line += fmt::format("{}{}: {}{}", line.empty() ? "" : "; ", t.name, what,
                          t.state == runtime::TaskState::kHalted ? " (halted)" : "");
    }
  }
  if (elapsed >= 1 && read) line += fmt::format("; {:.1f}k documents/s", read / elapsed / 1e3);
  return line;
}

}  // namespace

int RunRun(const GlobalOptions& g, const RunOptions& o) {
  auto start = std::chrono::steady_clock::now();
  int code = 0;
  auto checked = LoadAndCheck(g, o.catalog, "; nothing was run", &code);
  if (!checked) return code;
  if (int node = PrepareNodeLambdas(g, *checked, "; nothing was run", !o.catalog.no_type_check);
      node != kExitOk) {
    return node;
  }
  auto plan = runtime::CompilePlan(checked->loaded->catalog, checked->built, NodeStarterFor(*checked));
  if (!plan) return PrintFailure(plan.error());
  auto backfill = runtime::BackfillOf(*plan, o.backfill);
  if (!backfill) return PrintFailure(backfill.error());
  if (o.plan) {  // what the back-fill resets, then the DDL each materialization would run
    for (const auto& line : runtime::DescribeBackfill(*backfill)) fmt::print("{}\n", line);
    auto ledger = store::ReadLedger(o.data_dir);
    int worst = ledger ? kExitOk : PrintFailure(ledger.error());
    for (const auto& m : ledger ? plan->materializations : decltype(plan->materializations){}) {
      auto ddl = runtime::PlanTables(*m, *ledger, backfill->materializations.count(m->name) > 0);
      if (!ddl) worst = std::max(worst, PrintFailure(ddl.error()));
      fmt::print("-- materialization `{}`: {}\n", m->name,
                 !ddl ? "refused (see the error)" : ddl->empty() ? "no change" : "would run");
      for (const auto& sql : ddl ? *ddl : std::vector<std::string>{}) fmt::print("{}{}\n", sql, sql.ends_with(';') ? "" : ";");
    }
    return worst;
  }
  auto data = OpenDataDir(o.data_dir, &code);
  if (!data) return code;
  store::Store* store = data->store.get();
  runtime::Stamper stamper;
  Progress progress("running");
  runtime::Supervisor::Options po;
  po.until_idle = o.until_idle;
  po.materializations = o.materializations;
  po.backfill_changed = o.on_change == "backfill";
  po.threads = static_cast<int>(ThreadsOrDefault(o.threads));
  po.log = [&](const std::string& line) { progress.Above([&] { PrintLine(line); }); };
  runtime::Supervisor pipeline(store, &stamper, po);
  auto applied = pipeline.Apply(std::make_shared<runtime::Plan>(std::move(plan.value())), {}, *backfill);
  if (!applied) return PrintFailure(applied.error());

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  auto last_status = std::chrono::steady_clock::now();
  auto ran = pipeline.Run(g_stop, [&] {
    auto now = std::chrono::steady_clock::now();
    if (!progress.enabled() || now - last_status <= std::chrono::milliseconds(500)) return;
    last_status = now;
    progress.Text(StatusLine(pipeline.Status(), std::chrono::duration<double>(now - start).count()));
  });
  if (!ran) return ran.error().ExitCode();  // logged
  progress.Text("writing lake fragments");
  auto persisted = store->PersistAll();
  progress.Stop();
  if (!persisted) return PrintFailure(persisted.error());
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto status = pipeline.Status();
  // Captures, then materializations, then derivations.
  for (auto kind : {runtime::TaskKind::kCapture, runtime::TaskKind::kMaterialization, runtime::TaskKind::kDerivation}) {
    for (const auto& t : status) {
      if (t.kind != kind) continue;
      std::vector<LogField> fields{{"task", t.name},         {"kind", runtime::ToString(kind)},
                                   {"in", t.counters.in},    {"out", t.counters.out},
                                   {"state", StateText(t)}};
      if (kind == runtime::TaskKind::kCapture) {
        PrintNote(fmt::format("capture `{}`: {} files, {} documents ingested{}", t.name, t.counters.in,
                              t.counters.out, StateText(t) == "running" ? "" : " (" + StateText(t) + ")"),
                  fields);
        continue;
      }
      fields.emplace_back("deadLetters", t.counters.dead_letters);
      PrintNote(fmt::format("{} `{}`: {} documents read, {} {}{}{}", runtime::ToString(kind), t.name, t.counters.in,
                            t.counters.out, kind == runtime::TaskKind::kDerivation ? "published" : "rows stored",
                            DeadLetters(t), t.state == runtime::TaskState::kHalted ? " (halted by an error)" : ""),
                fields);
    }
  }
  PrintNote(fmt::format("{} in {:.2f} s", g_stop ? "stopped" : "idle", secs));
  return pipeline.exit_code();
}

Command RegisterRun(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand(
      "run", "Run the catalog's captures, derivations and materializations over a data directory");
  AddCatalogOptions(*cmd, o->catalog);
  AddTypeCheckFlag(*cmd, o->catalog);
  AddDataDirOption(*cmd, o->data_dir);
  cmd->add_option("--materialization", o->materializations,
                  "Run only this materialization (repeatable; default: all of them)")
      ->type_name("NAME");
  cmd->add_option("--backfill", o->backfill,
                  "Recompute this derivation or materialization from the start of its sources' history, with "
                  "everything downstream of it; a collection back-fills what reads it (repeatable; see "
                  "docs/lifecycle.md)")
      ->type_name("NAME");
  cmd->add_flag("--plan", o->plan,
                "Only print what --backfill would reset and the DDL each materialization would run, and exit");
  cmd->add_option("--on-change", o->on_change,
                  "A derivation whose logic changed since its checkpoint: `continue` from there with a warning, "
                  "or `backfill` it and what is downstream")
      ->check(CLI::IsMember({"continue", "backfill"}))
      ->capture_default_str();
  AddThreadsOption(
      *cmd, o->threads,
      "How many derivations catching up on a backlog may compute at once, each on a thread of its "
      "own, so that a long back-fill holds up neither ingestion nor the other tasks; also the "
      "threads "
      "a materialization's transaction reads and combines on");
  cmd->add_flag("--until-idle", o->until_idle,
                "Exit once every task has processed everything committed (documents waiting "
                "for a read delay excepted)");
  cmd->footer(
      "Runs until SIGINT/SIGTERM (then persists spools and exits 0), or with --until-idle until "
      "caught up. A derivation that fails halts with its error; the others keep running.\n"
      "Exit status: 0 success, 1 a derivation failed or the catalog has errors, 2 usage error, "
      "3 an environment problem (data directory locked or unwritable, Node.js missing).");
  return {cmd, [o](const GlobalOptions& g) { return RunRun(g, *o); }};
}

}  // namespace flow::cli
